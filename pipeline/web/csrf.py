"""CSRF protection for every form that changes something.

Signed-in forms carry the session's synchronizer token (`SessionStore` derives it from the
session, so it dies with the session). The sign-in form has no session yet: it carries a token
bound to a random value in a short-lived cookie of its own (signed double submit), so another
site cannot sign a browser in to an account of its choosing. SameSite=Strict cookies already
keep other sites' forms from riding a session; the tokens hold even where a browser ignores it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

FORM_FIELD = "csrf_token"
SIGNIN_COOKIE = "__Host-eob-signin"
SIGNIN_COOKIE_SECONDS = 1800


class CsrfRefused(Exception):
    """A form arrived without its token, or with one that is not this session's."""

    def __init__(self) -> None:
        super().__init__("this form has expired or did not come from the desk: go back, reload "
                         "the page and submit it again")


def same(expected: str, given: str | None) -> bool:
    """Constant-time comparison of a token with what a form sent."""
    return bool(given) and hmac.compare_digest(expected.encode(), (given or "").encode())


def signin_pair(secret: bytes) -> tuple[str, str]:
    """(cookie value, form token) for a fresh sign-in form."""
    nonce = secrets.token_urlsafe(24)
    return nonce, signin_token(secret, nonce)


def signin_token(secret: bytes, nonce: str) -> str:
    return hmac.new(secret, b"eob-web-signin:" + nonce.encode(), hashlib.sha256).hexdigest()


def signin_ok(secret: bytes, nonce: str | None, given: str | None) -> bool:
    return bool(nonce) and same(signin_token(secret, nonce or ""), given)
