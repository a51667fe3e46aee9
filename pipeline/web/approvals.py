"""Address changes waiting for a supervisor (the two-person rule).

A wrong address sends a member's health information to a stranger, so an address an agent
records is not used until a second person approves it. The page lists every change waiting;
the person who entered a change sees it but cannot decide it (the desk refuses that too).
"""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from pipeline.desk.actions import decide_address_change, pending_changes
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Permission
from pipeline.desk.reasons import MAX_REASON, MIN_REASON
from pipeline.ledger import LedgerError
from pipeline.web.access import Visitor, require
from pipeline.web.pages import sentence
from pipeline.web.state import desk_of
from pipeline.web.statements import VERIFIED_VIA

router = APIRouter()
DECIDE = Depends(require(Permission.APPROVE_ADDRESS_CHANGE))
CHANGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@router.get("/approvals")
def approvals_page(request: Request, visitor: Annotated[Visitor, DECIDE]) -> Response:
    desk = desk_of(request)
    return desk.pages.render("approvals.html", visitor, title="Approvals",
                             changes=pending_changes(desk.ctx), min_reason=MIN_REASON, max_reason=MAX_REASON,
                             via=dict(VERIFIED_VIA))


@router.post("/approvals/{change_id}")
def decide(request: Request, change_id: str,
           visitor: Annotated[Visitor, DECIDE],
           decision: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "") -> Response:
    desk = desk_of(request)
    if decision not in ("approve", "reject"):
        desk.pages.tell(visitor, "Nothing was done: choose approve or reject.", problem=True)
    elif not CHANGE_ID.match(change_id):
        desk.pages.tell(visitor, "Nothing was done: that change is not waiting any more.", problem=True)
    else:
        approve = decision == "approve"
        try:
            decide_address_change(desk.ctx, change_id, actor=visitor.username, approve=approve,
                                  reason=reason, source=visitor.source)
            desk.pages.tell(visitor, "Approved: the statement will be resent to the new address." if approve
                            else "Rejected: the address was not changed.")
        except (DeskError, LedgerError) as exc:
            desk.pages.tell(visitor, f"Nothing was done: {sentence(exc)}", problem=True)
    return RedirectResponse("/approvals", status_code=303)
