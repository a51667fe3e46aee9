"""Parse one raw bounce message into per-recipient delivery outcomes.

Real bounce mailboxes receive much more than RFC 3464 DSNs: RFC 5965 complaint reports (and
providers' equivalents), RFC 3834 auto-replies, and free-text notices from qmail, Exim, old
Exchange, Lotus Notes, Postfix without DSN, Japanese carriers and so on. This module turns any
of them into `Bounce`; `pipeline.outcomes.classify` decides what each recipient's failure means.

PHI: a bounce usually returns the original statement email. `Bounce` keeps status fields only
(recipient, action, codes, the remote server's reply text). The returned body, attachments and
the original Subject are never kept, logged, or quoted in exceptions; "Subject:" lines and the
original subject text are scrubbed from the reply text we keep.
"""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32
from typing import Any

from pipeline.outcomes.classify import Category, Classification, Queue, classify, for_category

log = logging.getLogger(__name__)

MAX_DIAGNOSTIC = 300
MAX_CLASSIFY_TEXT = 2000
MAX_BLOCK_LINES = 15
STATEMENT_HEADER = "X-EOB-Statement"


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    recipient: str  # the failed recipient address (lower-cased)
    action: str  # "failed", "delayed", "delivered", "relayed", "expanded" or "" when unknown
    status: str | None  # enhanced status "5.1.1" when known
    reply_code: int | None  # 550 when known
    diagnostic: str  # remote server's reply text, whitespace-collapsed, at most 300 chars
    classification: Classification


@dataclass(frozen=True, slots=True)
class Bounce:
    # "dsn", "nonstandard", "arf" (any complaint report), "autoreply". A message with no sign of
    # failure at all is "nonstandard" with one UNKNOWN outcome routed to ignore.
    kind: str
    verp_token: str | None
    original_message_id: str | None
    recipients: list[RecipientOutcome]
    # X-EOB-Statement of the returned copy: an unsigned hint, used only when no token verifies
    statement_header: str | None = None


class UnparseableBounce(ValueError):
    """The input is not a mail message we can read; the message says why, never what it held."""


# ----------------------------------------------------------------------------- patterns

ADDR_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9-]{2,63}"
)
VERP_RE = re.compile(r"(?<![A-Za-z0-9._+-])bounces\+([A-Za-z0-9._=-]+)@([A-Za-z0-9.-]+)", re.I)
MSGID_RE = re.compile(r"^\s*message-id:\s*(<[^<>\s]+>)", re.I | re.M)
STATUS_IN_TEXT_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
FAILURE_STATUS_RE = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
FAILURE_REPLY_RE = re.compile(r"(?<![\w.\[#/=-])([45][0-5]\d)(?=[\s:,;-]|$)")
FIELD_RE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)\s*:\s*(.*)$")
DIAG_TYPE_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9-]*\s*;\s*")

# Where the copy of the original message starts inside a free-text notice.
CUT_RE = re.compile(
    r"^[\s|=*>-]*(?:below this line is a copy|below is a copy|this is a copy of the message"
    r"|(?:the )?(?:header of the )?original (?:message|mail)(?! was)(?! is)"
    r"|returned message|unsent message|enclosed is a copy|message text follows"
    r"|message headers follow|included is a copy)"
    r"|^(?:received|return-path|dkim-signature|x-received|arc-seal|authentication-results"
    r"|x-google-smtp-source|x-gm-message-state|mime-version|content-type|message-id):\s?\S",
    re.I | re.M,
)
# Lines that quote the original message's headers: never a recipient line, never kept.
SUMMARY_LINE_RE = re.compile(
    r"^\s*(?:to|cc|bcc|from|sender|reply-to|return-path|subject|date|sent|message-id"
    r"|in-reply-to|references)\s*:",
    re.I,
)
SUBJECT_LINE_RE = re.compile(r"\bsubject\b[^:\n]{0,30}:", re.I)
SENDER_CONTEXT_RE = re.compile(
    r"(?:\bfrom|sender|sent by|envelope-from|contact|assistance|send mail to|yourself)\W{0,3}$",
    re.I,
)
SERVICE_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "abuse", "hostmaster"}
)
TRANSCRIPT_LINE_RE = re.compile(r"^\s*[45]\d\d[ -]")

