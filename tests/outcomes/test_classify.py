"""The classifier routes each failure to the queue a compliance reviewer expects."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from pipeline.outcomes.classify import (
    RULES_PATH,
    Category,
    Queue,
    classify,
    explain,
    for_category,
    load_rules,
    normalize_status,
    rule_table,
)

CASES = [
    # (reply code, enhanced status, diagnostic) → expected queue, expected category
    ((550, "5.1.1", "User unknown"), Queue.VERIFY, Category.USER_UNKNOWN),
    ((452, "4.2.2", "Mailbox full"), Queue.RETRY, Category.MAILBOX_FULL),
    ((552, "5.3.4", "message too big"), Queue.PAPER, Category.MESSAGE_TOO_LARGE),
    ((554, "5.7.1", "blocked using Spamhaus"), Queue.RETRY, Category.BLOCKED),
    ((421, "4.7.0", "Try again later, rate limited"), Queue.RETRY, Category.RATE_LIMITED),
    ((550, "5.7.1", "message content rejected"), Queue.PAPER, Category.CONTENT_REJECTED),
    ((550, "5.1.2", "Host unknown"), Queue.VERIFY, Category.DOMAIN_UNKNOWN),
    (
        (550, "5.2.1", "The email account that you tried to reach is disabled"),
        Queue.VERIFY,
        Category.MAILBOX_DISABLED,
    ),
    ((550, None, "Mailbox is frozen"), Queue.VERIFY, Category.MAILBOX_DISABLED),
    (
        (550, "5.7.26", "Unauthenticated email is not accepted due to domain's DMARC policy"),
        Queue.RETRY,
        Category.SECURITY,
    ),
    ((550, "5.7.1", "Message rejected: virus found in attachment"), Queue.PAPER, Category.SPAM_OR_VIRUS),
    ((554, "5.7.9", "Message not accepted for policy reasons"), Queue.PAPER, Category.POLICY),
    ((550, "5.4.7", "Delivery time expired"), Queue.RETRY, Category.EXPIRED),
    ((451, "4.4.1", "Connection timed out"), Queue.RETRY, Category.TRANSIENT),
    ((501, "5.1.8", "Sender address rejected"), Queue.RETRY, Category.BLOCKED),
    ((550, None, "Sender address rejected: Domain not found"), Queue.RETRY, Category.BLOCKED),
    ((250, "2.0.0", "OK queued"), Queue.IGNORE, Category.DELIVERED),
    # Servers that reuse 5.1.1 for throttling or block lists: the phrase wins.
    (
        (550, "5.1.1", "203.0.113.9 has sent to too many recipients this hour"),
        Queue.RETRY,
        Category.RATE_LIMITED,
    ),
    ((550, "5.1.1", "IP address blacklisted by recipient"), Queue.RETRY, Category.BLOCKED),
    # A temporary reply never condemns an address.
    ((451, "4.0.0", "DNS Error: Domain name not found"), Queue.RETRY, Category.TRANSIENT),
    ((450, None, "User unknown, try later"), Queue.RETRY, Category.TRANSIENT),
    # Unknown: permanent → verify (never resend blindly), 4xx → retry, nothing at all → ignore.
    ((550, None, "computer says no"), Queue.VERIFY, Category.UNKNOWN),
    ((451, None, "computer says no"), Queue.RETRY, Category.TRANSIENT),
    ((None, None, ""), Queue.IGNORE, Category.UNKNOWN),
]


@pytest.mark.parametrize(("args", "queue", "category"), CASES, ids=[str(c[0]) for c in CASES])
def test_representative_replies_route_to_the_expected_queue(args, queue, category):
    result = classify(*args)
    assert (result.queue, result.category) == (queue, category)


def test_recipient_caused_failures_are_verified_never_resent():
    result = classify(550, "5.1.1", "User unknown")
    assert result.recipient_caused and result.permanent
    for category, policy in rule_table().categories.items():
        if policy.recipient_caused:
            assert policy.queue is Queue.VERIFY, category
    assert not classify(554, "5.7.1", "blocked using Spamhaus").recipient_caused


def test_no_input_ever_sends_a_recipient_caused_failure_to_retry():
    codes = [None, 250, 421, 450, 550, 554]
    statuses = [None, "2.0.0", "4.2.2", "4.7.0", "5.1.1", "5.2.1", "5.7.1", "5.0.0"]
    texts = ["", "user unknown", "mailbox full", "blocked using dnsbl", "spam", "account disabled"]
    for code, status, text in itertools.product(codes, statuses, texts):
        result = classify(code, status, text)
        if result.recipient_caused:
            assert result.queue is Queue.VERIFY, (code, status, text)


def test_explain_names_the_rule_for_the_audit_trail():
    result, why = explain(550, "5.1.1", "User unknown")
    assert result.category is Category.USER_UNKNOWN
    assert "5.1.1" in why


def test_structural_categories_have_fixed_queues():
    assert for_category(Category.COMPLAINT).queue is Queue.IGNORE
    assert for_category(Category.AUTO_REPLY).queue is Queue.IGNORE
    assert for_category(Category.DELIVERED).queue is Queue.IGNORE


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.1.1", "5.1.1"),
        ("5.2.2 (Remote SMTP server has rejected address)", "5.2.2"),
        ("#5.1.10", "5.1.10"),
        ("", None),
        (None, None),
        ("undefined", None),
    ],
)
def test_status_codes_are_normalized(raw, expected):
    assert normalize_status(raw) == expected


def test_every_rule_says_why_so_compliance_can_read_the_table():
    table = load_rules(RULES_PATH)
    assert table.rules
    assert all(rule.why for rule in table.rules)
    assert set(table.categories) == set(Category)


def test_a_typo_in_the_table_fails_loudly(tmp_path: Path):
    text = RULES_PATH.read_text(encoding="utf-8")
    typo = tmp_path / "typo.toml"
    typo.write_text(text.replace('category = "user_unknown"', 'category = "user_unknwon"', 1))
    with pytest.raises(ValueError):
        load_rules(typo)
    upper = tmp_path / "upper.toml"
    upper.write_text(text.replace("'blocked using'", "'Blocked using'", 1))
    with pytest.raises(ValueError, match="lower case"):
        load_rules(upper)
