"""Where delivery outcomes come from: bounce mailboxes and provider event feeds.

Every feed hands reconcile the same thing, a `FeedItem` (raw bytes plus their format), and
learns back what became of it: `done` (processed, never offered again) or `set_aside` (could
not be read; kept where an operator can look, never retried in a loop). Reconcile records each
item's hash and outcome in the ledger, so an item offered twice (a crash between processing
and `done`, an SQS redelivery) changes nothing the second time.

Feeds are chosen by URL (`EOB_RECONCILE_FEEDS`, a JSON list):

| URL | feed |
| --- | --- |
| `maildir:///var/mail/bounces` (or a bare path) | a Maildir: new/ → cur/, unreadable → .set-aside |
| `imaps://user@host:993/INBOX`, `imap://user@host:143/INBOX` | IMAP over TLS (imap:// must offer STARTTLS) |
| `s3://bucket/prefix/` | raw messages an SES receipt rule (or any MTA) writes to S3 |
| `ses+s3://bucket/prefix/` | SES notifications as JSON objects (one per object, or NDJSON) |
| `ses+sqs:https://sqs.region.amazonaws.com/123456789012/queue` | SES notifications via SNS → SQS |

Any URL (except a bare path) may end in `?correlate=verp` or `?correlate=message_id`: whether an
item without a VERP token may name its statement by our Message-ID or X-EOB-Statement header.
Mailbox feeds (Maildir, IMAP, raw messages in S3) default to `verp`, because anyone can mail a
bounce mailbox a message quoting a Message-ID; SES feeds (`ses+s3`, `ses+sqs`) default to
`message_id`, because SES itself writes those notifications.

Nothing here logs message content: only feed names, counts and item references.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, parse_qsl, unquote, urlencode, urlparse

from pipeline.reconcile.feeds.items import RFC822, SES_JSON, Feed, FeedError, FeedItem

if TYPE_CHECKING:
    from pipeline.settings import Settings

__all__ = ["RFC822", "SES_JSON", "Feed", "FeedError", "FeedItem", "configured_feeds", "open_feed",
           "split_documents"]

# The values of a feed URL's `correlate` option: may an item without a VERP token be matched
# by our Message-ID or X-EOB-Statement (True), or only by a signed token (False)?
_CORRELATE = {"verp": False, "message_id": True}


def _correlation(query: str) -> bool | None:
    """The `correlate` option of a feed URL's query; None when absent (the feed kind's default)."""
    values = set(parse_qs(query).get("correlate", []))
    if not values:
        return None
    if len(values) > 1 or not values <= _CORRELATE.keys():
        raise FeedError(f"a feed URL's correlate option must be one of {', '.join(_CORRELATE)}, "
                        f"not {', '.join(sorted(values))!r}")
    return _CORRELATE[values.pop()]


def open_feed(url: str, settings: Settings) -> Feed:
    """A feed for one URL of `EOB_RECONCILE_FEEDS` (see the module docstring)."""
    if url.startswith("ses+sqs:"):
        from pipeline.reconcile.feeds.aws import SqsSesFeed

        queue = urlparse(url.removeprefix("ses+sqs:"))
        rest = [(k, v) for k, v in parse_qsl(queue.query, keep_blank_values=True) if k != "correlate"]
        return SqsSesFeed(queue._replace(query=urlencode(rest)).geturl(),
                          region=settings.reconcile_aws_region,
                          endpoint_url=settings.reconcile_aws_endpoint_url,
                          message_id_correlation=_correlation(queue.query))
    parsed = urlparse(url)
    scheme = parsed.scheme or "maildir"
    correlation = _correlation(parsed.query) if parsed.scheme else None
    if scheme == "maildir":
        from pipeline.reconcile.feeds.maildir import MaildirFeed

        return MaildirFeed(Path(unquote(parsed.path) if parsed.scheme else url),
                           message_id_correlation=correlation)
    if scheme in ("imap", "imaps"):
        from pipeline.reconcile.feeds.imap import ImapFeed

        if not parsed.hostname or not parsed.username:
            raise FeedError("an IMAP feed URL needs user@host")
        password = settings.reconcile_imap_password
        if password is None:
            raise FeedError("EOB_RECONCILE_IMAP_PASSWORD is not set for the IMAP feed")
        options = parse_qs(parsed.query)
        return ImapFeed(parsed.hostname, parsed.port or (993 if scheme == "imaps" else 143),
                        user=unquote(parsed.username), password=password.get_secret_value(),
                        folder=unquote(parsed.path.lstrip("/")) or "INBOX",
                        implicit_tls=scheme == "imaps", ca_file=settings.reconcile_imap_ca_file,
                        processed_folder=options.get("processed", ["EOB-Processed"])[0],
                        set_aside_folder=options.get("set_aside", ["EOB-SetAside"])[0],
                        message_id_correlation=correlation)
    if scheme in ("s3", "ses+s3"):
        from pipeline.reconcile.feeds.aws import S3Feed

        if not parsed.netloc:
            raise FeedError("an S3 feed URL needs a bucket: s3://bucket/prefix/")
        return S3Feed(parsed.netloc, parsed.path.lstrip("/"),
                      item_format=SES_JSON if scheme == "ses+s3" else RFC822,
                      region=settings.reconcile_aws_region,
                      endpoint_url=settings.reconcile_aws_endpoint_url,
                      message_id_correlation=correlation)
    raise FeedError(f"unknown feed URL scheme {scheme!r}")


def configured_feeds(settings: Settings) -> list[str]:
    """The feed URLs to read; the bounce Maildir when none are configured."""
    return list(settings.reconcile_feeds) or [f"maildir://{settings.maildir.resolve()}"]


def split_documents(item: FeedItem) -> list[bytes]:
    """One raw message, or each SES notification of a JSON array / NDJSON object."""
    if item.format != SES_JSON:
        return [item.data]
    text = item.data.strip()
    if text.startswith(b"["):
        import json

        try:
            values = json.loads(text)
        except ValueError:
            return [item.data]
        return [json.dumps(v).encode() for v in values] if isinstance(values, list) else [item.data]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) > 1 and all(line.startswith(b"{") and line.endswith(b"}") for line in lines):
        return lines
    return [item.data]