BOUNCE_FROM_RE = re.compile(
    r"mailer[-_]?daemon|post[-_]?master|mail delivery|delivery subsystem|\bndr\b|mail administrator", re.I
)
BOUNCE_SUBJECT_RE = re.compile(
    r"undeliver|undelivered|delivery (?:status|failure|failed|notification|has failed|problem)"
    r"|returned mail|returning message|failure notice|mail delivery|non-?delivery"
    r"|could not be delivered|mail system error|failed delivery|error sending|not delivered"
    r"|returned to sender|delivery failure",
    re.I,
)
FAILURE_TEXT_RE = re.compile(
    r"could not be delivered|couldn't be delivered|unable to deliver|undeliverable"
    r"|delivery (?:has )?failed|failed permanently|permanent (?:fatal )?error|not (?:be )?delivered"
    r"|did not reach|delivery to the following|returned to sender|rejected by|error delivering"
    r"|following address(?:es)? (?:had|failed)|delivery failure|has been delayed"
    r"|not yet been delivered|\b[45]\.\d{1,3}\.\d{1,3}\b|^\s*[45]\d\d[\s-]|requested action not taken",
    re.I | re.M,
)
DELAY_TEXT_RE = re.compile(
    r"has been delayed|not yet been delivered|warning message only|will be retried"
    r"|delivery attempts will continue|\(delay\)|delayed \d+ (?:hours|minutes|days)",
    re.I,
)
AUTOREPLY_SUBJECT_RE = re.compile(
    r"^\s*(?:auto(?:matic)?[ _-]?(?:reply|response|respons|antwort|answer)|auto:|autoreply"
    r"|out of (?:the )?office|away (?:from|until)|on vacation|vacation|abwesenheit|absence"
    r"|r[ée]ponse automatique|自動応答|不在)",
    re.I,
)
COMPLAINT_SUBJECT_RE = re.compile(r"complaint about message from|abuse report", re.I)

OWN_SIDE_HEADERS = (
    "From",
    "To",
    "Cc",
    "Reply-To",
    "Sender",
    "Return-Path",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
)
LOCAL_DIAG_TYPES = frozenset({"x-unix", "x-local", "x-pipe"})
NON_FAILURE_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})


# ----------------------------------------------------------------------------- entry point


