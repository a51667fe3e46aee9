"""The deadline invariant: every statement delivered, on paper, or terminal by the deadline.

Whatever a destination does (answers, refuses, or accepts a connection and never replies), a
statement's email life is bounded by its run's `DeliveryWindow`. This sweeper runs on a
schedule (the reconcile DAG, every 15 minutes) and moves every in-flight status forward:

| status | moved when | to |
| --- | --- | --- |
| `sent` | no bounce for the quiet period | `delivered` (evidence: no bounce within N hours) |
| `sent` | deadline reached first (sent after the cut-off) | `paper_queued` (not if withdrawn since) |
| `verification_pending` | verification window or cut-off passed | `verification_failed` → `paper_queued` |
| the same, after a returned letter | verification window passed | `verification_failed` → `paper_exception` |
| `queued`, `retry_scheduled`, `verified`, `bounced`, `rendered` | cut-off passed | `paper_queued` |
| `composed` | deadline reached | `failed` (never rendered: an operations alarm) |

It acts `MARGIN` before the deadline so a missed run or two cannot break the promise. The
decision is a pure function of (status, last change, run start, now), tested on a fake clock.
A statement being sent at the very moment the sweeper moves it to paper may get both an email
and a letter: never neither.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipeline.clock import iso
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes.routing import DeliveryWindow, to_paper

log = logging.getLogger(__name__)

MARGIN = timedelta(hours=1)
SETTLED: frozenset[Status] = frozenset(
    {Status.DELIVERED, Status.PAPER_QUEUED, Status.PAPER_EXCEPTION, Status.BATCHED, Status.PRINTED,
     Status.MAILED, Status.FAILED, Status.SUPERSEDED})
RETURNED_MAIL = "returned_mail"
"""Why a statement whose letter came back waits at paper_exception (pipeline/stages/paper.py)."""
NOT_SENT_BY_CUTOFF = frozenset(
    {Status.QUEUED, Status.RETRY_SCHEDULED, Status.VERIFIED, Status.BOUNCED, Status.RENDERED})


@dataclass(frozen=True, slots=True)
class Candidate:
    statement_id: str
    status: Status
    changed_at: datetime  # the last status change (the ledger's updated_at)
    run_started_at: datetime
    withdrawn: bool = False  # out already when a corrected extract withdrew it: never to paper
    returned: bool = False  # a letter to the member came back (pipeline/stages/paper_vendor.py)


def decide(c: Candidate, now: datetime, window: DeliveryWindow) -> list[Transition]:
    """The moves the sweeper makes for one statement at `now` (empty: nothing is due)."""
    deadline = window.deadline(c.run_started_at) - MARGIN
    cutoff = min(window.cutoff(c.run_started_at), deadline)
    sid = c.statement_id
    if c.status is Status.SENT:
        if now - c.changed_at >= window.quiet:
            hours = round(window.quiet.total_seconds() / 3600, 1)
            return [Transition(sid, Status.DELIVERED, Event.DELIVERED,
                               {"evidence": "no_bounce_within", "hours": hours})]
        if now >= deadline and not c.withdrawn:
            return [to_paper(sid, "deadline_reached", sent_at=iso(c.changed_at))]
        return []
    if c.status is Status.VERIFICATION_PENDING:
        if c.returned and now - c.changed_at >= window.verification:
            # the letter came back: printing it again to the same address would only return it
            return [Transition(sid, Status.VERIFICATION_FAILED, Event.VERIFICATION_TIMED_OUT,
                               {"requested_at": iso(c.changed_at)}),
                    Transition(sid, Status.PAPER_EXCEPTION, Event.ADDRESS_REFUSED, {"reason": RETURNED_MAIL},
                               {"last_reason": f"mailing address: {RETURNED_MAIL}"})]
        if c.returned:
            return []
        if now - c.changed_at >= window.verification or now >= cutoff:
            return [Transition(sid, Status.VERIFICATION_FAILED, Event.VERIFICATION_TIMED_OUT,
                               {"requested_at": iso(c.changed_at)}),
                    to_paper(sid, "verification_timed_out")]
        return []
    if c.status in NOT_SENT_BY_CUTOFF and now >= cutoff:
        return [to_paper(sid, "not_sent_by_cutoff", was=c.status.value)]
    if c.status is Status.COMPOSED and now >= deadline:
        return [Transition(sid, Status.FAILED, Event.FAILED, {"reason": "not_rendered_by_deadline"})]
    return []


def candidates(rows: Iterable[dict[str, Any]], withdrawn: frozenset[str] = frozenset()) -> list[Candidate]:
    return [Candidate(r["statement_id"], Status(r["status"]), datetime.fromisoformat(r["updated_at"]),
                      datetime.fromisoformat(r["run_started_at"]), r["statement_id"] in withdrawn,
                      bool(r.get("returned")))
            for r in rows]


def sweep(ledger: Any, now: datetime, window: DeliveryWindow, *, batch: int = 5000) -> dict[str, int]:
    """Apply `decide` to every unsettled statement, one transaction per batch; counts by move."""
    counts: dict[str, int] = {}
    after = ""
    withdrawn = frozenset(row["statement_id"] for row in ledger.fetch("flagged_after_release"))
    while True:
        rows = ledger.fetch("sweep_candidates", after=after, limit=batch)
        if not rows:
            break
        after = rows[-1]["statement_id"]
        moves: list[Transition] = []
        for candidate in candidates(rows, withdrawn):
            decided = decide(candidate, now, window)
            if decided:
                key = f"{candidate.status.value}->{decided[-1].to.value}"
                counts[key] = counts.get(key, 0) + 1
                moves.extend(decided)
        if moves:
            ledger.apply(moves)
    if counts:
        log.info("sweeper moved %s", counts)
    return counts


def unsettled(ledger: Any, run_id: str) -> dict[str, int]:
    """Statements of a run not yet delivered, on paper or terminal (empty after the deadline)."""
    return {row["status"]: row["n"] for row in ledger.fetch("sweep_unsettled_for_run", run_id=run_id)}
