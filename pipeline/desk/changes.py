"""Address changes awaiting a supervisor: what the desk keeps of them, and the sealed address.

An agent who has confirmed a member's new email address records it; a supervisor approves or
rejects it (two-person rule: a wrong address sends health information to a stranger). Until
then the address exists only sealed in `address_changes` (Fernet: AES-128-CBC with an
HMAC-SHA-256 tag, keyed by HKDF-SHA-256 from the desk's secret, for this one purpose), so a copy
of the ledger, a backup or a query does not show it; the pages show `email_masked`. A decision
erases the sealed address. Rotating the desk's secret leaves waiting changes unreadable: they
are rejected and entered again.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from pipeline.desk.errors import ActionRefused

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

    from pipeline.desk.context import DeskContext

SEAL_INFO = b"eob desk: address changes awaiting a supervisor"


@dataclass(frozen=True, slots=True)
class PendingChange:
    """An address change waiting for a supervisor (never the address: its masked hint)."""

    change_id: str
    statement_id: str
    requested_by: str
    requested_at: str
    reason: str
    verified_via: str
    email_masked: str


def pending_changes(ctx: DeskContext) -> list[PendingChange]:
    """Every change waiting for a supervisor, oldest first (the approvals page)."""
    return [PendingChange(row["change_id"], row["statement_id"], row["requested_by"],
                          str(row["requested_at"]), row["reason"], row["verified_via"], row["email_masked"])
            for row in ctx.ledger.fetch("desk_pending_changes")]


def pending_change_of(row: Mapping[str, Any]) -> PendingChange | None:
    """The waiting change a `desk_statement` row carries, if any."""
    if not row.get("change_id"):
        return None
    return PendingChange(row["change_id"], row["statement_id"], row["requested_by"], str(row["requested_at"]),
                         row["change_reason"], row["verified_via"], row["change_email_masked"])


def seal(address: str, desk_secret: str) -> str:
    return _fernet(desk_secret).encrypt(address.encode()).decode("ascii")


def unseal(token: str, desk_secret: str) -> str:
    from cryptography.fernet import InvalidToken

    try:
        return _fernet(desk_secret).decrypt(token.encode("ascii")).decode()
    except InvalidToken:
        raise ActionRefused("the new address can no longer be read (the desk's secret changed since it "
                            "was entered): reject this change and enter the address again") from None


@cache
def _fernet(desk_secret: str) -> Fernet:
    from cryptography.fernet import Fernet
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SEAL_INFO).derive(desk_secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))
