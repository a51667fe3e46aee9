"""Delivering a print batch to the vendor's drop, and reading the vendor's files back.

A drop is a URL: ``sftp://user@host:port/path`` (the vendor's SFTP server; ``/~/path`` is relative
to the login's home), ``s3://bucket/prefix`` (a bucket the vendor reads), or ``file:///path`` (a
local or mounted folder, such as the vendor simulator's)::

    with open_drop(url, sftp_key_file=key, sftp_known_hosts=known_hosts) as drop:
        receipt = drop.deliver(batch.name, batch.files, batch.control)
        for vendor_file in drop.incoming():        # acknowledgements, mail dates, tracking
            record(drop.read(vendor_file.name))
            drop.archive(vendor_file.name)         # to outbound/processed/: handled once

The rules every drop keeps (control file last, nothing ever overwritten, a re-run completes and
never duplicates) are in `_drop_base`. How each carrier makes a file appear whole:
- folder and SFTP: the file is written as ``.<name>.part`` (a dot name the vendor ignores), its
  size checked, then renamed into place by a rename that refuses an existing target: a hard link
  locally, and SFTP's standard RENAME, not OpenSSH's posix-rename, which would replace it.
- S3: an object is visible only once its PUT completes, so there is no temporary key. The PUT
  carries ``If-None-Match: *`` (S3 refuses to replace an existing key), the file's SHA-256 as
  ``ChecksumSHA256`` (S3 refuses a body that does not match it) and SSE-KMS with the configured
  key. Data objects are written first and the control object last.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import os
import posixpath
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

from pipeline.paper._drop_base import (
    CHUNK,
    MISSING,
    UNREACHABLE,
    BatchInvalid,
    DeliveredFile,
    DropAccessDenied,
    DropConflict,
    DropError,
    DropMisconfigured,
    DropReceipt,
    DropUnreachable,
    HostKeyUnknown,
    VendorDrop,
    VendorFile,
    copy_checked,
    sha256_of,
    temp_name,
)

__all__ = [
    "BatchInvalid", "DeliveredFile", "DropAccessDenied", "DropConflict", "DropError", "DropMisconfigured",
    "DropReceipt", "DropUnreachable", "HostKeyUnknown", "VendorDrop", "VendorFile", "open_drop",
]

TIMEOUT = 30.0
"""Seconds to connect, to authenticate, and for any one SFTP or S3 request to answer."""


def open_drop(url: str, *, sftp_key_file: Path | None = None, sftp_known_hosts: Path | None = None,
              s3_kms_key_id: str | None = None, s3_endpoint_url: str | None = None,
              region: str = "us-east-1") -> VendorDrop:
    """The drop at ``url``, connected: an unreachable drop, an unknown host key or refused
    credentials surface here, before any batch file is sent."""
    parsed = urlsplit(url)
    path = unquote(parsed.path)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise DropMisconfigured("a file:// drop names a local folder (file:///path); mount a remote "
                                    "share and name its mount point")
        return _FolderDrop(Path(path).absolute())
    if parsed.scheme == "sftp":
        user, host, port = _sftp_login(parsed)
        root = "." if path in ("", "/~", "/~/") else path.removeprefix("/~/")
        return _SftpDrop(user, host, port, root, _file_option(sftp_key_file, "sftp_key_file"),
                         _file_option(sftp_known_hosts, "sftp_known_hosts"))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise DropMisconfigured("an s3 drop URL names its bucket: s3://bucket/prefix")
        return _S3Drop(parsed.netloc, path.strip("/"), s3_kms_key_id, s3_endpoint_url, region)
    raise DropMisconfigured(f"a drop URL starts with file://, sftp:// or s3:// (got {parsed.scheme!r})")


def _sftp_login(parsed: SplitResult) -> tuple[str, str, int]:
    if parsed.password is not None:
        raise DropMisconfigured("the sftp drop URL carries a password; drops use key authentication "
                                "only: remove it from the URL and set sftp_key_file")
    try:
        port = parsed.port or 22
    except ValueError:
        raise DropMisconfigured("the sftp drop URL's port is not a number (sftp://user@host:port/path)") \
            from None
    if not parsed.username or not parsed.hostname:
        raise DropMisconfigured("an sftp drop URL names the login and host: sftp://user@host:port/path")
    return unquote(parsed.username), parsed.hostname, port


def _file_option(path: Path | None, option: str) -> Path:
    if path is None or not Path(path).is_file():
        raise DropMisconfigured(f"an sftp drop needs {option}, a readable file (got {path}): the client "
                                "key for sftp_key_file, the vendor's verified host key for sftp_known_hosts")
    return Path(path)


class _FolderDrop(VendorDrop):
    """A local or mounted folder. A file is flushed to disk before it is linked into place, and
    the folder after, so a power cut cannot leave a control file naming data that was lost."""

    def __init__(self, root: Path) -> None:
        self.root, self.where = root, root.as_uri()
        if not root.is_dir():
            raise DropUnreachable(f"the drop folder {root} does not exist: create it, or mount the "
                                  "vendor's share there")

    def close(self) -> None:
        pass

    def _size(self, name: str) -> int | None:
        try:
            return (self.root / name).stat().st_size
        except FileNotFoundError:
            return None

    def _sha256(self, name: str) -> str:
        return sha256_of(self.root / name).sha256

    def _send(self, path: Path, want: DeliveredFile) -> bool:
        temp, final = self.root / temp_name(want.name), self.root / want.name
        self._discard_temp(want.name)
        with temp.open("xb") as out:
            copy_checked(path, want, out.write)
            out.flush()
            os.fsync(out.fileno())
            self._check_stored(want, os.fstat(out.fileno()).st_size)
        try:
            os.link(temp, final)  # unlike a rename, a link never replaces what is there
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP):
                raise
            if final.exists():  # a share without hard links: check, then rename
                return False
            os.rename(temp, final)
        else:
            temp.unlink()
        _fsync_folder(self.root)
        return True

    def _discard_temp(self, name: str) -> None:
        (self.root / temp_name(name)).unlink(missing_ok=True)

    def _list(self, folder: str) -> list[VendorFile]:
        try:
            entries = list(os.scandir(self.root / folder))
        except FileNotFoundError:
            return []
        return [VendorFile(folder, entry.name, entry.stat().st_size,
                           datetime.fromtimestamp(entry.stat().st_mtime, UTC))
                for entry in entries
                if entry.is_file(follow_symlinks=False) and not entry.name.startswith(".")]

    def _read(self, path: str) -> bytes:
        return (self.root / path).read_bytes()

    def _archive(self, folder: str, name: str) -> None:
        source, done = self.root / folder / name, self.root / folder / "processed" / name
        if not source.exists() and done.exists():
            return
        done.parent.mkdir(exist_ok=True)
        os.replace(source, done)
        _fsync_folder(done.parent)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class _RefuseUnknownHost:
    """paramiko's missing-host-key policy: a key is trusted only once an operator has verified
    it with the vendor and put it in known_hosts, never on first sight."""

    def __init__(self, known_hosts: Path) -> None:
        self.known_hosts = known_hosts

    def missing_host_key(self, client: object, hostname: str, key: Any) -> None:
        raise HostKeyUnknown(
            f"the SFTP server {hostname} offered a {key.get_name()} host key {key.fingerprint} that is "
            f"not in {self.known_hosts}; nothing was sent to it. Confirm that fingerprint with the "
            f"vendor by another channel, then add the server's key for {hostname} to that file")


class _SftpDrop(VendorDrop):
    """The vendor's SFTP server: key authentication only, its host key checked against the
    known_hosts file, timeouts on connecting and on every request."""

    def __init__(self, user: str, host: str, port: int, root: str, key_file: Path,
                 known_hosts: Path) -> None:
        import paramiko

        shown = root if root.startswith("/") else "/~" if root == "." else f"/~/{root}"
        self.where = f"sftp://{host}:{port}{shown}"
        self._root, self._known_hosts = root, known_hosts
        self._client = paramiko.SSHClient()
        try:
            self._client.load_host_keys(str(known_hosts))
        except Exception as exc:
            raise DropMisconfigured(f"the known_hosts file {known_hosts} could not be read ({exc}); "
                                    "write it in OpenSSH's format ([host]:port keytype key)") from exc
        self._client.set_missing_host_key_policy(_RefuseUnknownHost(known_hosts))
        try:
            with self._errors(f"connecting as {user}"):
                self._client.connect(host, port, username=user, key_filename=str(key_file),
                                     allow_agent=False, look_for_keys=False, timeout=TIMEOUT,
                                     banner_timeout=TIMEOUT, auth_timeout=TIMEOUT,
                                     channel_timeout=TIMEOUT)
                self._sftp = self._client.open_sftp()
                self._sftp.get_channel().settimeout(TIMEOUT)
                self._sftp.stat(root)
        except BaseException:
            self._client.close()
            raise

    def close(self) -> None:
        self._client.close()

    def _path(self, *parts: str) -> str:
        return posixpath.join(self._root, *parts)

    def _classify(self, exc: Exception, doing: str) -> DropError | None:
        import paramiko

        if isinstance(exc, paramiko.BadHostKeyException):
            return HostKeyUnknown(
                f"{doing} on {self.where} refused: the server offered a {exc.key.get_name()} host key "
                f"{exc.key.fingerprint} that differs from the one in {self._known_hosts}; nothing was "
                "sent. It may not be the vendor's server: confirm the new fingerprint with the vendor "
                "by another channel before changing known_hosts")
        if isinstance(exc, paramiko.AuthenticationException):
            return self._failure(DropAccessDenied, doing, exc, "the server did not accept the key. Check "
                                 "sftp_key_file, and that the vendor installed its public key for this login")
        if isinstance(exc, paramiko.SSHException | paramiko.ssh_exception.NoValidConnectionsError):
            return self._failure(DropUnreachable, doing, exc, UNREACHABLE)
        return None

    def _size(self, name: str) -> int | None:
        try:
            return int(self._sftp.stat(self._path(name)).st_size)
        except FileNotFoundError:
            return None

    def _sha256(self, name: str) -> str:
        digest = hashlib.sha256()
        with self._sftp.open(self._path(name), "rb") as remote:
            remote.prefetch()
            while chunk := remote.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _send(self, path: Path, want: DeliveredFile) -> bool:
        temp, final = self._path(temp_name(want.name)), self._path(want.name)
        # a fresh file, not the stale one truncated: the server may still be writing the requests
        # an interrupted run left in flight into that one
        self._discard_temp(want.name)
        with self._sftp.open(temp, "wb") as remote:
            remote.set_pipelined(True)
            copy_checked(path, want, remote.write)
        self._check_stored(want, self._sftp.stat(temp).st_size)
        try:
            self._sftp.rename(temp, final)  # SFTP's standard rename fails when `final` exists
        except OSError:
            if self._size(want.name) is None:
                raise
            return False
        return True

    def _discard_temp(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._sftp.remove(self._path(temp_name(name)))

    def _list(self, folder: str) -> list[VendorFile]:
        try:
            entries = self._sftp.listdir_attr(self._path(folder))
        except FileNotFoundError:
            return []
        return [VendorFile(folder, entry.filename, int(entry.st_size),
                           datetime.fromtimestamp(entry.st_mtime, UTC))
                for entry in entries
                if stat.S_ISREG(entry.st_mode or 0) and not entry.filename.startswith(".")]

    def _read(self, path: str) -> bytes:
        with self._sftp.open(self._path(path), "rb") as remote:
            remote.prefetch()
            return bytes(remote.read())

    def _archive(self, folder: str, name: str) -> None:
        source, done = self._path(folder, name), self._path(folder, "processed", name)
        if self._size(f"{folder}/{name}") is None and self._size(f"{folder}/processed/{name}") is not None:
            return
        if self._size(f"{folder}/processed") is None:
            self._sftp.mkdir(self._path(folder, "processed"))
        try:
            self._sftp.posix_rename(source, done)  # replaces an older processed copy in one step
        except OSError:  # a server without OpenSSH's posix-rename extension
            if self._size(f"{folder}/processed/{name}") is not None:
                self._sftp.remove(done)
            self._sftp.rename(source, done)


class _S3Drop(VendorDrop):
    """A bucket prefix the vendor reads; every object is encrypted with SSE-KMS under the
    configured key (without one, the account's aws/s3 key)."""

    def __init__(self, bucket: str, prefix: str, kms_key_id: str | None, endpoint_url: str | None,
                 region: str) -> None:
        import boto3
        from botocore.config import Config

        self.where = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        self._bucket, self._prefix = bucket, prefix
        self._sse = {"ServerSideEncryption": "aws:kms"} | ({"SSEKMSKeyId": kms_key_id} if kms_key_id else {})
        config = Config(connect_timeout=TIMEOUT, read_timeout=TIMEOUT,
                        retries={"max_attempts": 3, "mode": "standard"})
        self._s3 = boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
        with self._errors("opening the drop"):
            self._s3.head_bucket(Bucket=bucket)

    def close(self) -> None:
        self._s3.close()

    def _key(self, path: str) -> str:
        return f"{self._prefix}/{path}" if self._prefix else path

    def _classify(self, exc: Exception, doing: str) -> DropError | None:
        from botocore import exceptions as boto

        if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
            return self._failure(DropAccessDenied, doing, exc, "no AWS credentials were found: give the "
                                 "worker a role or credentials for this bucket")
        if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
            return self._failure(DropUnreachable, doing, exc, UNREACHABLE)
        if not isinstance(exc, boto.ClientError):
            return None
        code, status = exc.response.get("Error", {}).get("Code", ""), _status(exc)
        if code in ("BadDigest", "XAmzContentSHA256Mismatch", "InvalidDigest"):
            return self._failure(BatchInvalid, doing, exc, "S3 refused a body that does not match its "
                                 "SHA-256 (a file changed while it was being sent?); nothing was put in "
                                 "place. Rebuild the batch, then deliver it again")
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return self._failure(DropAccessDenied, doing, exc, "S3 refused these credentials or this "
                                 "KMS key: check the worker's role on the bucket and the key")
        if code == "NoSuchBucket" or (status == 404 and doing == "opening the drop"):
            return self._failure(DropMisconfigured, doing, exc, f"the bucket {self._bucket} does not "
                                 "exist: check the drop URL")
        if status == 404:
            return self._failure(DropError, doing, exc, MISSING)
        if status >= 500 or code in ("SlowDown", "RequestTimeout"):
            return self._failure(DropUnreachable, doing, exc, UNREACHABLE)
        return self._failure(DropError, doing, exc, "S3 refused the request; nothing already in the "
                             "drop was overwritten")

    def _head(self, path: str, **options: str) -> dict[str, Any] | None:
        from botocore.exceptions import ClientError

        try:
            return dict(self._s3.head_object(Bucket=self._bucket, Key=self._key(path), **options))
        except ClientError as exc:
            if _status(exc) == 404:
                return None
            raise

    def _size(self, name: str) -> int | None:
        head = self._head(name)
        return None if head is None else int(head["ContentLength"])

    def _sha256(self, name: str) -> str:
        head = self._head(name, ChecksumMode="ENABLED") or {}
        checksum = head.get("ChecksumSHA256", "")
        if checksum and "-" not in checksum:  # S3's own, of the whole object
            return base64.b64decode(checksum).hex()
        if "sha256" in head.get("Metadata", {}):  # ours, written with the object
            return str(head["Metadata"]["sha256"])
        digest = hashlib.sha256()
        for chunk in self._s3.get_object(Bucket=self._bucket, Key=self._key(name))["Body"].iter_chunks(CHUNK):
            digest.update(chunk)
        return digest.hexdigest()

    def _send(self, path: Path, want: DeliveredFile) -> bool:
        from botocore.exceptions import ClientError

        with path.open("rb") as body:
            try:
                self._s3.put_object(
                    Bucket=self._bucket, Key=self._key(want.name), Body=body, ContentLength=want.size,
                    ChecksumSHA256=base64.b64encode(bytes.fromhex(want.sha256)).decode(),
                    Metadata={"sha256": want.sha256}, IfNoneMatch="*", **self._sse)
            except ClientError as exc:
                if _status(exc) == 412:  # the key exists: S3 kept it
                    return False
                raise
        stored = self._size(want.name)
        if stored != want.size:  # visible but wrong: take it back before the vendor's control file
            self._s3.delete_object(Bucket=self._bucket, Key=self._key(want.name))
            self._check_stored(want, stored)
        return True

    def _discard_temp(self, name: str) -> None:
        pass  # no temporary keys on S3

    def _list(self, folder: str) -> list[VendorFile]:
        prefix, files = self._key(folder) + "/", []
        for page in self._s3.get_paginator("list_objects_v2").paginate(
                Bucket=self._bucket, Prefix=prefix, Delimiter="/"):
            for item in page.get("Contents", []):
                name = item["Key"][len(prefix):]
                if name and not name.startswith("."):
                    files.append(VendorFile(folder, name, int(item["Size"]), item["LastModified"]))
        return files

    def _read(self, path: str) -> bytes:
        return bytes(self._s3.get_object(Bucket=self._bucket, Key=self._key(path))["Body"].read())

    def _archive(self, folder: str, name: str) -> None:
        source, done = f"{folder}/{name}", f"{folder}/processed/{name}"
        if self._head(source) is None and self._head(done) is not None:
            return
        self._s3.copy_object(Bucket=self._bucket, Key=self._key(done),
                             CopySource={"Bucket": self._bucket, "Key": self._key(source)}, **self._sse)
        self._s3.delete_object(Bucket=self._bucket, Key=self._key(source))


def _status(exc: Any) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
