"""Member contacts: the reason an agent may look at a member's statements.

A contact (a call, a chat, a letter) is opened when an agent's search finds the member the
caller is asking about, with the contact's reference (the call id) and its purpose, and stays
open for `desk_contact_hours`. The access review flags every look at a member's statements that
no open contact of that agent covers: curiosity about a neighbour shows up as a look without a
caller. Contacts are kept per subscriber: a patient's own statement (`<member>~<patient>`) falls
under a contact with its member. Whether a contact covers a look is decided in one place,
`audit.within_contact` (beside the access review, since this module writes audit entries).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pipeline.clock import iso, moment
from pipeline.desk.audit import DeskAction, record, within_contact
from pipeline.desk.errors import DeskError
from pipeline.desk.reasons import checked_reason
from pipeline.ledger import Ledger
from pipeline.recipients import subscriber_id
from pipeline.settings import Settings

MAX_REFERENCE = 100


class ContactRefused(DeskError):
    """A contact cannot be opened as given; the message says what to fill in."""


def open_contact(ledger: Ledger, settings: Settings, *, actor: str, member_id: str, reference: str,
                 purpose: str, source: str | None) -> str:
    """Open a contact of `actor` with the member for `desk_contact_hours`; returns its id. Audited
    as `contact_opened` with the purpose as its reason, so the purpose is held to the rule of
    every reason (`reasons.checked_reason`: `ReasonRefused` before anything is written); the
    reference (a call or ticket id) stays in the contact."""
    reference = reference.strip()
    if not member_id.strip():
        raise ContactRefused("a contact is with a member: no member id was given")
    if not reference or len(reference) > MAX_REFERENCE:
        raise ContactRefused(f"give the contact's reference (the call or ticket id, at most "
                             f"{MAX_REFERENCE} characters)")
    purpose = checked_reason(purpose)
    contact_id = uuid.uuid4().hex
    opened = ledger.now()
    expires = iso(moment(opened) + timedelta(hours=settings.desk_contact_hours))
    ledger.execute("desk_contact_insert", contact_id=contact_id, actor=actor,
                   member_id=subscriber_id(member_id.strip()), reference=reference, purpose=purpose,
                   source=source, opened_at=opened, expires_at=expires)
    record(ledger, actor=actor, action=DeskAction.CONTACT_OPENED, source=source, reason=purpose,
           detail={"contact": contact_id, "hours": settings.desk_contact_hours})
    return contact_id


def has_open_contact(ledger: Ledger, *, actor: str, member_id: str, at: datetime) -> bool:
    """Did `actor` have a contact open with this member (or, for a patient's own statement, its
    subscriber) at `at`? The access review's rule (`audit.within_contact`), for one look."""
    windows = [(row["opened_at"], row["expires_at"]) for row in ledger.fetch(
        "desk_contact_windows", actor=actor, member_id=subscriber_id(member_id))]
    return within_contact(windows, iso(at))
