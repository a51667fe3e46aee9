"""The closed vocabulary of timeline event names, shared by the code and the SQL.

A statement's timeline is what support reads and what a regulator may ask for, so its words
are a fixed set: the ledger refuses an event name that is not here, and a meta-test checks that
every event name written in `sql/` is one of these.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    # compose and render
    COMPOSED = "composed"
    RENDERED = "rendered"
    RERENDERED = "rerendered"
    RENDER_FAILED = "render_failed"
    RERENDER_FAILED = "rerender_failed"
    FAILED = "failed"
    # corrected extracts
    REISSUE = "reissue"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"
    WITHDRAWN_IN_DOUBT = "withdrawn_in_doubt"
    WITHDRAWN_AFTER_RELEASE = "withdrawn_after_release"
    REINSTATED = "reinstated"
    # a corrected member file: consent, address or suppression changed for a statement
    CHANNEL_CHANGED = "channel_changed"
    ADDRESS_CHANGED = "address_changed"
    CONSENT_WITHDRAWN_AFTER_EMAIL = "consent_withdrawn_after_email"
    # sending
    QUEUED = "queued"
    SEND_ATTEMPT = "send_attempt"
    SEND_IN_DOUBT = "send_in_doubt"
    SEND_HELD = "send_held"
    SENT = "sent"
    RESEND_REQUESTED = "resend_requested"
    POOL_UNAVAILABLE = "pool_unavailable"
    # outcomes and reconcile
    DELIVERED = "delivered"
    DELIVERY_DELAYED = "delivery_delayed"
    COMPLAINT_RECEIVED = "complaint_received"
    BOUNCED = "bounced"
    RETRY_SCHEDULED = "retry_scheduled"
    REQUEUED = "requeued"
    VERIFICATION_REQUESTED = "verification_requested"
    VERIFICATION_LISTED = "verification_listed"
    ADDRESS_VERIFIED = "address_verified"
    VERIFICATION_FAILED = "verification_failed"
    VERIFICATION_TIMED_OUT = "verification_timed_out"
    RESEND_QUEUED = "resend_queued"
    SUPPRESSION_LIFTED = "suppression_lifted"
    # paper
    PAPER_QUEUED = "paper_queued"
    ADDRESS_REFUSED = "address_refused"
    ADDRESS_CORRECTED = "address_corrected"
    BATCHED = "batched"
    BATCH_CANCELLED = "batch_cancelled"
    VENDOR_REJECTED = "vendor_rejected"
    PRINTED = "printed"
    PAGE_COUNT_MISMATCH = "page_count_mismatch"
    MAILED = "mailed"
    MAIL_TRACKING = "mail_tracking"
    RETURNED_TO_SENDER = "returned_to_sender"
    FORWARDED = "forwarded"
    PAPER_OVERDUE = "paper_overdue"
    # prompt notices (pipeline/ledger/notices.py): on the timeline of the notice's statement,
    # the detail naming the notice and its claim
    NOTICE_SENT = "notice_sent"
    NOTICE_PAPER_QUEUED = "notice_paper_queued"
    NOTICE_BATCHED = "notice_batched"
    NOTICE_PRINTED = "notice_printed"
    NOTICE_MAILED = "notice_mailed"
    NOTICE_RETURNED = "notice_returned_to_sender"
    NOTICE_ADDRESS_REFUSED = "notice_address_refused"
    NOTICE_RENDER_FAILED = "notice_render_failed"
    NOTICE_SUPERSEDED = "notice_superseded"
    # the support desk (pipeline/desk): what support staff did, each with who and why
    ADDRESS_CHANGE_REQUESTED = "address_change_requested"
    ADDRESS_CHANGE_APPROVED = "address_change_approved"
    ADDRESS_CHANGE_REJECTED = "address_change_rejected"
    ADDRESS_CHANGE_EXPIRED = "address_change_expired"
    ADDRESS_CHANGE_NOT_APPLIED = "address_change_not_applied"
    MOVED_TO_PAPER = "moved_to_paper"
    RESEND_CANCELLED = "resend_cancelled"


IGNORED_SUFFIX = "_ignored"
"""A transition the state machine refused is kept on the timeline as ``<event>_ignored``."""


class UnknownEvent(ValueError):
    """An event name outside the vocabulary: a programming error, caught before it is written."""


def checked(name: str) -> Event:
    """The `Event` for a name, or `UnknownEvent`."""
    try:
        return Event(name)
    except ValueError:
        raise UnknownEvent(f"{name!r} is not a ledger event name (pipeline/ledger/events.py)") from None


def is_event_name(name: str) -> bool:
    """True for an event name, or an ignored transition's ``<event>_ignored``."""
    base = name.removesuffix(IGNORED_SUFFIX)
    return base in Event._value2member_map_
