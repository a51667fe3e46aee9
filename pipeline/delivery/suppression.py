"""The suppression list: addresses that must not be emailed again, stored as keyed hashes.

A recipient-caused permanent failure (unknown user, disabled mailbox) or a complaint
suppresses the address for later runs (compose sends those members to paper). Support can lift
an entry, always with a reason and an actor, and the audit log keeps every lift. An address
suppressed again after a lift gets a fresh entry (the old lift stays in the audit log).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from pipeline.ledger import Ledger
from pipeline.ledger.events import Event


def address_hash(address: str, secret: str) -> str:
    """Suppression entries and verification events store a keyed hash, never the address."""
    return hmac.new(secret.encode(), address.strip().lower().encode(), hashlib.sha256).hexdigest()


class SuppressionError(ValueError):
    """A lift request that cannot be honoured (no reason, nothing to lift)."""


@dataclass(frozen=True, slots=True)
class Entry:
    address_hash: str
    cause: str
    statement_id: str | None
    created_at: str
    lifted_at: str | None
    lifted_reason: str | None


def suppress(ledger: Ledger, address: str, *, cause: str, statement_id: str | None,
             secret: str) -> None:
    """Add the address (idempotent); re-suppresses one whose earlier entry was lifted."""
    if not address.strip():
        return
    ledger.execute("suppression_upsert", address_hash=address_hash(address, secret), cause=cause,
                   statement_id=statement_id, at=ledger.now())


def is_suppressed(ledger: Ledger, address: str, secret: str) -> bool:
    return ledger.fetch_one("active_suppression", address_hash=address_hash(address, secret)) is not None


def entry(ledger: Ledger, address: str, secret: str) -> Entry | None:
    row = ledger.fetch_one("suppression_get", address_hash=address_hash(address, secret))
    return Entry(**row) if row else None


def entries_for_statement(ledger: Ledger, statement_id: str) -> list[Entry]:
    return [Entry(**row) for row in ledger.fetch("suppression_for_statement", statement_id=statement_id)]


def lift(ledger: Ledger, *, reason: str, actor: str, secret: str, address: str | None = None,
         statement_id: str | None = None, source: str | None = None) -> int:
    """Lift the active entry for an address, or a statement's: those its bounce created and the
    one of the address it was composed for.

    Support may know only the statement (the member calls about it), so both keys work.
    Returns how many entries were lifted; raises SuppressionError when there is nothing to do.
    Each lift is an audit entry, with `source` (where the request came from) when given.
    """
    reason = " ".join(reason.split())
    if len(reason) < 5:
        raise SuppressionError("a lift needs a reason of at least 5 characters")
    if not actor.strip():
        raise SuppressionError("a lift needs the name of who lifts it")
    if (address is None) == (statement_id is None):
        raise SuppressionError("give either an address or a statement id")
    at = ledger.now()
    stored_reason = f"{reason} (by {actor.strip()})"[:300]
    if address is not None:
        digest = address_hash(address, secret)
        found = ledger.fetch_one("suppression_get", address_hash=digest)
        statement_id = found["statement_id"] if found else None
        lifted = ledger.execute("suppression_lift", address_hash=digest, at=at, reason=stored_reason)
        hashes = [digest] if lifted else []
    else:
        hashes = [e.address_hash for e in entries_for_statement(ledger, str(statement_id))
                  if e.lifted_at is None]
        row = ledger.statement(str(statement_id))
        own = row.get("address_hash") if row else None
        if own and own not in hashes and ledger.fetch_one("active_suppression", address_hash=own):
            hashes.append(own)
        lifted = sum(ledger.execute("suppression_lift", address_hash=h, at=at, reason=stored_reason)
                     for h in hashes)
    if not lifted:
        raise SuppressionError("no active suppression matches")
    for digest in hashes:
        ledger.audit(actor.strip(), "suppression_lifted", statement_id,
                     {"address_hash": digest[:16]}, source=source, reason=reason[:200])
        if statement_id and ledger.statement(statement_id) is not None:
            ledger.record_event(statement_id, Event.SUPPRESSION_LIFTED,
                                {"actor": actor.strip(), "reason": reason[:200]})
    return lifted
