"""The suppression list: addresses that must not be emailed again, stored as keyed hashes.

A recipient-caused permanent failure (unknown user, disabled mailbox) suppresses the address
for later runs; support can lift an entry with a recorded reason.
"""

from __future__ import annotations

from pipeline.ledger import Ledger
from pipeline.routing import address_hash


def suppress(ledger: Ledger, address: str, *, cause: str, statement_id: str | None,
             secret: str) -> None:
    ledger.execute("insert_suppression", address_hash=address_hash(address, secret), cause=cause,
                   statement_id=statement_id, at=ledger.now())


def is_suppressed(ledger: Ledger, address: str, secret: str) -> bool:
    return ledger.fetch_one("active_suppression", address_hash=address_hash(address, secret)) is not None
