"""Reconcile: what became of each email. Outcomes arrive from feeds (bounce mailboxes, provider
events), are parsed and matched to their statement; addresses that failed are confirmed out of
band (verification) before any resend; and a sweeper makes every in-flight statement settle by
its run's delivery deadline, by email or on paper."""

from pipeline.reconcile.bounces import Bounce, UnparseableBounce, parse_bounce, parse_ses_notification
from pipeline.reconcile.feeds import (
    RFC822,
    SES_JSON,
    Feed,
    FeedError,
    FeedItem,
    configured_feeds,
    open_feed,
    split_documents,
)
from pipeline.reconcile.sweeper import RETURNED_MAIL, sweep, unsettled
from pipeline.reconcile.verification import (
    ImportResult,
    VerificationError,
    correct_contact,
    export_worklist,
    import_outcomes,
    resend_verified,
)

__all__ = [
    "RETURNED_MAIL",
    "RFC822", "SES_JSON", "Bounce", "Feed", "FeedError", "FeedItem", "ImportResult", "UnparseableBounce",
    "VerificationError", "configured_feeds", "correct_contact", "export_worklist", "import_outcomes",
    "open_feed", "parse_bounce", "parse_ses_notification", "resend_verified", "split_documents", "sweep",
    "unsettled",
]
