"""Who may do what: one dependency every route declares, driven by the permission matrix.

`require(permission)` signs the request in from its session cookie, checks the CSRF token on
every POST, and checks the user's roles against `pipeline.desk.permissions.MATRIX`. The route
table (`route_permissions`) is read back from the routes themselves, so the test that tries
every role against every route cannot drift from what the app enforces.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from fastapi import FastAPI, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from pipeline.desk.accounts import get_user
from pipeline.desk.permissions import Permission
from pipeline.web.csrf import FORM_FIELD, CsrfRefused, same
from pipeline.web.sessions import SESSION_COOKIE, Ended, Refused
from pipeline.web.state import desk_of, source_of
from pipeline.web.visitor import Visitor

__all__ = ["PUBLIC", "Forbidden", "SignInNeeded", "Visitor", "landing", "public_route", "require",
           "route_permissions", "signed_in"]


class SignInNeeded(Exception):
    """No live session: pages send the browser to the sign-in page, form posts are refused."""

    def __init__(self, why: Ended | None = None) -> None:
        self.why = why
        super().__init__("sign in to the support desk first")


class Forbidden(Exception):
    """The user's roles do not include the permission the route needs."""

    def __init__(self, permission: Permission) -> None:
        self.permission = permission
        super().__init__(f"your roles do not allow this ({permission.value.replace('_', ' ')})")


def signed_in(request: Request) -> Visitor:
    """The request's visitor, or `SignInNeeded`. A user disabled since signing in (from the
    command line too, which ends no session itself) is signed out here, on their next request."""
    desk = desk_of(request)
    loaded = desk.sessions.load(request.cookies.get(SESSION_COOKIE))
    if loaded is None or isinstance(loaded, Refused):
        raise SignInNeeded(loaded.why if loaded else None)
    user = get_user(desk.ctx.ledger, loaded.username)
    if user is None or not user.active:
        desk.sessions.end(loaded.session_hash, Ended.ACCOUNT_CHANGED)
        raise SignInNeeded(Ended.ACCOUNT_CHANGED)
    return Visitor(loaded, user, source_of(request))


async def check_csrf(request: Request, visitor: Visitor) -> None:
    form = await request.form()
    token = form.get(FORM_FIELD)
    if not same(visitor.session.csrf_token, token if isinstance(token, str) else None):
        raise CsrfRefused()


Dependency = Callable[[Request], Awaitable[Visitor]]


def require(permission: Permission | None) -> Dependency:
    """The dependency of a route that needs `permission` (None: any signed-in user)."""

    async def dependency(request: Request) -> Visitor:
        visitor = await run_in_threadpool(signed_in, request)  # database reads: off the event loop
        if request.method == "POST":
            await check_csrf(request, visitor)
        if permission is not None and not visitor.may(permission):
            raise Forbidden(permission)
        return visitor

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


PUBLIC = "public"
"""A route anyone may reach (sign-in, the stylesheet): `route_permissions` says so."""


def route_permissions(app: FastAPI) -> dict[tuple[str, str], Permission | str | None]:
    """(method, path) of every route -> the permission it requires; None: any signed-in user;
    PUBLIC: no sign-in. A route with no `require` dependency must be marked public with
    `public_route`, or it is listed as missing (a test refuses that)."""
    table: dict[tuple[str, str], Permission | str | None] = {}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        needs = [getattr(dep.call, "permission") for dep in route.dependant.dependencies  # noqa: B009
                 if hasattr(dep.call, "permission")]
        marked = getattr(route.endpoint, "public", False)
        for method in route.methods or ():
            table[(method, route.path)] = PUBLIC if marked else (needs[0] if needs else "missing")
    return table


def public_route(endpoint: Callable[..., object]) -> Callable[..., object]:
    """Mark a route as reachable without signing in (sign-in itself)."""
    endpoint.public = True  # type: ignore[attr-defined]
    return endpoint


def landing(permissions: Iterable[Permission]) -> str:
    """The first page for a user: the work their roles exist for."""
    have = set(permissions)
    for permission, path in _LANDINGS:
        if permission in have:
            return path
    return "/welcome"


_LANDINGS = (
    (Permission.SEARCH, "/search"), (Permission.VIEW_REPORTS, "/reports"),
    (Permission.VIEW_AUDIT, "/audit"), (Permission.MANAGE_USERS, "/users"),
)
