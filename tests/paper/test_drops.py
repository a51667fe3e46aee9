"""Delivering a print batch to the vendor's drop, as the vendor sees it, over each carrier.

The SFTP drop talks to a real OpenSSH server on loopback (tests/support/sshd.py), whose files are
this machine's, so the vendor's view is read straight from its folder; the S3 drop talks to moto's
server over real HTTP and the vendor's view is read with boto3; the folder drop is a folder. What
must hold, whatever the carrier: the vendor finds exactly the batch's files with the SHA-256 the
control file lists, the control file last; a file cut short by a crash is never visible under
its real name; a re-run completes a batch and duplicates nothing; a file already delivered is
never overwritten; the vendor's own files are read and archived once.

    python tests/paper/test_drops.py child URL KEY KNOWN_HOSTS BATCH CONTROL FILE...
delivers one batch over SFTP (the process the interruption test kills).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # the child: make the repository importable before anything else
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.paper.drops import (  # noqa: E402
    BatchInvalid,
    DropAccessDenied,
    DropConflict,
    DropUnreachable,
    HostKeyUnknown,
    VendorDrop,
    open_drop,
)
from tests.support import REPO  # noqa: E402
from tests.support.postfix import free_port  # noqa: E402
from tests.support.sshd import SshServer, keygen, requires_sshd  # noqa: E402

BATCH = "EOB-20261206-FIRST-001"
SSHD_HOST, MOTO_HOST = "127.0.0.90", "127.0.0.91"


# -- a batch as the paper stage writes it ----------------------------------------------------

@dataclass
class Batch:
    name: str
    files: list[Path]
    control: Path

    def control_files(self) -> dict[str, str]:
        """The SHA-256 the control file lists per data file (what the vendor checks)."""
        return {f["name"]: f["sha256"] for f in json.loads(self.control.read_bytes())["files"]}

    @property
    def names(self) -> set[str]:
        return {path.name for path in [*self.files, self.control]}


def write_batch(folder: Path, pdf: bytes, name: str = BATCH) -> Batch:
    """A print batch in the shape pipeline.paper.batches writes: PDF, manifest, control totals."""
    folder.mkdir(parents=True, exist_ok=True)
    pdf_path, manifest = folder / f"{name}.pdf", folder / f"{name}.manifest.csv"
    pdf_path.write_bytes(pdf)
    manifest.write_text("statement_id,sequence,sheets\nst-000001,1,2\nst-000002,2,1\n")
    files = [manifest, pdf_path]
    control = folder / f"{name}.control.json"
    control.write_text(json.dumps({
        "batch": name, "mail_class": "first", "pieces": 2, "sheets": 3, "pages": 6,
        "files": [{"name": p.name, "bytes": p.stat().st_size, "sha256": sha256(p.read_bytes())}
                  for p in files],
    }, indent=2) + "\n")
    return Batch(name, files, control)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


PDF = b"%PDF-2.0\n" + bytes(range(256)) * 400 + b"\n%%EOF\n"


# -- the drops, and the vendor's view of each --------------------------------------------------

@dataclass
class Vendor:
    """The drop as the vendor sees it, read and written without the code under test."""

    names: Callable[[str], list[str]]  # the file names in a folder ("" = the drop's own folder)
    content: Callable[[str], bytes]
    modified: Callable[[str], float]
    write: Callable[[str, bytes], None]
    remove: Callable[[str], None]
    clock: float = 0.0  # the resolution of `modified`, in seconds


@dataclass
class Carrier:
    url: str
    options: dict[str, Any]
    vendor: Vendor

    def open(self) -> VendorDrop:
        return open_drop(self.url, **self.options)


def folder_vendor(root: Path) -> Vendor:
    def names(folder: str) -> list[str]:
        path = root / folder
        return sorted(p.name for p in path.iterdir() if p.is_file()) if path.is_dir() else []

    def write(name: str, data: bytes) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)

    def remove(name: str) -> None:
        (root / name).unlink()

    return Vendor(names, lambda name: (root / name).read_bytes(),
                  lambda name: (root / name).stat().st_mtime_ns / 1e9, write, remove)


@pytest.fixture(scope="module")
def sshd() -> Iterator[SshServer]:
    with SshServer(SSHD_HOST) as server:
        yield server


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    from tests.support.aws import moto_server

    with moto_server(MOTO_HOST) as url:
        yield url


@pytest.fixture
def kms_key(moto: str) -> str:
    import boto3

    return str(boto3.client("kms", endpoint_url=moto).create_key()["KeyMetadata"]["Arn"])


def s3_carrier(moto: str, kms_key: str, bucket: str) -> Carrier:
    import boto3

    s3 = boto3.client("s3", endpoint_url=moto)
    s3.create_bucket(Bucket=bucket)
    prefix = "vendor/eob"

    def names(folder: str) -> list[str]:
        start = f"{prefix}/{folder}/" if folder else f"{prefix}/"
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=start, Delimiter="/").get("Contents", [])
        return sorted(item["Key"][len(start):] for item in listed)

    def content(name: str) -> bytes:
        return bytes(s3.get_object(Bucket=bucket, Key=f"{prefix}/{name}")["Body"].read())

    def modified(name: str) -> float:
        return float(s3.head_object(Bucket=bucket, Key=f"{prefix}/{name}")["LastModified"].timestamp())

    def write(name: str, data: bytes) -> None:
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{name}", Body=data)

    def remove(name: str) -> None:
        s3.delete_object(Bucket=bucket, Key=f"{prefix}/{name}")

    return Carrier(f"s3://{bucket}/{prefix}", {"s3_endpoint_url": moto, "s3_kms_key_id": kms_key},
                   Vendor(names, content, modified, write, remove, clock=1.0))


def sftp_carrier(sshd: SshServer, root: Path) -> Carrier:
    return Carrier(sshd.url(root), {"sftp_key_file": sshd.client_key, "sftp_known_hosts": sshd.known_hosts},
                   folder_vendor(root))


@pytest.fixture(params=["file", pytest.param("sftp", marks=requires_sshd), "s3"])
def carrier(request: pytest.FixtureRequest, tmp_path: Path) -> Carrier:
    root = tmp_path / "drop"
    root.mkdir()
    if request.param == "file":
        return Carrier(root.as_uri(), {}, folder_vendor(root))
    if request.param == "sftp":
        return sftp_carrier(request.getfixturevalue("sshd"), root)
    moto, kms_key = request.getfixturevalue("moto"), request.getfixturevalue("kms_key")
    return s3_carrier(moto, kms_key, f"eob-drop-{sha256(str(tmp_path).encode())[:10]}")


def assert_vendor_has_exactly(vendor: Vendor, batch: Batch) -> None:
    """The vendor's folder holds the batch's files, nothing else, each as the control file says."""
    assert vendor.names("") == sorted(batch.names)
    for name, digest in batch.control_files().items():
        assert sha256(vendor.content(name)) == digest
    assert vendor.content(batch.control.name) == batch.control.read_bytes()


# -- every carrier ----------------------------------------------------------------------------

def test_the_vendor_finds_exactly_the_batch_with_the_control_file_written_last(
        carrier: Carrier, tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "batch", PDF)
    with carrier.open() as drop:
        receipt = drop.deliver(batch.name, batch.files, batch.control)

    assert_vendor_has_exactly(carrier.vendor, batch)
    control_time = carrier.vendor.modified(batch.control.name)
    assert all(carrier.vendor.modified(path.name) <= control_time for path in batch.files)
    assert [(f.name, f.size, f.sha256) for f in receipt.files] == [
        (p.name, p.stat().st_size, sha256(p.read_bytes())) for p in [*batch.files, batch.control]]
    assert receipt.batch == batch.name and receipt.drop == drop.where


def test_a_rerun_completes_what_is_missing_and_changes_nothing_already_delivered(
        carrier: Carrier, tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "batch", PDF)
    with carrier.open() as drop:
        first = drop.deliver(batch.name, batch.files, batch.control)
        delivered_at = {name: carrier.vendor.modified(name) for name in batch.names}
        time.sleep(carrier.vendor.clock * 1.1)  # so that a second upload would show
        assert drop.deliver(batch.name, batch.files, batch.control) == first
        assert {name: carrier.vendor.modified(name) for name in batch.names} == delivered_at

    carrier.vendor.remove(batch.control.name)  # as if the first run had died before its control file
    with carrier.open() as drop:
        assert drop.deliver(batch.name, batch.files, batch.control) == first
    assert_vendor_has_exactly(carrier.vendor, batch)
    assert all(carrier.vendor.modified(path.name) == delivered_at[path.name] for path in batch.files)


def test_a_different_file_under_a_delivered_name_is_refused_and_the_vendor_keeps_its_copy(
        carrier: Carrier, tmp_path: Path) -> None:
    batch = write_batch(tmp_path / "batch", PDF)
    with carrier.open() as drop:
        drop.deliver(batch.name, batch.files, batch.control)
    rebuilt = write_batch(tmp_path / "rebuilt", PDF[:100] + b"X" + PDF[101:])  # same size, other bytes

    with carrier.open() as drop, pytest.raises(DropConflict) as refused:
        drop.deliver(rebuilt.name, rebuilt.files, rebuilt.control)
    message = str(refused.value)
    assert f"{BATCH}.pdf" in message and BATCH in message and drop.where in message
    assert "new batch name" in message  # what the operator does next
    assert_vendor_has_exactly(carrier.vendor, batch)  # the first batch, untouched


def test_vendor_files_are_listed_read_and_archived_once(carrier: Carrier) -> None:
    vendor = carrier.vendor
    vendor.write("outbound/ACK-EOB-20261206-FIRST-001.csv", b"batch,status\nEOB-20261206-FIRST-001,ok\n")
    vendor.write("outbound/MAILED-20261207.csv", b"statement_id,mail_date\n")
    vendor.write("outbound/.TRACKING-20261207.csv.tmp", b"still being written")
    with carrier.open() as drop:
        listed = drop.incoming()
        assert [f.name for f in listed] == ["ACK-EOB-20261206-FIRST-001.csv", "MAILED-20261207.csv"]
        assert listed[0].size == len(b"batch,status\nEOB-20261206-FIRST-001,ok\n")
        assert drop.read(listed[0].name) == b"batch,status\nEOB-20261206-FIRST-001,ok\n"
        drop.archive(listed[0].name)
        drop.archive(listed[0].name)  # a retried task archives it again: nothing happens
        assert [f.name for f in drop.incoming()] == ["MAILED-20261207.csv"]
        assert drop.incoming("tracking") == []  # a folder the vendor has not created yet
    assert vendor.names("outbound/processed") == ["ACK-EOB-20261206-FIRST-001.csv"]
    assert vendor.content("outbound/processed/ACK-EOB-20261206-FIRST-001.csv").endswith(b",ok\n")


# -- SFTP: a real OpenSSH server ----------------------------------------------------------------

@requires_sshd
@pytest.mark.slow
def test_a_delivery_killed_mid_upload_shows_the_vendor_no_batch_and_a_rerun_completes_it(
        sshd: SshServer, tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    pdf = os.urandom(64 << 20)
    batch, carrier = write_batch(tmp_path / "batch", pdf), sftp_carrier(sshd, root)
    part = root / f".{BATCH}.pdf.part"
    child = subprocess.Popen(
        [sys.executable, __file__, "child", carrier.url, str(sshd.client_key), str(sshd.known_hosts),
         batch.name, str(batch.control), *map(str, batch.files)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        cut_at = wait_until_growing(part, child)
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=30)
    assert 0 < cut_at < len(pdf)

    visible = [name for name in os.listdir(root) if not name.startswith(".")]
    assert batch.control.name not in visible  # the vendor acts on no batch
    for name in visible:  # and whatever it can see under a real name is whole
        assert (root / name).read_bytes() == (batch.control.parent / name).read_bytes()
    assert f"{BATCH}.pdf" not in visible

    with carrier.open() as drop:
        receipt = drop.deliver(batch.name, batch.files, batch.control)
    assert_vendor_has_exactly(carrier.vendor, batch)  # no .part left, nothing twice
    assert receipt.files[-1].name == batch.control.name


def wait_until_growing(part: Path, child: subprocess.Popen[bytes]) -> int:
    """The size of ``part`` once the child is seen writing it (bigger than at the last look)."""
    deadline, last = time.monotonic() + 60, 0
    while time.monotonic() < deadline:
        if child.poll() is not None:
            out, err = child.communicate()
            pytest.fail(f"the delivery ended (exit {child.returncode}) before it could be killed "
                        f"mid-upload:\n{out.decode()}{err.decode()}")
        size = part.stat().st_size if part.exists() else 0
        if last and size > last:
            return size
        last = size
        time.sleep(0.002)
    pytest.fail(f"{part.name} never grew on the server")


def child(url: str, key: str, known_hosts: str, batch: str, control: str, *files: str) -> None:
    with open_drop(url, sftp_key_file=Path(key), sftp_known_hosts=Path(known_hosts)) as drop:
        print(drop.deliver(batch, [Path(f) for f in files], Path(control)), flush=True)


@requires_sshd
def test_a_server_whose_host_key_is_not_the_known_one_is_refused(sshd: SshServer, tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    impostor = keygen(tmp_path / "impostor_ed25519", "impostor")
    changed = tmp_path / "known_hosts_changed"  # the host is known, with another key
    changed.write_text(f"[{sshd.host}]:{sshd.port} {impostor}\n")
    unknown = tmp_path / "known_hosts_unknown"  # the host is not known at all
    unknown.write_text(f"[127.0.0.99]:{sshd.port} {impostor}\n")
    for known_hosts in (changed, unknown):
        with pytest.raises(HostKeyUnknown) as refused:
            open_drop(sshd.url(root), sftp_key_file=sshd.client_key, sftp_known_hosts=known_hosts)
        assert sshd.host in str(refused.value) and str(known_hosts) in str(refused.value)
        assert "fingerprint" in str(refused.value)
    assert not os.listdir(root)


@requires_sshd
def test_a_key_the_server_does_not_know_is_access_denied(sshd: SshServer, tmp_path: Path) -> None:
    keygen(tmp_path / "stranger_ed25519", "stranger")
    with pytest.raises(DropAccessDenied, match=f"sftp://{sshd.host}:{sshd.port}.*sftp_key_file"):
        open_drop(sshd.url(tmp_path), sftp_key_file=tmp_path / "stranger_ed25519",
                  sftp_known_hosts=sshd.known_hosts)


@requires_sshd
def test_a_drop_nobody_answers_is_unreachable(sshd: SshServer, tmp_path: Path) -> None:
    url = f"sftp://{sshd.user}@{sshd.host}:{free_port(sshd.host)}/drop"
    with pytest.raises(DropUnreachable, match=f"{sshd.host}.*Re-run when it is reachable"):
        open_drop(url, sftp_key_file=sshd.client_key, sftp_known_hosts=sshd.known_hosts)


# -- S3 -------------------------------------------------------------------------------------------

def test_every_object_in_an_s3_drop_is_encrypted_with_the_kms_key(
        moto: str, kms_key: str, tmp_path: Path) -> None:
    import boto3

    carrier = s3_carrier(moto, kms_key, "eob-drop-sse")
    batch = write_batch(tmp_path / "batch", PDF)
    carrier.vendor.write("outbound/ACK-1.csv", b"ok\n")
    with carrier.open() as drop:
        drop.deliver(batch.name, batch.files, batch.control)
        drop.archive("ACK-1.csv")
    s3 = boto3.client("s3", endpoint_url=moto)
    for name in [*sorted(batch.names), "outbound/processed/ACK-1.csv"]:
        head = s3.head_object(Bucket="eob-drop-sse", Key=f"vendor/eob/{name}")
        assert (head["ServerSideEncryption"], head["SSEKMSKeyId"]) == ("aws:kms", kms_key), name


def test_an_s3_bucket_that_does_not_exist_is_a_configuration_error(moto: str) -> None:
    from pipeline.paper.drops import DropMisconfigured

    with pytest.raises(DropMisconfigured, match="bucket eob-no-such-bucket does not exist"):
        open_drop("s3://eob-no-such-bucket/vendor", s3_endpoint_url=moto)


# -- refused before anything is sent ----------------------------------------------------------------

def test_a_batch_the_vendor_could_not_take_as_one_is_refused_before_anything_is_sent(tmp_path: Path) -> None:
    root = tmp_path / "drop"
    root.mkdir()
    batch = write_batch(tmp_path / "batch", PDF)
    with open_drop(root.as_uri()) as drop:
        with pytest.raises(BatchInvalid, match="missing"):
            drop.deliver(batch.name, [*batch.files, tmp_path / "batch" / "absent.pdf"], batch.control)
        with pytest.raises(BatchInvalid, match="twice"):
            drop.deliver(batch.name, [*batch.files, batch.files[0]], batch.control)
        hidden = tmp_path / "batch" / ".hidden.pdf"
        hidden.write_bytes(PDF)
        with pytest.raises(BatchInvalid, match="plain file name"):
            drop.deliver(batch.name, [hidden], batch.control)
        with pytest.raises(BatchInvalid, match="no data files"):
            drop.deliver(batch.name, [], batch.control)
    assert not os.listdir(root)


def test_a_drop_url_is_checked_before_connecting(tmp_path: Path) -> None:
    from pipeline.paper.drops import DropMisconfigured

    key = tmp_path / "key"
    key.write_text("not used")
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("ftp://vendor.example/drop", {}, "file://, sftp:// or s3://"),
        ("sftp://eob:secret@vendor.example/drop", {"sftp_key_file": key, "sftp_known_hosts": key},
         "key authentication only"),
        ("sftp://eob@vendor.example/drop", {"sftp_key_file": key}, "sftp_known_hosts"),
        ("sftp://vendor.example/drop", {"sftp_key_file": key, "sftp_known_hosts": key}, "login and host"),
    ]
    for url, options, says in cases:
        with pytest.raises(DropMisconfigured, match=says):
            open_drop(url, **options)
    with pytest.raises(DropUnreachable, match="does not exist"):
        open_drop((tmp_path / "not-mounted").as_uri())


if __name__ == "__main__":
    if sys.argv[1] == "child":
        child(*sys.argv[2:])
