"""The outcomes room's public surface, and its place below the rooms that use it."""

from __future__ import annotations

import subprocess
import sys

import pipeline.outcomes as outcomes
from pipeline.outcomes import Category, Queue, RecipientOutcome, deciding_outcome, for_category
from tests.support import REPO


def test_every_exported_name_resolves() -> None:
    assert sorted(outcomes.__all__) == sorted(set(outcomes.__all__))
    for name in outcomes.__all__:
        assert getattr(outcomes, name) is not None, name


def test_outcomes_imports_nothing_from_reconcile_or_delivery() -> None:
    """Reconcile and delivery sit above outcomes: importing outcomes must not load them."""
    code = (
        "import sys, pipeline.outcomes; "
        "print(sorted(m for m in sys.modules if m.startswith(('pipeline.reconcile', 'pipeline.delivery'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_deciding_outcome_prefers_own_domain_then_severity() -> None:
    def outcome(recipient: str, category: Category) -> RecipientOutcome:
        return RecipientOutcome(recipient, "failed", None, None, "", for_category(category))

    other = outcome("a@elsewhere.example", Category.USER_UNKNOWN)
    own_retry = outcome("b@member.example", Category.MAILBOX_FULL)
    own_verify = outcome("c@member.example", Category.USER_UNKNOWN)
    assert deciding_outcome([], "member.example") is None
    assert deciding_outcome([other, own_retry], "member.example") is own_retry
    assert deciding_outcome([own_retry, own_verify, other], "member.example") is own_verify
    without_domain = deciding_outcome([own_retry, other], None)
    assert without_domain is not None and without_domain.classification.queue is Queue.VERIFY