def parse_bounce(raw: bytes, *, bounce_domain: str | None = None) -> Bounce:
    """Parse raw bytes of one bounce / feedback / auto-reply message into a `Bounce`."""
    msg = _load(raw)
    try:
        returned = _returned_headers(msg)
        notice, tail = _notice_text(msg)
        if returned is None and tail:
            returned = _inline_headers(tail)
        kind, outcomes, extra_senders = _outcomes(msg, notice, returned)
        bounce = Bounce(
            kind=kind,
            verp_token=_verp_token(msg, returned, bounce_domain, extra_senders),
            original_message_id=_original_message_id(returned, tail),
            recipients=outcomes,
            statement_header=_statement_header(returned),
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
    return msg


def _outcomes(
    msg: Message, notice: str, returned: Message | None
) -> tuple[str, list[RecipientOutcome], list[str]]:
    """Try each report format, most structured first."""
    report = _feedback_report(msg, returned)
    if report is not None:
        return "arf", report, []
    provider = _provider_json(notice)
    if provider is not None:
        return provider
    if returned is not None and (
        returned.get("X-HmXmrOriginalRecipient") or COMPLAINT_SUBJECT_RE.search(_subject(msg))
    ):
        rcpt = _first_addr(returned.get("X-HmXmrOriginalRecipient") or returned.get("To") or "")
        return "arf", [_fixed(rcpt, "", "feedback-type=abuse", Category.COMPLAINT)], []
    dsn = _dsn_outcomes(msg, notice, returned)
    if dsn:
        return "dsn", dsn, []
    is_bounce = _looks_like_bounce(msg, notice)
    if not is_bounce and _looks_like_autoreply(msg):
        return "autoreply", [_autoreply(msg, notice)], []
    if is_bounce or FAILURE_TEXT_RE.search(notice):
        # A failure notice never falls through to "ignore", even when nobody is named.
        return "nonstandard", _text_outcomes(msg, notice, returned) or [_unattributed(msg, notice)], []
    # Nothing says delivery failed: keep one row so the caller can log it, routed to ignore.
    sender = _first_addr(str(msg.get("From") or ""))
    return "nonstandard", [RecipientOutcome(sender, "", None, None, "", classify(None, None, ""))], []


# ----------------------------------------------------------------------------- MIME helpers


def _leaves(msg: Message) -> Iterator[Message]:
    """Parts in order, not descending into attached messages (message/*)."""
    payload = msg.get_payload()
    if msg.get_content_maintype() == "multipart" and isinstance(payload, list):
        for part in payload:
            if isinstance(part, Message):
                yield from _leaves(part)
    else:
        yield msg


def _decode(part: Message) -> str:
    """A text part's content as str, whatever charset/encoding it claims."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        inner = part.get_payload()
        return inner if isinstance(inner, str) else ""
    charset = part.get_content_charset() or "utf-8"
    for cs in (charset, "utf-8", "latin-1"):
        try:
            return payload.decode(cs)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("latin-1", "replace")


def _html_to_text(text: str) -> str:
    text = re.sub(r"(?is)<(script|style|head)\b.*?</\1>", " ", text)
    text = re.sub(r"(?i)<br\s*/?>|</(p|div|tr|li|h\d)>", "\n", text)
    return html.unescape(re.sub(r"<[^>]+>", " ", text))


def _is_text(part: Message) -> bool:
    """A text part, or a multipart whose boundary never appears (then it is just text)."""
    maintype = part.get_content_maintype()
    return maintype == "text" or (maintype == "multipart" and isinstance(part.get_payload(), str))


def _part_text(part: Message) -> str:
    """Decoded text with every line ending (CRLF, CR, LF) turned into LF."""
    text = _decode(part).replace("\r\n", "\n").replace("\r", "\n")
    return _html_to_text(text) if part.get_content_subtype() == "html" else text


def _decoded(value: str) -> str:
    """An RFC 2047 encoded header value as text (best effort)."""
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, TypeError):
        return value


def _subject(msg: Message) -> str:
    """Decoded Subject of the bounce itself, used only for matching (never kept)."""
    return _decoded(str(msg.get("Subject") or ""))


def _notice_text(msg: Message) -> tuple[str, str]:
    """(human-readable notice, copy of the original that followed it inline)."""
    payload = msg.get_payload()
    first = payload[0] if isinstance(payload, list) and payload else None
    if msg.get_content_type() == "multipart/report" and isinstance(first, Message):
        parts = [p for p in _leaves(first) if _is_text(p)]
    else:
        parts = []
        for p in _leaves(msg):
            if p.get_content_maintype() == "message" or p.get_content_type() == "text/rfc822-headers":
                break
            if _is_text(p):
                parts.append(p)
    plain = [p for p in parts if p.get_content_subtype() != "html"] or parts
    text = "\n".join(_part_text(p) for p in plain)
    cut = CUT_RE.search(text)
    if cut is None:
        return text, ""
    return text[: cut.start()], text[cut.start() :]


def _returned_headers(msg: Message) -> Message | None:
    """Headers of the original message when the bounce attached them."""
    for part in _leaves(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "message/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
            if isinstance(inner, str):
                return HeaderParser(policy=compat32).parsestr(inner.lstrip())
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            return HeaderParser(policy=compat32).parsestr(_decode(part).lstrip())
    return None


def _inline_headers(tail: str) -> Message | None:
    """Headers of an original message quoted inline after the notice."""
    m = re.search(r"^[A-Za-z][A-Za-z0-9-]*:\s", tail, re.M)
    if m is None:
        return None
    headers = HeaderParser(policy=compat32).parsestr(tail[m.start() :])
    return headers if headers.keys() else None


# ----------------------------------------------------------------------------- small helpers


def _addrs(value: str) -> list[str]:
    return [a.strip(".'").lower() for a in ADDR_RE.findall(value or "")]


def _first_addr(value: str) -> str:
    found = _addrs(value)
    return found[0] if found else ""


def _collapse(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    return " ".join(text.split())[:limit]


def _scrub(text: str, returned: Message | None) -> str:
    """Drop quoted Subject lines and the original subject: reply text only, no PHI."""
    lines = [ln for ln in text.splitlines() if not SUBJECT_LINE_RE.search(ln)]
    text = "\n".join(lines)
    text = " ".join(text.split())
    raw_subject = str(returned.get("Subject") or "") if returned is not None else ""
    for subject in {raw_subject, _decoded(raw_subject)}:
        subject = " ".join(subject.split())
        if len(subject) >= 5:
            text = text.replace(subject, "[subject removed]")
    # The reply text is kept; the addresses in it are not (the ledger keeps ids and hashes).
    return ADDR_RE.sub("<address>", text)


def _codes(text: str) -> tuple[int | None, str | None]:
    """First failure reply code (4xx/5xx) and enhanced status (4.x.x/5.x.x) in reply text.

    Success codes are skipped: a transcript ("Out: 250 2.1.5 Ok") is not the failure.
    """
    status = FAILURE_STATUS_RE.search(text)
    reply = FAILURE_REPLY_RE.search(text)
    return (
        int(reply.group(1)) if reply else None,
        ".".join(status.groups()) if status else None,
    )


def _fixed(recipient: str, action: str, diagnostic: str, category: Category) -> RecipientOutcome:
    """An outcome decided by the report's structure (complaint, auto-reply, non-bounce)."""
    return RecipientOutcome(recipient, action, None, None, diagnostic, for_category(category))


def _decide(action: str, reply_code: int | None, status: str | None, text: str) -> Classification:
    """classify(), with the DSN action taken into account (a delay is never final)."""
    if action in NON_FAILURE_ACTIONS:
        return for_category(Category.DELIVERED)
    result = classify(reply_code, status, text[:MAX_CLASSIFY_TEXT])
    if action == "delayed" and result.queue is not Queue.RETRY:
        return for_category(Category.EXPIRED, permanent=False)
    return result


# ----------------------------------------------------------------------------- VERP / Message-ID


def _verp_token(
    msg: Message, returned: Message | None, bounce_domain: str | None, extra: list[str]
) -> str | None:
    """Token of our VERP return path, from the bounce envelope first, then the returned copy."""
    values: list[str] = []
    for name in ("To", "Delivered-To", "X-Original-To", "Envelope-To"):
        values.extend(str(v) for v in msg.get_all(name) or [])
    if returned is not None:
        for name in ("Return-Path", "From", "Sender"):
            values.extend(str(v) for v in returned.get_all(name) or [])
    values.extend(extra)
    domain = bounce_domain.lower().rstrip(".") if bounce_domain else None
    for value in values:
        for token, host in VERP_RE.findall(value):
            if domain is None or host.lower().rstrip(".") == domain:
                return token
    return None


def _statement_header(returned: Message | None) -> str | None:
    value = str(returned.get(STATEMENT_HEADER) or "").strip() if returned is not None else ""
    return value[:128] if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) else None


