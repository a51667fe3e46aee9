"""Desk sessions: a signed cookie carrying a random session id, and a row per session in the
ledger database that says whether it is still live.

The signature (under `desk_secret`) keeps a forged or guessed cookie from costing a database
read; the row is what makes signing out real: a copied cookie stops working the moment its
session ends, which a cookie that only carries a signed user name cannot do. Only the id's
SHA-256 is stored, so the table itself holds nothing a browser could present.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from itsdangerous import BadSignature, Signer

from pipeline.clock import Now, iso, moment
from pipeline.ledger import Ledger
from pipeline.settings import Settings

SESSION_COOKIE = "__Host-eob-session"
"""The `__Host-` prefix makes the browser insist on Secure, Path=/ and no Domain attribute."""
MAX_SESSION_HOURS = 12
"""However busy a session is, it ends after a working day: the next day starts with a sign-in."""
TOUCH_EVERY_SECONDS = 30
"""A page view moves the idle clock only this often: one write per half minute, not per page."""
PURGE_AFTER_DAYS = 7


class Ended(StrEnum):
    """Why a session ended, as the sign-in page explains it."""

    SIGNED_OUT = "signed_out"
    IDLE = "idle"
    EXPIRED = "expired"
    ACCOUNT_CHANGED = "account_changed"
    """An administrator reset the password, changed the roles or disabled the account."""


@dataclass(frozen=True, slots=True)
class Session:
    """A live session: whose it is and the token its forms must carry."""

    session_hash: str
    username: str
    csrf_token: str
    flash: str | None


@dataclass(frozen=True, slots=True)
class Refused:
    """A cookie that names a session no longer live, and why (for the sign-in page)."""

    why: Ended


class SessionStore:
    """Creates, reads and ends sessions; time comes from the injected clock."""

    def __init__(self, ledger: Ledger, settings: Settings, now: Now) -> None:
        secret = settings.desk_secret.get_secret_value().encode()
        self._ledger = ledger
        self._now = now
        self._idle = timedelta(minutes=settings.web_idle_minutes)
        self._signer = Signer(secret, salt="eob-web-session")
        self._csrf_key = hmac.new(secret, b"eob-web-csrf", hashlib.sha256).digest()

    def start(self, username: str, *, source: str | None) -> str:
        """A new session for a user who just signed in; returns the cookie value."""
        session_id = secrets.token_urlsafe(32)
        now = self._now()
        self._ledger.execute("web_session_insert", session_hash=_digest(session_id),
                             username=username, source=source, at=iso(now))
        self._ledger.execute("web_sessions_purge", before=iso(now - timedelta(days=PURGE_AFTER_DAYS)))
        return self._signer.sign(session_id.encode()).decode()

    def load(self, cookie: str | None) -> Session | Refused | None:
        """The live session a cookie names; `Refused` when it names one that has ended (now,
        if it sat idle too long or reached its maximum age); None for no or a forged cookie."""
        session_id = self._unsign(cookie)
        if session_id is None:
            return None
        session_hash = _digest(session_id)
        row = self._ledger.fetch_one("web_session_get", session_hash=session_hash)
        if row is None:
            return None
        if row["ended_at"] is not None:
            return Refused(Ended(row["ended_why"]))
        now = self._now()
        if now - moment(row["last_seen_at"]) > self._idle:
            self.end(session_hash, Ended.IDLE)
            return Refused(Ended.IDLE)
        if now - moment(row["created_at"]) > timedelta(hours=MAX_SESSION_HOURS):
            self.end(session_hash, Ended.EXPIRED)
            return Refused(Ended.EXPIRED)
        if (now - moment(row["last_seen_at"])).total_seconds() >= TOUCH_EVERY_SECONDS:
            self._ledger.execute("web_session_touch", session_hash=session_hash, at=iso(now))
        return Session(session_hash, row["username"], self._csrf(session_hash), row["flash"])

    def end(self, session_hash: str, why: Ended) -> None:
        self._ledger.execute("web_session_end", session_hash=session_hash, at=iso(self._now()),
                             why=why.value)

    def flash(self, session_hash: str, message: str | None) -> None:
        """A one-line message for the next page (an action's outcome); None clears it."""
        self._ledger.execute("web_session_flash", session_hash=session_hash, flash=message)

    def _unsign(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie.encode()).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def _csrf(self, session_hash: str) -> str:
        """The session's CSRF token: derived, so nothing more is stored, and bound to the
        session, so a token from another session (or signed-out one) is worthless."""
        return hmac.new(self._csrf_key, session_hash.encode(), hashlib.sha256).hexdigest()


def end_sessions_of(ledger: Ledger, username: str, *, keep: str | None = None) -> int:
    """End every live session of the account `username` (as stored: normalised), now, but the
    session `keep` (an administrator resetting their own password stays signed in here): the
    password was reset, the roles changed or the account was disabled, and a session begun
    before that, or a cookie copied from it, must not outlive the change. Returns how many
    ended. For the users page and `eob users`."""
    return ledger.execute("web_sessions_end_for_user", username=username, at=ledger.now(),
                          why=Ended.ACCOUNT_CHANGED.value, keep=keep or "")


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()
