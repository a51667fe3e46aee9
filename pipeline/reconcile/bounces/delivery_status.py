"""RFC 3464 delivery status notifications: one outcome per recipient record, from a real
message/delivery-status part or from status fields pasted into the text."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.outcomes import Category, RecipientOutcome
from pipeline.reconcile.bounces.decisions import MAX_CLASSIFY_TEXT, decide
from pipeline.reconcile.bounces.free_text import SUMMARY_LINE_RE, text_block
from pipeline.reconcile.bounces.mime import is_text, leaves, part_text
from pipeline.reconcile.bounces.reply_text import STATUS_IN_TEXT_RE, addrs, codes, collapse, scrub
from pipeline.reconcile.bounces.report_fields import field_groups, field_groups_from_text

DIAG_TYPE_RE = re.compile(r"^\s*[A-Za-z][A-Za-z0-9-]*\s*;\s*")
LOCAL_DIAG_TYPES = frozenset({"x-unix", "x-local", "x-pipe"})


def dsn_outcomes(msg: Message, notice: str, returned: Message | None) -> list[RecipientOutcome]:
    """Per-recipient outcomes from delivery-status fields (a real part, or pasted as text)."""
    groups: list[list[tuple[str, str]]] = []
    for part in leaves(msg):
        if part.get_content_type() in ("message/delivery-status", "message/global-delivery-status"):
            groups.extend(field_groups(part))
    records = _recipient_records(groups)
    if not records:
        texts = [part_text(p) for p in leaves(msg) if is_text(p)]
        if not any(re.search(r"^\s*final-recipient\s*:", t, re.I | re.M) for t in texts):
            return []
        records = _recipient_records([g for t in texts for g in field_groups_from_text(t)])
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
    """'rfc822; <Kijitora@Example.jp>' → 'kijitora@example.jp' (a type some servers write twice,
    'rfc822; rfc822;a@b', is dropped as often as it occurs)."""
    while ";" in value:
        value = value.split(";", 1)[1]
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
    diag = collapse(DIAG_TYPE_RE.sub("", raw_diag, count=1), MAX_CLASSIFY_TEXT)
    status_field = rec.get("status", "")
    comment = re.search(r"\((.+)\)", status_field)
    # No Diagnostic-Code: the Status comment and the human-readable part say why.
    text = diag or " ".join(
        t for t in ((comment.group(1) if comment else ""), _block_for(notice, recipient, recipients)) if t
    )
    code, text_status = codes(text)
    during = None
    if diag_type in LOCAL_DIAG_TYPES:
        code, during = None, "local"  # a local program's exit code, not an SMTP reply
    field_status = STATUS_IN_TEXT_RE.search(status_field)
    status = ".".join(field_status.groups()) if field_status else None
    if status is None or status.endswith(".0.0"):
        status = text_status or status  # the server's own code is more precise than x.0.0
    decision = decide(action, code, status, text, during=during)
    truncated = re.match(r"[245]\d\d-", diag) is not None  # sendmail keeps line 1 of a multi-line reply
    if diag and (truncated or decision.category is Category.UNKNOWN):
        block = _block_for(notice, recipient, recipients)
        if block:
            text = f"{diag} {block}"
            decision = decide(action, code, status, text, during=during)
    return RecipientOutcome(
        recipient=recipient,
        action=action,
        status=status,
        reply_code=code,
        diagnostic=collapse(scrub(text, returned)),
        classification=decision,
    )


def _block_for(notice: str, recipient: str, recipients: list[str]) -> str:
    """The notice lines about one recipient (or the whole notice when it has only one)."""
    lines = [ln for ln in notice.splitlines() if ln.strip() and not SUMMARY_LINE_RE.match(ln)]
    others = set(recipients) - {recipient}
    for i, line in enumerate(lines):
        if recipient and recipient in addrs(line):
            return text_block(lines, i, others)
    return "\n".join(lines) if len(recipients) == 1 else ""
