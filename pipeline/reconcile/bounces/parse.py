"""Entry points: one raw bounce message, or one SES notification, into a `Bounce`.

Report formats are tried most structured first: feedback reports, SES JSON, provider
complaints, RFC 3464 delivery status, auto-replies, then free-text failure notices.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from typing import Any

from pipeline.outcomes import RecipientOutcome, classify
from pipeline.reconcile.bounces.autoreplies import autoreply, looks_like_autoreply
from pipeline.reconcile.bounces.complaints import feedback_report, provider_complaint
from pipeline.reconcile.bounces.correlation import (
    STATEMENT_HEADER,
    VERP_RE,
    original_message_id,
    statement_header,
    verp_token,
)
from pipeline.reconcile.bounces.delivery_status import dsn_outcomes
from pipeline.reconcile.bounces.free_text import (
    FAILURE_TEXT_RE,
    looks_like_bounce,
    text_outcomes,
    unattributed,
)
from pipeline.reconcile.bounces.mime import inline_headers, leaves, notice_text, returned_headers
from pipeline.reconcile.bounces.reply_text import first_addr
from pipeline.reconcile.bounces.ses import provider_json, ses_outcomes, unwrap_sns

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Bounce:
    # "dsn", "nonstandard", "arf" (any complaint report), "autoreply". A message with no sign of
    # failure at all is "nonstandard" with one UNKNOWN outcome routed to ignore.
    kind: str
    verp_token: str | None
    original_message_id: str | None
    recipients: list[RecipientOutcome]
    # X-EOB-Statement of the returned copy: an unsigned hint, used only when there is no token
    # and the feed allows correlation by Message-ID (see `pipeline.stages.reconcile.correlate`)
    statement_header: str | None = None


class UnparseableBounce(ValueError):
    """The input is not a mail message we can read; the message says why, never what it held."""


def parse_bounce(raw: bytes, *, bounce_domain: str | None = None) -> Bounce:
    """Parse raw bytes of one bounce / feedback / auto-reply message into a `Bounce`."""
    msg = _load(raw)
    try:
        report = _forwarded_report(msg)
        body = msg if report is None else report
        returned = returned_headers(body)
        notice, tail = notice_text(body)
        if returned is None and tail:
            returned = inline_headers(tail)
        kind, outcomes, extra_senders = _outcomes(body, notice, returned)
        if report is not None:  # the forwarded report's own envelope names our return path too
            extra_senders = [*extra_senders, *(str(v) for v in report.get_all("To") or [])]
        bounce = Bounce(
            kind=kind,
            verp_token=verp_token(msg, returned, bounce_domain, extra_senders),
            original_message_id=original_message_id(returned, tail),
            recipients=outcomes,
            statement_header=statement_header(returned),
        )
    except (ValueError, LookupError, TypeError, AttributeError, UnicodeError) as exc:
        # Malformed MIME in the wild: report the kind of failure, never the content
        # ("from None" keeps the original exception, which may quote the message, out of logs).
        raise UnparseableBounce(f"malformed message structure ({type(exc).__name__})") from None
    log.debug("parsed bounce kind=%s recipients=%d verp=%s", kind, len(outcomes), bool(bounce.verp_token))
    return bounce


def _load(raw: bytes) -> Message:
    """Parse bytes into a message, rejecting what is clearly not one."""
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise UnparseableBounce(f"expected bytes, got {type(raw).__name__}")
    data = bytes(raw)
    if not data.strip():
        raise UnparseableBounce("empty message")
    msg = message_from_bytes(data, policy=compat32)
    known = {"from", "to", "subject", "date", "message-id", "content-type", "received", "return-path"}
    if not known & {k.lower() for k in msg}:
        raise UnparseableBounce("no RFC 5322 header fields found: not an email message")
    if msg.get("Content-Type") is None:
        return _with_lost_boundary(data) or msg
    return msg


LOST_PART_RE = re.compile(rb"^--([!-~]{1,70})\r?\nContent-Type:", re.I | re.M)
HEADER_END_RE = re.compile(rb"\r?\n\r?\n")


def _with_lost_boundary(data: bytes) -> Message | None:
    """A MIME bounce whose Content-Type header was lost on the way ("This message is in MIME
    format" and parts separated by a boundary): parsed again as the multipart it is."""
    end = HEADER_END_RE.search(data)
    part = LOST_PART_RE.search(data, end.end()) if end else None
    if end is None or part is None or data.count(b"--" + part.group(1)) < 2:
        return None
    if re.search(rb"boundary=\"?" + re.escape(part.group(1)), data, re.I):
        return None  # declared in a quoted copy of a multipart message: not ours to split
    boundary = part.group(1).decode("ascii")
    header = f'\nContent-Type: multipart/mixed; boundary="{boundary}"'.encode("ascii")
    return message_from_bytes(data[: end.start()] + header + data[end.start() :], policy=compat32)


def _forwarded_report(msg: Message) -> Message | None:
    """A delivery report forwarded as an attachment (a wrapper with no report of its own)."""
    if msg.get_content_type() == "multipart/report":
        return None
    attached = None
    for part in leaves(msg):
        ctype = part.get_content_type()
        if ctype in ("message/delivery-status", "message/global-delivery-status"):
            return None
        inner = part.get_payload()
        if (attached is None and ctype == "message/rfc822" and isinstance(inner, list) and inner
                and isinstance(inner[0], Message) and inner[0].get_content_type() == "multipart/report"):
            attached = inner[0]
    return attached


def _outcomes(
    msg: Message, notice: str, returned: Message | None
) -> tuple[str, list[RecipientOutcome], list[str]]:
    """Try each report format, most structured first."""
    report = feedback_report(msg, returned)
    if report is not None:
        return "arf", report, []
    provider = provider_json(notice)
    if provider is not None:
        return provider
    complaint = provider_complaint(msg, returned)
    if complaint is not None:
        return "arf", complaint, []
    dsn = dsn_outcomes(msg, notice, returned)
    if dsn:
        return "dsn", dsn, []
    is_bounce = looks_like_bounce(msg, notice)
    if not is_bounce and looks_like_autoreply(msg):
        return "autoreply", [autoreply(msg, notice)], []
    if is_bounce or FAILURE_TEXT_RE.search(notice):
        # A failure notice never falls through to "ignore", even when nobody is named.
        return "nonstandard", text_outcomes(msg, notice, returned) or [unattributed(msg, notice)], []
    # Nothing says delivery failed: keep one row so the caller can log it, routed to ignore.
    sender = first_addr(str(msg.get("From") or ""))
    return "nonstandard", [RecipientOutcome(sender, "", None, None, "", classify(None, None, ""))], []


def parse_ses_notification(data: bytes | str) -> Bounce:
    """One Amazon SES notification (raw, inside an SNS envelope, or an SES event) → `Bounce`.

    SES reports our envelope sender (the VERP return path) as ``mail.source`` and our
    Message-ID in ``mail.commonHeaders``; nothing else of the original message is kept.
    """
    try:
        obj = unwrap_sns(json.loads(data))
        found = ses_outcomes(obj)
    except (ValueError, TypeError, AttributeError) as exc:
        raise UnparseableBounce(f"not an SES notification ({type(exc).__name__})") from None
    if found is None or not isinstance(obj, dict):
        raise UnparseableBounce("JSON is not an SES Bounce, Complaint or Delivery notification")
    kind, outcomes, senders = found
    mail_value = obj.get("mail")
    mail: dict[str, Any] = mail_value if isinstance(mail_value, dict) else {}
    common_value = mail.get("commonHeaders")
    common: dict[str, Any] = common_value if isinstance(common_value, dict) else {}
    token = None
    for sender in senders:
        m = VERP_RE.search(sender)
        if m:
            token = m.group(1)
            break
    message_id = re.search(r"<[^<>\s]+>", str(common.get("messageId") or ""))
    header = None
    for item in mail.get("headers") or []:
        if isinstance(item, dict) and str(item.get("name", "")).lower() == STATEMENT_HEADER.lower():
            header = str(item.get("value", "")).strip()[:128] or None
    return Bounce(kind=kind, verp_token=token,
                  original_message_id=message_id.group(0) if message_id else None,
                  recipients=outcomes, statement_header=header)
