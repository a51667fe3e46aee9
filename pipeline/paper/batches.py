"""Print batches: the pieces of one day in presort order, cut into batches per mail class, each
written as one print-ready PDF, a manifest and control totals.

Everything here is a pure function of its input: the same pieces on the same day give the same
files byte for byte (same names, same SHA-256), which is what makes a re-run or a re-drop safe.
The manifest names each piece by statement id and its address block; it never carries claim
content. A piece whose print file cannot be merged, or whose address block cannot be stamped, is
set aside with its reason, not batched.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.paper.merge import BatchPdfWriter, PieceUnreadable

MANIFEST_COLUMNS = ("statement_id", "sequence", "sheets", "pages", "mail_class", "imb_serial",
                    "name", "address_line_2", "delivery_line", "last_line", "zip5", "zip4",
                    "carrier_route")
"""The manifest's columns, in order (docs/paper.md is the vendor's description of each)."""


@dataclass(frozen=True, slots=True)
class Piece:
    """One statement to print: where its print file is and the address block to mail it to."""

    statement_id: str
    mail_class: str
    address_lines: tuple[str, ...]  # name, [second line], delivery line, last line
    zip5: str
    zip4: str = ""
    carrier_route: str = ""
    print_key: str = ""

    def presort_key(self) -> tuple[str, str, str, str]:
        """ZIP, then carrier route where known, then the statement id (a stable order)."""
        return (self.zip5, self.zip4, self.carrier_route or "~", self.statement_id)


@dataclass(frozen=True, slots=True)
class BatchLimits:
    max_pieces: int = 5_000
    max_bytes: int = 200 * 1024 * 1024
    duplex: bool = True


@dataclass(slots=True)
class Batch:
    """One written batch: its files and the control totals the vendor checks them against."""

    name: str
    mail_class: str
    folder: Path
    statement_ids: list[str] = field(default_factory=list)
    pieces: int = 0
    sheets: int = 0
    pages: int = 0

    @property
    def pdf(self) -> Path:
        return self.folder / f"{self.name}.pdf"

    @property
    def manifest(self) -> Path:
        return self.folder / f"{self.name}.manifest.csv"

    @property
    def control(self) -> Path:
        return self.folder / f"{self.name}.control.json"

    @property
    def files(self) -> list[Path]:
        """The data files, in the order the vendor receives them (control file last)."""
        return [self.pdf, self.manifest]


@dataclass(frozen=True, slots=True)
class SetAside:
    statement_id: str
    reason: str


@dataclass(slots=True)
class BatchRun:
    batches: list[Batch] = field(default_factory=list)
    set_aside: list[SetAside] = field(default_factory=list)


def batch_name(prefix: str, day: str, mail_class: str, number: int) -> str:
    """``EOB-20261206-FIRST-001``: the day, the mail class and the batch's number that day."""
    return f"{prefix}-{day.replace('-', '')}-{mail_class.upper()}-{number:03d}"


def presorted(pieces: Iterable[Piece]) -> dict[str, list[Piece]]:
    """Pieces grouped by mail class (classes in name order), each group in presort order."""
    groups: dict[str, list[Piece]] = {}
    for piece in pieces:
        groups.setdefault(piece.mail_class, []).append(piece)
    return {cls: sorted(groups[cls], key=Piece.presort_key) for cls in sorted(groups)}


def write_batches(pieces: Iterable[Piece], load: Callable[[Piece], bytes], folder: Path, *,
                  day: str, limits: BatchLimits, serial: Callable[[int, int], str],
                  prefix: str = "EOB", stamp: Callable[[Piece, str], bytes] | None = None,
                  first_number: int = 1) -> BatchRun:
    """Write every batch of the day into ``folder``. ``load`` gives a piece's print PDF;
    ``serial(batch_number, sequence)`` its Intelligent Mail barcode serial, asked once for each
    piece offered to a batch, before it is stamped (a piece then set aside leaves its serial
    unused). One piece's bytes are held at a time: memory does not grow with the batch.

    ``stamp(piece, imb_serial)``, when given, returns the operators drawn over the piece's first
    page (the address block, `pipeline.paper.window_block`), with the same serial the manifest
    gives; a piece it refuses (``AddressBlockTooLarge``, ``ImbError``) is set aside with the
    reason, which names a field, never the address. ``first_number``: the number of the day's
    first batch here (after the batches the day already has). A batch that ends up with no piece
    (every one set aside) is not written."""
    folder.mkdir(parents=True, exist_ok=True)
    run = BatchRun()
    for mail_class, group in presorted(pieces).items():
        open_batch: _OpenBatch | None = None
        for piece in group:
            try:
                data = load(piece)
            except (OSError, KeyError) as exc:
                reason = f"print file unavailable: {type(exc).__name__}"
                run.set_aside.append(SetAside(piece.statement_id, reason))
                continue
            if open_batch is not None and open_batch.full(len(data), limits):
                _close(open_batch, run)
                open_batch = None
            if open_batch is None:
                number = first_number + len(run.batches)
                open_batch = _OpenBatch(Batch(batch_name(prefix, day, mail_class, number),
                                              mail_class, folder), number, serial, stamp)
            open_batch.add(piece, data, limits, run)
        if open_batch is not None:
            _close(open_batch, run)
    return run


