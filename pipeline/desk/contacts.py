"""Member contacts: the reason an agent may look at a member's statements.

A contact (a call, a chat, a letter) is opened when an agent's search finds the member the
caller is asking about, with the contact's reference (the call id) and its purpose, and stays
open for `desk_contact_hours`. The access review flags every look at a member's statements that
no open contact of that agent covers: curiosity about a neighbour shows up as a look without a
caller. Contacts are kept per subscriber: a patient's own statement (`<member>~<patient>`) falls
under a contact with its member.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pipeline.clock import iso, moment
from pipeline.desk.audit import DeskAction, record
from pipeline.desk.errors import DeskError
from pipeline.ledger import Ledger
from pipeline.recipients import subscriber_id
from pipeline.settings import Settings

MAX_REFERENCE = 100
MAX_PURPOSE = 200


class ContactRefused(DeskError):
    """A contact cannot be opened as given; the message says what to fill in."""


def open_contact(ledger: Ledger, settings: Settings, *, actor: str, member_id: str, reference: str,
                 purpose: str, source: str | None) -> str:
    """Open a contact of `actor` with the member for `desk_contact_hours`; returns its id. Audited
    as `contact_opened` with the purpose as its reason (the reference stays in the contact)."""
    reference, purpose = reference.strip(), purpose.strip()
    if not member_id.strip():
        raise ContactRefused("a contact is with a member: no member id was given")
    if not reference or len(reference) > MAX_REFERENCE:
        raise ContactRefused(f"give the contact's reference (the call or ticket id, at most "
                             f"{MAX_REFERENCE} characters)")
    if not purpose or len(purpose) > MAX_PURPOSE:
        raise ContactRefused(f"give the contact's purpose (at most {MAX_PURPOSE} characters)")
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
    subscriber) at `at`?"""
    return ledger.fetch_one("desk_contact_open", actor=actor, member_id=subscriber_id(member_id),
                            at=iso(at)) is not None
