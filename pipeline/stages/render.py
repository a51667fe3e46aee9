"""Render stage: one shard's composed statements to stored PDFs."""

from __future__ import annotations

import logging
from typing import Any

from pipeline.ledger import Transition
from pipeline.stages.context import Context, flush_transitions, run_dir, run_id_for
from pipeline.statuses import Status

log = logging.getLogger(__name__)
FLUSH_EVERY = 200

def render_stage(ctx: Context, period: str, shard: int) -> dict[str, Any]:
    """Render and store every composed statement of one shard; already-rendered ones are skipped."""
    from pipeline.compose import iter_composed
    from pipeline.passwords import PasswordPolicyError, member_password
    from pipeline.pdfcrypt import encrypt_pdf
    from pipeline.render import TemplateError, render_statement

    run_id = run_id_for(period)
    pending = {row["statement_id"] for row in ctx.ledger.fetch(
        "statement_ids_in_shard", run_id=run_id, shard=shard) if row["status"] == "composed"}
    owner = ctx.settings.pdf_owner_password.get_secret_value()
    batch: list[Transition] = []
    counts = {"rendered": 0, "failed": 0, "skipped": 0, "pages": 0}
    for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                  prompt_notice_days=ctx.settings.prompt_notice_days):
        statement = composed.statement
        if statement.statement_id not in pending:
            counts["skipped"] += 1
            continue
        try:
            if composed.channel == "email":
                rendered = render_statement(statement, variant="email")
                password = member_password(statement.member, ctx.settings.password_policy)
                data = encrypt_pdf(rendered.pdf, user_password=password, owner_password=owner)
                del password
                key = f"statements/{period}/{shard:03d}/{statement.statement_id}.pdf"
            else:
                rendered = render_statement(statement, variant="print")
                data = rendered.pdf
                key = f"print/{period}/{shard:03d}/{statement.statement_id}.pdf"
        except (TemplateError, PasswordPolicyError) as exc:
            batch.append(Transition(statement.statement_id, Status.FAILED, "render_failed",
                                    {"error": type(exc).__name__, "reason": str(exc)[:200]},
                                    {"last_reason": str(exc)[:200]}))
            counts["failed"] += 1
            continue
        stored = ctx.store.put(key, data, "application/pdf")
        location = {"object_key" if composed.channel == "email" else "print_key": key}
        batch.append(Transition(
            statement.statement_id, Status.RENDERED, "rendered",
            {"pages": rendered.pages, "bytes": stored.size, "variant": composed.channel},
            {**location, "sha256": stored.sha256, "pages": rendered.pages, "size_bytes": stored.size}))
        counts["rendered"] += 1
        counts["pages"] += rendered.pages
        if len(batch) >= FLUSH_EVERY:
            flush_transitions(ctx, batch, "render", shard)
    flush_transitions(ctx, batch, "render", shard)
    log.info("shard rendered", extra={"run_id": run_id, "shard": shard, **counts})
    return {"run_id": run_id, "shard": shard, **counts}
