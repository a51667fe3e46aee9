"""The signed-in user of one request, as routes and pages see them."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.desk.accounts import User
from pipeline.desk.permissions import Permission
from pipeline.web.sessions import Session


@dataclass(frozen=True, slots=True)
class Visitor:
    """A signed-in user on this request: their live session, their account, their address."""

    session: Session
    user: User
    source: str | None

    @property
    def username(self) -> str:
        return self.user.username

    def may(self, permission: Permission) -> bool:
        return self.user.may(permission)
