"""One recipient's outcome as a report states it, with the classification that routes it.

Bounce parsing produces it; routing picks the one that decides for a statement.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.outcomes.classify import Classification


@dataclass(frozen=True, slots=True)
class RecipientOutcome:
    recipient: str  # the failed recipient address (lower-cased)
    action: str  # "failed", "delayed", "delivered", "relayed", "expanded" or "" when unknown
    status: str | None  # enhanced status "5.1.1" when known
    reply_code: int | None  # 550 when known
    diagnostic: str  # remote server's reply text, whitespace-collapsed, at most 300 chars
    classification: Classification
