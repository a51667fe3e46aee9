"""Reconcile stages: bounces routed into queues; due retries back to their pool."""

from __future__ import annotations

import hashlib
import mailbox
import os
import random
from typing import Any

from pipeline.clock import iso
from pipeline.ledger import Transition
from pipeline.routing import route
from pipeline.stages.context import Context
from pipeline.statuses import Status
from pipeline.suppression import suppress


def reconcile_stage(ctx: Context) -> dict[str, Any]:
    """Read new bounce messages from the Maildir and route each affected statement."""
    from pipeline.bounces import UnparseableBounce, parse_bounce
    from pipeline.verp import ForgedToken, verify_token

    settings = ctx.settings
    folder = settings.maildir
    mailbox.Maildir(folder, create=True)  # makes new/, cur/ and tmp/ when missing
    secret = settings.verp_secret.get_secret_value()
    counts: dict[str, int] = {}
    for name in sorted(os.listdir(folder / "new")):
        path = folder / "new" / name
        raw = path.read_bytes()
        outcome, statement_id, kind, reason = "routed", None, "unknown", ""
        message_key = hashlib.sha256(raw).hexdigest()
        if ctx.ledger.fetch_one("bounce_message_seen", message_key=message_key):
            outcome = "duplicate"
        else:
            try:
                bounce = parse_bounce(raw, bounce_domain=settings.bounce_domain)
                kind = bounce.kind
                statement_id = verify_token(bounce.verp_token or "", secret)
                if ctx.ledger.statement(statement_id) is None:
                    outcome, reason = "unknown_statement", "token names no statement in the ledger"
                else:
                    outcome = _route_bounce(ctx, statement_id, bounce)
            except UnparseableBounce as exc:
                outcome, reason = "unparseable", str(exc)[:200]
            except ForgedToken:
                outcome, reason, statement_id = "forged", "VERP token signature does not verify", None
            _record_bounce(ctx, message_key, kind, outcome, statement_id, reason)
        counts[outcome] = counts.get(outcome, 0) + 1
        os.replace(path, folder / "cur" / f"{name}:2,S")
    return {"messages": sum(counts.values()), **counts}


def _route_bounce(ctx: Context, statement_id: str, bounce: Any) -> str:
    statement = ctx.ledger.statement(statement_id)
    assert statement is not None
    outcomes = [r for r in bounce.recipients if r.action in ("failed", "delayed", "")]
    if not outcomes:
        return "ignored"
    worst = outcomes[0]
    moves = route(statement_id, worst.classification, attempts=statement["attempts"],
                  policy=ctx.retry_policy, now=ctx.now(), source="dsn",
                  reason=f"{worst.status or ''} {worst.diagnostic}".strip(),
                  rng=random.Random(statement_id))
    if not moves:
        return f"ignored_{worst.classification.category.value}"
    moved = ctx.ledger.apply(moves)
    if worst.classification.recipient_caused:
        suppress(ctx.ledger, worst.recipient, cause=worst.classification.category.value,
                 statement_id=statement_id, secret=ctx.settings.verp_secret.get_secret_value())
    return f"routed_{worst.classification.queue.value}" if moved else "already_routed"


def _record_bounce(ctx: Context, message_key: str, kind: str, outcome: str,
                   statement_id: str | None, reason: str) -> None:
    ctx.ledger.execute("insert_bounce_message", message_key=message_key,
                       received_at=ctx.ledger.now(), kind=kind, outcome=outcome,
                       statement_id=statement_id, reason=reason)


def requeue_due_stage(ctx: Context) -> dict[str, Any]:
    """Retries whose backoff has passed go back to their pool's send queue."""
    rows = ctx.ledger.fetch("due_retries", now=iso(ctx.now()))
    moves = [Transition(row["statement_id"], Status.QUEUED, "requeued",
                        {"pool": row["pool"], "attempt": row["attempts"] + 1}) for row in rows]
    return {"requeued": ctx.ledger.apply(moves)}
