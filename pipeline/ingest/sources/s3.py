"""Extracts on S3: one prefix per period, `s3://bucket/prefix/YYYY-MM/`, fetched with boto3.

Ingest reads local files (Parquet needs random access, and a retried task should not depend on
a half-read network stream), so the period's objects are downloaded first, streamed to disk in
parts by boto3 (bounded memory), into the run's work folder. A manifest of keys, sizes and ETags
is kept next to them for the audit trail. Messages name buckets, keys and problems, never content.

A problem retrying cannot fix (no such bucket, access denied, no extract files) is an
ExtractSourceError; one that may pass (a timeout, a failed or dropped connection, throttling, an
S3 server error, an object replaced during its download) is ExtractUnavailable, so the task
retries it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.ingest.sources.arrival import Arrival
from pipeline.ingest.sources.errors import ExtractSourceError, ExtractUnavailable
from pipeline.settings import is_extract_file

_PERIOD = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> S3Location:
        if not url.startswith("s3://"):
            raise ExtractSourceError(f"{url!r} is not an s3://bucket/prefix address")
        bucket, _, prefix = url[5:].partition("/")
        if not bucket:
            raise ExtractSourceError(f"{url!r} names no bucket")
        prefix = prefix.strip("/")
        return cls(bucket, f"{prefix}/" if prefix else "")

    def period(self, period: str) -> str:
        return f"{self.prefix}{period}/"

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


@dataclass(frozen=True, slots=True)
class S3Object:
    key: str
    size: int
    etag: str

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


def make_client(endpoint_url: str | None = None) -> Any:
    """An S3 client from the worker's credentials (IAM role or the standard AWS variables)."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url)


_PASSING_CODES = frozenset({"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException",
                            "RequestLimitExceeded", "InternalError", "ServiceUnavailable"})
"""S3 error codes of a problem that passes (besides every 5xx reply)."""


def _client_error(exc: Exception, where: str) -> ExtractSourceError | ExtractUnavailable:
    from botocore.exceptions import ConnectionError as Unreachable
    from botocore.exceptions import HTTPClientError, IncompleteReadError, SSLError

    response = getattr(exc, "response", None) or {}  # a timeout has a response attribute: None
    code = response.get("Error", {}).get("Code", type(exc).__name__)
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    dropped = (isinstance(exc, Unreachable | HTTPClientError | IncompleteReadError)
               and not isinstance(exc, SSLError))  # a certificate problem does not pass
    if dropped or code in _PASSING_CODES or status >= 500:
        return ExtractUnavailable(f"{where}: S3 could not be reached or did not answer in time ({code}); "
                                  "a retry may succeed")
    hint = {"NoSuchBucket": "the bucket does not exist",
            "AccessDenied": "access denied: check the worker's IAM role for s3:ListBucket, "
                            "s3:ListBucketMultipartUploads and s3:GetObject",
            "InvalidAccessKeyId": "the AWS access key is not valid"}.get(str(code), f"S3 error {code}")
    return ExtractSourceError(f"{where}: {hint}")


def list_periods(location: S3Location, client: Any) -> list[str]:
    """Periods (YYYY-MM "folders") present under the prefix, oldest first: what a DAG can discover."""
    from botocore.exceptions import BotoCoreError, ClientError

    found: set[str] = set()
    try:
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=location.bucket, Prefix=location.prefix, Delimiter="/")
        for page in pages:
            for common in page.get("CommonPrefixes", []):
                name = common["Prefix"][len(location.prefix):].strip("/")
                if _PERIOD.match(name):
                    found.add(name)
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, str(location)) from None
    return sorted(found)


def discover(location: S3Location, period: str, client: Any) -> list[S3Object]:
    """The extract objects of one period (directly under its prefix; sub-folders are ignored)."""
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = location.period(period)
    objects: list[S3Object] = []
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                name = key[len(prefix):]
                if not _directly_under(name):
                    continue
                objects.append(S3Object(key, int(item["Size"]), str(item.get("ETag", "")).strip('"')))
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, f"s3://{location.bucket}/{prefix}") from None
    if not objects:
        raise ExtractSourceError(f"s3://{location.bucket}/{prefix}: no extract files for period {period}")
    return sorted(objects, key=lambda o: o.key)


STALE_UPLOAD = timedelta(days=1)
"""A multipart upload unfinished for this long was abandoned (a failed transfer S3 keeps until
someone aborts it or a lifecycle rule does): it does not hold the extract back."""


def _directly_under(name: str) -> bool:
    """An extract file directly under the period prefix (not in a sub-folder)."""
    return "/" not in name and is_extract_file(name)


def period_arrival(location: S3Location, period: str, client: Any, marker: str | None,
                   now: datetime) -> Arrival:
    """What has arrived directly under the period's prefix: extract objects, the newest one's
    LastModified, the marker object, and multipart uploads still in progress (a large object
    appears only when its upload completes, with LastModified set to when the upload began; an
    upload begun more than STALE_UPLOAD ago is taken as abandoned). Lists only; a bucket that
    cannot be listed raises."""
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = location.period(period)
    files, newest, marker_present, uploading, abandoned = 0, None, None if marker is None else False, 0, 0
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=location.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                if name == marker:
                    marker_present = True
                elif _directly_under(name):
                    files += 1
                    newest = item["LastModified"] if newest is None else max(newest, item["LastModified"])
        paginator = client.get_paginator("list_multipart_uploads")
        for page in paginator.paginate(Bucket=location.bucket, Prefix=prefix):
            for upload in page.get("Uploads", []):
                if _directly_under(upload["Key"][len(prefix):]):
                    if now - upload["Initiated"] < STALE_UPLOAD:
                        uploading += 1
                    else:
                        abandoned += 1
    except (ClientError, BotoCoreError) as exc:
        raise _client_error(exc, f"s3://{location.bucket}/{prefix}") from None
    return Arrival(files, newest, marker_present, uploading, abandoned)


def fetch_period(url: str, period: str, dest: Path, *, client: Any = None,
                 endpoint_url: str | None = None) -> Path:
    """Download one period's extract objects into `dest` and return it (a local extract folder)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not _PERIOD.match(period):
        raise ExtractSourceError(f"period {period!r} is not YYYY-MM")
    location = S3Location.parse(url)
    client = client or make_client(endpoint_url)
    objects = discover(location, period, client)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.iterdir():
        if stale.is_file():
            stale.unlink()
    for item in objects:
        target = dest / item.name
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as handle:
                client.download_fileobj(location.bucket, item.key, handle)
        except (ClientError, BotoCoreError) as exc:
            partial.unlink(missing_ok=True)
            raise _client_error(exc, f"s3://{location.bucket}/{item.key}") from None
        size = partial.stat().st_size
        if size != item.size:
            partial.unlink(missing_ok=True)
            raise ExtractUnavailable(f"s3://{location.bucket}/{item.key}: downloaded {size} bytes, "
                                     f"expected {item.size}; the object changed during the download")
        partial.replace(target)
    manifest = [{"key": o.key, "size": o.size, "etag": o.etag} for o in objects]
    (dest / ".s3-manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return dest
