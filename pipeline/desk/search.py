"""Find a member's statements by statement id, member id, claim number or email address.

Exact matches only, each through an index. The ledger holds no claim numbers and no email
addresses, only keyed hashes of them: a claim number is hashed as compose hashed it
(`pipeline.ledger.claims`), an address as the suppression list and compose do
(`pipeline.delivery.suppression.address_hash`). What a search records in the audit log is
`term_digest`, a keyed hash of the term under the desk's own key, never the term: an auditor
holding a term can check whether it was searched; nobody can read the terms back.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pipeline.desk.context import DeskContext
from pipeline.desk.errors import DeskError
from pipeline.desk.lookup import member_masked, recipient_words
from pipeline.desk.timeline import status_label

SEARCH_LIMIT = 200
"""Most statements one search returns (a member has one a month, and a version per correction)."""
_TERM_MAX = 320


class SearchKey(StrEnum):
    STATEMENT = "statement"
    MEMBER = "member"
    CLAIM = "claim"
    EMAIL = "email"


class SearchRefused(DeskError):
    """A search term that cannot be looked up (empty, or far too long to be a real one)."""


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One statement found. `member_id` is for the desk's own use (opening a member contact)
    and is never shown: pages show `member_masked` and `recipient`."""

    statement_id: str
    period: str
    version: int
    status: str
    status_label: str
    channel: str
    member_masked: str
    recipient: str
    member_id: str = field(repr=False)


def normalised(key: SearchKey, term: str) -> str:
    """The term as it is matched: blanks around it dropped; an email address in lower case."""
    text = term.strip()
    return text.lower() if key is SearchKey.EMAIL else text


def term_digest(ctx: DeskContext, key: SearchKey, term: str) -> str:
    """HMAC-SHA-256 under the desk's secret of the key and the normalised term: what the audit
    log records for a search."""
    secret = ctx.settings.desk_secret.get_secret_value().encode()
    message = f"desk search\x1f{SearchKey(key).value}\x1f{normalised(SearchKey(key), term)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def search(ctx: DeskContext, key: SearchKey, term: str) -> list[SearchHit]:
    """The statements the term names exactly, newest period first."""
    key = SearchKey(key)
    text = normalised(key, term)
    if not text:
        raise SearchRefused("type what to search for")
    if len(text) > _TERM_MAX:
        raise SearchRefused(f"that is too long to be a {key.value} to search for")
    ledger = ctx.ledger
    rows: list[dict[str, Any]]
    if key is SearchKey.STATEMENT:
        rows = ledger.fetch("desk_search_statement", statement_id=text)
    elif key is SearchKey.MEMBER:
        # exactly this recipient: the card's member id finds the subscriber's statements, never a
        # patient's own (a confidential-communications request keeps those from whoever answers the
        # subscriber); the patient's are found by `<member id>~<patient>`, claim, email or statement
        rows = ledger.fetch("desk_search_member", member_id=text, limit=SEARCH_LIMIT)
    elif key is SearchKey.CLAIM:
        from pipeline.ledger.claims import claim_hasher

        digest = claim_hasher(ctx.settings.statement_id_key.get_secret_value().encode())(text)
        rows = ledger.fetch("desk_search_claim", claim_hash=digest, limit=SEARCH_LIMIT)
    else:
        from pipeline.delivery.suppression import address_hash

        digest = address_hash(text, ctx.settings.verp_secret.get_secret_value())
        rows = ledger.fetch("desk_search_email", address_hash=digest, limit=SEARCH_LIMIT)
    return [SearchHit(statement_id=row["statement_id"], period=row["period"], version=int(row["version"]),
                      status=row["status"], status_label=status_label(row["status"]), channel=row["channel"],
                      member_masked=member_masked(row["member_id"]),
                      recipient=recipient_words(row["member_id"]), member_id=row["member_id"])
            for row in rows]

