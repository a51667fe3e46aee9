"""RFC 3834 auto-replies (out of office, vacation): ignored, unless the reply says the
mailbox itself is gone."""

from __future__ import annotations

import re
from email.message import Message

from pipeline.outcomes import Category, RecipientOutcome, classify
from pipeline.reconcile.bounces.decisions import MAX_CLASSIFY_TEXT, fixed
from pipeline.reconcile.bounces.mime import subject
from pipeline.reconcile.bounces.reply_text import first_addr

AUTOREPLY_SUBJECT_RE = re.compile(
    r"^\s*(?:auto(?:matic)?[ _-]?(?:reply|response|respons|antwort|answer)|auto:|autoreply"
    r"|out of (?:the )?office|away (?:from|until)|on vacation|vacation|abwesenheit|absence"
    r"|r[ée]ponse automatique|自動応答|不在)",
    re.I,
)


def looks_like_autoreply(msg: Message) -> bool:
    """Auto-Submitted, vendor autoreply headers or the subject mark it as an auto-reply."""
    auto = str(msg.get("Auto-Submitted") or "").lower()
    return bool(
        auto.startswith("auto-replied")
        or msg.get("X-Autoreply")
        or msg.get("X-Autorespond")
        or msg.get("X-Autoresponder")
        or str(msg.get("Precedence") or "").lower() == "auto_reply"
        or AUTOREPLY_SUBJECT_RE.search(subject(msg))
    )


def autoreply(msg: Message, notice: str) -> RecipientOutcome:
    """An auto-reply is ignored unless it says the mailbox is gone ('no longer in use')."""
    sender = first_addr(str(msg.get("From") or ""))
    result = classify(None, None, notice[:MAX_CLASSIFY_TEXT])
    if result.recipient_caused:
        return RecipientOutcome(sender, "failed", None, None, "", result)
    return fixed(sender, "", "", Category.AUTO_REPLY)
