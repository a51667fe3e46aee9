"""What callers hand the ledger: new statements, transitions, deliveries and ingest accounts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status


@dataclass(frozen=True, slots=True)
class NewStatement:
    statement_id: str
    run_id: str
    period: str
    member_id: str
    version: int
    shard: int
    channel: str
    paper_reason: str | None
    email_domain: str | None
    line_count: int
    prompt_notice: bool
    address_hash: str | None = None  # keyed hash of an email statement's address


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a statement reaches the member, as compose decided it: the channel, why paper, and
    an email statement's domain and address (keyed hash)."""

    channel: str
    paper_reason: str | None
    email_domain: str | None
    address_hash: str | None


@dataclass(frozen=True, slots=True)
class Transition:
    statement_id: str
    to: Status
    event: Event
    detail: Mapping[str, Any] = field(default_factory=dict)
    fields: Mapping[str, Any] = field(default_factory=dict)
    attempts_increment: int = 0
    expected: Status | None = None
    """The status the caller last saw the statement in. When given, the move is tried straight
    from it (on PostgreSQL one statement, one round trip: the sender's per-message `sent`), and
    decided on the status found only when that has changed since."""


@dataclass(frozen=True, slots=True)
class FileAccount:
    source_file: str
    kind: str
    rows_read: int
    rows_accepted: int
    rows_quarantined: int


@dataclass(frozen=True, slots=True)
class QuarantineRow:
    source_file: str
    row_number: int
    field: str
    reason: str
