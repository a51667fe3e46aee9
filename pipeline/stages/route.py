"""Route stage: each rendered statement to one IP pool's send queue, or to paper."""

from __future__ import annotations

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
    pools = [(name, weight) for name, weight in
             route_weights(ctx.ledger, send_config(ctx.settings), ctx.now()) if weight > 0]
    moves = []
    counts: dict[str, int] = {"paper": 0, "held_no_pool_open": 0}
    for row in ctx.ledger.fetch("rendered_for_run", run_id=run_id):
        if row["channel"] != "paper" and not pools:
            counts["held_no_pool_open"] += 1  # every pool paused: stays rendered until one opens
        elif row["channel"] == "paper":
            moves.append(Transition(row["statement_id"], Status.PAPER_QUEUED, Event.PAPER_QUEUED,
                                    {"reason": "channel"}))
            counts["paper"] += 1
        else:
            pool = pick_pool(row["statement_id"], pools)
            moves.append(Transition(row["statement_id"], Status.QUEUED, Event.QUEUED,
                                    {"pool": pool}, {"pool": pool}))
            counts[pool] = counts.get(pool, 0) + 1
    ctx.ledger.apply(moves)
    return {"run_id": run_id, **counts}


def pool_names(ctx: Context) -> list[str]:
    """The IP pools that get a send task: from the pool file when one is configured."""
    return send_config(ctx.settings).pool_names
