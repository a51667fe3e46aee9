"""Turning what a report says about one recipient into a classified `RecipientOutcome`."""

from __future__ import annotations

from pipeline.outcomes import Category, Classification, Queue, RecipientOutcome, classify, for_category

MAX_CLASSIFY_TEXT = 2000
NON_FAILURE_ACTIONS = frozenset({"delivered", "relayed", "expanded", "deliverable"})


def fixed(recipient: str, action: str, diagnostic: str, category: Category) -> RecipientOutcome:
    """An outcome decided by the report's structure (complaint, auto-reply, non-bounce)."""
    return RecipientOutcome(recipient, action, None, None, diagnostic, for_category(category))


def decide(
    action: str, reply_code: int | None, status: str | None, text: str, *, during: str | None = None
) -> Classification:
    """classify(), with the DSN action taken into account (a delay is never final, but an
    address the server calls bad stays recipient-caused: it is never a plain retry)."""
    if action in NON_FAILURE_ACTIONS:
        return for_category(Category.DELIVERED)
    result = classify(reply_code, status, text[:MAX_CLASSIFY_TEXT], during=during)
    if action == "delayed" and result.queue is not Queue.RETRY and not result.recipient_caused:
        return for_category(Category.EXPIRED, permanent=False)
    return result
