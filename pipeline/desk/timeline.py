"""A statement's timeline in a support agent's words, with nothing of the member in it.

Every ledger event has a plain label here (a test holds `LABELS` to the whole vocabulary), and
an event's details are shown only through a whitelist: the keys below, each with its kind of
value. Whatever else an event's detail holds (a mail server's reply, which may quote the address;
a vendor's message; hashes) never reaches a page, the command line or a log. Free text that is
shown (a reason staff typed) is cut short and has anything shaped like an email address hidden.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.ledger.events import IGNORED_SUFFIX, Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes.classify import Category

E = Event

LABELS: dict[Event, str] = {
    E.COMPOSED: "Statement made from the month's claims",
    E.RENDERED: "PDF made",
    E.RERENDERED: "PDF made again",
    E.RENDER_FAILED: "PDF could not be made",
    E.RERENDER_FAILED: "PDF could not be made again (the earlier one is kept)",
    E.FAILED: "Failed",
    E.REISSUE: "Corrected version of an earlier statement",
    E.SUPERSEDED: "Replaced by a corrected version",
    E.WITHDRAWN: "Withdrawn: its claims are no longer in the claims file",
    E.WITHDRAWN_IN_DOUBT: "Withdrawn (an email may already have gone out)",
    E.WITHDRAWN_AFTER_RELEASE: "Its claims were withdrawn after it went out",
    E.REINSTATED: "Its claims are back",
    E.CHANNEL_CHANGED: "Delivery changed by the member file",
    E.ADDRESS_CHANGED: "Email address changed by the member file",
    E.CONSENT_WITHDRAWN_AFTER_EMAIL: "Email consent withdrawn after it was emailed",
    E.QUEUED: "Waiting to be emailed",
    E.SEND_ATTEMPT: "Email being sent",
    E.SEND_IN_DOUBT: "Email send not confirmed (the sender stopped)",
    E.SEND_HELD: "Email held back by the mail server",
    E.SENT: "Emailed (the mail relay accepted it)",
    E.RESEND_REQUESTED: "Resend requested by an operator",
    E.POOL_UNAVAILABLE: "Sending servers unavailable: moved to others",
    E.DELIVERED: "Delivered",
    E.DELIVERY_DELAYED: "Delivery delayed: the member's mail server is still trying",
    E.COMPLAINT_RECEIVED: "The member marked the email as spam",
    E.BOUNCED: "Bounced",
    E.RETRY_SCHEDULED: "Email retry scheduled",
    E.REQUEUED: "Waiting to be emailed again (retry)",
    E.VERIFICATION_REQUESTED: "The email address must be confirmed with the member",
    E.VERIFICATION_LISTED: "Put on the address verification work list",
    E.ADDRESS_VERIFIED: "Address confirmed with the member",
    E.VERIFICATION_FAILED: "The address could not be confirmed",
    E.VERIFICATION_TIMED_OUT: "The address was not confirmed in time",
    E.RESEND_QUEUED: "Waiting to be emailed to the confirmed address",
    E.SUPPRESSION_LIFTED: "Email block on the address lifted",
    E.PAPER_QUEUED: "Moved to paper",
    E.ADDRESS_REFUSED: "The mailing address cannot be printed",
    E.ADDRESS_CORRECTED: "Mailing address corrected",
    E.BATCHED: "Sent to the print vendor in a batch",
    E.BATCH_CANCELLED: "Print batch cancelled: waiting to be printed again",
    E.VENDOR_REJECTED: "The print vendor refused the letter",
    E.PRINTED: "Printed",
    E.PAGE_COUNT_MISMATCH: "The vendor printed a different number of pages",
    E.MAILED: "Mailed",
    E.MAIL_TRACKING: "Mail tracking update",
    E.RETURNED_TO_SENDER: "Letter returned to sender: the mailing address must be confirmed",
    E.FORWARDED: "Letter forwarded by the post office: a new address to confirm",
    E.PAPER_OVERDUE: "Letter not mailed in time: escalated",
    E.NOTICE_SENT: "Claim notice emailed",
    E.NOTICE_PAPER_QUEUED: "Claim notice moved to paper",
    E.NOTICE_BATCHED: "Claim notice sent to the print vendor",
    E.NOTICE_PRINTED: "Claim notice printed",
    E.NOTICE_MAILED: "Claim notice mailed",
    E.NOTICE_RETURNED: "Claim notice returned to sender",
    E.NOTICE_ADDRESS_REFUSED: "Claim notice: the mailing address cannot be printed",
    E.NOTICE_RENDER_FAILED: "Claim notice PDF could not be made",
    E.NOTICE_SUPERSEDED: "Claim notice no longer needed",
    E.ADDRESS_CHANGE_REQUESTED: "New email address entered by support: waiting for a supervisor",
    E.ADDRESS_CHANGE_APPROVED: "New email address approved by a supervisor",
    E.ADDRESS_CHANGE_REJECTED: "New email address rejected by a supervisor",
    E.ADDRESS_CHANGE_EXPIRED: "New email address closed unused: the statement can no longer take it",
    E.ADDRESS_CHANGE_NOT_APPLIED: ("New email address approved but not written to the run's contact file: "
                                   "nothing is emailed until an operator fixes it"),
    E.MOVED_TO_PAPER: "Moved to paper by support",
    E.RESEND_CANCELLED: "Resend stopped by support: the address must be confirmed again",
}
"""Plain words for every event of the ledger's vocabulary."""

