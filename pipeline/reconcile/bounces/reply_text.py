"""The remote server's reply text: the addresses it names, its failure codes, and the
diagnostic we keep, scrubbed of the original subject and of addresses (no PHI)."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.reconcile.bounces.mime import decoded

MAX_DIAGNOSTIC = 300

ADDR_RE = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z0-9-]{2,63}"
)
STATUS_IN_TEXT_RE = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
FAILURE_STATUS_RE = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
FAILURE_REPLY_RE = re.compile(r"(?<![\w.\[#/=-])([45][0-5]\d)(?=[\s:,;-]|$)")
SUBJECT_LINE_RE = re.compile(r"\bsubject\b[^:\n]{0,30}:", re.I)


ROUTE_PREFIX_RE = re.compile(r"^(?:smtp|rfc822)[=:]", re.I)
"""Exchange writes a recipient as "SMTP=user@example.com": the prefix is not part of it."""


def address(found: str) -> str:
    """One matched address as we keep it: lower-cased, without trailing dots or a prefix."""
    return ROUTE_PREFIX_RE.sub("", found.strip(".'")).lower()


def addrs(value: str) -> list[str]:
    """Every address in a header value or line, lower-cased."""
    return [address(a) for a in ADDR_RE.findall(value or "")]


def first_addr(value: str) -> str:
    found = addrs(value)
    return found[0] if found else ""


def collapse(text: str, limit: int = MAX_DIAGNOSTIC) -> str:
    return " ".join(text.split())[:limit]


def scrub(text: str, returned: Message | None) -> str:
    """Drop quoted Subject lines and the original subject: reply text only, no PHI."""
    lines = [ln for ln in text.splitlines() if not SUBJECT_LINE_RE.search(ln)]
    text = "\n".join(lines)
    text = " ".join(text.split())
    raw_subject = str(returned.get("Subject") or "") if returned is not None else ""
    for subject in {raw_subject, decoded(raw_subject)}:
        subject = " ".join(subject.split())
        if len(subject) >= 5:
            text = text.replace(subject, "[subject removed]")
    # The reply text is kept; the addresses in it are not (the ledger keeps ids and hashes).
    return ADDR_RE.sub("<address>", text)


def codes(text: str) -> tuple[int | None, str | None]:
    """First failure reply code (4xx/5xx) and enhanced status (4.x.x/5.x.x) in reply text.

    Success codes are skipped: a transcript ("Out: 250 2.1.5 Ok") is not the failure.
    """
    status = FAILURE_STATUS_RE.search(text)
    reply = FAILURE_REPLY_RE.search(text)
    return (
        int(reply.group(1)) if reply else None,
        ".".join(status.groups()) if status else None,
    )
