"""Amazon SES notifications (Bounce, Complaint, Delivery), raw, inside an SNS envelope, or
forwarded by email as JSON text."""

from __future__ import annotations

import json
from typing import Any

from pipeline.outcomes import Category, RecipientOutcome
from pipeline.reconcile.bounces.decisions import decide, fixed
from pipeline.reconcile.bounces.reply_text import STATUS_IN_TEXT_RE, codes, collapse, first_addr, scrub


def provider_json(notice: str) -> tuple[str, list[RecipientOutcome], list[str]] | None:
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
    return ses_outcomes(unwrap_sns(obj))


def unwrap_sns(obj: object) -> object:
    """An SNS envelope ({"Type": "Notification", "Message": "<json>"}) → the SES notification."""
    if isinstance(obj, dict) and isinstance(obj.get("Message"), str):
        try:
            return json.loads(obj["Message"])
        except ValueError:
            return obj
    return obj


def ses_outcomes(obj: object) -> tuple[str, list[RecipientOutcome], list[str]] | None:
    """(kind, outcomes, our envelope senders) from an SES notification or event, else None."""
    if not isinstance(obj, dict):
        return None
    kind = str(obj.get("notificationType") or obj.get("eventType") or "")
    mail = obj.get("mail") if isinstance(obj.get("mail"), dict) else {}
    senders = [str(mail.get("source", ""))] if mail else []
    if kind == "Complaint":
        rows = (obj.get("complaint") or {}).get("complainedRecipients") or []
        outs = [fixed(first_addr(str(r.get("emailAddress", ""))), "", "", Category.COMPLAINT) for r in rows]
        return ("arf", outs, senders) if outs else None
    if kind == "Delivery":
        rows = (obj.get("delivery") or {}).get("recipients") or []
        outs = [fixed(first_addr(str(r)), "delivered", "", Category.DELIVERED) for r in rows]
        return ("nonstandard", outs, senders) if outs else None
    if kind == "Bounce":
        bounce = obj.get("bounce") or {}
        outs = [_bounced(r, bounce.get("bounceType")) for r in bounce.get("bouncedRecipients") or []]
        return ("nonstandard", outs, senders) if outs else None
    return None


def _bounced(r: Any, bounce_type: object) -> RecipientOutcome:
    """One entry of bounce.bouncedRecipients; a failure in a Transient bounce is a delay."""
    diag = collapse(scrub(str(r.get("diagnosticCode", "")), None))
    code, status = codes(diag)
    given = STATUS_IN_TEXT_RE.search(str(r.get("status") or ""))
    status = ".".join(given.groups()) if given else status
    action = str(r.get("action", "failed")).lower()
    if bounce_type == "Transient" and action == "failed":
        action = "delayed"
    return RecipientOutcome(
        first_addr(str(r.get("emailAddress", ""))),
        action,
        status,
        code,
        diag,
        decide(action, code, status, diag),
    )
