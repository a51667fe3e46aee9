"""Route stage: each rendered statement to one IP pool's send queue, or to paper.

The render stage routes each batch as soon as it is stored (``route_statements``), so a pool's
sender can start on a shard's first statements while the rest of the run renders; the route task
after the last shard (``route_stage``) routes whatever is still rendered (a batch whose routing
was interrupted, or every pool paused at the time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.delivery.controls import route_weights
from pipeline.delivery.pools import pick_pool, send_config
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.stages.context import Context, run_id_for


def route_stage(ctx: Context, period: str) -> dict[str, Any]:
    """Rendered statements go to one IP pool's send queue, or to the paper queue."""
    run_id = run_id_for(period)
    rows = ((row["statement_id"], row["channel"]) for row in
            ctx.ledger.fetch("rendered_for_run", run_id=run_id))
    return {"run_id": run_id, **route_statements(ctx, rows)}


def route_statements(ctx: Context, statements: Iterable[tuple[str, str]]) -> dict[str, int]:
    """Route (statement_id, channel) pairs that are rendered; others are left alone (the
    ledger moves only a statement still 'rendered'). Returns counts per pool and paper."""
    pools = [(name, weight) for name, weight in
             route_weights(ctx.ledger, send_config(ctx.settings), ctx.now()) if weight > 0]
    moves = []
    counts: dict[str, int] = {"paper": 0, "held_no_pool_open": 0}
    for statement_id, channel in statements:
        if channel != "paper" and not pools:
            counts["held_no_pool_open"] += 1  # every pool paused: stays rendered until one opens
        elif channel == "paper":
            moves.append(Transition(statement_id, Status.PAPER_QUEUED, Event.PAPER_QUEUED,
                                    {"reason": "channel"}))
            counts["paper"] += 1
        else:
            pool = pick_pool(statement_id, pools)
            moves.append(Transition(statement_id, Status.QUEUED, Event.QUEUED,
                                    {"pool": pool}, {"pool": pool}))
            counts[pool] = counts.get(pool, 0) + 1
    ctx.ledger.apply(moves)
    return counts


def pool_names(ctx: Context) -> list[str]:
    """The IP pools that get a send task: from the pool file when one is configured."""
    return send_config(ctx.settings).pool_names
