"""The audit log, for auditors: recent entries (by user or by statement), a check of the whole
hash chain on request (with its head, to keep outside the database, and a check that a head kept
earlier is still in the log), and the access review. Auditors act on nothing; reading the log is
itself an audit entry ("view_audit"), so the log shows who watched the watchers.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from starlette.responses import HTMLResponse, Response

from pipeline.desk.audit import (
    DeskAction,
    access_review,
    entries,
    record,
    render_access_review_html,
    verify,
)
from pipeline.desk.permissions import Permission
from pipeline.web.access import Visitor, require
from pipeline.web.headers import REPORT_POLICY
from pipeline.web.state import desk_of

router = APIRouter()
RECENT = 200
REVIEW_DAYS = 30
FILTER = re.compile(r"^[A-Za-z0-9._@+~()-]{1,128}$")
HEAD = re.compile(r"^[0-9a-f]{64}$")


def _filter(value: str | None) -> str | None:
    value = (value or "").strip()
    return value if value and FILTER.match(value) else None


@router.get("/audit")
def audit_page(request: Request, visitor: Annotated[Visitor, Depends(require(Permission.VIEW_AUDIT))],
               actor: str | None = None, statement: str | None = None,
               check: str | None = None, head: str | None = None) -> Response:
    """Recent entries; with `check`, the whole chain verified and its head shown, and with
    `head` (one an auditor kept from an earlier check) that it is still in the log."""
    desk = desk_of(request)
    ledger = desk.ctx.ledger
    by_actor, by_statement = _filter(actor), _filter(statement)
    kept = (head or "").strip().lower()
    if kept and not HEAD.match(kept):
        return desk.pages.render("error.html", visitor, status=400, title="Not a head",
                                 message="A head is the 64 letters and digits a check of the log showed.")
    chain = verify(ledger, expect_head=kept or None) if check else None
    detail: dict[str, object] = {"page": "entries", "chain_checked": chain is not None}
    if chain is not None and kept:
        detail["head_expected"] = kept
    if by_actor:
        detail["by_actor"] = by_actor
    record(ledger, actor=visitor.username, action=DeskAction.VIEW_AUDIT, source=visitor.source,
           statement_id=by_statement, detail=detail)
    rows = entries(ledger, actor=by_actor, statement_id=by_statement, limit=RECENT)
    today = desk.ctx.now().date()
    return desk.pages.render(
        "audit.html", visitor, title="Audit log", entries=rows, chain=chain, head=kept if chain else "",
        actor=by_actor or "", statement=by_statement or "", limit=RECENT,
        review_since=today - timedelta(days=REVIEW_DAYS), today=today)


@router.get("/audit/review")
def review_page(request: Request, visitor: Annotated[Visitor, Depends(require(Permission.VIEW_AUDIT))],
                since: str | None = None, until: str | None = None) -> Response:
    """The access review (who looked at how many members, unusual volumes, looks outside a
    member contact) as the compliance report `eob audit report` writes."""
    desk = desk_of(request)
    try:
        start = date.fromisoformat(since) if since else desk.ctx.now().date() - timedelta(days=REVIEW_DAYS)
        end = date.fromisoformat(until) if until else None
    except ValueError:
        return desk.pages.render("error.html", visitor, status=400, title="Not a date",
                                 message="Give the review's first and last days as YYYY-MM-DD.")
    if end is not None and end < start:
        return desk.pages.render("error.html", visitor, status=400, title="Dates the wrong way round",
                                 message="The last day of the review comes before its first day.")
    record(desk.ctx.ledger, actor=visitor.username, action=DeskAction.VIEW_AUDIT, source=visitor.source,
           detail={"page": "access_review", "since": start.isoformat(),
                   "until": end.isoformat() if end else None})
    review = access_review(desk.ctx.ledger, desk.settings, start, end)
    return HTMLResponse(render_access_review_html(review),
                        headers={"Content-Security-Policy": REPORT_POLICY})
