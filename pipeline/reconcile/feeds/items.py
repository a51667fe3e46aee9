"""What every feed hands reconcile: an item (raw bytes and their format), and the feed's
interface (fetch, mark done, set aside, close)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

RFC822 = "rfc822"
SES_JSON = "ses-json"


class FeedError(RuntimeError):
    """A feed cannot be opened or read (bad URL, refused login, missing bucket)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    feed: str  # the feed's name, for logs and the ledger
    ref: str  # where the item sits in its feed (file name, UID, object key): never content
    data: bytes
    format: str  # RFC822 or SES_JSON


class Feed(Protocol):
    name: str
    # May an item of this feed name its statement by our Message-ID (or X-EOB-Statement) when
    # it carries no VERP token? Only a feed whose notifications are authenticated by where
    # they come from (SES via SQS or S3) should: anyone can mail a bounce mailbox a message
    # quoting a Message-ID. Set per feed URL with `?correlate=` (see `open_feed`).
    message_id_correlation: bool

    def fetch(self, limit: int) -> Iterator[FeedItem]:
        """Up to `limit` items not yet marked done or set aside."""
        ...

    def done(self, item: FeedItem) -> None: ...

    def set_aside(self, item: FeedItem, reason: str) -> None: ...

    def close(self) -> None: ...
