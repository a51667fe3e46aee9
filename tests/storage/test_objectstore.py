"""The object store a run's PDFs live in: a local folder, or S3 with SSE-KMS.

S3 is exercised over real HTTP against moto's server mode (AWS cannot be reached from a test):
what the production store sends is what moto records, including the encryption headers.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest

from pipeline.storage.objectstore import (
    LocalObjectStore,
    ObjectStoreError,
    S3ObjectStore,
    open_store,
)
from tests.support.aws import moto_server

PDF = b"%PDF-2.0\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with moto_server("127.0.0.81") as url:
        yield url


@pytest.fixture
def bucket(endpoint: str) -> str:
    s3 = boto3.client("s3", endpoint_url=endpoint)
    name = f"eob-objects-{hashlib.sha256(str(id(s3)).encode()).hexdigest()[:8]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def kms_key(endpoint: str) -> str:
    return str(boto3.client("kms", endpoint_url=endpoint).create_key()["KeyMetadata"]["Arn"])


def test_s3_store_encrypts_every_object_with_the_configured_kms_key(
        endpoint: str, bucket: str, kms_key: str) -> None:
    store = open_store(f"s3://{bucket}/runs/2026-11", kms_key_id=kms_key, endpoint_url=endpoint)
    assert isinstance(store, S3ObjectStore)
    stored = store.put("st-1.pdf", PDF, "application/pdf")
    assert (stored.sha256, stored.size) == (hashlib.sha256(PDF).hexdigest(), len(PDF))

    head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket=bucket, Key="runs/2026-11/st-1.pdf")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == kms_key
    assert head["ContentType"] == "application/pdf"
    assert head["Metadata"] == {"sha256": stored.sha256}
    assert store.get("st-1.pdf") == PDF
    assert store.exists("st-1.pdf") and not store.exists("st-2.pdf")
    assert store.describe() == f"s3://{bucket}/runs/2026-11"


def test_without_a_key_id_s3_still_encrypts_with_the_account_kms_key(endpoint: str, bucket: str) -> None:
    store = open_store(f"s3://{bucket}", endpoint_url=endpoint)
    store.put("st-1.pdf", PDF, "application/pdf")
    head = boto3.client("s3", endpoint_url=endpoint).head_object(Bucket=bucket, Key="st-1.pdf")
    assert head["ServerSideEncryption"] == "aws:kms"


def test_a_missing_s3_object_fails_naming_the_key_and_bucket(endpoint: str, bucket: str) -> None:
    store = open_store(f"s3://{bucket}/runs", endpoint_url=endpoint)
    with pytest.raises(ObjectStoreError, match=f"object st-9.pdf could not be read from s3://{bucket}"):
        store.get("st-9.pdf")


def test_local_store_keeps_objects_in_a_folder_and_refuses_keys_that_leave_it(tmp_path: Path) -> None:
    store = open_store((tmp_path / "objects").as_uri())
    assert isinstance(store, LocalObjectStore)
    stored = store.put("2026-11/st-1.pdf", PDF, "application/pdf")
    assert (tmp_path / "objects" / "2026-11" / "st-1.pdf").read_bytes() == PDF
    assert store.get("2026-11/st-1.pdf") == PDF and stored.sha256 == hashlib.sha256(PDF).hexdigest()
    with pytest.raises(ObjectStoreError):
        store.put("../outside.pdf", PDF, "application/pdf")
    with pytest.raises(ObjectStoreError, match="st-2.pdf"):
        store.get("st-2.pdf")


def test_local_store_writes_again_into_a_folder_removed_since_its_last_write(tmp_path: Path) -> None:
    store = open_store((tmp_path / "objects").as_uri())
    store.put("2026-11/001/st-1.pdf", PDF, "application/pdf")
    shutil.rmtree(tmp_path / "objects" / "2026-11")
    store.put("2026-11/001/st-2.pdf", PDF, "application/pdf")
    assert store.get("2026-11/001/st-2.pdf") == PDF


def test_an_unknown_store_url_is_refused_with_the_schemes_it_takes() -> None:
    with pytest.raises(ObjectStoreError, match="file:// or s3://"):
        open_store("ftp://host/objects")
