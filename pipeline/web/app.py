"""The support desk's web app: `create_app` wires settings, the ledger and the routes.

Pages are rendered on the server and run no JavaScript. Every route but sign-in declares the
permission it needs (`pipeline.web.access.require`); refusals are pages that say what to do.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from pipeline.settings import Settings
from pipeline.stages import Context, open_context
from pipeline.web import approvals, audit_pages, reports, search, signin, statements, users
from pipeline.web.access import Forbidden, SignInNeeded, Visitor, signed_in
from pipeline.web.csrf import CsrfRefused
from pipeline.web.headers import SecurityHeaders
from pipeline.web.pages import STATIC_DIR, Pages, sentence
from pipeline.web.ratelimit import SignInLimiter
from pipeline.web.sessions import SessionStore
from pipeline.web.state import WebDesk, desk_of

HTTP_MESSAGES = {
    404: ("Page not found", "There is no page at this address. Use the menu to find what you need."),
    405: ("Not possible here", "This page cannot be used that way. Use the menu to find what you need."),
}


def create_app(settings: Settings, *, ctx: Context | None = None) -> FastAPI:
    """The desk app over `ctx` (default: the stage context `settings` opens: the ledger, the
    injected clock)."""
    ctx = ctx or open_context(settings)
    sessions = SessionStore(ctx.ledger, settings, ctx.now)
    desk = WebDesk(settings, ctx, sessions, SignInLimiter(settings.web_signins_per_minute, ctx.now),
                   Pages(sessions))
    app = FastAPI(title="Statement support desk", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.desk = desk
    for module in (signin, search, statements, approvals, audit_pages, reports, users):
        app.include_router(module.router)
    if settings.web_oidc_issuer:
        from pipeline.web import oidc

        oidc.install(app, settings)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(SecurityHeaders, tls=settings.web_tls)
    app.add_exception_handler(SignInNeeded, _sign_in_needed)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(CsrfRefused, _csrf_refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    return app


# The handlers are plain functions: Starlette runs them in its thread pool, off the event loop,
# since they read the session from the database.
def _visitor_or_none(request: Request) -> Visitor | None:
    try:
        return signed_in(request)
    except SignInNeeded:
        return None


def _sign_in_needed(request: Request, exc: Exception) -> Response:
    """Pages send the browser to sign in; a form posted without a live session is refused."""
    why = exc.why if isinstance(exc, SignInNeeded) else None
    if request.method in ("GET", "HEAD"):
        return RedirectResponse("/signin" + (f"?why={why.value}" if why else ""), status_code=303)
    return desk_of(request).pages.render(
        "error.html", None, status=401, title="Sign in first",
        message="You are not signed in (or were signed out), so nothing was done. Sign in and try again.")


def _forbidden(request: Request, exc: Exception) -> Response:
    return desk_of(request).pages.render(
        "error.html", _visitor_or_none(request), status=403, title="Not allowed for your role",
        message=f"{str(exc).capitalize()}. If your work needs it, ask a desk administrator.")


def _csrf_refused(request: Request, exc: Exception) -> Response:
    return desk_of(request).pages.render(
        "error.html", _visitor_or_none(request), status=403, title="Form not accepted",
        message=f"Nothing was done: {sentence(exc)}")


def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    title, message = HTTP_MESSAGES.get(status, ("Something went wrong", "Nothing was done."))
    return desk_of(request).pages.render("error.html", _visitor_or_none(request), status=status,
                                         title=title, message=message)


def _invalid_request(request: Request, exc: Exception) -> Response:
    return desk_of(request).pages.render(
        "error.html", _visitor_or_none(request), status=400, title="Not understood",
        message="Nothing was done: the request was incomplete. Go back and fill in every field.")
