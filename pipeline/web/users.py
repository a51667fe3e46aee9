"""The users page, for desk administrators: add accounts, set roles, disable, unlock, reset a
password. Admins see no statement: the page is about accounts only. Every change is audited
by pipeline.desk.accounts (action "user_admin", with the administrator's name and address).
A password reset, a change of roles and disabling an account each end the user's live sessions
(`end_sessions_of`): whoever holds one of them, or a copy of its cookie, must sign in again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from pipeline.desk.accounts import (
    MIN_PASSWORD_LENGTH,
    create_user,
    list_users,
    normalise_username,
    set_active,
    set_password,
    set_roles,
    unlock,
)
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Permission, Role
from pipeline.web.access import Visitor, require
from pipeline.web.pages import sentence
from pipeline.web.sessions import end_sessions_of
from pipeline.web.state import desk_of

router = APIRouter()
MANAGE = Depends(require(Permission.MANAGE_USERS))

ROLE_LABELS = (
    (Role.AGENT, "Support agent", "search, view statements, record address changes, move to paper, "
                                  "cancel resends"),
    (Role.SUPERVISOR, "Supervisor", "what an agent does, plus approve address changes and lift "
                                    "suppressions"),
    (Role.FINANCE, "Finance", "run reports (totals only, no member)"),
    (Role.AUDITOR, "Auditor", "the audit log and access reviews, no actions"),
    (Role.ADMIN, "Admin", "desk users and roles"),
)


@router.get("/users")
def users_page(request: Request, visitor: Annotated[Visitor, MANAGE]) -> Response:
    desk = desk_of(request)
    return desk.pages.render("users.html", visitor, title="Users", users=list_users(desk.ctx.ledger),
                             role_labels=ROLE_LABELS, min_password=MIN_PASSWORD_LENGTH)


def _change(request: Request, visitor: Visitor, change: Callable[[], str]) -> Response:
    desk = desk_of(request)
    try:
        desk.pages.tell(visitor, change())
    except DeskError as exc:
        desk.pages.tell(visitor, f"Nothing was changed: {sentence(exc)}", problem=True)
    return RedirectResponse("/users", status_code=303)


def _roles(chosen: list[str]) -> list[Role]:
    valid = {role.value for role in Role}
    return [Role(name) for name in chosen if name in valid]


@router.post("/users")
def add_user(request: Request, visitor: Annotated[Visitor, MANAGE],
             username: Annotated[str, Form()] = "", display_name: Annotated[str, Form()] = "",
             password: Annotated[str, Form()] = "",
             roles: Annotated[list[str] | None, Form()] = None) -> Response:
    ledger = desk_of(request).ctx.ledger

    def change() -> str:
        user = create_user(ledger, username, display_name, _roles(roles or []), password or None,
                           actor=visitor.username, source=visitor.source)
        return f"Added {user.username}. Give them their password by a separate, secure channel."

    return _change(request, visitor, change)


@router.post("/users/{username}/roles")
def change_roles(request: Request, username: str, visitor: Annotated[Visitor, MANAGE],
                 roles: Annotated[list[str] | None, Form()] = None) -> Response:
    ledger = desk_of(request).ctx.ledger

    def change() -> str:
        user = set_roles(ledger, username, _roles(roles or []), actor=visitor.username,
                         source=visitor.source)
        end_sessions_of(ledger, user.username)
        return f"Roles of {user.username} saved; they sign in again to use them."

    return _change(request, visitor, change)


@router.post("/users/{username}/active")
def change_active(request: Request, username: str, visitor: Annotated[Visitor, MANAGE],
                  active: Annotated[str, Form()] = "") -> Response:
    ledger = desk_of(request).ctx.ledger

    def change() -> str:
        user = set_active(ledger, username, active == "yes", actor=visitor.username,
                          source=visitor.source)
        if not user.active:
            end_sessions_of(ledger, user.username)
        return f"{user.username} {'can sign in again' if user.active else 'is disabled'}."

    return _change(request, visitor, change)


@router.post("/users/{username}/unlock")
def unlock_user(request: Request, username: str, visitor: Annotated[Visitor, MANAGE]) -> Response:
    ledger = desk_of(request).ctx.ledger

    def change() -> str:
        user = unlock(ledger, username, actor=visitor.username, source=visitor.source)
        return f"{user.username} is unlocked."

    return _change(request, visitor, change)


@router.post("/users/{username}/password")
def reset_password(request: Request, username: str, visitor: Annotated[Visitor, MANAGE],
                   password: Annotated[str, Form()] = "") -> Response:
    ledger = desk_of(request).ctx.ledger

    def change() -> str:
        set_password(ledger, username, password, actor=visitor.username, source=visitor.source)
        name = normalise_username(username)
        end_sessions_of(ledger, name, keep=visitor.session.session_hash)
        return f"New password set for {name}; it ends their sessions and a lockout."

    return _change(request, visitor, change)