def _original_message_id(returned: Message | None, tail: str) -> str | None:
    if returned is not None and returned.get("Message-ID"):
        m = re.search(r"<[^<>\s]+>", str(returned.get("Message-ID")))
        if m:
            return m.group(0)
    m = MSGID_RE.search(tail)
    if m:
        return m.group(1)
    bare = str(returned.get("Message-ID") or "").strip() if returned is not None else ""
    return bare if "@" in bare and " " not in bare else None


# ----------------------------------------------------------------------------- ARF / providers


def _fields(part: Message) -> list[list[tuple[str, str]]]:
    """Field groups of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list):
        blocks = [p for p in payload if isinstance(p, Message)]
        groups = [[(k.lower(), " ".join(str(v).split())) for k, v in p.items()] for p in blocks]
        body = "".join(str(p.get_payload()) for p in blocks if isinstance(p.get_payload(), str))
        if body.strip():
            groups.extend(_fields_from_text(body))
        return groups
    return _fields_from_text(_decode(part))


def _fields_from_text(text: str) -> list[list[tuple[str, str]]]:
    """'Name: value' groups separated by blank lines, with folded lines unfolded."""
    groups: list[list[tuple[str, str]]] = [[]]
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if groups[-1]:
                groups.append([])
            continue
        if line[0] in " \t" and groups[-1]:
            name, value = groups[-1][-1]
            groups[-1][-1] = (name, f"{value} {line.strip()}")
            continue
        m = FIELD_RE.match(line.strip())
        if m:
            groups[-1].append((m.group(1).lower(), m.group(2).strip()))
    return [g for g in groups if g]


def _feedback_report(msg: Message, returned: Message | None) -> list[RecipientOutcome] | None:
    """RFC 5965 complaint: one outcome for the complaining recipient, routed to ignore."""
    part = next((p for p in _leaves(msg) if p.get_content_type() == "message/feedback-report"), None)
    if part is None and msg.get_param("report-type", header="content-type") != "feedback-report":
        return None
    fields = [(k, v) for group in _fields(part) for k, v in group] if part is not None else []
    rcpts = [a for k, v in fields if k == "original-rcpt-to" for a in _addrs(v)]
    if not rcpts and returned is not None:
        rcpts = _addrs(str(returned.get("To") or ""))[:1]
    feedback = next((v for k, v in fields if k == "feedback-type"), "abuse")
    diagnostic = "feedback-type=" + re.sub(r"[^\w-]", "", feedback)[:40]
    return [_fixed(r, "", diagnostic, Category.COMPLAINT) for r in dict.fromkeys(rcpts or [""])]


def _provider_json(notice: str) -> tuple[str, list[RecipientOutcome], list[str]] | None:
    """Amazon SES / SNS JSON notifications forwarded by email (Bounce, Complaint, Delivery)."""
    if "notificationType" not in notice and '"eventType"' not in notice:
        return None
    start, end = notice.find("{"), notice.rfind("}")
    if start < 0 or end < start:
        return None
    try:
        obj = json.loads(notice[start : end + 1].replace("\n ", "").replace("\n", ""))
    except ValueError:
        return None
    return _ses_outcomes(_unwrap_sns(obj))


def _unwrap_sns(obj: object) -> object:
    """An SNS envelope ({"Type": "Notification", "Message": "<json>"}) → the SES notification."""
    if isinstance(obj, dict) and isinstance(obj.get("Message"), str):
        try:
            return json.loads(obj["Message"])
        except ValueError:
            return obj
    return obj


def _ses_outcomes(obj: object) -> tuple[str, list[RecipientOutcome], list[str]] | None:
    """(kind, outcomes, our envelope senders) from an SES notification or event, else None."""
    if not isinstance(obj, dict):
        return None
    kind = str(obj.get("notificationType") or obj.get("eventType") or "")
    mail = obj.get("mail") if isinstance(obj.get("mail"), dict) else {}
    senders = [str(mail.get("source", ""))] if mail else []
    if kind == "Complaint":
        rows = (obj.get("complaint") or {}).get("complainedRecipients") or []
        outs = [_fixed(_first_addr(str(r.get("emailAddress", ""))), "", "", Category.COMPLAINT) for r in rows]
        return ("arf", outs, senders) if outs else None
    if kind == "Delivery":
        rows = (obj.get("delivery") or {}).get("recipients") or []
        outs = [_fixed(_first_addr(str(r)), "delivered", "", Category.DELIVERED) for r in rows]
        return ("nonstandard", outs, senders) if outs else None
    if kind == "Bounce":
        bounce = obj.get("bounce") or {}
        outs = []
        for r in bounce.get("bouncedRecipients") or []:
            diag = _collapse(_scrub(str(r.get("diagnosticCode", "")), None))
            code, status = _codes(diag)
            given = STATUS_IN_TEXT_RE.search(str(r.get("status") or ""))
            status = ".".join(given.groups()) if given else status
            action = str(r.get("action", "failed")).lower()
            if bounce.get("bounceType") == "Transient" and action == "failed":
                action = "delayed"
            outs.append(
                RecipientOutcome(
                    _first_addr(str(r.get("emailAddress", ""))),
                    action,
                    status,
                    code,
                    diag,
                    _decide(action, code, status, diag),
                )
            )
        return ("nonstandard", outs, senders) if outs else None
    return None


def parse_ses_notification(data: bytes | str) -> Bounce:
    """One Amazon SES notification (raw, inside an SNS envelope, or an SES event) → `Bounce`.

    SES reports our envelope sender (the VERP return path) as ``mail.source`` and our
    Message-ID in ``mail.commonHeaders``; nothing else of the original message is kept.
    """
    try:
        obj = _unwrap_sns(json.loads(data))
        found = _ses_outcomes(obj)
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


# ----------------------------------------------------------------------------- RFC 3464 DSN


def _dsn_outcomes(msg: Message, notice: str, returned: Message | None) -> list[RecipientOutcome]:
    """Per-recipient outcomes from delivery-status fields (a real part, or pasted as text)."""
    groups: list[list[tuple[str, str]]] = []
    for part in _leaves(msg):
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            groups.extend(_fields(part))
    records = _recipient_records(groups)
    if not records:
        texts = [_part_text(p) for p in _leaves(msg) if _is_text(p)]
        if not any(re.search(r"^\s*final-recipient\s*:", t, re.I | re.M) for t in texts):
            return []
        records = _recipient_records([g for t in texts for g in _fields_from_text(t)])
    recipients = [_record_recipient(rec) for rec in records]
    return [_dsn_outcome(rec, notice, recipients, returned) for rec in records]


def _recipient_records(groups: list[list[tuple[str, str]]]) -> list[dict[str, str]]:
    """Split field groups into one dict per recipient (a new one at each repeated field)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for group in groups:
        for name, value in group:
            repeated = name in current and name != "x-display-name"
            if repeated or (name == "final-recipient" and "final-recipient" in current):
                records.append(current)
                current = {}
            current.setdefault(name, value)
        if "final-recipient" in current:
            records.append(current)
            current = {}
        elif "original-recipient" not in current:
            current = {}  # per-message fields (Reporting-MTA, Arrival-Date, ...)
    if "final-recipient" in current or "original-recipient" in current:
        records.append(current)
    return [r for r in records if "final-recipient" in r or "original-recipient" in r]


