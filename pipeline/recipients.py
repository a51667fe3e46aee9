"""Who a statement is for: the subscriber, or a patient who gets their own.

A patient's claims leave the subscriber's statement for one of their own when the patient asked
for confidential communications (HIPAA 164.522(b); state laws let any adult or emancipated
dependent ask without the subscriber) or, with no request, when a dependent's line is a
sensitive service and `sensitive_services_policy` is `separate`.

Such a statement is keyed by a recipient id, `<member_id>~<patient key>`: `~` cannot occur in a
member id (extract_schema.json), so the ledger, the statement id and the support desk tell the
recipient apart from the subscriber and name both, and nothing in the id says which service
moved the claims.
"""

from __future__ import annotations

__all__ = ["SEPARATOR", "describe", "mask_member_id", "patient_key", "recipient_id", "subscriber_id"]

SEPARATOR = "~"


def recipient_id(member_id: str, patient: str) -> str:
    return f"{member_id}{SEPARATOR}{patient}"


def subscriber_id(member_or_recipient: str) -> str:
    """The member id of the subscriber's card: the password policy and the masked id use it."""
    return member_or_recipient.split(SEPARATOR, 1)[0]


def patient_key(member_or_recipient: str) -> str | None:
    """The patient a recipient id names, or None for a subscriber's statement."""
    _, separator, patient = member_or_recipient.partition(SEPARATOR)
    return patient if separator else None


def mask_member_id(member_id: str) -> str:
    """Only the last 4 characters are shown: enough for the member to recognise, not to misuse
    (the statement's header and the support desk show ids this way)."""
    return "\u2022" * 5 + member_id[-4:]


def describe(member_or_recipient: str) -> str:
    """For support: whose statement this is, without the reason it exists."""
    patient = patient_key(member_or_recipient)
    if patient is None:
        return "subscriber"
    return f"patient {patient} of member {subscriber_id(member_or_recipient)} (their own statement)"
