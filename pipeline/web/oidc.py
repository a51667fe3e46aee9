"""Signing in through the insurer's identity provider (OpenID Connect, with Authlib).

Set EOB_WEB_OIDC_ISSUER, _CLIENT_ID and _CLIENT_SECRET and the sign-in page offers "Sign in with
your company account". The provider says who the user is and, in the ID token's
`web_oidc_roles_claim` claim, which desk roles they hold; the desk keeps its own copy of the
user (`pipeline.desk.accounts.oidc_user`, known by the token's issuer and subject, never by the
name alone) so the audit log and the users page know them. A sign-in that does not complete is
audited as a failed sign-in with the provider's error code.

The round trip's state and nonce live in a short-lived cookie of their own, SameSite=Lax: the
provider sends the browser back from its own site, and a Strict cookie would not come along.
For the same reason the callback answers with a page that moves on by itself (a meta refresh,
no script): the desk's Strict session cookie is then sent on a same-site navigation.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.middleware.sessions import SessionMiddleware
from starlette.responses import Response

from pipeline.desk.accounts import UNKNOWN_USER, oidc_user
from pipeline.desk.audit import DeskAction, record
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Role
from pipeline.settings import Settings
from pipeline.web.access import public_route
from pipeline.web.pages import sentence
from pipeline.web.signin import signin_page, start_session
from pipeline.web.state import desk_of, source_of

log = logging.getLogger(__name__)
router = APIRouter()
OIDC_COOKIE = "__Host-eob-oidc"
OIDC_COOKIE_SECONDS = 600
CLIENT = "desk"
ERROR_CODE = re.compile(r"^[a-z0-9_.-]{1,64}$")
"""What of a provider's error the audit log keeps: an OAuth error code ("access_denied",
"mismatching_state"); anything else is recorded as "other"."""


def install(app: FastAPI, settings: Settings) -> None:
    """Register the provider (its metadata is fetched on first use) and the two routes."""
    from authlib.integrations.starlette_client import OAuth

    issuer = settings.web_oidc_issuer
    if not (issuer and settings.web_oidc_client_id and settings.web_oidc_client_secret):
        raise ValueError("EOB_WEB_OIDC_ISSUER is set but EOB_WEB_OIDC_CLIENT_ID or "
                         "EOB_WEB_OIDC_CLIENT_SECRET is not: set all three, or none")
    oauth = OAuth()
    oauth.register(
        CLIENT, client_id=settings.web_oidc_client_id,
        client_secret=settings.web_oidc_client_secret.get_secret_value(),
        server_metadata_url=issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email"})
    app.state.oauth = oauth
    secret = settings.desk_secret.get_secret_value().encode()
    key = hmac.new(secret, b"eob-web-oidc", hashlib.sha256).hexdigest()
    app.add_middleware(SessionMiddleware, secret_key=key, session_cookie=OIDC_COOKIE,
                       max_age=OIDC_COOKIE_SECONDS, same_site="lax", https_only=True)
    app.include_router(router)


def desk_roles(claim: Any) -> frozenset[Role]:
    """The desk roles in the provider's claim (a list, or a space-separated text); names that
    are not desk roles are ignored."""
    names: Iterable[Any] = claim.split() if isinstance(claim, str) else claim or ()
    valid = {role.value for role in Role}
    return frozenset(Role(name) for name in names if isinstance(name, str) and name in valid)


@router.get("/signin/oidc")
@public_route
async def oidc_start(request: Request) -> Response:
    client = request.app.state.oauth.create_client(CLIENT)
    response: Response = await client.authorize_redirect(request, request.url_for("oidc_callback"))
    return response


@router.get("/signin/oidc/callback", name="oidc_callback")
@public_route
async def oidc_callback(request: Request) -> Response:
    from authlib.integrations.base_client import OAuthError

    client = request.app.state.oauth.create_client(CLIENT)
    try:
        token = await client.authorize_access_token(request)
    except OAuthError as exc:
        return await run_in_threadpool(_refused, request, error_code(exc.error), (
            "The company sign-in did not complete. Try again, or ask your IT service desk."))
    return await run_in_threadpool(_signed_in, request, token.get("userinfo") or {})


def error_code(error: object) -> str:
    """A provider's error as a short code fit for the audit log and the log."""
    code = str(error or "").strip().lower()
    return code if ERROR_CODE.match(code) else "other"


def _refused(request: Request, code: str, message: str) -> Response:
    """A company sign-in that did not complete: audited as a failed sign-in (who is not known)
    and logged, then the sign-in page says so."""
    desk = desk_of(request)
    log.warning("company sign-in refused", extra={"error": code})
    record(desk.ctx.ledger, actor=UNKNOWN_USER, action=DeskAction.SIGN_IN_FAILED,
           source=source_of(request), detail={"method": "oidc", "error": code})
    return signin_page(request, status=401, error=message)


def _signed_in(request: Request, claims: dict[str, Any]) -> Response:
    """The desk's own copy of the user, and a session (database work: in the thread pool)."""
    desk = desk_of(request)
    issuer, subject = str(claims.get("iss") or ""), str(claims.get("sub") or "")
    if not issuer or not subject:
        return _refused(request, "no_subject", (
            "The company sign-in did not say who you are. Ask your IT service desk."))
    username = str(claims.get("preferred_username") or subject)
    roles = desk_roles(claims.get(desk.settings.web_oidc_roles_claim))
    try:
        user = oidc_user(desk.ctx.ledger, username, str(claims.get("name") or username), roles,
                         issuer=issuer, subject=subject, source=source_of(request))
    except DeskError as exc:  # a disabled account, or a name the desk cannot take
        return signin_page(request, status=401, error=f"The company sign-in was refused: {sentence(exc)}")
    page = desk.pages.render("signed_in.html", None, title="Signed in")
    return start_session(request, user.username, page)
