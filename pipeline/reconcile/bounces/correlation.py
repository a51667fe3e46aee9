"""What ties a bounce to the statement we sent: our VERP return path, the original
Message-ID, and the statement header of the returned copy."""

from __future__ import annotations

import re
from email.message import Message

VERP_RE = re.compile(r"(?<![A-Za-z0-9._+-])bounces\+([A-Za-z0-9._=-]+)@([A-Za-z0-9.-]+)", re.I)
MSGID_RE = re.compile(r"^\s*message-id:\s*(<[^<>\s]+>)", re.I | re.M)
STATEMENT_HEADER = "X-EOB-Statement"


def verp_token(
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


def statement_header(returned: Message | None) -> str | None:
    """X-EOB-Statement of the returned copy, when it looks like a statement id."""
    value = str(returned.get(STATEMENT_HEADER) or "").strip() if returned is not None else ""
    return value[:128] if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value) else None


def original_message_id(returned: Message | None, tail: str) -> str | None:
    """Message-ID of the original: from the returned headers, else from the quoted copy."""
    if returned is not None and returned.get("Message-ID"):
        m = re.search(r"<[^<>\s]+>", str(returned.get("Message-ID")))
        if m:
            return m.group(0)
    m = MSGID_RE.search(tail)
    if m:
        return m.group(1)
    bare = str(returned.get("Message-ID") or "").strip() if returned is not None else ""
    return bare if "@" in bare and " " not in bare else None
