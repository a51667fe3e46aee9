"""Ingest and compose stages: extracts in, statements in the ledger."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipeline.ledger import NewStatement
from pipeline.stages.context import Context, run_dir, run_id_for
from pipeline.suppression import is_suppressed


def ingest_stage(ctx: Context, period: str, source: Path | None = None) -> dict[str, Any]:
    from pipeline.ingest import ingest

    run_id = run_id_for(period)
    folder = source or ctx.settings.extracts_dir / period
    ctx.ledger.start_run(run_id, period, str(folder.name), ctx.settings.shards)
    result = ingest(folder, run_dir(ctx.settings, run_id), ctx.settings.shards)
    ctx.ledger.record_ingest(run_id, result.files, result.quarantined)
    return {"run_id": run_id, "lines_read": result.rows_read, "lines_accepted": result.rows_accepted,
            "lines_quarantined": result.rows_quarantined, "members": result.members}


def compose_stage(ctx: Context, period: str) -> dict[str, Any]:
    from pipeline.compose import iter_composed

    run_id = run_id_for(period)
    secret = ctx.settings.verp_secret.get_secret_value()

    def suppressed(email: str) -> bool:
        return is_suppressed(ctx.ledger, email, secret)

    counts = {"statements": 0, "email": 0, "paper": 0, "prompt_notice": 0, "inserted": 0}
    for shard in range(ctx.settings.shards):
        rows = []
        for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                      prompt_notice_days=ctx.settings.prompt_notice_days,
                                      is_suppressed=suppressed):
            statement = composed.statement
            rows.append(NewStatement(
                statement.statement_id, run_id, period, statement.member.member_id,
                statement.version, shard, composed.channel, composed.paper_reason,
                composed.email_domain, len(statement.lines), composed.prompt_notice))
            counts["statements"] += 1
            counts[composed.channel] += 1
            counts["prompt_notice"] += int(composed.prompt_notice)
        counts["inserted"] += ctx.ledger.add_statements(rows)
    return {"run_id": run_id, **counts}
