"""What every print-vendor drop guarantees, whatever carries the files (`drops` has the carriers).

The vendor acts on a batch only once its control file is in the drop. So a batch goes in file by
file, each appearing whole under its final name (never half-written), and the control file last.
A name already in the drop is never overwritten, because the vendor may have printed from it: a
re-run after a crash or a timeout compares what is there (size, then SHA-256), uploads only what
is missing, and raises `DropConflict` when a name holds other bytes. That makes `deliver`
idempotent, which is what lets a failed paper task simply be retried.
"""

from __future__ import annotations

import hashlib
import logging
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

log = logging.getLogger("pipeline.paper.drops")

CHUNK = 1 << 20


class DropError(RuntimeError):
    """A batch could not be delivered or a vendor file read; the message names the drop and says
    what to do."""


class DropMisconfigured(DropError, ValueError):
    """The drop's URL, key or known_hosts file is wrong: retrying will not help, fixing it will."""


class DropUnreachable(DropError, ConnectionError):
    """The drop did not answer or dropped the connection: transient, so re-run the delivery."""


class HostKeyUnknown(DropError):
    """The SFTP server's host key is not the one in known_hosts: it may not be the vendor's server,
    so nothing is sent to it."""


class DropAccessDenied(DropError, PermissionError):
    """The drop refused the credentials, or the folder's permissions refuse the operation."""


class DropConflict(DropError):
    """The drop already holds a file of that name with other content; nothing was overwritten."""


class BatchInvalid(DropError, ValueError):
    """The local batch cannot be delivered as given (a missing file, a bad or repeated name, or a
    file that changed while it was being sent)."""


