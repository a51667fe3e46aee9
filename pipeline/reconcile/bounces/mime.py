"""Reading a bounce as MIME: its leaf parts, their decoded text, the human-readable notice and
the headers of the original message it returns (attached or quoted inline)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import Message
from email.parser import HeaderParser
from email.policy import compat32

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


def leaves(msg: Message) -> Iterator[Message]:
    """Parts in order, not descending into attached messages (message/*)."""
    payload = msg.get_payload()
    if isinstance(payload, list) and msg.get_content_maintype() == "multipart":
        for part in payload:
            if isinstance(part, Message):
                yield from leaves(part)
    else:
        yield msg


def decode(part: Message) -> str:
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


def is_text(part: Message) -> bool:
    """A text part, or a multipart whose boundary never appears (then it is just text)."""
    maintype = part.get_content_maintype()
    return maintype == "text" or (maintype == "multipart" and isinstance(part.get_payload(), str))


def part_text(part: Message) -> str:
    """Decoded text with every line ending (CRLF, CR, LF) turned into LF."""
    text = decode(part).replace("\r\n", "\n").replace("\r", "\n")
    return _html_to_text(text) if part.get_content_subtype() == "html" else text


def decoded(value: str) -> str:
    """An RFC 2047 encoded header value as text (best effort)."""
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, TypeError):
        return value


def subject(msg: Message) -> str:
    """Decoded Subject of the bounce itself, used only for matching (never kept)."""
    return decoded(str(msg.get("Subject") or ""))


def notice_text(msg: Message) -> tuple[str, str]:
    """(human-readable notice, copy of the original that followed it inline)."""
    payload = msg.get_payload()
    first = payload[0] if isinstance(payload, list) and payload else None
    if msg.get_content_type() == "multipart/report" and isinstance(first, Message):
        parts = [p for p in leaves(first) if is_text(p)]
    else:
        parts = []
        for p in leaves(msg):
            if p.get_content_maintype() == "message" or p.get_content_type() == "text/rfc822-headers":
                break
            if is_text(p):
                parts.append(p)
    plain = [p for p in parts if p.get_content_subtype() != "html"] or parts
    text = "\n".join(part_text(p) for p in plain)
    cut = CUT_RE.search(text)
    if cut is None:
        return text, ""
    return text[: cut.start()], text[cut.start() :]


def returned_headers(msg: Message) -> Message | None:
    """Headers of the original message when the bounce attached them."""
    for part in leaves(msg):
        ctype = part.get_content_type()
        if ctype in ("message/rfc822", "message/global", "message/rfc822-headers"):
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                return inner[0]
            if isinstance(inner, str):
                return HeaderParser(policy=compat32).parsestr(inner.lstrip())
        if ctype in ("text/rfc822-headers", "text/rfc822-header"):
            return HeaderParser(policy=compat32).parsestr(decode(part).lstrip())
    return None


def inline_headers(tail: str) -> Message | None:
    """Headers of an original message quoted inline after the notice."""
    m = re.search(r"^[A-Za-z][A-Za-z0-9-]*:\s", tail, re.M)
    if m is None:
        return None
    headers = HeaderParser(policy=compat32).parsestr(tail[m.start() :])
    return headers if headers.keys() else None