def _address_field(value: str) -> str:
    """'rfc822; <Kijitora@Example.jp>' → 'kijitora@example.jp'."""
    value = value.split(";", 1)[1] if ";" in value else value
    return value.strip().strip("<>").strip().lower()


def _record_recipient(rec: dict[str, str]) -> str:
    """The address we sent to: Original-Recipient when usable, else Final-Recipient."""
    original = _address_field(rec.get("original-recipient", ""))
    final = _address_field(rec.get("final-recipient", ""))
    return original if "@" in original and not original.startswith("@") else final or original


def _dsn_outcome(
    rec: dict[str, str], notice: str, recipients: list[str], returned: Message | None
) -> RecipientOutcome:
    recipient = _record_recipient(rec)
    action = (rec.get("action", "").split() or [""])[0].lower()
    raw_diag = rec.get("diagnostic-code", "")
    diag_type = raw_diag.split(";", 1)[0].strip().lower() if ";" in raw_diag else ""
    diag = _collapse(DIAG_TYPE_RE.sub("", raw_diag, count=1), MAX_CLASSIFY_TEXT)
    status_field = rec.get("status", "")
    comment = re.search(r"\((.+)\)", status_field)
    # No Diagnostic-Code: the Status comment and the human-readable part say why.
    text = diag or " ".join(
        t for t in ((comment.group(1) if comment else ""), _block_for(notice, recipient, recipients)) if t
    )
    code, text_status = _codes(text)
    if diag_type in LOCAL_DIAG_TYPES:
        code = None  # a local program's exit code, not an SMTP reply
    field_status = STATUS_IN_TEXT_RE.search(status_field)
    status = ".".join(field_status.groups()) if field_status else None
    if status is None or status.endswith(".0.0"):
        status = text_status or status  # the server's own code is more precise than x.0.0
    decision = _decide(action, code, status, text)
    truncated = re.match(r"[245]\d\d-", diag) is not None  # sendmail keeps line 1 of a multi-line reply
    if diag and (truncated or decision.category is Category.UNKNOWN):
        block = _block_for(notice, recipient, recipients)
        if block:
            text = f"{diag} {block}"
            decision = _decide(action, code, status, text)
    return RecipientOutcome(
        recipient=recipient,
        action=action,
        status=status,
        reply_code=code,
        diagnostic=_collapse(_scrub(text, returned)),
        classification=decision,
    )


