"""Prompt notices: the lifecycle of one claim's separate notice of an adverse benefit determination.

Compose lists each denied or reduced claim whose monthly statement leaves after the claim's notice
is due (`prompt_notices`, one row per statement and claim). From then on the notice has a status
of its own, a closed vocabulary like the statements' and mirrored in the schema's CHECK:

    due → sent                                        (a relay accepted the email: 250)
    due → paper_queued → batched → printed → mailed   (no usable email, or the email failed)
    due | paper_queued → superseded                   (its statement was replaced or withdrawn)

`sent` may still go to paper (a bounce that arrives later), and a batched piece goes back to the
paper queue when the vendor rejects it or its batch is cancelled, as a statement's does. A notice
that has not left (`due`, or queued for paper and not yet in a batch) is closed with its
statement: a corrected extract's new version notices its claims afresh, and the old version's
notice must not reach the member. A batched one is with the vendor, like a batched statement,
which a correction no longer stops either (`statuses.NOT_YET_OUT`).

Every move updates the row and appends an event to the statement's own timeline in one
transaction (the detail names the notice and its claim, never claim content), so support sees
"notice sent" or "notice queued for paper" where it already looks. A move the state machine does
not allow changes nothing and is kept on the timeline as `<event>_ignored`.

`left_on` is the day the notice leaves: by email the day a relay accepted it, on paper the print
vendor's mail date (planned with `MailCalendar.leaves` when it is queued, then the date the
vendor reports). `late` says whether that day is after `notice_due`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import Connection

from pipeline.ledger.events import IGNORED_SUFFIX, Event, checked
from pipeline.ledger.sql import clause


class NoticeStatus(StrEnum):
    DUE = "due"
    SENT = "sent"
    PAPER_QUEUED = "paper_queued"
    BATCHED = "batched"
    PRINTED = "printed"
    MAILED = "mailed"
    SUPERSEDED = "superseded"


N = NoticeStatus

NOTICE_ALLOWED_FROM: dict[NoticeStatus, frozenset[NoticeStatus]] = {
    N.DUE: frozenset(),
    N.SENT: frozenset({N.DUE}),
    # no usable email, or it failed (at SMTP time, or bounced later); a rejected or cancelled piece
    N.PAPER_QUEUED: frozenset({N.DUE, N.SENT, N.BATCHED}),
    N.BATCHED: frozenset({N.PAPER_QUEUED}),
    N.PRINTED: frozenset({N.BATCHED}),
    N.MAILED: frozenset({N.PRINTED}),
    # its statement was closed as superseded (a corrected extract replaced or withdrew it before
    # it went out), or is no longer its member's version: not yet with a relay or the vendor
    N.SUPERSEDED: frozenset({N.DUE, N.PAPER_QUEUED}),
}
"""For each status, the statuses a notice may move from."""

LEFT: frozenset[NoticeStatus] = frozenset({N.SENT, N.MAILED})
"""Out: accepted by the member's mail server, or mailed by the print vendor."""
ON_PAPER: frozenset[NoticeStatus] = frozenset({N.PAPER_QUEUED, N.BATCHED, N.PRINTED})
"""On its way by post, not yet mailed."""
NOT_LEFT: frozenset[NoticeStatus] = NOTICE_ALLOWED_FROM[N.SUPERSEDED]
"""Not yet with a relay or the print vendor: closed with its statement (`close_superseded`)."""

NOTICE_PREFIX = "nt-"
"""Notice ids begin with it (statement ids with `st-`): one id field can hold either (a print
batch's pieces, a VERP return path) and still be told apart."""


class UnknownNotice(LookupError):
    """A notice id the ledger does not have (a programming error or a forged id)."""


def make_notice_id(statement_id: str, claim_id: str, *, key: bytes) -> str:
    """Deterministic and opaque, keyed like statement ids (`EOB_STATEMENT_ID_KEY`): `nt-` + 16 hex
    digits of HMAC-SHA-256 over the statement and claim ids. It travels in the email (Message-ID,
    the VERP return path) and the print vendor's manifest, so it must not reveal the claim."""
    if not key:
        raise ValueError("a notice id needs a non-empty key (EOB_STATEMENT_ID_KEY)")
    digest = hmac.new(key, f"notice|{statement_id}|{claim_id}".encode(), hashlib.sha256).hexdigest()
    return f"{NOTICE_PREFIX}{digest[:16]}"


def is_notice_id(value: str) -> bool:
    return value.startswith(NOTICE_PREFIX)


@dataclass(frozen=True, slots=True)
class NoticeMove:
    """One notice to `to`, with its timeline event and what the move records."""

    notice_id: str
    to: NoticeStatus
    event: Event
    detail: Mapping[str, Any] = field(default_factory=dict)
    left_on: date | None = None  # the day it leaves; `late` is derived from it
    pool: str | None = None
    object_key: str | None = None
    print_key: str | None = None
    last_reason: str | None = None
    attempts_increment: int = 0


