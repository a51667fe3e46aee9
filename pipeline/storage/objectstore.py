"""Where rendered statements live: a local folder by default, S3 with SSE-KMS in production.

Both sit behind one narrow interface so the stages never know which one they talk to.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse


class ObjectStoreError(RuntimeError):
    """The object store refused or lost an object; the message names the key."""


@dataclass(frozen=True, slots=True)
class StoredObject:
    key: str
    sha256: str
    size: int


class ObjectStore(Protocol):
    def put(self, key: str, data: bytes, content_type: str) -> StoredObject: ...
    def get(self, key: str) -> bytes: ...
    def exists(self, key: str) -> bool: ...
    def describe(self) -> str: ...


class LocalObjectStore:
    """A folder; writes are atomic (temp file + rename) so a crash never leaves half a PDF."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._resolved_root: Path | None = None  # on first use: the folder may come later

    def _path(self, key: str) -> Path:
        if self._resolved_root is None:
            self._resolved_root = self.root.resolve()
        path = (self._resolved_root / key).resolve()
        if not path.is_relative_to(self._resolved_root):
            raise ObjectStoreError(f"object key {key!r} escapes the store")
        return path

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return StoredObject(key, hashlib.sha256(data).hexdigest(), len(data))

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise ObjectStoreError(f"object {key} is not in the store at {self.root}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def describe(self) -> str:
        return str(self.root)


class S3ObjectStore:
    """S3 via boto3; every object is encrypted at rest with the configured KMS key."""

    def __init__(self, bucket: str, prefix: str, *, kms_key_id: str | None,
                 endpoint_url: str | None = None, client: Any = None) -> None:
        import boto3

        self.bucket, self.prefix, self.kms_key_id = bucket, prefix.strip("/"), kms_key_id
        self.client = client or boto3.client("s3", endpoint_url=endpoint_url)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        extra: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
        if self.kms_key_id:
            extra["SSEKMSKeyId"] = self.kms_key_id
        digest = hashlib.sha256(data).hexdigest()
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data,
                               ContentType=content_type, Metadata={"sha256": digest}, **extra)
        return StoredObject(key, digest, len(data))

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            raise ObjectStoreError(f"object {key} could not be read from s3://{self.bucket}: "
                                   f"{exc.response['Error'].get('Code')}") from None

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError:
            return False
        return True

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def open_store(url: str, *, kms_key_id: str | None = None,
               endpoint_url: str | None = None) -> ObjectStore:
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalObjectStore(Path(parsed.path))
    if parsed.scheme == "s3":
        return S3ObjectStore(parsed.netloc, parsed.path, kms_key_id=kms_key_id,
                             endpoint_url=endpoint_url)
    raise ObjectStoreError(f"object store URL must start with file:// or s3:// (got {parsed.scheme}://)")