S = Status
STATUS_LABELS: dict[Status, str] = {
    S.COMPOSED: "Statement made, PDF not yet made",
    S.RENDERED: "PDF made, not yet sent",
    S.QUEUED: "Waiting to be emailed",
    S.SENT: "Emailed, delivery not yet confirmed",
    S.DELIVERED: "Delivered by email",
    S.BOUNCED: "Bounced",
    S.RETRY_SCHEDULED: "Waiting for an email retry",
    S.VERIFICATION_PENDING: "Email address to be confirmed with the member",
    S.VERIFIED: "Address confirmed, waiting to be emailed again",
    S.VERIFICATION_FAILED: "Address could not be confirmed",
    S.PAPER_QUEUED: "Waiting to be printed",
    S.PAPER_EXCEPTION: "On paper: the mailing address needs correcting",
    S.BATCHED: "With the print vendor",
    S.PRINTED: "Printed, not yet mailed",
    S.MAILED: "Mailed",
    S.FAILED: "Failed",
    S.SUPERSEDED: "Replaced or withdrawn by a corrected claims file",
}

CATEGORY_WORDS: dict[Category, str] = {
    Category.USER_UNKNOWN: "mailbox does not exist",
    Category.DOMAIN_UNKNOWN: "email domain does not exist",
    Category.MAILBOX_DISABLED: "mailbox disabled or closed",
    Category.RECIPIENT_REFUSED: "the mailbox's own filter refuses our mail",
    Category.RELAY_DENIED: "the email domain's server does not take mail for it",
    Category.MAILBOX_FULL: "mailbox full",
    Category.MESSAGE_TOO_LARGE: "message too large for the mailbox",
    Category.CONTENT_REJECTED: "the receiver refused the content",
    Category.SPAM_OR_VIRUS: "refused as spam",
    Category.POLICY: "refused by the receiver's rules",
    Category.BLOCKED: "our sending server was blocked",
    Category.RATE_LIMITED: "our sending server was slowed down",
    Category.SECURITY: "a secure connection could not be made",
    Category.TRANSIENT: "a temporary problem",
    Category.EXPIRED: "the receiving server gave up after days",
    Category.AUTO_REPLY: "an automatic reply",
    Category.COMPLAINT: "marked as spam",
    Category.DELIVERED: "delivered",
    Category.UNKNOWN: "reason unclear",
}
"""A bounce's category (pipeline/outcomes/classify.py) as support says it."""