class _Ledger(Protocol):
    def begin(self) -> AbstractContextManager[Connection]: ...

    def now(self) -> str: ...


def move_notices(ledger: _Ledger, moves: Iterable[NoticeMove]) -> int:
    """Apply moves in one transaction; returns how many moved a notice."""
    items = list(moves)
    if not items:
        return 0
    with ledger.begin() as conn:
        return apply_notice_moves(conn, items, ledger.now())


def apply_notice_moves(conn: Connection, moves: Iterable[NoticeMove], at: str) -> int:
    """The moves inside the caller's transaction (a print batch records its pieces' moves with
    the batch). Each decides on the status it finds; returns how many moved a notice."""
    moved = 0
    for move in moves:
        current = conn.execute(clause("notice_current"), {"notice_id": move.notice_id}).mappings().first()
        if current is None:
            raise UnknownNotice(f"notice {move.notice_id} is not in the ledger")
        status = NoticeStatus(current["status"])
        detail = {"notice_id": move.notice_id, "claim_id": current["claim_id"], **move.detail}
        if status not in NOTICE_ALLOWED_FROM[move.to]:
            _event(conn, current["statement_id"], f"{checked(move.event)}{IGNORED_SUFFIX}",
                   {**detail, "notice_status": status.value, "wanted": move.to.value}, at)
            continue
        due = str(current["notice_due"])[:10]
        late = None if move.left_on is None else int(move.left_on.isoformat() > due)
        updated = conn.execute(clause("notice_move"), {
            "notice_id": move.notice_id, "from_status": status.value, "to_status": move.to.value,
            "at": at, "left_on": move.left_on.isoformat() if move.left_on else None, "late": late,
            "pool": move.pool, "object_key": move.object_key, "print_key": move.print_key,
            "last_reason": move.last_reason, "attempts_increment": move.attempts_increment}).rowcount
        if updated != 1:
            continue  # a concurrent writer moved it first; its event tells the story
        _event(conn, current["statement_id"], checked(move.event),
               {**detail, "notice_status": move.to.value, **({"left_on": move.left_on.isoformat(),
                                                              "late": bool(late)} if move.left_on else {})},
               at)
        moved += 1
    return moved


def record_notice_event(ledger: _Ledger, notice_id: str, event: Event, detail: Mapping[str, Any],
                        *, last_reason: str | None = None) -> None:
    """A timeline entry about a notice that changes no status (a render that failed, an address
    the paper run refused, a tracking event); `last_reason` is kept on the notice when given."""
    with ledger.begin() as conn:
        current = conn.execute(clause("notice_current"), {"notice_id": notice_id}).mappings().first()
        if current is None:
            raise UnknownNotice(f"notice {notice_id} is not in the ledger")
        if last_reason is not None:
            conn.execute(clause("notice_set_reason"), {"notice_id": notice_id, "last_reason": last_reason})
        _event(conn, current["statement_id"], checked(event),
               {"notice_id": notice_id, "claim_id": current["claim_id"], **detail}, ledger.now())


def superseded_detail(later_version: str | None) -> dict[str, str]:
    """What `notice_superseded` says closed the notice: the statement's later version (whose
    compose notices the claim afresh), else a corrected extract that withdrew the statement."""
    return {"by": later_version} if later_version else {"cause": "its statement was withdrawn"}


def close_superseded(ledger: _Ledger, *, key: bytes) -> int:
    """Every notice that has not left (`NOT_LEFT`) of a statement closed as `superseded`, closed
    too, in one transaction, with `notice_superseded` on the statement's timeline. Compose runs it
    once it has closed statements; the notices stage runs it every day, for what a crash in
    between or a vendor's rejection after the statement was closed left. `key` gives a notice the
    id it would have been sent under (compose's rows get theirs when first taken). Returns how
    many were closed."""
    with ledger.begin() as conn:
        moves = []
        for row in conn.execute(clause("notices_open_of_superseded")).mappings().all():
            notice_id = row["notice_id"]
            if notice_id is None:
                notice_id = make_notice_id(row["statement_id"], row["claim_id"], key=key)
                conn.execute(clause("notice_assign_id"), {"notice_id": notice_id, "claim_id": row["claim_id"],
                                                          "statement_id": row["statement_id"]})
            moves.append(NoticeMove(notice_id, N.SUPERSEDED, Event.NOTICE_SUPERSEDED,
                                    superseded_detail(row["later_version"])))
        return apply_notice_moves(conn, moves, ledger.now())


def _event(conn: Connection, statement_id: str, name: str, detail: Mapping[str, Any], at: str) -> None:
    conn.execute(clause("insert_event"), {
        "statement_id": statement_id, "at": at, "event": name, "from_status": None, "to_status": None,
        "detail": json.dumps(dict(detail), sort_keys=True, default=str)})
