"""Search: find a member's statements by statement id, member id, claim number or email.

The search is a POST, so the term never appears in a URL, a browser's history or an access
log; the results page does not repeat it either. Each search asks for the contact it serves
(the call or ticket reference and its purpose): a member contact is opened for every member
found (for a patient's own statement, its subscriber), and the audit log records the search
with a keyed hash of the term, never the term.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from pipeline.desk.audit import DeskAction, record
from pipeline.desk.contacts import open_contact
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Permission
from pipeline.desk.search import SearchHit, SearchKey, search, term_digest
from pipeline.recipients import subscriber_id
from pipeline.web.access import Visitor, require
from pipeline.web.state import desk_of

router = APIRouter()
SEARCH = Depends(require(Permission.SEARCH))

KEYS = (
    (SearchKey.STATEMENT, "Statement ID"),
    (SearchKey.MEMBER, "Member ID"),
    (SearchKey.CLAIM, "Claim number"),
    (SearchKey.EMAIL, "Email address"),
)
FOUND_BY = {SearchKey.STATEMENT: "statement ID", SearchKey.MEMBER: "member ID",
            SearchKey.CLAIM: "claim number", SearchKey.EMAIL: "email address"}
PURPOSES = (
    "Statement not received",
    "Change of email address",
    "Paper copy requested",
    "Returned mail",
    "Question about delivery",
    "Complaint",
)
MAX_TERM = 320
MAX_REFERENCE = 64


def _page(request: Request, visitor: Visitor, *, status: int = 200, hits: list[SearchHit] | None = None,
          key: str = SearchKey.STATEMENT.value, reference: str = "", purpose: str = "",
          error: str | None = None) -> Response:
    return desk_of(request).pages.render(
        "search.html", visitor, status=status, title="Search", keys=KEYS, purposes=PURPOSES,
        hits=hits, key=key, found_by=FOUND_BY[SearchKey(key)] if key in set(SearchKey) else "",
        reference=reference, purpose=purpose, error=error)


@router.get("/search")
def search_form(request: Request, visitor: Annotated[Visitor, SEARCH]) -> Response:
    return _page(request, visitor)


@router.post("/search")
def search_submit(
    request: Request, visitor: Annotated[Visitor, SEARCH],
    key: Annotated[str, Form()] = "", term: Annotated[str, Form()] = "",
    reference: Annotated[str, Form()] = "", purpose: Annotated[str, Form()] = "",
) -> Response:
    reference, term = reference.strip()[:MAX_REFERENCE], term.strip()
    problem = _problem(key, term, reference, purpose)
    if problem:
        return _page(request, visitor, status=400, key=key if key in set(SearchKey) else "statement",
                     reference=reference, purpose=purpose, error=problem)
    ctx = desk_of(request).ctx
    search_key = SearchKey(key)
    error = None
    try:
        hits = search(ctx, search_key, term)
    except DeskError as exc:
        hits, error = [], str(exc)
    record(ctx.ledger, actor=visitor.username, action=DeskAction.SEARCH, source=visitor.source,
           detail={"key": search_key.value, "term_hash": term_digest(ctx, search_key, term),
                   "found": len(hits)})
    for member_id in dict.fromkeys(subscriber_id(hit.member_id) for hit in hits):
        open_contact(ctx.ledger, ctx.settings, actor=visitor.username, member_id=member_id,
                     reference=reference, purpose=purpose, source=visitor.source)
    return _page(request, visitor, hits=hits, key=key, reference=reference, purpose=purpose,
                 error=error)


def _problem(key: str, term: str, reference: str, purpose: str) -> str | None:
    if key not in set(SearchKey):
        return "Choose what to search by."
    if not term:
        return "Enter what to search for."
    if len(term) > MAX_TERM:
        return "That is too long for a statement id, member id, claim number or email address."
    if not reference:
        return "Enter the contact reference (the call or ticket number) this search is for."
    if purpose not in PURPOSES:
        return "Choose the purpose of the contact."
    return None
