"""Prompt notices by email: the statements' sender machinery, one IP pool at a time.

A notice goes through the same `pipeline.delivery` path as a statement: the pool's relays and
source addresses, STARTTLS required and verified, the pool's and each provider's rate limits,
the warm-up quota (its usage counted with the statements'), operator pauses and suspensions,
adaptive throttling, DKIM, a deterministic Message-ID and a signed VERP return path (the notice's
id in place of a statement's, so a later bounce finds the notice). The wording is its own
(`templates/email/notice/`: no PHI, like the statement's), and the message names the notice in
`X-EOB-Notice`.

What differs is what a failure means. A notice is sent because its deadline is at hand or gone,
so it is not retried by email: anything that keeps it from a relay's 250 now (a refusal, a
deferral, a pool that cannot connect, a pause, the warm-up cap, the time budget) hands it to the
caller's `on_failed`, which puts it on paper. A refusal caused by the member's address also
suppresses the address, as a statement's does. Each outcome is handed over as it arrives, for the
caller to commit before the next message goes out on that connection; `on_attempt` comes right
before a transaction starts, so a crash leaves the notice marked as attempted (in doubt).

This task reads the pool's throttling state but does not write it back: its few messages should
not replace what the statements' sender learned.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.delivery import PoolConfigError, RelayCredentials, check_pool_can_connect, send_config
from pipeline.delivery.suppression import suppress
from pipeline.stages.connections import credentials_from_environment
from pipeline.stages.context import Context
from pipeline.stages.passwords import password_hint
from pipeline.stages.send import brand_name, brand_phone, pool_holds

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class NoticeEmail:
    """One notice to email: its id, its statement (for the suppression list's back-reference),
    where to, in which language, and the encrypted PDF's key in the object store."""

    notice_id: str
    statement_id: str
    period: str
    recipient: str
    language: str
    object_key: str


def send_notice_emails(
    ctx: Context, pool_name: str, items: Sequence[NoticeEmail], *,
    credentials: RelayCredentials | None,
    on_accepted: Callable[[NoticeEmail, dict[str, Any]], None],
    on_failed: Callable[[NoticeEmail, str], None],
) -> dict[str, Any]:
    """Email `items` through one pool; every item ends in exactly one of the two callbacks.
    Returns the pool's counts (no addresses)."""
    from pipeline.delivery import (
        ACCEPTED,
        HELD,
        REJECTED,
        SendControls,
        SendResult,
        ca_file_for,
        make_tls_context,
        provider_lookup,
        send_pool,
    )
    from pipeline.delivery import controls as controls_db
    from pipeline.delivery.dkim import load_signer
    from pipeline.delivery.warmup import Quota
    from pipeline.outcomes import classify

    settings = ctx.settings
    config = send_config(settings)
    pool = config.pool(pool_name)
    by_id = {item.notice_id: item for item in items}
    try:
        check_pool_can_connect(pool, settings)
        credentials = credentials or credentials_from_environment(pool)
    except PoolConfigError as exc:
        log.warning("pool %s cannot send notices from this machine (%s): %d go to paper",
                    pool_name, type(exc).__name__, len(items))
        for item in items:
            on_failed(item, f"pool {pool_name} cannot send from this machine")
        return {"pool": pool_name, "attempted": 0, "accepted": 0, "failed": len(items)}
    now = ctx.now()
    held, throttled = pool_holds(ctx, pool_name, now)
    warm = controls_db.warmup_status(ctx.ledger, pool, now)
    quota = Quota(warm.allowance,
                  reserve=lambda n: controls_db.add_usage(ctx.ledger, pool_name, n, ctx.now()),
                  release=lambda n: controls_db.add_usage(ctx.ledger, pool_name, -n, ctx.now()))
    secret = settings.verp_secret.get_secret_value()
    failed = 0

    def on_attempt(outgoing: Any) -> None:
        ctx.ledger.execute("notice_attempt", notice_id=outgoing.statement_id, pool=pool_name)

    def on_suspend(provider: str, seconds: float, reason: str) -> None:
        controls_db.pause(ctx.ledger, config, pool=pool_name, provider=provider, reason=reason,
                          actor="sender", now=ctx.now(), seconds=seconds, kind=controls_db.SUSPEND)

    def on_result(result: SendResult) -> None:
        nonlocal failed
        item = by_id[result.statement_id]
        if result.outcome == ACCEPTED:
            on_accepted(item, {"pool": pool_name, "code": result.reply_code,
                               "status": result.enhanced_status, "provider": result.provider})
            return
        failed += 1
        if result.outcome == HELD:
            on_failed(item, f"email held on pool {pool_name} (paused, suspended, warm-up cap or time "
                            "budget)")
            return
        if result.outcome == REJECTED and not result.pool_fault:
            classification = classify(result.reply_code, result.enhanced_status,
                                      result.server_reply or result.reply_text)
            if classification.recipient_caused:
                suppress(ctx.ledger, item.recipient, cause=classification.category.value,
                         statement_id=item.statement_id, secret=secret)
        code = " ".join(str(part) for part in (result.reply_code, result.enhanced_status) if part)
        fault = "the pool could not deliver" if result.pool_fault else result.outcome
        on_failed(item, f"email {fault} on pool {pool_name}" + (f": {code}" if code else ""))

    controls = SendControls(
        provider_of=provider_lookup(config.provider_domains), held=held, quota=quota,
        max_seconds=settings.send_max_seconds, policy=config.throttle.policy(),
        throttle_state=controls_db.load_throttle(ctx.ledger, pool_name, now), start_throttled=throttled,
        on_attempt=on_attempt, on_suspend=on_suspend,
        sign=load_signer(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file),
        credentials=credentials)
    try:
        stats = send_pool(pool, _outgoing(ctx, items), on_result,
                          tls_context=make_tls_context(ca_file_for(pool, settings)),
                          ehlo_hostname=settings.smtp_ehlo_hostname,
                          timeout=settings.smtp_timeout_seconds, controls=controls)
    finally:
        quota.close()
    return {"pool": pool_name, "attempted": stats.attempted, "accepted": stats.accepted,
            "failed": failed, "connections": stats.connections}


def _outgoing(ctx: Context, items: Sequence[NoticeEmail]) -> Iterator[Any]:
    """Each notice's message, built only when the sender is ready for it."""
    from pipeline.delivery import Outgoing, return_path
    from pipeline.delivery.message import (
        NOTICE_HEADER,
        NOTICE_TEMPLATES_DIR,
        MessageTemplate,
        email_language,
        render_email,
    )

    settings = ctx.settings
    secret = settings.verp_secret.get_secret_value()
    templates: dict[tuple[str, str], MessageTemplate] = {}
    for item in items:
        language = email_language(item.language)
        template = templates.get((language, item.period))
        if template is None:
            template = templates[(language, item.period)] = MessageTemplate(
                from_address=settings.mail_from_address, from_name=settings.mail_from_name,
                message_id_domain=settings.message_id_domain, pdf_filename=f"notice-{item.period}.pdf",
                id_header=NOTICE_HEADER,
                content=render_email(language=language, templates_dir=NOTICE_TEMPLATES_DIR, context={
                    "support_phone": brand_phone(), "brand_name": brand_name(),
                    "password_hint": password_hint(settings.password_policy, language)}))
        envelope = return_path(item.notice_id, secret, settings.bounce_domain)
        message = template.message_bytes(statement_id=item.notice_id, recipient=item.recipient,
                                         envelope_from=envelope, pdf=ctx.store.get(item.object_key))
        yield Outgoing(item.notice_id, item.recipient, envelope, message)
