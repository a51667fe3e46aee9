"""The email around a statement: wording from Jinja2 templates, MIME built in memory.

Nothing here touches the network. The wording lives in ``templates/email`` so a compliance
team edits text, not Python. Templates only ever see ``ALLOWED_KEYS``: whatever else a caller
puts in the context (a member's name, say) is dropped before rendering, so PHI cannot leak
into a subject or body even through a careless template edit.
"""

from __future__ import annotations

import base64
import binascii
import email.policy
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from functools import lru_cache
from pathlib import Path

import jinja2
import numpy as np

from pipeline.periods import parse_period
from pipeline.templates import TEMPLATES_DIR, period_label, resolve_language, statement_text

log = logging.getLogger(__name__)

DEFAULT_TEMPLATES_DIR = TEMPLATES_DIR / "email"
NOTICE_TEMPLATES_DIR = DEFAULT_TEMPLATES_DIR / "notice"
"""The email around a prompt notice of an adverse benefit determination: the same three files."""
STATEMENT_HEADER = "X-EOB-Statement"
NOTICE_HEADER = "X-EOB-Notice"
"""The header that names what a message carries: a statement id, or a prompt notice's id."""
ALLOWED_KEYS: frozenset[str] = frozenset(
    {"support_phone", "password_hint", "brand_name", "period_label"}
)
SUPPORTED_LANGUAGES: tuple[str, ...] = ("en", "es", "zh-Hant")
"""The languages the email templates (and templates/email/password_hints.toml) are written in:
BCP 47 codes as the statement templates name them."""
_SAFE_FILENAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,80}\.pdf")
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_SAFE_DOMAIN = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class EmailContent:
    subject: str
    text: str
    html: str


@lru_cache(maxsize=8)
def _environment(templates_dir: Path) -> jinja2.Environment:
    """One environment per folder; StrictUndefined so a missing key fails loudly."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=lambda name: name is not None and name.endswith(".html.j2"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )


def _one_line(text: str) -> str:
    """A subject is a header: collapse whitespace so no newline can inject another header."""
    return " ".join(text.split())


def email_language(language: str) -> str:
    """The member's language resolved as compose resolves it for the statement
    (`pipeline.templates.resolve_language`: "ES" and "es-US" as "es", "zh-TW" as "zh-Hant"),
    English when the email is not written in it: the email and the statement it carries are
    always in the same language."""
    resolved = resolve_language(language)
    return resolved if resolved in SUPPORTED_LANGUAGES else "en"


def email_period_label(language: str, period: str) -> str:
    """The period as the member's statement names it ("November 2026", "2026年11月"), so the
    email and the statement spell it the same way."""
    first_day, _ = parse_period(period)
    return period_label(statement_text(email_language(language)), first_day.year, first_day.month)


def render_email(
    *, language: str, context: Mapping[str, str], templates_dir: Path | None = None
) -> EmailContent:
    """Render subject, text and HTML in the member's language (English if unsupported)."""
    lang = email_language(language)
    dropped = sorted(set(context) - ALLOWED_KEYS)
    if dropped:
        log.debug("render_email ignored context keys not allowed in email: %s", dropped)
    values: dict[str, str] = {k: str(v) for k, v in context.items() if k in ALLOWED_KEYS}
    values["language"] = lang
    env = _environment((templates_dir or DEFAULT_TEMPLATES_DIR).resolve())
    return EmailContent(
        subject=_one_line(env.get_template("subject.txt.j2").render(values)),
        text=env.get_template("body.txt.j2").render(values).strip() + "\n",
        html=env.get_template("body.html.j2").render(values).strip() + "\n",
    )


def message_id(statement_id: str, message_id_domain: str) -> str:
    """Deterministic, so a resend of the same statement is recognisable everywhere."""
    return f"<{statement_id}@{message_id_domain}>"


def _check(value: str, pattern: re.Pattern[str], what: str) -> None:
    """Validate without echoing the value: it might be PHI passed by mistake."""
    if not pattern.fullmatch(value):
        raise ValueError(f"{what} has characters not allowed in an email header")


def build_message(
    *,
    statement_id: str,
    recipient: str,
    from_address: str,
    from_name: str,
    envelope_from: str,
    message_id_domain: str,
    content: EmailContent,
    pdf: bytes,
    pdf_filename: str,
    date: datetime | None = None,
    id_header: str = STATEMENT_HEADER,
) -> EmailMessage:
    """multipart/mixed: alternative(text, html) + the encrypted PDF.

    ``envelope_from`` is deliberately not written as a header: the final MTA adds
    Return-Path from MAIL FROM. The recipient goes in To as a bare address (a display name
    would be PHI). Auto-Submitted stops vacation auto-replies from flooding the bounce box.
    """
    _check(statement_id, _SAFE_ID, "statement_id")
    _check(message_id_domain, _SAFE_DOMAIN, "message_id_domain")
    _check(pdf_filename, _SAFE_FILENAME, "pdf_filename")
    if "@" not in envelope_from or any(c.isspace() for c in envelope_from):
        raise ValueError("envelope_from is not an address")
    if not pdf.startswith(b"%PDF-"):
        raise ValueError("attachment is not a PDF")

    msg = EmailMessage()
    msg["From"] = Address(display_name=from_name, addr_spec=from_address)
    msg["To"] = Address(addr_spec=recipient)
    msg["Subject"] = _one_line(content.subject)
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = message_id(statement_id, message_id_domain)
    msg[id_header] = statement_id
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(content.text, subtype="plain", charset="utf-8")
    msg.add_alternative(content.html, subtype="html", charset="utf-8")
    msg.add_attachment(pdf, maintype="application", subtype="pdf", filename=pdf_filename)
    return msg


