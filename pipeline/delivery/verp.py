"""Signed VERP return paths: a bounce names its statement, and nobody can forge one.

The envelope sender of every message is ``bounces+<token>@<bounce_domain>`` where the token
is ``<statement_id>.<signature>``. An asynchronous bounce (DSN) comes back to that address, so
reconcile learns the statement from the address alone, without trusting anything inside the
returned message. The HMAC stops a stranger from mailing fake bounces that would push real
members' statements to paper or to address verification.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

_STATEMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,127}")
_TOKEN = re.compile(r"[A-Za-z0-9._=-]+")
_SIGNATURE_CHARS = 16  # base32 characters: 80 bits, plenty against online guessing
_PREFIX = "bounces+"


class ForgedToken(ValueError):
    """A VERP token whose signature does not match: treat the bounce as untrusted."""


def _signature(statement_id: str, secret: str) -> str:
    """Lower-case base32 so MTAs that fold the local part's case cannot break it."""
    if not secret:
        raise ValueError("VERP secret must not be empty")
    mac = hmac.new(secret.encode(), statement_id.encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").rstrip("=")[:_SIGNATURE_CHARS].lower()


def make_token(statement_id: str, secret: str) -> str:
    """``<statement_id>.<signature>``, using only characters safe in a local part."""
    if not _STATEMENT_ID.fullmatch(statement_id):
        raise ValueError("statement_id must be letters, digits and dashes")
    return f"{statement_id}.{_signature(statement_id, secret)}"


def verify_token(token: str, secret: str) -> str:
    """Return the statement_id a token names, or raise ForgedToken (constant-time compare)."""
    if not _TOKEN.fullmatch(token or ""):
        raise ForgedToken("VERP token has unexpected characters")
    statement_id, dot, signature = token.rpartition(".")
    if not dot or not _STATEMENT_ID.fullmatch(statement_id):
        raise ForgedToken("VERP token is malformed")
    expected = _signature(statement_id, secret)
    if not hmac.compare_digest(expected.encode(), signature.lower().encode()):
        raise ForgedToken("VERP token signature does not match")
    return statement_id


def return_path(statement_id: str, secret: str, bounce_domain: str) -> str:
    """The envelope sender (MAIL FROM) for one statement's message."""
    if not bounce_domain or "@" in bounce_domain:
        raise ValueError("bounce_domain must be a bare domain")
    return f"{_PREFIX}{make_token(statement_id, secret)}@{bounce_domain}"


def statement_from_address(address: str, secret: str) -> str:
    """The statement_id behind a VERP address such as a DSN's To; ForgedToken if not ours.

    Accepts ``<...>`` brackets and any case in the ``bounces+`` prefix; the domain is not
    checked here because the bounce mailbox already decided the message was for us.
    """
    local, at, _domain = address.strip().strip("<>").rpartition("@")
    if not at or not local.lower().startswith(_PREFIX):
        raise ForgedToken("address is not a VERP return path")
    return verify_token(local[len(_PREFIX) :], secret)
