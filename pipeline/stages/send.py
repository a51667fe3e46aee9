"""Send stage: every statement queued for one IP pool, outcomes committed as they arrive."""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Iterator
from functools import cache
from typing import Any

from pipeline.ledger import Transition
from pipeline.routing import retry_or_paper, route
from pipeline.stages.context import TEMPLATES_DIR, Context, member_contacts
from pipeline.statuses import Status
from pipeline.suppression import suppress

log = logging.getLogger(__name__)

@cache
def password_hints() -> dict[str, dict[str, str]]:
    with (TEMPLATES_DIR / "email" / "password_hints.toml").open("rb") as handle:
        return tomllib.load(handle)


def send_stage(ctx: Context, pool_name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Send every statement queued for one IP pool; each outcome is committed as it arrives."""
    from pipeline.classify import classify
    from pipeline.send import SendResult, make_tls_context, send_pool

    settings = ctx.settings
    pool = settings.pool(pool_name)
    rows = ctx.ledger.fetch("queued_for_pool", pool=pool_name)
    if dry_run or not rows:
        return {"pool": pool_name, "queued": len(rows), "dry_run": dry_run, "attempted": 0}
    attempts = {row["statement_id"]: row["attempts"] for row in rows}
    recipients: dict[str, str] = {}

    def on_result(result: SendResult) -> None:
        tries = attempts[result.statement_id] + 1
        detail = {"pool": pool_name, "code": result.reply_code, "status": result.enhanced_status}
        if result.outcome == "accepted":
            ctx.ledger.apply([Transition(result.statement_id, Status.SENT, "sent", detail,
                                         attempts_increment=1)])
            return
        reason = f"{result.reply_code or ''} {result.enhanced_status or ''} {result.reply_text}".strip()
        if result.outcome == "rejected":
            classification = classify(result.reply_code, result.enhanced_status, result.reply_text)
            moves = route(result.statement_id, classification, attempts=tries,
                          policy=ctx.retry_policy, now=ctx.now(), source="smtp", reason=reason)
            if classification.recipient_caused:
                suppress(ctx.ledger, recipients[result.statement_id], cause=classification.category.value,
                         statement_id=result.statement_id,
                         secret=settings.verp_secret.get_secret_value())
        else:
            moves = retry_or_paper(result.statement_id, attempts=tries, policy=ctx.retry_policy,
                                   now=ctx.now(), reason=reason)
        if moves:
            first = moves[0]
            moves[0] = Transition(first.statement_id, first.to, first.event,
                                  {**first.detail, **detail}, first.fields, attempts_increment=1)
        ctx.ledger.apply(moves)

    stats = send_pool(pool, _outgoing(ctx, rows, recipients), on_result,
                      tls_context=make_tls_context(settings.smtp_ca_file),
                      ehlo_hostname=settings.smtp_ehlo_hostname,
                      timeout=settings.smtp_timeout_seconds)
    ctx.ledger.audit("pipeline", "send", None, {"pool": pool_name, "attempted": stats.attempted})
    result = {"pool": pool_name, "queued": len(rows), "attempted": stats.attempted,
              "accepted": stats.accepted, "rejected": stats.rejected, "deferred": stats.deferred,
              "connections": stats.connections}
    log.info("pool sent", extra=result)
    return result


def _outgoing(ctx: Context, rows: list[dict[str, Any]], recipients: dict[str, str]) -> Iterator[Any]:
    """Build each message only when the sender is ready for it: bounded memory."""
    from pipeline.mail import build_message, render_email
    from pipeline.send import Outgoing
    from pipeline.verp import return_path

    settings = ctx.settings
    secret = settings.verp_secret.get_secret_value()
    contacts: dict[str, dict[str, tuple[str, str]]] = {}
    contents: dict[str, Any] = {}
    for row in rows:
        statement = ctx.ledger.statement(row["statement_id"])
        assert statement is not None
        run_members = contacts.setdefault(statement["run_id"],
                                          member_contacts(settings, statement["run_id"]))
        email, language = run_members[statement["member_id"]]
        if language not in contents:
            hint = password_hints()[settings.password_policy]
            contents[language] = render_email(language=language, context={
                "support_phone": _brand_phone(), "brand_name": _brand_name(),
                "password_hint": hint.get(language, hint["en"]),
                "period_label": statement["period"]})
        recipients[row["statement_id"]] = email
        envelope = return_path(row["statement_id"], secret, settings.bounce_domain)
        message = build_message(
            statement_id=row["statement_id"], recipient=email,
            from_address=settings.mail_from_address, from_name=settings.mail_from_name,
            envelope_from=envelope, message_id_domain=settings.message_id_domain,
            content=contents[language], pdf=ctx.store.get(row["object_key"]),
            pdf_filename=f"statement-{statement['period']}.pdf")
        yield Outgoing(row["statement_id"], email, envelope, message)


def _brand_phone() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.phone")


def _brand_name() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.short_name")
