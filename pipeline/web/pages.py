"""Server-rendered pages: Jinja2 templates under templates/web/, autoescaped, strict.

Every page gets the navigation its user's roles allow, the session's CSRF token for its forms
and the one-line message an action left for it (shown once).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from starlette.responses import HTMLResponse

from pipeline.clock import moment
from pipeline.desk.permissions import Permission
from pipeline.templates import TEMPLATES_DIR

if TYPE_CHECKING:
    from pipeline.web.sessions import SessionStore
    from pipeline.web.visitor import Visitor

WEB_TEMPLATES = TEMPLATES_DIR / "web"
STATIC_DIR = WEB_TEMPLATES / "static"

PROBLEM = "!"
"""Marks a message that reports a refusal or a mistake rather than a success."""

NAVIGATION = (
    (Permission.SEARCH, "/search", "Search"),
    (Permission.APPROVE_ADDRESS_CHANGE, "/approvals", "Approvals"),
    (Permission.VIEW_REPORTS, "/reports", "Reports"),
    (Permission.VIEW_AUDIT, "/audit", "Audit log"),
    (Permission.MANAGE_USERS, "/users", "Users"),
)


def when(value: datetime | str | None) -> str:
    """A ledger time for people: '3 Dec 2026, 14:05 UTC'; an empty value as a dash."""
    if value is None or value == "":
        return "—"
    at = moment(value)
    return f"{at.day} {at:%b %Y, %H:%M} UTC"


def words(value: str | None) -> str:
    """A code ('retry_scheduled') as words ('retry scheduled') where no label is given."""
    return (value or "").replace("_", " ")


def sentence(error: Exception) -> str:
    """An error's message as the end of a sentence on a page ("Nothing was done: ..."): one full
    stop, and a capital first letter lowered unless the word is in capitals ("PDF")."""
    text = str(error).rstrip(". ")
    if text[:1].isupper() and not text[1:2].isupper():
        text = text[0].lower() + text[1:]
    return text + "."


def detail_text(detail: Mapping[str, Any]) -> str:
    """An audit entry's detail on one line: 'page: entries; statements: 12' (a list of statement
    ids is counted, not listed)."""
    parts = []
    for name, value in sorted(detail.items()):
        if value is None:
            continue
        if name == "statement_ids" and isinstance(value, list):
            name, value = "statements", len(value)
        elif isinstance(value, list | tuple):
            value = ", ".join(str(item) for item in value)
        parts.append(f"{words(name)}: {value}")
    return "; ".join(parts)


class Pages:
    def __init__(self, sessions: SessionStore, templates_dir: Path = WEB_TEMPLATES) -> None:
        self._sessions = sessions
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(templates_dir)), autoescape=True,
            undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
        self._env.filters["when"] = when
        self._env.filters["words"] = words
        self._env.filters["detail_text"] = detail_text

    def render(self, name: str, visitor: Visitor | None, *, status: int = 200,
               **context: Any) -> HTMLResponse:
        """The page `name` for `visitor` (None: not signed in). A message left for this page is
        shown and cleared."""
        flash = None
        nav: list[tuple[str, str]] = []
        if visitor is not None:
            nav = [(path, label) for permission, path, label in NAVIGATION if visitor.may(permission)]
            flash = visitor.session.flash
            if flash:
                self._sessions.flash(visitor.session.session_hash, None)
        context.setdefault("error", None)
        context.setdefault("title", "")
        problem = bool(flash and flash.startswith(PROBLEM))
        html = self._env.get_template(name).render(
            visitor=visitor, nav=nav, flash=flash[1:] if problem and flash else flash,
            flash_problem=problem,
            csrf_token=visitor.session.csrf_token if visitor else None, **context)
        return HTMLResponse(html, status_code=status)

    def tell(self, visitor: Visitor, message: str, *, problem: bool = False) -> None:
        """Leave a one-line message for the visitor's next page: an action's outcome."""
        self._sessions.flash(visitor.session.session_hash, (PROBLEM if problem else "") + message)
