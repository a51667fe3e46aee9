"""Amazon feeds: raw messages or SES notifications in S3, SES notifications through SQS.

- `S3Feed` reads every object under a prefix: raw bounce messages (what an SES receipt rule's
  S3 action writes) or SES notification JSON (one per object, a JSON array, or NDJSON as
  Kinesis Firehose writes). A processed object is deleted (the ledger keeps its hash and
  outcome; a returned message may carry PHI, so it is not kept longer than needed); an
  unreadable one is copied under ``<set_aside_prefix>`` first.
- `SqsSesFeed` receives SES notifications from an SQS queue (subscribed to the SES SNS topic,
  with or without raw message delivery). A processed message is deleted; an unreadable one is
  left alone, so the queue's redrive policy moves it to its dead-letter queue.

boto3 clients are made in the feed (stateless, from the worker's IAM role or the standard AWS
variables); `endpoint_url` points them at a local S3/SQS-compatible server in tests.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from pipeline.reconcile.feeds.items import SES_JSON, FeedError, FeedItem

log = logging.getLogger(__name__)

SET_ASIDE_PREFIX = "eob-set-aside/"


def _client(service: str, region: str, endpoint_url: str | None) -> Any:
    import boto3

    return boto3.client(service, region_name=region, endpoint_url=endpoint_url)


class S3Feed:
    def __init__(self, bucket: str, prefix: str, *, item_format: str, region: str,
                 endpoint_url: str | None = None, set_aside_prefix: str = SET_ASIDE_PREFIX,
                 message_id_correlation: bool | None = None) -> None:
        if set_aside_prefix.startswith(prefix) and prefix:
            raise FeedError("the set-aside prefix must lie outside the feed's prefix")
        self.bucket, self.prefix, self.format = bucket, prefix, item_format
        self.name = "ses+s3" if item_format == SES_JSON else "s3"
        # SES writes its notifications itself; raw messages are whatever reached the mailbox.
        self.message_id_correlation = (item_format == SES_JSON if message_id_correlation is None
                                       else message_id_correlation)
        self.set_aside_prefix = set_aside_prefix
        self._s3 = _client("s3", region, endpoint_url)

    def fetch(self, limit: int) -> Iterator[FeedItem]:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            pages = self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"MaxItems": limit})
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])
                    if not obj["Key"].endswith("/") and not obj["Key"].startswith(self.set_aside_prefix)]
        except (BotoCoreError, ClientError) as exc:
            raise FeedError(f"S3 feed s3://{self.bucket}/{self.prefix}: {type(exc).__name__}") from None
        for key in keys[:limit]:
            try:
                body = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            except ClientError:  # deleted by a concurrent run meanwhile
                continue
            yield FeedItem(self.name, key, body, self.format)

    def done(self, item: FeedItem) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=item.ref)

    def set_aside(self, item: FeedItem, reason: str) -> None:
        self._s3.copy_object(Bucket=self.bucket, Key=self.set_aside_prefix + item.ref,
                             CopySource={"Bucket": self.bucket, "Key": item.ref},
                             Metadata={"eob-reason": reason[:200].encode("ascii", "replace").decode()},
                             MetadataDirective="REPLACE")
        self._s3.delete_object(Bucket=self.bucket, Key=item.ref)

    def close(self) -> None:
        return None


class SqsSesFeed:
    name = "ses+sqs"
    message_id_correlation = True  # notifications SES itself publishes, not Internet mail

    def __init__(self, queue_url: str, *, region: str, endpoint_url: str | None = None,
                 visibility_timeout: int = 300, message_id_correlation: bool | None = None) -> None:
        self.queue_url = queue_url
        if message_id_correlation is not None:
            self.message_id_correlation = message_id_correlation
        self._sqs = _client("sqs", region, endpoint_url)
        self._visibility = visibility_timeout
        self._receipts: dict[str, str] = {}

    def fetch(self, limit: int) -> Iterator[FeedItem]:
        from botocore.exceptions import BotoCoreError, ClientError

        fetched = 0
        while fetched < limit:
            try:
                reply = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=min(10, limit - fetched),
                    WaitTimeSeconds=0, VisibilityTimeout=self._visibility)
            except (BotoCoreError, ClientError) as exc:
                raise FeedError(f"SQS feed: {type(exc).__name__}") from None
            messages = reply.get("Messages", [])
            if not messages:
                return
            for message in messages:
                fetched += 1
                self._receipts[message["MessageId"]] = message["ReceiptHandle"]
                yield FeedItem(self.name, message["MessageId"], message["Body"].encode("utf-8"),
                               SES_JSON)

    def done(self, item: FeedItem) -> None:
        receipt = self._receipts.pop(item.ref, None)
        if receipt is not None:
            self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)

    def set_aside(self, item: FeedItem, reason: str) -> None:
        # Left in the queue: after maxReceiveCount the redrive policy moves it to the DLQ.
        self._receipts.pop(item.ref, None)
        log.warning("ses+sqs: message %s set aside (%s); left for the dead-letter queue",
                    item.ref, reason[:100])

    def close(self) -> None:
        return None
