"""RFC 3464 delivery status notifications, as a receiving MTA writes them.

The demo's sink uses this to return real bounces to our VERP address, so reconcile is
exercised against the same format Postfix or Exchange would send. Only the original message's
headers are returned (text/rfc822-headers), never its body: a bounce must not carry PHI back.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from email.utils import format_datetime, make_msgid

ACTIONS: frozenset[str] = frozenset({"failed", "delayed", "delivered", "relayed", "expanded"})
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}")
_HEADER_END = re.compile(rb"\r?\n\r?\n")
_CRLF = "\r\n"


def _clean(value: str, limit: int = 400) -> str:
    """One header line: no CR/LF (header injection), bounded length."""
    return " ".join(value.split())[:limit]


def _headers_only(original: bytes) -> bytes:
    """Cut at the first blank line, whatever the caller passed: the body never goes back."""
    match = _HEADER_END.search(original)
    head = original[: match.start()] if match else original
    lines = head.replace(b"\r\n", b"\n").split(b"\n")
    return b"\r\n".join(lines).rstrip(b"\r\n") + b"\r\n"


def _human_text(reporting_mta: str, recipient: str, action: str, diag: str) -> str:
    if action == "delayed":
        lead = "Delivery to the following recipient has been delayed."
    else:
        lead = "Your message could not be delivered to the following recipient."
    return _CRLF.join(
        [
            f"This is the mail system at host {reporting_mta}.",
            "",
            lead,
            "",
            f"<{recipient}>: {diag}",
            "",
            "The headers of the original message are attached; the message body is not.",
            "",
        ]
    )


def build_dsn(
    *,
    reporting_mta: str,
    envelope_to: str,
    original_message_id: str,
    original_headers: bytes,
    recipient: str,
    action: str,
    status: str,
    diagnostic: str,
    arrival_date: datetime,
) -> bytes:
    """A complete multipart/report; report-type=delivery-status message, CRLF line endings."""
    if action not in ACTIONS:
        raise ValueError(f"unknown DSN action {action!r}")
    if not _STATUS.fullmatch(status):
        raise ValueError(f"malformed DSN status {status!r}")
    mta, to, rcpt, diag = (_clean(v) for v in (reporting_mta, envelope_to, recipient, diagnostic))
    orig_id = _clean(original_message_id, 200)
    boundary = f"dsn-{secrets.token_hex(12)}"
    subject = (
        "Delayed Mail (still being retried)"
        if action == "delayed"
        else "Undelivered Mail Returned to Sender"
    )
    head = [
        f"From: Mail Delivery System <MAILER-DAEMON@{mta}>",
        f"To: <{to}>",
        f"Subject: {subject}",
        f"Date: {format_datetime(datetime.now(UTC))}",
        f"Message-ID: {make_msgid(domain=mta)}",
        *([f"In-Reply-To: {orig_id}", f"References: {orig_id}"] if orig_id else []),
        "Auto-Submitted: auto-replied",
        "MIME-Version: 1.0",
        "Content-Type: multipart/report; report-type=delivery-status;",
        f' boundary="{boundary}"',
        "",
        "This is a MIME-encapsulated message.",
        "",
    ]
    human = [
        f"--{boundary}",
        "Content-Description: Notification",
        "Content-Type: text/plain; charset=us-ascii",
        "",
        _human_text(mta, rcpt, action, diag),
    ]
    report = [
        f"--{boundary}",
        "Content-Description: Delivery report",
        "Content-Type: message/delivery-status",
        "",
        f"Reporting-MTA: dns; {mta}",
        f"Arrival-Date: {format_datetime(_aware(arrival_date))}",
        "",
        f"Final-Recipient: rfc822; {rcpt}",
        f"Original-Recipient: rfc822; {rcpt}",
        f"Action: {action}",
        f"Status: {status}",
        f"Diagnostic-Code: smtp; {diag}",
        "",
    ]
    headers_part = [
        f"--{boundary}",
        "Content-Description: Undelivered Message Headers",
        "Content-Type: text/rfc822-headers",
        "",
        "",
    ]
    text = _CRLF.join(head + human + report + headers_part)
    tail = f"{_CRLF}--{boundary}--{_CRLF}"
    return text.encode("ascii", "replace") + _headers_only(original_headers) + tail.encode()


def _aware(moment: datetime) -> datetime:
    """RFC 5322 dates need a zone; a naive time is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
