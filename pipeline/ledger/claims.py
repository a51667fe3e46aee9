"""Claim numbers as the ledger keeps them: keyed hashes, one row per claim and statement.

A member calling about a statement often has only a claim number from a provider's bill. Compose
records, for each statement it adds, the keyed hash of every claim number on it
(`statement_claims`), so the support desk finds the statement by hashing what the member reads
out the same way; the ledger never holds the claim numbers themselves.

The key is derived from `statement_id_key`, not from the desk's own secret: a stored hash stays
findable only while its key is unchanged, and `statement_id_key` must never change once a run
used it (statement ids are made with it), whereas rotating the desk's secret is an ordinary
operation (it signs everyone out). A separate key is derived from it, so a claim hash can never
be compared with a statement id.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable

CLAIM_HASH_LABEL = b"eob statement_claims v1"
"""What the claim key is derived for (HMAC-SHA-256 of this label under `statement_id_key`)."""
CLAIM_HASH_HEX = 32
"""Hex digits of the HMAC kept per claim (128 bits: no two claim numbers share one)."""


def normalised_claim(claim_id: str) -> str:
    """The claim number as compose and a search both hash it: surrounding blanks dropped (a
    claim number is matched exactly otherwise, case included)."""
    return claim_id.strip()


def claim_hasher(statement_id_key: bytes) -> Callable[[str], str]:
    """The keyed hash of a claim number: hex(HMAC-SHA-256(k, claim))[:32], with
    k = HMAC-SHA-256(statement_id_key, CLAIM_HASH_LABEL)."""
    if not statement_id_key:
        raise ValueError("claim hashes need a non-empty key (EOB_STATEMENT_ID_KEY)")
    key = hmac.digest(statement_id_key, CLAIM_HASH_LABEL, "sha256")

    def digest(claim_id: str) -> str:
        return hmac.digest(key, normalised_claim(claim_id).encode(), "sha256").hex()[:CLAIM_HASH_HEX]

    return digest
