"""Signing in and out with a local account (argon2 passwords, pipeline.desk.accounts).

A refused sign-in says the same thing whatever went wrong (unknown user, wrong password,
locked or disabled account), so the page cannot be used to find out which user names exist.
Each client address gets `web_signins_per_minute` attempts; each account locks after
`web_max_failed_signins` failures in a row. The accounts module audits every attempt.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from pipeline.desk.accounts import SignInRefused, authenticate
from pipeline.desk.audit import DeskAction, record
from pipeline.desk.permissions import Permission
from pipeline.web.access import SignInNeeded, Visitor, landing, public_route, require, signed_in
from pipeline.web.csrf import SIGNIN_COOKIE, SIGNIN_COOKIE_SECONDS, signin_ok, signin_pair
from pipeline.web.sessions import SESSION_COOKIE, Ended
from pipeline.web.state import WebDesk, desk_of, source_of

log = logging.getLogger(__name__)
router = APIRouter()

ENDED_MESSAGES = {
    Ended.SIGNED_OUT: "You have signed out.",
    Ended.IDLE: "You were signed out because the desk was not used for a while. Sign in again.",
    Ended.EXPIRED: "Your session reached its maximum length. Sign in again.",
    Ended.ACCOUNT_CHANGED: ("You were signed out because an administrator changed your account (its "
                            "password, roles or access). Sign in again, or ask them why."),
}


def refused_message(desk: WebDesk) -> str:
    settings = desk.settings
    return (f"Wrong user name or password, or the account is locked. After "
            f"{settings.web_max_failed_signins} failed attempts in a row an account is locked for "
            f"{settings.web_lockout_minutes} minutes; an admin can unlock it sooner.")


def signin_page(request: Request, *, status: int = 200, error: str | None = None,
                notice: str | None = None) -> Response:
    """The sign-in form, with a fresh sign-in CSRF pair (cookie and hidden field)."""
    desk = desk_of(request)
    nonce, token = signin_pair(desk.secret)
    response = desk.pages.render(
        "signin.html", None, status=status, error=error, notice=notice, signin_token=token,
        oidc=desk.settings.web_oidc_issuer is not None, title="Sign in")
    response.set_cookie(SIGNIN_COOKIE, nonce, max_age=SIGNIN_COOKIE_SECONDS, path="/",
                        secure=True, httponly=True, samesite="strict")
    return response


def start_session(request: Request, username: str, response: Response) -> Response:
    """Begin a session for a user who has just proved who they are, on `response`."""
    desk = desk_of(request)
    cookie = desk.sessions.start(username, source=source_of(request))
    response.set_cookie(SESSION_COOKIE, cookie, path="/", secure=True, httponly=True,
                        samesite="strict")
    response.delete_cookie(SIGNIN_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/signin")
@public_route
def signin_form(request: Request, why: str | None = None) -> Response:
    try:
        signed_in(request)
        return RedirectResponse("/", status_code=303)
    except SignInNeeded:
        pass
    notice = ENDED_MESSAGES.get(Ended(why)) if why in set(Ended) else None
    return signin_page(request, notice=notice)


@router.post("/signin")
@public_route
def signin_submit(request: Request, username: Annotated[str, Form()] = "",
                  password: Annotated[str, Form()] = "", csrf_token: Annotated[str, Form()] = "") -> Response:
    desk = desk_of(request)
    source = source_of(request)
    if not desk.limiter.allow(source):
        log.warning("sign-in attempts over the per-minute limit", extra={"source": source})
        response = signin_page(request, status=429, error=(
            "Too many sign-in attempts from this computer. Wait a minute, then try again."))
        response.headers["Retry-After"] = "60"
        return response
    if not signin_ok(desk.secret, request.cookies.get(SIGNIN_COOKIE), csrf_token):
        return signin_page(request, status=403, error=(
            "The sign-in form had expired. Enter your user name and password again."))
    try:
        user = authenticate(desk.ctx.ledger, desk.settings, username.strip(), password, source=source)
    except SignInRefused:
        return signin_page(request, status=401, error=refused_message(desk))
    return start_session(request, user.username, RedirectResponse("/", status_code=303))


@router.post("/signout")
def signout(request: Request, visitor: Annotated[Visitor, Depends(require(None))]) -> Response:
    desk = desk_of(request)
    desk.sessions.end(visitor.session.session_hash, Ended.SIGNED_OUT)
    record(desk.ctx.ledger, actor=visitor.username, action=DeskAction.SIGN_OUT, source=visitor.source)
    response = RedirectResponse(f"/signin?why={Ended.SIGNED_OUT.value}", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
    return response


@router.get("/")
def home(visitor: Annotated[Visitor, Depends(require(None))]) -> Response:
    """Each role's first page."""
    return RedirectResponse(landing(p for p in Permission if visitor.may(p)), status_code=303)


@router.get("/welcome")
def welcome(request: Request, visitor: Annotated[Visitor, Depends(require(None))]) -> Response:
    """A user with no role yet: nothing to show but who to ask."""
    return desk_of(request).pages.render("welcome.html", visitor, title="Welcome")