def _block_for(notice: str, recipient: str, recipients: list[str]) -> str:
    """The notice lines about one recipient (or the whole notice when it has only one)."""
    lines = [ln for ln in notice.splitlines() if ln.strip() and not SUMMARY_LINE_RE.match(ln)]
    others = set(recipients) - {recipient}
    for i, line in enumerate(lines):
        if recipient and recipient in _addrs(line):
            return _text_block(lines, i, others)
    return "\n".join(lines) if len(recipients) == 1 else ""


# ----------------------------------------------------------------------------- free-text notices


def _looks_like_bounce(msg: Message, notice: str) -> bool:
    return bool(
        msg.get("X-Failed-Recipients")
        or BOUNCE_FROM_RE.search(str(msg.get("From") or ""))
        or BOUNCE_SUBJECT_RE.search(_subject(msg))
    )


def _looks_like_autoreply(msg: Message) -> bool:
    auto = str(msg.get("Auto-Submitted") or "").lower()
    return bool(
        auto.startswith("auto-replied")
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or msg.get("X-Autoresponder")
        or str(msg.get("Precedence") or "").lower() == "auto_reply"
        or AUTOREPLY_SUBJECT_RE.search(_subject(msg))
    )


def _autoreply(msg: Message, notice: str) -> RecipientOutcome:
    """An auto-reply is ignored unless it says the mailbox is gone ('no longer in use')."""
    sender = _first_addr(str(msg.get("From") or ""))
    result = classify(None, None, notice[:MAX_CLASSIFY_TEXT])
    if result.recipient_caused:
        return RecipientOutcome(sender, "failed", None, None, "", result)
    return _fixed(sender, "", "", Category.AUTO_REPLY)


