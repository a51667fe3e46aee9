"""What a typed reason may hold: why, in a few words; never the member's details.

A reason goes on the statement's timeline, into the audit log and onto every page that shows
either, so it is read by far more people than the member's record is. An email address, a date,
a phone number or a long number (member ID, SSN, claim number) typed into it would spread the
member's data there: such a reason is refused with words that say what to write instead. The
address of an address change goes in its own field, sealed until a supervisor decides it.
"""

from __future__ import annotations

import re

from pipeline.desk.errors import ActionRefused

__all__ = ["MAX_REASON", "MIN_REASON", "ReasonRefused", "checked_reason", "holds_member_details"]

MIN_REASON = 5
MAX_REASON = 300

_MEMBER_DETAILS = (
    re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+"),  # an email address
    re.compile(r"\b\d{1,4}\s*[/.-]\s*\d{1,2}\s*[/.-]\s*\d{1,4}\b"),  # a date: 04/12/1961, 1961-04-12
    re.compile(r"(?:\+?1[\s.-]?)?\(?\b\d{3}\)?[\s.-]?\d{3}[\s.-]?\d{4}\b"),  # a phone number
    re.compile(r"\d{7,}"),  # a member ID, SSN, claim or account number
)


class ReasonRefused(ActionRefused):
    """A reason that is missing, too short, or holds what looks like the member's details."""


def holds_member_details(text: str) -> bool:
    """Does the text look like it holds an email address, a date, a phone or an ID number?"""
    return any(pattern.search(text) for pattern in _MEMBER_DETAILS)


def checked_reason(reason: str | None) -> str:
    """The reason as it is kept (blanks folded, at most MAX_REASON characters), or ReasonRefused."""
    why = " ".join((reason or "").split())
    if len(why) < MIN_REASON:
        raise ReasonRefused(f"Give a reason (at least {MIN_REASON} characters): it goes on the "
                            "statement's timeline and in the audit log.")
    if holds_member_details(why):
        raise ReasonRefused("A reason must not hold the member's details (an email address, a date, "
                            "a phone number or an ID number): say why in words; a new address goes "
                            "in its own field.")
    return why[:MAX_REASON]
