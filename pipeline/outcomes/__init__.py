"""Outcomes: what a delivery failure means (category, queue, pool action) and the ledger
moves it leads to (verification, retry or paper), shared by send time and bounces."""

from pipeline.outcomes.classify import (
    Category,
    Classification,
    PoolAction,
    Queue,
    classify,
    for_category,
    pool_action,
)
from pipeline.outcomes.recipient_outcome import RecipientOutcome
from pipeline.outcomes.routing import (
    DeliveryWindow,
    RetryPolicy,
    deciding_outcome,
    is_sender_caused,
    retry_or_paper,
    route,
    to_paper,
)

__all__ = [
    "Category", "Classification", "DeliveryWindow", "PoolAction", "Queue", "RecipientOutcome",
    "RetryPolicy", "classify", "deciding_outcome", "for_category", "is_sender_caused", "pool_action",
    "retry_or_paper", "route", "to_paper",
]