def _own_addresses(msg: Message, returned: Message | None) -> set[str]:
    """Addresses on our side of the exchange: never the failed recipient."""
    own: set[str] = set()
    for name in OWN_SIDE_HEADERS:
        for value in msg.get_all(name) or []:
            own.update(_addrs(str(value)))
    if returned is not None:
        for name in ("From", "Sender", "Return-Path", "Reply-To"):
            for value in returned.get_all(name) or []:
                own.update(_addrs(str(value)))
    return own


def _recipient_lines(lines: list[str], own: set[str], *, strict: bool = True) -> list[tuple[str, int]]:
    """(address, index of the line where it first appears as a failed recipient).

    An address that the notice ever names as sender or contact ("MAIL FROM:<x>", "please
    contact <x>") is excluded everywhere, as are addresses in URLs and (when strict) service
    mailboxes such as postmaster@.
    """
    found: dict[str, int] = {}
    excluded = set(own)
    for i, line in enumerate(lines):
        if SUMMARY_LINE_RE.match(line) or "message-id" in line.lower():
            continue
        for m in ADDR_RE.finditer(line):
            addr = m.group(0).strip(".'").lower()
            before = line[: m.start()]
            if SENDER_CONTEXT_RE.search(before) or before.endswith(("=", "/")):
                excluded.add(addr)
            elif not VERP_RE.search(addr) and not (strict and addr.split("@")[0] in SERVICE_LOCAL_PARTS):
                found.setdefault(addr, i)
    return sorted(((a, i) for a, i in found.items() if a not in excluded), key=lambda item: item[1])