@dataclass(frozen=True, slots=True)
class DeliveredFile:
    """One file as the drop holds it."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class DropReceipt:
    """What the drop holds for a batch: the data files in order, the control file last. A re-run
    of the same batch returns an equal receipt."""

    drop: str
    batch: str
    files: tuple[DeliveredFile, ...]


@dataclass(frozen=True, slots=True)
class VendorFile:
    """A file the vendor wrote for us (acknowledgement, mail dates, tracking)."""

    folder: str
    name: str
    size: int
    modified: datetime


UNREACHABLE = ("the drop did not answer or dropped the connection. Re-run when it is reachable: a "
               "delivery resumes where it stopped and never duplicates a file")
DENIED = "the drop refused it. Check the drop's credentials and the folder's permissions with the vendor"
MISSING = "no such file or folder in the drop. Check the drop URL's path and the folder name"


def temp_name(name: str) -> str:
    """Where a file is written before it is renamed into place: a dot name the vendor ignores."""
    return f".{name}.part"


def plain_name(name: str, what: str) -> str:
    """A file name that stays inside its folder and is not one the vendor ignores (dot names)."""
    if not name or name.startswith(".") or "/" in name or "\\" in name or "\x00" in name:
        raise BatchInvalid(f"{what} {name!r} is not a plain file name (no '/', no leading '.')")
    return name


def folder_path(folder: str) -> str:
    parts = folder.strip("/").split("/")
    return "/".join(plain_name(part, "folder part") for part in parts)


def sha256_of(path: Path) -> DeliveredFile:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return DeliveredFile(path.name, size, digest.hexdigest())


def copy_checked(path: Path, want: DeliveredFile, write: Callable[[bytes], object]) -> None:
    """Stream ``path`` to ``write``, hashing what is sent: a file rewritten between planning and
    sending would otherwise reach the vendor under a receipt that does not describe it."""
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            write(chunk)
            digest.update(chunk)
            size += len(chunk)
    if (size, digest.hexdigest()) != (want.size, want.sha256):
        raise BatchInvalid(f"{path} changed while it was being delivered; its partial copy stays under "
                           f"{temp_name(want.name)}, which the vendor ignores. Rebuild the batch, then "
                           "deliver it again")


def plan(batch_name: str, files: Sequence[Path], control: Path) -> list[tuple[Path, DeliveredFile]]:
    """Each local file with its size and SHA-256, control file last; refuses a batch the vendor
    could not take as one."""
    plain_name(batch_name, "batch name")
    if not files:
        raise BatchInvalid(f"batch {batch_name} has no data files beside its control file")
    paths = [Path(p) for p in files] + [Path(control)]
    seen: set[str] = set()
    for path in paths:
        plain_name(path.name, f"batch {batch_name}: file name")
        if path.name in seen:
            raise BatchInvalid(f"batch {batch_name} names {path.name} twice; one drop folder holds one "
                               "file per name")
        seen.add(path.name)
        if not path.is_file():
            raise BatchInvalid(f"batch {batch_name}: {path} is missing or not a file; rebuild the batch")
    return [(path, sha256_of(path)) for path in paths]


class VendorDrop(ABC):
    """A print vendor's drop: an SFTP folder, an S3 prefix or a local folder (see `open_drop`).

    Subclasses carry bytes; the rules (order, no overwrite, verification, error messages) live
    here, once. Close it when done, or use it as a context manager.
    """

    where: str
    """The drop as an operator knows it, without credentials (``sftp://host:22/drop``)."""

    def deliver(self, batch_name: str, files: Sequence[Path], control: Path) -> DropReceipt:
        """Put a batch in the drop, data files first, the control file last; safe to repeat."""
        outgoing = plan(batch_name, files, control)
        sent = 0
        with self._errors(f"delivering batch {batch_name}"):
            for path, want in outgoing:
                sent += self._place(batch_name, path, want)
        log.info("batch %s in %s: %d of %d files sent, the others were already there",
                 batch_name, self.where, sent, len(outgoing))
        return DropReceipt(self.where, batch_name, tuple(want for _, want in outgoing))

    def _place(self, batch_name: str, path: Path, want: DeliveredFile) -> bool:
        """Send one file unless the drop already holds it; True when it was sent."""
        present = self._size(want.name)
        if present is None:
            if self._send(path, want):
                return True
            present = self._size(want.name)  # it appeared while we sent: judge it like any other
        if present != want.size or self._sha256(want.name) != want.sha256:
            raise DropConflict(
                f"{self.where} already holds a {want.name} that differs from batch {batch_name}'s "
                f"({present} bytes there, {want.size} here); nothing was overwritten. The vendor may "
                "have printed from it: rebuild the batch under a new batch name, or ask the vendor "
                "to remove that file before delivering this one")
        self._discard_temp(want.name)
        return False

    def notify(self, notice: Path) -> DeliveredFile:
        """Put one notice in the drop (a batch's cancellation), by the rules of a batch's files:
        whole or not at all, safe to repeat, never replacing a different file."""
        plain_name(notice.name, "notice file name")
        want = sha256_of(notice)
        with self._errors(f"delivering notice {notice.name}"):
            self._place(notice.name, notice, want)
        return want

    def incoming(self, folder: str = "outbound") -> list[VendorFile]:
        """The vendor's files in ``folder``, by name; dot names (files still being written) and
        ``processed/`` are left out. A folder the vendor has not created yet holds none."""
        folder = folder_path(folder)
        with self._errors(f"listing {folder}/"):
            return sorted(self._list(folder), key=lambda file: file.name)

    def read(self, name: str, folder: str = "outbound") -> bytes:
        """One vendor file's bytes."""
        where = f"{folder_path(folder)}/{plain_name(name, 'vendor file')}"
        with self._errors(f"reading {where}"):
            return self._read(where)

    def archive(self, name: str, folder: str = "outbound") -> None:
        """Move a vendor file into ``<folder>/processed/`` so that it is handled once; archiving it
        again is a no-op. A processed file of the same name is replaced (it was handled before)."""
        folder = folder_path(folder)
        with self._errors(f"archiving {folder}/{plain_name(name, 'vendor file')}"):
            self._archive(folder, name)

    def __enter__(self) -> VendorDrop:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """Turn whatever the carrier raised into a DropError naming the drop and what to do."""
        try:
            yield
        except DropError:
            raise
        except Exception as exc:
            specific = self._classify(exc, doing)
            if specific is not None:
                raise specific from exc
            if isinstance(exc, ConnectionError | TimeoutError | EOFError | socket.gaierror):
                raise self._failure(DropUnreachable, doing, exc, UNREACHABLE) from exc
            if isinstance(exc, PermissionError):
                raise self._failure(DropAccessDenied, doing, exc, DENIED) from exc
            if isinstance(exc, FileNotFoundError):
                raise self._failure(DropError, doing, exc, MISSING) from exc
            if isinstance(exc, OSError):
                raise self._failure(DropError, doing, exc, "nothing already in the drop was "
                                   "overwritten; re-run once the cause is fixed") from exc
            raise

    def _failure(self, kind: type[DropError], doing: str, exc: BaseException, advice: str) -> DropError:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return kind(f"{doing} on {self.where} failed ({detail}): {advice}")

    def _check_stored(self, want: DeliveredFile, stored: int | None) -> None:
        """The size the drop reports for a copy just sent, before it is put in place."""
        if stored != want.size:
            raise DropError(f"{self.where} kept {stored} of the {want.size} bytes sent for {want.name}, so "
                            "it was not put in place. Check the drop's free space or quota, then re-run")

    def _classify(self, exc: Exception, doing: str) -> DropError | None:
        """The carrier's own exceptions (paramiko's, botocore's) as DropErrors; None: the generic
        rules apply."""
        return None

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _size(self, name: str) -> int | None:
        """The size of ``name`` in the drop's folder, None when it is not there."""

    @abstractmethod
    def _sha256(self, name: str) -> str: ...

    @abstractmethod
    def _send(self, path: Path, want: DeliveredFile) -> bool:
        """Make ``path`` appear whole as ``want.name``, checked against ``want``; False (and
        nothing replaced) when that name appeared meanwhile."""

    @abstractmethod
    def _discard_temp(self, name: str) -> None:
        """Remove a stale temporary copy of ``name`` left by an interrupted delivery."""

    @abstractmethod
    def _list(self, folder: str) -> list[VendorFile]: ...

    @abstractmethod
    def _read(self, path: str) -> bytes: ...

    @abstractmethod
    def _archive(self, folder: str, name: str) -> None: ...
