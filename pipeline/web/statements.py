"""One page per statement, and the actions support may take on it.

The page shows `pipeline.desk.lookup.statement_view` (the same view `eob lookup` prints): the
whole timeline, the queue, the next action and its date, the delivery deadline, and masked
email and ids, never amounts, services or the PDF. Every view is audited. Each action form
asks for a reason, which lands on the timeline and in the audit log (the action functions
record both); a refusal comes back as the desk's own message on the statement page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import RedirectResponse, Response

from pipeline.desk.actions import (
    ADDRESS_CHANGEABLE,
    MOVABLE_TO_PAPER,
    RESEND_WAITING,
    cancel_resend,
    lift_suppression,
    move_to_paper,
    request_address_change,
)
from pipeline.desk.audit import DeskAction, record
from pipeline.desk.errors import DeskError
from pipeline.desk.lookup import StatementView, statement_view
from pipeline.desk.permissions import Permission
from pipeline.desk.reasons import MAX_REASON, MIN_REASON
from pipeline.ledger import LedgerError
from pipeline.reconcile.verification import CHANNELS, valid_address
from pipeline.web.access import Visitor, require
from pipeline.web.pages import sentence, words
from pipeline.web.state import desk_of

router = APIRouter()

STATEMENT_ID = re.compile(r"^[A-Za-z0-9._~-]{1,128}$")
VIA_WORDS = {
    "phone": "By phone (called back on the number on file)",
    "member_portal": "Through the member's online account",
    "secure_sms": "By secure text message",
    "mail": "By a signed letter",
    "in_person": "In person",
}
VERIFIED_VIA = tuple((code, VIA_WORDS.get(code, words(code).capitalize())) for code in CHANNELS)
"""How a member may confirm a new address (the verification channels address changes accept),
in words."""


def actions_offered(visitor: Visitor, view: StatementView) -> dict[str, bool]:
    """The action forms to show: what the user's roles allow and the statement's status can
    take (the actions' own rules: an action sent anyway is refused there)."""
    return {
        "address_change": visitor.may(Permission.REQUEST_ADDRESS_CHANGE) and view.pending_change is None
        and view.channel == "email" and view.status in ADDRESS_CHANGEABLE,
        "move_to_paper": visitor.may(Permission.MOVE_TO_PAPER) and view.status in MOVABLE_TO_PAPER,
        "lift_suppression": visitor.may(Permission.LIFT_SUPPRESSION) and view.suppressed,
        "cancel_resend": visitor.may(Permission.CANCEL_RESEND) and view.status in RESEND_WAITING,
    }


@router.get("/statements/{statement_id}")
def statement_page(request: Request, statement_id: str,
                   visitor: Annotated[Visitor, Depends(require(Permission.VIEW_STATEMENT))]) -> Response:
    desk = desk_of(request)
    view = statement_view(desk.ctx, statement_id) if STATEMENT_ID.match(statement_id) else None
    record(desk.ctx.ledger, actor=visitor.username, action=DeskAction.VIEW_STATEMENT, source=visitor.source,
           statement_id=statement_id if view else None, detail={"found": view is not None})
    if view is None:
        return desk.pages.render("error.html", visitor, status=404, title="No such statement",
                                 message="There is no statement with that id. Search again to find it.")
    return desk.pages.render("statement.html", visitor, title=f"Statement {view.period}", view=view,
                             offered=actions_offered(visitor, view), verified_via=VERIFIED_VIA,
                             via=dict(VERIFIED_VIA), min_reason=MIN_REASON, max_reason=MAX_REASON)


def _act(request: Request, visitor: Visitor, statement_id: str, reason: str,
         action: Callable[[str], str]) -> Response:
    """Run one action with its reason; its outcome (or the refusal) is shown on the page."""
    desk = desk_of(request)
    if not STATEMENT_ID.match(statement_id):
        desk.pages.tell(visitor, "There is no statement with that id.", problem=True)
        return RedirectResponse("/search", status_code=303)
    try:  # the action checks the reason (pipeline.desk.reasons) and the statement's status
        desk.pages.tell(visitor, action(reason))
    except (DeskError, LedgerError) as exc:
        desk.pages.tell(visitor, f"Nothing was done: {sentence(exc)}", problem=True)
    return RedirectResponse(f"/statements/{statement_id}", status_code=303)


@router.post("/statements/{statement_id}/address-change")
def address_change(
    request: Request, statement_id: str,
    visitor: Annotated[Visitor, Depends(require(Permission.REQUEST_ADDRESS_CHANGE))],
    new_address: Annotated[str, Form()] = "", confirm_address: Annotated[str, Form()] = "",
    verified_via: Annotated[str, Form()] = "", reason: Annotated[str, Form()] = "",
) -> Response:
    desk = desk_of(request)
    address = new_address.strip()
    if not valid_address(address) or address.lower() != confirm_address.strip().lower():
        desk.pages.tell(visitor, "Nothing was done: the new address must be an email address, typed "
                        "the same way twice.", problem=True)
        return RedirectResponse(f"/statements/{statement_id}", status_code=303)
    if verified_via not in CHANNELS:
        desk.pages.tell(visitor, "Nothing was done: say how the member confirmed the address.",
                        problem=True)
        return RedirectResponse(f"/statements/{statement_id}", status_code=303)

    def run(reason: str) -> str:
        request_address_change(desk.ctx, statement_id, address, actor=visitor.username, reason=reason,
                               verified_via=verified_via, source=visitor.source)
        return "Address change recorded. It waits for a supervisor's approval before anything is sent."

    return _act(request, visitor, statement_id, reason, run)


@router.post("/statements/{statement_id}/paper")
def paper(request: Request, statement_id: str,
          visitor: Annotated[Visitor, Depends(require(Permission.MOVE_TO_PAPER))],
          reason: Annotated[str, Form()] = "") -> Response:
    def run(reason: str) -> str:
        move_to_paper(desk_of(request).ctx, statement_id, actor=visitor.username, reason=reason,
                      source=visitor.source)
        return "Moved to paper: the statement goes out in the next print batch."

    return _act(request, visitor, statement_id, reason, run)


@router.post("/statements/{statement_id}/lift-suppression")
def lift(request: Request, statement_id: str,
         visitor: Annotated[Visitor, Depends(require(Permission.LIFT_SUPPRESSION))],
         reason: Annotated[str, Form()] = "") -> Response:
    def run(reason: str) -> str:
        lifted = lift_suppression(desk_of(request).ctx, statement_id, actor=visitor.username,
                                  reason=reason, source=visitor.source)
        return ("Suppression lifted: the address may be emailed again." if lifted else
                "There was no suppression to lift.")

    return _act(request, visitor, statement_id, reason, run)


@router.post("/statements/{statement_id}/cancel-resend")
def cancel(request: Request, statement_id: str,
           visitor: Annotated[Visitor, Depends(require(Permission.CANCEL_RESEND))],
           reason: Annotated[str, Form()] = "") -> Response:
    def run(reason: str) -> str:
        cancel_resend(desk_of(request).ctx, statement_id, actor=visitor.username, reason=reason,
                      source=visitor.source)
        return "Resend cancelled: nothing is emailed until an address is confirmed again."

    return _act(request, visitor, statement_id, reason, run)
