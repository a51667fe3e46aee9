"""Statements a corrected extract withdraws: the member has no claim lines in it any more.

A corrected extract is the period's whole extract. When it has no lines for a member who already
has a statement, the claims that statement shows were withdrawn or re-keyed to someone else, so
it must not reach the member: one not yet out is closed as `superseded` (event `withdrawn`); one
already out keeps its status and is flagged once (`withdrawn_after_release`) for follow-up, until
the member's lines come back unchanged (`reinstated`). A delivery missing files looks exactly like
many withdrawals, so compose checks the count against a limit before it changes anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc

from pipeline.ledger import Ledger, Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import NOT_YET_OUT, RELEASED, Status
from pipeline.stages.context import Context, NeedsOperator

ALWAYS_ALLOWED = 10
"""Withdrawals a period may have whatever the share limit: a small run's corrections."""
CAUSE = {"cause": "no claim lines in the corrected extract"}
LAST_REASON = "withdrawn: the corrected extract has no claim lines for this member"


class WithdrawalRefused(NeedsOperator):
    """A corrected extract would withdraw more statements than the limit allows: likely a
    partial delivery. The message says how many and what to do."""


def live(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Latest versions that still stand: not superseded or withdrawn, not failed."""
    return [row for row in rows if row["status"] not in (Status.SUPERSEDED, Status.FAILED)]


def check_limit(ctx: Context, work: Path, period: str, flagged: set[str]) -> None:
    """Refuse, before compose changes anything, when the extract would withdraw more of the
    period's statements than EOB_COMPOSE_WITHDRAW_LIMIT allows (those withdrawn already, and
    flagged, do not count again)."""
    from pipeline.storage import member_buckets, read_bucket_members

    standing = gone = 0
    for shard in range(ctx.settings.shards):
        rows = [row for row in live(ctx.ledger.fetch("compose_latest_versions", period=period, shard=shard))
                if row["statement_id"] not in flagged]
        if not rows:
            continue
        present: set[str] = set()
        for bucket in member_buckets(work, shard):
            members = read_bucket_members(work, bucket, ["member_id", "line_count"])
            present.update(members.filter(pc.greater(members["line_count"], 0))["member_id"].to_pylist())
        standing += len(rows)
        gone += sum(1 for row in rows if row["member_id"] not in present)
    limit = max(ALWAYS_ALLOWED, int(ctx.settings.compose_withdraw_limit * standing))
    if gone > limit:
        raise WithdrawalRefused(
            f"{period}: the extract has no claim lines for {gone} of the {standing} members who "
            f"already have a statement, more than the {limit} EOB_COMPOSE_WITHDRAW_LIMIT allows; "
            "nothing was changed. Check that the delivery is complete (every file of the period); "
            "if it is, raise the limit and clear the compose task.")


def flagged_after_release(ledger: Ledger, period: str | None = None) -> set[str]:
    """Statements flagged `withdrawn_after_release` and not reinstated since (of one period):
    they must not be sent again after a bounce, nor printed by the deadline sweeper."""
    return {row["statement_id"] for row in ledger.fetch("flagged_after_release")
            if period is None or row["period"] == period}


def is_flagged_after_release(ledger: Ledger, statement_id: str) -> bool:
    return ledger.fetch_one("statement_flagged_after_release", statement_id=statement_id) is not None


def closed_after_bounce(statement_id: str) -> Transition:
    """A withdrawn statement's email bounced: it is closed, never retried, verified or printed."""
    return Transition(statement_id, Status.SUPERSEDED, Event.WITHDRAWN, {**CAUSE, "after": "bounce"},
                      {"last_reason": LAST_REASON})


def withdraw(ctx: Context, gone: list[dict[str, Any]], flagged: set[str]) -> tuple[int, int]:
    """Close what is not yet out; flag, once, what is. Returns (closed, flagged for follow-up); a
    statement closed while its send was in doubt counts in both.

    Statuses are read again here, not taken from when compose began. A queued statement whose
    send is in doubt (attempted since it was queued, no outcome recorded) may be with the member:
    it is closed, so it is not sent again, with the event `withdrawn_in_doubt`, which also puts
    it on the follow-up list, in the same transaction. One that went out meanwhile is flagged."""
    gone = [row for row in gone if row["statement_id"] not in flagged]
    for row in gone:  # first: a crash after this leaves the audit complete
        ctx.ledger.audit("pipeline", "withdraw", row["statement_id"], {"status": row["status"]})
    in_doubt: set[str] = set()
    moves = []
    for row in gone:
        statement_id, status = row["statement_id"], _status(ctx.ledger, row)
        if status in NOT_YET_OUT:
            if send_in_doubt(ctx.ledger, statement_id, status):
                in_doubt.add(statement_id)
            event = Event.WITHDRAWN_IN_DOUBT if statement_id in in_doubt else Event.WITHDRAWN
            moves.append(Transition(statement_id, Status.SUPERSEDED, event, CAUSE,
                                    {"last_reason": LAST_REASON}))
    ctx.ledger.apply(moves)
    closed = followed_up = 0
    for row in gone:
        status = _status(ctx.ledger, row)
        if status == Status.SUPERSEDED:
            closed += 1
            followed_up += int(row["statement_id"] in in_doubt)
        elif status in RELEASED:  # out before it could be closed
            flag(ctx.ledger, row["statement_id"], status)
            followed_up += 1
    return closed, followed_up


"""Closed while a send attempt had no recorded outcome: it may have reached the member."""


def flag(ledger: Ledger, statement_id: str, status: str) -> None:
    """Out although a corrected extract withdrew it: for follow-up."""
    ledger.record_event(statement_id, Event.WITHDRAWN_AFTER_RELEASE, {**CAUSE, "status": status})


def _status(ledger: Ledger, row: dict[str, Any]) -> str:
    current = ledger.statement(row["statement_id"])
    return str(current["status"]) if current else str(row["status"])


def send_in_doubt(ledger: Ledger, statement_id: str, status: str) -> bool:
    """Queued, and a send was attempted after it was queued with no outcome recorded."""
    if status != Status.QUEUED:
        return False
    timeline = ledger.timeline(statement_id)
    last_move = max((i for i, e in enumerate(timeline) if e["to_status"]), default=-1)
    return any(e["event"] in (Event.SEND_ATTEMPT, Event.SEND_IN_DOUBT) for e in timeline[last_move + 1:])
