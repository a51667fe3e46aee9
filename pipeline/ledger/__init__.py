"""The ledger: one row per statement with a status that only moves forward, an append-only
event timeline, the hash-chained audit log, and the named SQL they run on; and the lifecycle of
each prompt notice, whose events join its statement's timeline."""

from pipeline.ledger.events import Event
from pipeline.ledger.notices import (
    NoticeMove,
    NoticeStatus,
    UnknownNotice,
    close_superseded,
    is_notice_id,
    make_notice_id,
    move_notices,
    record_notice_event,
)
from pipeline.ledger.records import Delivery, FileAccount, NewStatement, QuarantineRow, Transition
from pipeline.ledger.sql import SqlFileError, query
from pipeline.ledger.statuses import Status
from pipeline.ledger.store import Ledger, LedgerError, UnknownStatement

__all__ = [
    "Delivery", "Event", "FileAccount", "Ledger", "LedgerError", "NewStatement", "NoticeMove",
    "NoticeStatus", "QuarantineRow", "SqlFileError", "Status", "Transition", "UnknownNotice",
    "UnknownStatement", "close_superseded", "is_notice_id", "make_notice_id", "move_notices", "query",
    "record_notice_event",
]
