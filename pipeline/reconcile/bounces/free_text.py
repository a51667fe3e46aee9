"""Free-text failure notices (qmail, Exim, old Exchange, Lotus Notes, Postfix without DSN, ...):
is it a bounce, which lines name a failed recipient, and what those lines say about it."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.outcomes import Category, RecipientOutcome
from pipeline.reconcile.bounces.correlation import VERP_RE
from pipeline.reconcile.bounces.decisions import decide
from pipeline.reconcile.bounces.mime import subject
from pipeline.reconcile.bounces.reply_text import ADDR_RE, address, addrs, codes, collapse, scrub

MAX_BLOCK_LINES = 15

# Lines that quote the original message's headers: never a recipient line, never kept.
SUMMARY_LINE_RE = re.compile(
    r"^\s*(?:to|cc|bcc|from|sender|reply-to|return-path|subject|date|sent|message-id"
    r"|in-reply-to|references)\s*:",
    re.I,
)
SENDER_CONTEXT_RE = re.compile(
    r"(?:(?<!expanded )(?<!generated )\bfrom|sender|sent by|envelope-from|contact|assistance"
    r"|send mail to|yourself)\W{0,3}$",
    re.I,
)
"""Words before an address that make it ours or a contact, never the failed recipient; an alias
"(expanded from: x)" or "(generated from x)" names the address we sent to, so it counts."""
SERVICE_LOCAL_PARTS = frozenset(
    {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "abuse", "hostmaster"}
)
TRANSCRIPT_LINE_RE = re.compile(r"^\s*[45]\d\d[ -]")
QUOTED_TO_RE = re.compile(r"^\s*to\s*:", re.I)

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
    r"|not yet been delivered|\b[45]\.\d{1,3}\.\d{1,3}\b|^\s*[45]\d\d[\s-]|requested action not taken"
    r"|no such (?:user|mailbox|recipient)|user unknown|unknown user",
    re.I | re.M,
)
DELAY_TEXT_RE = re.compile(
    r"has been delayed|not yet been delivered|warning message only|will be retried"
    r"|delivery attempts will continue|\(delay\)|delayed \d+ (?:hours|minutes|days)"
    r"|has been postponed|will (?:continue to|keep) (?:try|trying|attempt)",
    re.I,
)

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


def looks_like_bounce(msg: Message, notice: str) -> bool:
    """The bounce's own headers say it is a delivery failure notice."""
    return bool(
        msg.get("X-Failed-Recipients")
        or BOUNCE_FROM_RE.search(str(msg.get("From") or ""))
        or BOUNCE_SUBJECT_RE.search(subject(msg))
    )


def _own_addresses(msg: Message, returned: Message | None) -> set[str]:
    """Addresses on our side of the exchange: never the failed recipient."""
    own: set[str] = set()
    for name in OWN_SIDE_HEADERS:
        for value in msg.get_all(name) or []:
            own.update(addrs(str(value)))
    if returned is not None:
        for name in ("From", "Sender", "Return-Path", "Reply-To"):
            for value in returned.get_all(name) or []:
                own.update(addrs(str(value)))
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
            addr = address(m.group(0))
            before = line[: m.start()]
            if SENDER_CONTEXT_RE.search(before) or before.endswith(("=", "/")):
                excluded.add(addr)
            elif not VERP_RE.search(addr) and not (strict and addr.split("@")[0] in SERVICE_LOCAL_PARTS):
                found.setdefault(addr, i)
    return sorted(((a, i) for a, i in found.items() if a not in excluded), key=lambda item: item[1])


def unattributed(msg: Message, notice: str) -> RecipientOutcome:
    """A failure notice that names no recipient: still a failure (the VERP token says whose)."""
    failed = addrs(", ".join(str(v) for v in msg.get_all("X-Failed-Recipients") or []))
    text = "\n".join(ln for ln in notice.splitlines() if ln.strip() and not SUMMARY_LINE_RE.match(ln))
    code, status = codes(text)
    action = "delayed" if DELAY_TEXT_RE.search(notice) else "failed"
    decision = decide(action, code, status, text or "undeliverable")
    return RecipientOutcome(failed[0] if failed else "", action, status, code, "", decision)


def text_outcomes(msg: Message, notice: str, returned: Message | None) -> list[RecipientOutcome]:
    """Recipients and reasons from a free-text notice (qmail, Exim, Exchange 2003, ...)."""
    lines = [ln for ln in notice.splitlines() if ln.strip()]
    own = _own_addresses(msg, returned)
    located = _recipient_lines(lines, own) or _recipient_lines(lines, set(), strict=False)
    failed_header = addrs(", ".join(str(v) for v in msg.get_all("X-Failed-Recipients") or []))
    if failed_header:
        located = [(a, _first_mention(lines, a)) for a in dict.fromkeys(failed_header)]
    if not located and returned is not None:
        located = [(a, -1) for a in addrs(str(returned.get("To") or ""))[:1]]
    if not located:  # the notice quotes the original's headers: its To: is whom we wrote to
        quoted = [a for ln in lines if QUOTED_TO_RE.match(ln) for a in addrs(ln)]
        located = [(a, -1) for a in quoted[:1] if a not in own]
    if not located:
        return []
    everyone = {a for a, _ in located}
    action = "delayed" if DELAY_TEXT_RE.search(notice) or DELAY_TEXT_RE.search(subject(msg)) else "failed"
    outcomes = []
    for addr, start in located:
        block = text_block(lines, start, everyone - {addr}) if start >= 0 else ""
        if not block and len(located) == 1:
            block = "\n".join(ln for ln in lines if not SUMMARY_LINE_RE.match(ln))
        outcomes.append(_text_outcome(addr, action, block, lines, len(located), returned))
    return outcomes


def _first_mention(lines: list[str], addr: str) -> int:
    return next((i for i, ln in enumerate(lines) if addr in addrs(ln) and not SUMMARY_LINE_RE.match(ln)), -1)


def text_block(lines: list[str], start: int, others: set[str]) -> str:
    """Lines from a recipient's first mention until a line names another recipient.

    A sendmail transcript line ("554 <x>... reason") stands alone.
    """
    if TRANSCRIPT_LINE_RE.match(lines[start]):
        return lines[start]
    block = [lines[start]]
    for line in lines[start + 1 : start + MAX_BLOCK_LINES]:
        if others & set(addrs(line)):
            break
        block.append(line)
    return "\n".join(ln for ln in block if not SUMMARY_LINE_RE.match(ln))


def _text_outcome(
    addr: str, action: str, block: str, lines: list[str], n: int, returned: Message | None
) -> RecipientOutcome:
    code, status = codes(block)
    decision = decide(action, code, status, block)
    if n == 1 and decision.category is Category.UNKNOWN:
        whole = "\n".join(ln for ln in lines if not SUMMARY_LINE_RE.match(ln))
        if whole != block:
            decision = decide(action, code, status, f"{block}\n{whole}")
    return RecipientOutcome(
        recipient=addr,
        action=action,
        status=status,
        reply_code=code,
        diagnostic=collapse(scrub(block, returned)),
        classification=decision,
    )
