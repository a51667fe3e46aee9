"""The member's PDF password: derived from data the member knows, chosen by a named policy.

The password is never stored, logged or put in an exception: callers derive it right before
encryption and drop it. Errors here name the policy, never the member's data.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from pipeline.model import Member


class UnknownPasswordPolicy(ValueError):
    """The configured policy name is not one we implement."""


class PasswordPolicyError(ValueError):
    """The member record lacks what the policy needs (message names the field only)."""


def _dob_mmddyyyy(member: Member) -> str:
    born = member.date_of_birth
    if not isinstance(born, date):
        raise PasswordPolicyError("date_of_birth is missing")
    return f"{born.month:02d}{born.day:02d}{born.year:04d}"


def _last4_member_zip(member: Member) -> str:
    member_id = member.member_id.strip()
    postal = member.postal_code.strip()
    if len(member_id) < 4:
        raise PasswordPolicyError("member_id is shorter than 4 characters")
    if len(postal) < 5:
        raise PasswordPolicyError("postal_code is shorter than 5 characters")
    return member_id[-4:] + postal[:5]


POLICIES: dict[str, Callable[[Member], str]] = {
    "dob_mmddyyyy": _dob_mmddyyyy,
    "last4_member_zip": _last4_member_zip,
}


def member_password(member: Member, policy: str) -> str:
    """The user password for this member's statement under `policy`."""
    try:
        derive = POLICIES[policy]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise UnknownPasswordPolicy(
            f"unknown password policy {policy!r} (known: {known})"
        ) from None
    return derive(member)
