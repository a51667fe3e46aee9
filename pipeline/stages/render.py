"""Render stage: one shard's composed statements to stored PDFs (one mapped task per shard).

Idempotent by content: every statement's unencrypted PDF is deterministic, and its sha256
(the content hash) is recorded with the 'rendered' event. A re-run of the shard renders
again (cheap) and, for a statement still 'rendered' whose content hash is unchanged, skips
the encryption and the upload; if the content changed (corrected data, edited wording) it
stores the new PDF under the same key and records a 'rerendered' event. Statements already
queued, sent, failed or superseded are never touched.

PHI: the member password lives only in a local variable between derivation and encryption;
ledger rows, events and logs carry statement ids, hashes and counts only.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.sql import clause
from pipeline.ledger.statuses import Status
from pipeline.stages.context import Context, check_ingested, flush_transitions, run_dir, run_id_for
from pipeline.stages.notices import separate_notices, tell_separate_notices
from pipeline.stages.route import route_statements

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Counts:
    rendered: int = 0
    rerendered: int = 0
    unchanged: int = 0
    failed: int = 0
    skipped: int = 0
    pages: int = 0
    rerendered_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, int]:
        return {"rendered": self.rendered, "rerendered": self.rerendered,
                "unchanged": self.unchanged, "failed": self.failed, "skipped": self.skipped,
                "pages": self.pages}


def render_stage(ctx: Context, period: str, shard: int, *, route: bool = False) -> dict[str, Any]:
    """Render and store every composed statement of one shard; see the module docstring.

    With ``route``, each batch is routed as soon as it is recorded (to an IP pool's send queue
    or to paper), so the run's senders start on it while the rest of the run renders."""
    from pipeline.compose import iter_composed
    from pipeline.render import (
        EncryptionError,
        PasswordPolicyError,
        RenderError,
        encrypt_pdf,
        freeze_caches,
        member_password,
        render_statement,
    )
    from pipeline.templates import TemplateError

    run_id = run_id_for(period)
    check_ingested(ctx.ledger, run_id, period, "render")
    rows = ctx.ledger.fetch("statement_ids_in_shard", run_id=run_id, shard=shard)
    statuses = {row["statement_id"]: row["status"] for row in rows}
    # the channel compose recorded (it knows the suppression list; the statement re-derived
    # here does not) decides the variant and the route
    channels = {row["statement_id"]: row["channel"] for row in rows}
    hashes = content_hashes(ctx, run_id, shard)
    notices = separate_notices(ctx, run_id, shard)  # what each statement says about its notices
    owner = ctx.settings.pdf_owner_password.get_secret_value()
    batch: list[Transition] = []
    ready: list[tuple[str, str]] = []  # (statement_id, channel) rendered and not yet routed
    counts = _Counts()
    warmed = False

    def flush() -> None:
        flush_transitions(ctx, batch, "render", shard)
        if route and ready:
            route_statements(ctx, ready)
        ready.clear()

    for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                  notices=ctx.notice_rule(run_id), statement_ids=ctx.statement_ids(run_id),
                                  accumulator_overrun=ctx.settings.accumulator_overrun):
        statement = composed.statement
        status = statuses.get(statement.statement_id)
        if status not in (Status.COMPOSED, Status.RENDERED):
            counts.skipped += 1
            continue
        tell_separate_notices(statement, notices)
        channel = channels.get(statement.statement_id) or composed.channel
        email = channel == "email"
        try:
            rendered = render_statement(statement, variant="email" if email else "print")
            if not warmed:  # the caches are built now: keep the collector off them
                freeze_caches()
                warmed = True
            content = rendered.content_sha256
            if status == Status.RENDERED and hashes.get(statement.statement_id) == content:
                counts.unchanged += 1
                ready.append((statement.statement_id, channel))
                continue
            if email:
                data = encrypt_pdf(rendered, owner_password=owner, user_password=member_password(
                    statement.member, ctx.settings.password_policy))
            else:
                data = rendered.pdf
        except (TemplateError, RenderError, PasswordPolicyError, EncryptionError) as exc:
            # messages name the statement, a template key or a policy: never member data
            reason = f"{type(exc).__name__}: {exc}"[:200]
            counts.failed += 1
            if status == Status.COMPOSED:
                batch.append(Transition(statement.statement_id, Status.FAILED, Event.RENDER_FAILED,
                                        {"error": type(exc).__name__, "reason": reason},
                                        {"last_reason": reason}))
            else:  # keep the earlier, good PDF; the timeline says why it was not replaced
                ctx.ledger.record_event(statement.statement_id, Event.RERENDER_FAILED,
                                        {"error": type(exc).__name__, "reason": reason})
            continue
        folder = "statements" if email else "print"
        key = f"{folder}/{period}/{shard:03d}/{statement.statement_id}.pdf"
        stored = ctx.store.put(key, data, "application/pdf")
        detail = {"pages": rendered.pages, "bytes": stored.size, "variant": channel,
                  "content_sha256": content}
        counts.pages += rendered.pages
        if status == Status.RENDERED:
            replace_object(ctx, statement.statement_id, stored.sha256, rendered.pages,
                           stored.size, detail)
            counts.rerendered += 1
            counts.rerendered_ids.append(statement.statement_id)
            ready.append((statement.statement_id, channel))
            continue
        location = {"object_key" if email else "print_key": key}
        batch.append(Transition(
            statement.statement_id, Status.RENDERED, Event.RENDERED, detail,
            {**location, "sha256": stored.sha256, "pages": rendered.pages,
             "size_bytes": stored.size}))
        counts.rendered += 1
        ready.append((statement.statement_id, channel))
        if len(batch) >= ctx.settings.render_batch_size:
            flush()
    flush()
    if counts.rerendered_ids:
        ctx.ledger.audit("pipeline", "rerender", None,
                         {"shard": shard, "statement_ids": counts.rerendered_ids})
    log.info("shard rendered", extra={"run_id": run_id, "shard": shard, **counts.as_dict()})
    return {"run_id": run_id, "shard": shard, **counts.as_dict()}


def content_hashes(ctx: Context, run_id: str, shard: int) -> dict[str, str]:
    """statement_id -> content hash of its latest render, for the shard's 'rendered' rows."""
    found: dict[str, str] = {}
    for row in ctx.ledger.fetch("render_content_hashes", run_id=run_id, shard=shard):
        detail = json.loads(row["detail"] or "{}")
        if "content_sha256" in detail:
            found[row["statement_id"]] = detail["content_sha256"]  # rows come oldest first
    return found


def replace_object(ctx: Context, statement_id: str, sha256: str, pages: int, size: int,
                   detail: dict[str, Any]) -> None:
    """A changed re-render of a still-'rendered' statement: new object facts + its event."""
    with ctx.ledger.begin() as conn:
        at = ctx.ledger.now()
        moved = conn.execute(clause("render_replace_object"), {
            "statement_id": statement_id, "sha256": sha256, "pages": pages,
            "size_bytes": size, "at": at}).rowcount
        if moved:
            conn.execute(clause("insert_event"), {
                "statement_id": statement_id, "at": at, "event": Event.RERENDERED.value,
                "from_status": Status.RENDERED.value, "to_status": Status.RENDERED.value,
                "detail": json.dumps(detail, sort_keys=True)})
