"""The ledger: one row per statement with a status that only moves forward, an append-only
event timeline, the hash-chained audit log, and the named SQL they run on."""

from pipeline.ledger.events import Event
from pipeline.ledger.records import Delivery, FileAccount, NewStatement, QuarantineRow, Transition
from pipeline.ledger.sql import SqlFileError, query
from pipeline.ledger.statuses import Status
from pipeline.ledger.store import Ledger, LedgerError, UnknownStatement

__all__ = [
    "Delivery", "Event", "FileAccount", "Ledger", "LedgerError", "NewStatement", "QuarantineRow",
    "SqlFileError", "Status", "Transition", "UnknownStatement", "query",
]