def _unattributed(msg: Message, notice: str) -> RecipientOutcome:
    """A failure notice that names no recipient: still a failure (the VERP token says whose)."""
    failed = _addrs(", ".join(str(v) for v in msg.get_all("X-Failed-Recipients") or []))
    text = "\n".join(ln for ln in notice.splitlines() if ln.strip() and not SUMMARY_LINE_RE.match(ln))
    code, status = _codes(text)
    action = "delayed" if DELAY_TEXT_RE.search(notice) else "failed"
    decision = _decide(action, code, status, text or "undeliverable")
    return RecipientOutcome(failed[0] if failed else "", action, status, code, "", decision)


def _text_outcomes(msg: Message, notice: str, returned: Message | None) -> list[RecipientOutcome]:
    """Recipients and reasons from a free-text notice (qmail, Exim, Exchange 2003, ...)."""
    lines = [ln for ln in notice.splitlines() if ln.strip()]
    own = _own_addresses(msg, returned)
    located = _recipient_lines(lines, own) or _recipient_lines(lines, set(), strict=False)
    failed_header = _addrs(", ".join(str(v) for v in msg.get_all("X-Failed-Recipients") or []))
    if failed_header:
        located = [(a, _first_mention(lines, a)) for a in dict.fromkeys(failed_header)]
    if not located and returned is not None:
        located = [(a, -1) for a in _addrs(str(returned.get("To") or ""))[:1]]
    if not located:
        return []
    everyone = {a for a, _ in located}
    action = "delayed" if DELAY_TEXT_RE.search(notice) or DELAY_TEXT_RE.search(_subject(msg)) else "failed"
    outcomes = []
    for addr, start in located:
        block = _text_block(lines, start, everyone - {addr}) if start >= 0 else ""
        if not block and len(located) == 1:
            block = "\n".join(ln for ln in lines if not SUMMARY_LINE_RE.match(ln))
        outcomes.append(_text_outcome(addr, action, block, lines, len(located), returned))
    return outcomes


def _first_mention(lines: list[str], addr: str) -> int:
    return next((i for i, ln in enumerate(lines) if addr in _addrs(ln) and not SUMMARY_LINE_RE.match(ln)), -1)


def _text_block(lines: list[str], start: int, others: set[str]) -> str:
    """Lines from a recipient's first mention until a line names another recipient.

    A sendmail transcript line ("554 <x>... reason") stands alone.
    """
    if TRANSCRIPT_LINE_RE.match(lines[start]):
        return lines[start]
    block = [lines[start]]
    for line in lines[start + 1 : start + MAX_BLOCK_LINES]:
        if others & set(_addrs(line)):
            break
        block.append(line)
    return "\n".join(ln for ln in block if not SUMMARY_LINE_RE.match(ln))


def _text_outcome(
    addr: str, action: str, block: str, lines: list[str], n: int, returned: Message | None
) -> RecipientOutcome:
    code, status = _codes(block)
    decision = _decide(action, code, status, block)
    if n == 1 and decision.category is Category.UNKNOWN:
        whole = "\n".join(ln for ln in lines if not SUMMARY_LINE_RE.match(ln))
        if whole != block:
            decision = _decide(action, code, status, f"{block}\n{whole}")
    return RecipientOutcome(
        recipient=addr,
        action=action,
        status=status,
        reply_code=code,
        diagnostic=_collapse(_scrub(block, returned)),
        classification=decision,
    )
