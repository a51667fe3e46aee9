"""Feed URLs: which feeds may correlate a message without a VERP token by our Message-ID.

Only the feed objects are built here (no server is contacted); the tests in
`tests/stages/test_reconcile.py` and `test_aws.py` drive the whole stage through such feeds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.reconcile.feeds import FeedError, open_feed
from tests.support.reconcile import make_settings

SQS = "https://sqs.us-east-1.amazonaws.com/123456789012/ses-events"


@pytest.mark.parametrize(("url", "allowed"), [
    ("maildir://{tmp}/box", False),
    ("{tmp}/box", False),
    ("imaps://bounces@imap.example.net:993/INBOX", False),
    ("imap://bounces@imap.example.net:143/INBOX", False),
    ("s3://eob-bounces/inbound/", False),
    ("ses+s3://eob-bounces/ses/", True),
    (f"ses+sqs:{SQS}", True),
    ("maildir://{tmp}/box?correlate=message_id", True),
    ("imaps://bounces@imap.example.net:993/INBOX?processed=Done&correlate=message_id", True),
    ("s3://eob-bounces/inbound/?correlate=message_id", True),
    ("ses+s3://eob-bounces/ses/?correlate=verp", False),
    (f"ses+sqs:{SQS}?correlate=verp", False),
])
def test_mailbox_feeds_take_signed_tokens_only_and_ses_feeds_the_message_id_unless_the_url_says(
        tmp_path: Path, url: str, allowed: bool) -> None:
    settings = make_settings(tmp_path, reconcile_imap_password="imap-password")
    feed = open_feed(url.format(tmp=tmp_path), settings)
    assert feed.message_id_correlation is allowed
    feed.close()


def test_the_correlate_option_is_not_part_of_the_queue_url(tmp_path: Path) -> None:
    from pipeline.reconcile.feeds.aws import SqsSesFeed

    feed = open_feed(f"ses+sqs:{SQS}?correlate=verp", make_settings(tmp_path))
    assert isinstance(feed, SqsSesFeed) and feed.queue_url == SQS


def test_an_unknown_correlate_value_is_refused_with_the_values_it_takes(tmp_path: Path) -> None:
    with pytest.raises(FeedError, match="correlate option must be one of verp, message_id"):
        open_feed(f"maildir://{tmp_path}/box?correlate=anything", make_settings(tmp_path))