def _close(open_batch: _OpenBatch, run: BatchRun) -> None:
    batch = open_batch.finish()
    if batch.pieces:
        run.batches.append(batch)
    else:
        for path in (*batch.files, batch.control):
            path.unlink(missing_ok=True)


def manifest_pieces(path: Path) -> list[dict[str, str]]:
    """A written manifest's rows: what was batched, in sequence order (the vendor's view)."""
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


class _OpenBatch:
    """A batch being written: its PDF and manifest grow piece by piece on disk."""

    def __init__(self, batch: Batch, number: int, serial: Callable[[int, int], str],
                 stamp: Callable[[Piece, str], bytes] | None = None) -> None:
        self.batch, self.number, self.serial, self.stamp = batch, number, serial, stamp
        self.refusals: tuple[type[ValueError], ...] = (
            (PieceUnreadable,) if stamp is None else (PieceUnreadable, *_stamp_refusals()))
        self.bytes_in = 0
        self._pdf = batch.pdf.open("wb")
        self._writer = BatchPdfWriter(self._pdf)
        self._manifest = batch.manifest.open("w", newline="", encoding="utf-8")
        self._rows = csv.writer(self._manifest, lineterminator="\r\n")
        self._rows.writerow(MANIFEST_COLUMNS)

    def full(self, size: int, limits: BatchLimits) -> bool:
        return self.batch.pieces >= limits.max_pieces or (
            self.batch.pieces > 0 and self.bytes_in + size > limits.max_bytes)

    def add(self, piece: Piece, data: bytes, limits: BatchLimits, run: BatchRun) -> None:
        batch = self.batch
        imb_serial = self.serial(self.number, batch.pieces + 1)  # its sequence, if it is added
        try:
            overlay = None if self.stamp is None else self.stamp(piece, imb_serial)
            pages = self._writer.add(data, piece.statement_id, overlay)
        except self.refusals as exc:
            # checked before anything of the piece is written; the messages name no address
            run.set_aside.append(SetAside(piece.statement_id, str(exc)))
            return
        sheets = -(-pages // 2) if limits.duplex else pages
        batch.pieces += 1
        batch.pages += pages
        batch.sheets += sheets
        batch.statement_ids.append(piece.statement_id)
        self.bytes_in += len(data)
        lines = list(piece.address_lines)
        delivery = lines[-2] if len(lines) >= 3 else ""
        second = lines[1] if len(lines) == 4 else ""
        self._rows.writerow([piece.statement_id, batch.pieces, sheets, pages, batch.mail_class,
                             imb_serial, lines[0], second, delivery,
                             lines[-1], piece.zip5, piece.zip4, piece.carrier_route])

    def finish(self) -> Batch:
        self._writer.close(title=self.batch.name)
        self._pdf.close()
        self._manifest.close()
        self.batch.control.write_bytes(control_totals(self.batch))
        return self.batch


def _stamp_refusals() -> tuple[type[ValueError], ...]:
    """What a stamp raises for one piece it cannot print. Imported only when stamping: the
    barcode loads reportlab's graphics and the block the render engine's geometry, which
    batching without a stamp does not need (about 30 MiB)."""
    from pipeline.paper.imb import ImbError
    from pipeline.paper.window_block import AddressBlockTooLarge

    return AddressBlockTooLarge, ImbError


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    """A file as the control file and the ledger name it: its name, size and SHA-256."""
    return {"name": path.name, "bytes": path.stat().st_size, "sha256": sha256_of(path)}


def control_totals(batch: Batch) -> bytes:
    """The control file: totals per mail class and the SHA-256 and size of every data file."""
    document = {
        "batch": batch.name,
        "mail_class": batch.mail_class,
        "pieces": batch.pieces,
        "sheets": batch.sheets,
        "pages": batch.pages,
        "files": [file_entry(path) for path in batch.files],
    }
    return (json.dumps(document, indent=2, sort_keys=False) + "\n").encode("utf-8")
