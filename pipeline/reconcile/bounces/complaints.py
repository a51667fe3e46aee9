"""Complaint reports: RFC 5965 feedback reports, and providers' own complaint formats that
return the original message. A complaint names the complaining recipient; it is not a failure."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.outcomes import Category, RecipientOutcome
from pipeline.reconcile.bounces.decisions import fixed
from pipeline.reconcile.bounces.mime import leaves, subject
from pipeline.reconcile.bounces.reply_text import addrs, first_addr
from pipeline.reconcile.bounces.report_fields import field_groups

COMPLAINT_SUBJECT_RE = re.compile(r"complaint about message from|abuse report", re.I)


def feedback_report(msg: Message, returned: Message | None) -> list[RecipientOutcome] | None:
    """RFC 5965 complaint: one outcome for the complaining recipient, routed to ignore."""
    part = next((p for p in leaves(msg) if p.get_content_type() == "message/feedback-report"), None)
    if part is None and msg.get_param("report-type", header="content-type") != "feedback-report":
        return None
    fields = [(k, v) for group in field_groups(part) for k, v in group] if part is not None else []
    rcpts = [a for k, v in fields if k == "original-rcpt-to" for a in addrs(v)]
    if not rcpts and returned is not None:
        rcpts = addrs(str(returned.get("To") or ""))[:1]
    feedback = next((v for k, v in fields if k == "feedback-type"), "abuse")
    diagnostic = "feedback-type=" + re.sub(r"[^\w-]", "", feedback)[:40]
    return [fixed(r, "", diagnostic, Category.COMPLAINT) for r in dict.fromkeys(rcpts or [""])]


def provider_complaint(msg: Message, returned: Message | None) -> list[RecipientOutcome] | None:
    """A provider's non-ARF complaint (Hotmail's X-HmXmrOriginalRecipient, "abuse report")."""
    if returned is None or not (
        returned.get("X-HmXmrOriginalRecipient") or COMPLAINT_SUBJECT_RE.search(subject(msg))
    ):
        return None
    rcpt = first_addr(returned.get("X-HmXmrOriginalRecipient") or returned.get("To") or "")
    return [fixed(rcpt, "", "feedback-type=abuse", Category.COMPLAINT)]
