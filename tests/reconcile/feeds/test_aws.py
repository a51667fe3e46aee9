"""S3 and SQS feeds over real HTTP against moto's server mode (AWS itself cannot run here).

The feeds use plain boto3 clients with an endpoint URL, exactly as in production; only the
endpoint differs. Each test drives the whole reconcile stage through the feed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pipeline.delivery.suppression import is_suppressed
from pipeline.reconcile.feeds import open_feed
from pipeline.stages.reconcile import reconcile_stage
from tests.support.aws import moto_server
from tests.support.reconcile import (
    SECRET,
    add_sent,
    address,
    dsn,
    make_context,
    ses_notification,
    sid,
    status_of,
)

BUCKET = "eob-bounces"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    with moto_server("127.0.0.80") as url:
        yield url


def _client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(service, region_name="us-east-1", endpoint_url=endpoint)


@pytest.fixture
def bucket(moto_endpoint: str):  # type: ignore[no-untyped-def]
    s3 = _client("s3", moto_endpoint)
    s3.create_bucket(Bucket=BUCKET)
    yield s3
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
    s3.delete_bucket(Bucket=BUCKET)


def test_raw_messages_in_s3_are_routed_deleted_and_unreadable_ones_set_aside(
        tmp_path: Path, moto_endpoint: str, bucket) -> None:  # type: ignore[no-untyped-def]
    ctx = make_context(tmp_path, reconcile_feeds=[f"s3://{BUCKET}/inbound/"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    add_sent(ctx, 1)
    add_sent(ctx, 2)
    bucket.put_object(Bucket=BUCKET, Key="inbound/a1", Body=dsn(1))
    bucket.put_object(Bucket=BUCKET, Key="inbound/a2", Body=dsn(2, status="4.2.2",
                                                              diagnostic="452 4.2.2 mailbox full"))
    bucket.put_object(Bucket=BUCKET, Key="inbound/junk", Body=b"\x00 not mail")
    bucket.put_object(Bucket=BUCKET, Key="elsewhere/x", Body=dsn(2))
    assert reconcile_stage(ctx) == {"messages": 3, "routed_verify": 1, "routed_retry": 1, "unparseable": 1}
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("verification_pending", "retry_scheduled")
    keys = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket=BUCKET)["Contents"])
    assert keys == ["elsewhere/x", "eob-set-aside/inbound/junk"]
    assert reconcile_stage(ctx) == {"messages": 0}


def test_ses_notifications_from_sqs_are_routed_and_deleted(tmp_path: Path, moto_endpoint: str) -> None:
    sqs = _client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName="ses-events")["QueueUrl"]
    ctx = make_context(tmp_path, reconcile_feeds=[f"ses+sqs:{url}"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    for n in (1, 2, 3):
        add_sent(ctx, n)
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(1))
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(2, "Complaint"))
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(3, "Delivery", sns=False))
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(1))  # SNS delivered it twice
    result = reconcile_stage(ctx)
    assert result == {"messages": 4, "routed_verify": 1, "complaint": 1, "delivered": 1, "duplicate": 1}
    assert [status_of(ctx, n) for n in (1, 2, 3)] == ["verification_pending", "delivered", "delivered"]
    assert is_suppressed(ctx.ledger, address(1), SECRET) and is_suppressed(ctx.ledger, address(2), SECRET)
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                                    "ApproximateNumberOfMessagesNotVisible"])
    assert attrs["Attributes"] == {"ApproximateNumberOfMessages": "0",
                                   "ApproximateNumberOfMessagesNotVisible": "0"}


def test_ses_notifications_as_ndjson_objects_in_s3(tmp_path: Path, moto_endpoint: str, bucket) -> None:  # type: ignore[no-untyped-def]
    ctx = make_context(tmp_path, reconcile_feeds=[f"ses+s3://{BUCKET}/ses/"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    add_sent(ctx, 1)
    add_sent(ctx, 2)
    body = "\n".join([ses_notification(1, sns=False), ses_notification(2, "Delivery", sns=False)])
    bucket.put_object(Bucket=BUCKET, Key="ses/2026/12/01/firehose-1", Body=body.encode())
    assert reconcile_stage(ctx) == {"messages": 2, "routed_verify": 1, "delivered": 1}
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix="ses/")


def test_an_ses_notification_without_a_token_routes_by_message_id_but_never_suppresses(
        tmp_path: Path, moto_endpoint: str) -> None:
    """SES writes these notifications itself, so its feeds may correlate by our Message-ID."""
    sqs = _client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName="ses-unsigned")["QueueUrl"]
    ctx = make_context(tmp_path, reconcile_feeds=[f"ses+sqs:{url}"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    add_sent(ctx, 1)
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(1, verp=False))
    assert reconcile_stage(ctx) == {"messages": 1, "routed_verify": 1}
    assert status_of(ctx, 1) == "verification_pending"
    assert ctx.ledger.timeline(sid(1))[-2]["detail"]["correlation"] == "message_id"
    assert not is_suppressed(ctx.ledger, address(1), SECRET), "unsigned evidence suppressed an address"


def test_feeds_that_correlate_by_signed_token_only_record_an_unsigned_bounce_and_change_nothing(
        tmp_path: Path, moto_endpoint: str, bucket) -> None:  # type: ignore[no-untyped-def]
    """Raw messages in S3 are whatever reached the mailbox (token only by default); an SES feed
    set to `?correlate=verp` ignores the Message-ID too, and still drains its queue."""
    sqs = _client("sqs", moto_endpoint)
    url = sqs.create_queue(QueueName="ses-verp-only")["QueueUrl"]
    ctx = make_context(tmp_path, reconcile_feeds=[f"s3://{BUCKET}/inbound/", f"ses+sqs:{url}?correlate=verp"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    add_sent(ctx, 1)
    add_sent(ctx, 2)
    bucket.put_object(Bucket=BUCKET, Key="inbound/unsigned", Body=dsn(1, verp=False))
    sqs.send_message(QueueUrl=url, MessageBody=ses_notification(2, verp=False))
    assert reconcile_stage(ctx) == {"messages": 2, "ignored_unsigned": 2}
    assert (status_of(ctx, 1), status_of(ctx, 2)) == ("sent", "sent")
    assert not any(is_suppressed(ctx.ledger, address(n), SECRET) for n in (1, 2))
    assert "Contents" not in bucket.list_objects_v2(Bucket=BUCKET, Prefix="inbound/")
    assert reconcile_stage(ctx) == {"messages": 0}, "recorded items are not offered again"


def test_an_unreachable_feed_fails_the_task_after_the_others_ran(tmp_path: Path, moto_endpoint: str) -> None:
    from pipeline.reconcile.feeds import FeedError

    ctx = make_context(tmp_path, reconcile_feeds=["s3://no-such-bucket/x/",
                                                  f"maildir://{tmp_path / 'box'}"],
                       reconcile_aws_endpoint_url=moto_endpoint)
    with pytest.raises(FeedError, match="no-such-bucket"):
        reconcile_stage(ctx)
    assert open_feed(f"maildir://{tmp_path / 'box'}", ctx.settings).name == "maildir"