_B64_LINE = 76  # RFC 2045: encoded lines of at most 76 characters; the email package writes 76


def mime_base64(data: bytes) -> bytes:
    """Base64 in CRLF-ended lines of 76 characters, as the email package writes an attachment.
    ``base64.encodebytes`` wraps in a Python loop of one call per 57 bytes, a sixth of a send
    task's CPU for a statement; here one C call encodes and numpy lays out the lines."""
    encoded = binascii.b2a_base64(data, newline=False)
    full = len(encoded) // _B64_LINE * _B64_LINE
    lines = np.empty((full // _B64_LINE, _B64_LINE + 2), np.uint8)
    lines[:, :_B64_LINE] = np.frombuffer(encoded, np.uint8, count=full).reshape(-1, _B64_LINE)
    lines[:, _B64_LINE:] = (13, 10)
    tail = encoded[full:]
    return lines.tobytes() + (tail + b"\r\n" if tail else b"")


_TEMPLATE_ID = "st-template-0000"
_TEMPLATE_RCPT = "member@template.invalid"
_TEMPLATE_PDF = b"%PDF-template"
_TEMPLATE_DATE = datetime(2000, 1, 1, tzinfo=UTC)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(\.{_ATOM})*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")  # a dot-atom
_HEADER_ROOM = 78  # policy.SMTP folds longer header lines: those messages take the full path


class MessageTemplate:
    """One language's message, built and serialized once by the email package; each statement's
    message is that serialization with its own To, Date, Message-ID, statement header and PDF
    spliced in. Building every message through the email package cost more CPU than the
    sending itself; the bytes are identical (tests compare them for many inputs), and any value
    the email package would fold or encode (a long or non-ASCII address) goes the full way."""

    def __init__(self, *, from_address: str, from_name: str, message_id_domain: str,
                 content: EmailContent, pdf_filename: str, id_header: str = STATEMENT_HEADER) -> None:
        self._from, self._name, self._content = from_address, from_name, content
        self._filename, self._domain, self._id_header = pdf_filename, message_id_domain, id_header
        data = self._full_message(_TEMPLATE_ID, _TEMPLATE_RCPT, "template@template.invalid",
                                  _TEMPLATE_PDF, _TEMPLATE_DATE)
        head, _, body = data.partition(b"\r\n\r\n")
        marker = base64.b64encode(_TEMPLATE_PDF)
        self._before_pdf, _, self._after_pdf = body.partition(marker + b"\r\n")
        self._head = head.decode("ascii").split("\r\n")
        if not self._after_pdf or len(self._head) < 5:
            raise ValueError("the email template did not serialize as expected")

    def message_bytes(self, *, statement_id: str, recipient: str, envelope_from: str, pdf: bytes,
                      date: datetime | None = None) -> bytes:
        """The message as ``build_message(...).as_bytes(policy=SMTP)`` would give it."""
        when = format_datetime(date or datetime.now(UTC))
        values = {"To": recipient, "Date": when, "Message-ID": message_id(statement_id, self._domain),
                  self._id_header: statement_id}
        plain = (_PLAIN_ADDRESS.fullmatch(recipient) is not None and recipient.isascii()
                 and "=?" not in recipient  # an encoded-word look-alike: the email package decides
                 and all(len(f"{name}: {value}") <= _HEADER_ROOM for name, value in values.items()))
        if not plain:
            return self._full_message(statement_id, recipient, envelope_from, pdf, date)
        _check(statement_id, _SAFE_ID, "statement_id")
        if not pdf.startswith(b"%PDF-"):
            raise ValueError("attachment is not a PDF")
        lines = []
        for line in self._head:
            name = line.partition(":")[0]
            lines.append(f"{name}: {values[name]}" if name in values else line)
        encoded = mime_base64(pdf)
        return b"\r\n".join(part.encode("ascii") for part in lines) + b"\r\n\r\n" + \
            self._before_pdf + encoded + self._after_pdf

    def _full_message(self, statement_id: str, recipient: str, envelope_from: str, pdf: bytes,
                      date: datetime | None) -> bytes:
        return build_message(
            statement_id=statement_id, recipient=recipient, from_address=self._from,
            from_name=self._name, envelope_from=envelope_from, message_id_domain=self._domain,
            content=self._content, pdf=pdf, pdf_filename=self._filename, date=date,
            id_header=self._id_header,
        ).as_bytes(policy=email.policy.SMTP)