REASON_WORDS: dict[str, str] = {
    # why a statement is on paper (compose's reasons, routing, the sweeper, the desk)
    "channel": "the member gets paper", "no_consent": "no consent to email",
    "no_email": "no email address", "invalid_email": "the email address is not valid",
    "suppressed": "the email address is blocked after earlier failures",
    "content_rejected": "the receiver refused the content", "retries_exhausted": "email retries used up",
    "retry_past_cutoff": "too late for another email retry",
    "deadline_reached": "delivery not confirmed by the deadline",
    "not_sent_by_cutoff": "not emailed by the send cut-off",
    "verification_timed_out": "the address was not confirmed in time",
    "verification_failed": "the address could not be confirmed",
    "verified_after_cutoff": "the address was confirmed too late to email",
    "support_request": "requested by support", "not_rendered_by_deadline": "no PDF by the deadline",
    "returned_mail": "a letter came back", "print_file": "the print file refused it",
    "incomplete": "the address is incomplete",
    # how a delivery was known
    "feed": "the member's mail provider reported it", "no_bounce_within": "no bounce came back in time",
    "complaint": "the member reported it as spam",
}

_CODE = re.compile(r"^[A-Za-z0-9_.:-]{1,60}$")
_EMAIL = re.compile(r"[^\s<>(),;:\"']+@[^\s<>(),;:\"']+")
_TEXT_MAX = 160


def _code(value: Any) -> str | None:
    """A name the pipeline gave (a pool, a batch, a status): shown as it is, when it is one."""
    text = str(value)
    return text if _CODE.match(text) else None


def _words(value: Any) -> str | None:
    """A reason code: in words where the desk knows them, else the code itself."""
    text = _code(value)
    return None if text is None else REASON_WORDS.get(text) or text.replace("_", " ")


def _category(value: Any) -> str | None:
    try:
        return CATEGORY_WORDS[Category(str(value))]
    except ValueError:
        return None


def _text(value: Any) -> str | None:
    """Typed by staff (a reason, a name): shown, shortened, an address in it hidden."""
    text = " ".join(str(value).split())
    text = _EMAIL.sub("[address hidden]", text)
    return text[:_TEXT_MAX] + ("…" if len(text) > _TEXT_MAX else "") if text else None


def _number(value: Any) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:g}"
    return _code(value)


def _moment(value: Any) -> str | None:
    text = str(value)
    return text[:16].replace("T", " ") if re.match(r"^\d{4}-\d\d-\d\d", text) else None


def _masked(value: Any) -> str | None:
    from pipeline.recipients import mask_member_id

    text = str(value)
    return mask_member_id(text) if _CODE.match(text) else None


def _flag(value: Any) -> str | None:
    return "yes" if value is True else None


Shown = Callable[[Any], str | None]
SAFE_DETAILS: dict[str, tuple[str, Shown]] = {
    "actor": ("by", _text), "by": ("by", _text), "verified_by": ("confirmed by", _text),
    "channel": ("via", _code), "verified_via": ("via", _code),
    "pool": ("sending pool", _code), "previous_pool": ("previous pool", _code),
    "moved_to": ("moved to pool", _code), "category": ("bounce", _category),
    "attempt": ("attempt", _number), "not_before": ("not before", _moment),
    "requested_at": ("requested", _moment), "sent_at": ("sent", _moment), "date": ("date", _moment),
    "leaves": ("leaves", _moment), "batch": ("print batch", _code), "sheets": ("sheets", _number),
    "pages": ("pages", _number), "manifest": ("our pages", _number), "vendor": ("vendor's pages", _number),
    "mail_class": ("mail class", _code), "variant": ("PDF for", _code), "evidence": ("evidence", _words),
    "hours": ("hours", _number), "feed": ("reported through", _code), "event": ("tracking", _code),
    "code": ("reply code", _number), "status": ("status", _code), "provider": ("provider", _code),
    "error": ("error", _code), "mail_days": ("days allowed", _number), "wanted": ("wanted", _code),
    "was": ("was", _code), "after": ("after", _words), "cause": ("cause", _text),
    "replaces": ("replaces", _code), "notice_id": ("notice", _code), "claim_id": ("claim", _masked),
    "file": ("work list", _text), "change": ("change", _code), "lifted": ("lifted", _number),
    "new_address_to_verify": ("new address to confirm", _flag),
}
"""Detail keys a page may show, each with its label and how its value is shown (None: not)."""

REASON_IS_CODE: frozenset[Event] = frozenset({
    E.PAPER_QUEUED, E.FAILED, E.ADDRESS_REFUSED, E.CONSENT_WITHDRAWN_AFTER_EMAIL, E.CHANNEL_CHANGED,
    E.NOTICE_PAPER_QUEUED, E.NOTICE_ADDRESS_REFUSED})
"""Events whose `reason` is one of the pipeline's reason codes (elsewhere it may quote a server)."""
REASON_IS_STAFFS: frozenset[Event] = frozenset({
    E.ADDRESS_CHANGE_REQUESTED, E.ADDRESS_CHANGE_APPROVED, E.ADDRESS_CHANGE_REJECTED,
    E.MOVED_TO_PAPER, E.RESEND_CANCELLED, E.SUPPRESSION_LIFTED, E.RESEND_REQUESTED,
    E.BATCH_CANCELLED})
"""Events whose `reason` is what a member of staff typed."""
FROM_TO_SHOWN: frozenset[Event] = frozenset({E.CHANNEL_CHANGED})
"""Events whose `from` and `to` are channels (for an address change they are hashes)."""


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of a statement's timeline as support sees it: when, the event's name, its plain
    label, the status it moved the statement to (None: no move), and its shown details."""

    at: str
    event: str
    label: str
    status: str | None
    details: tuple[tuple[str, str], ...]


def status_label(status: str) -> str:
    try:
        return STATUS_LABELS[Status(status)]
    except ValueError:
        return status.replace("_", " ")


def label(name: str, detail: Mapping[str, Any]) -> str:
    """The plain label of an event (an ignored one says it changed nothing), with the words of
    its bounce category, paper reason or delivery evidence where that is the point of it."""
    base = name.removesuffix(IGNORED_SUFFIX)
    try:
        event = Event(base)
    except ValueError:
        return base.replace("_", " ")
    words = LABELS[event]
    if event in (E.BOUNCED, E.DELIVERY_DELAYED) and (category := _category(detail.get("category"))):
        words = f"{words}: {category}"
    elif event is E.PAPER_QUEUED and (why := _words(detail.get("reason", ""))):
        words = f"{words}: {why}"
    elif event is E.DELIVERED and (how := _words(detail.get("evidence", ""))):
        words = f"{words} ({how})"
    if name.endswith(IGNORED_SUFFIX):
        words = f"{words} — no change: the statement had already moved on"
    return words


def details(name: str, detail: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """The whitelisted details of an event, in a stable order, each value a short string."""
    base = name.removesuffix(IGNORED_SUFFIX)
    event = Event._value2member_map_.get(base)
    shown: list[tuple[str, str]] = []
    for key in sorted(detail):
        value = detail[key]
        if isinstance(value, (dict, list, tuple)) or value is None:
            continue
        if key == "reason":
            text = (_words(value) if event in REASON_IS_CODE
                    else _text(value) if event in REASON_IS_STAFFS else None)
            if text:
                shown.append(("reason", text))
        elif key in ("from", "to"):
            if event in FROM_TO_SHOWN and (text := _code(value)):
                shown.append((key, text))
        elif key in SAFE_DETAILS:
            title, show = SAFE_DETAILS[key]
            if (text := show(value)) is not None:
                shown.append((title, text))
    return tuple(shown)


def entries(rows: Iterable[Mapping[str, Any]]) -> tuple[TimelineEntry, ...]:
    """`Ledger.timeline` rows as timeline entries."""
    return tuple(TimelineEntry(at=str(row["at"]), event=str(row["event"]),
                               label=label(str(row["event"]), row["detail"]),
                               status=row["to_status"], details=details(str(row["event"]), row["detail"]))
                 for row in rows)
