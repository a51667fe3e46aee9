"""A print vendor for the demo and the tests: it takes the batches in a folder drop and answers
with the files a real vendor sends back (docs/paper.md), so the paper stage can be run end to end
without one.

It acts like the contract asks a vendor to: a batch is picked up only once its control file is
there, and only once; it is checked against its control totals and rejected as a whole when a
check fails. What happens to each piece (rejected in print, returned, forwarded, delivered) is
decided by a hash of its statement id, not a random draw, so the same batch always gets the same
answer and a test can say what it expects. Addresses it makes up for forwarded pieces are
synthetic.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pikepdf

from pipeline.paper.batches import MANIFEST_COLUMNS, sha256_of
from pipeline.paper.vendor_files import (
    ACK_COLUMNS,
    ADDRESS_SEPARATOR,
    MAX_REASON,
    TRACKING_COLUMNS,
    AckRow,
    TrackingRow,
)

_OUTBOUND = "outbound"
_RECORD = Path(".vendor") / "processed"
"""The batches already answered, one name a line: a dot folder, which the pipeline never reads."""
_CONTROL_SUFFIX = ".control.json"
DELIVERED_AFTER, FORWARDED_AFTER, RETURNED_AFTER = timedelta(days=3), timedelta(days=4), timedelta(days=5)
CANCELLED = "cancelled by the sender"
DAMAGED = "damaged in print"
FAILED_CHECK = "batch failed control check: "
COUNTS = ("batches", "pieces", "accepted", "rejected", "returned", "forwarded", "failed_control")


class PrintVendor:
    """The vendor behind a ``file://`` drop: ``drop`` is that drop's folder.

    Of the pieces it accepts, ``return_share`` come back returned to sender (five days after
    ``mail_date``), ``forward_share`` are forwarded to a made-up address (four days after), and
    the rest are delivered (three days after); ``reject_share`` of the pieces of a sound batch are
    rejected as damaged in print. Shares are of each piece's chances: a batch of ten pieces at
    5% may have none returned.
    """

    def __init__(self, drop: Path, *, return_share: float = 0.05, forward_share: float = 0.01,
                 reject_share: float = 0.0, mail_date: date) -> None:
        for label, share in (("return_share", return_share), ("forward_share", forward_share),
                             ("reject_share", reject_share)):
            if not 0.0 <= share <= 1.0:
                raise ValueError(f"{label} is a share between 0 and 1, not {share}")
        if return_share + forward_share > 1.0:
            raise ValueError("return_share and forward_share together are more than every piece")
        self.drop, self.mail_date = Path(drop), mail_date
        self.return_share, self.forward_share, self.reject_share = return_share, forward_share, reject_share

    def process(self) -> dict[str, int]:
        """Answer every batch whose control file is in the drop and that is not answered yet: its
        acknowledgement, then a tracking file for the pieces it mailed. A batch is recorded as
        answered only after both are written, so one interrupted is answered again."""
        counts = dict.fromkeys(COUNTS, 0)
        done = self._answered()
        for control in sorted(self.drop.glob(f"*{_CONTROL_SUFFIX}")):
            batch = control.name.removesuffix(_CONTROL_SUFFIX)
            if batch.startswith(".") or batch in done:
                continue
            if (self.drop / f"{batch}.cancel.json").is_file():
                self._confirm_cancel(batch)
            else:
                self._answer(batch, control, counts)
            record = self.drop / _RECORD
            record.parent.mkdir(exist_ok=True)
            with record.open("a", encoding="utf-8") as fh:
                fh.write(batch + "\n")
        return counts

    def _confirm_cancel(self, batch: str) -> None:
        """A batch the sender cancelled is not printed: every piece rejected, saying so."""
        rows = [AckRow(r["statement_id"], int(r["sequence"]), "rejected", _pages(r.get("pages", "")),
                       CANCELLED) for r in _manifest_rows(self.drop / f"{batch}.manifest.csv")]
        write_ack(self.drop / "outbound", batch, rows)

    def _answered(self) -> set[str]:
        record = self.drop / _RECORD
        return set(record.read_text(encoding="utf-8").splitlines()) if record.exists() else set()

    def _answer(self, batch: str, control: Path, counts: dict[str, int]) -> None:
        manifest = _manifest_rows(self.drop / f"{batch}.manifest.csv")
        failed = _failed_checks(self.drop, batch, control, manifest)
        acks: list[AckRow] = []
        events: list[TrackingRow] = []
        for row in manifest:
            sid, pages = row["statement_id"], _pages(row.get("pages", ""))
            if failed:
                acks.append(AckRow(sid, int(row["sequence"]), "rejected", pages, FAILED_CHECK + failed))
            elif _draw(sid, "print") < self.reject_share:
                acks.append(AckRow(sid, int(row["sequence"]), "rejected", pages, DAMAGED))
            else:
                acks.append(AckRow(sid, int(row["sequence"]), "accepted", pages))
                events += self._mail(sid, row["imb_serial"], counts)
        outbound = self.drop / _OUTBOUND
        write_ack(outbound, batch, acks)
        if events:
            write_tracking(outbound, events, day=self.mail_date)
        counts["batches"] += 1
        counts["failed_control"] += bool(failed)
        counts["pieces"] += len(acks)
        counts["accepted"] += sum(ack.status == "accepted" for ack in acks)
        counts["rejected"] += sum(ack.status == "rejected" for ack in acks)

    def _mail(self, sid: str, serial: str, counts: dict[str, int]) -> list[TrackingRow]:
        mailed = TrackingRow(sid, serial, "mailed", self.mail_date)
        fate = _draw(sid, "mail")
        if fate < self.return_share:
            counts["returned"] += 1
            return [mailed, TrackingRow(sid, serial, "returned_to_sender", self.mail_date + RETURNED_AFTER)]
        if fate < self.return_share + self.forward_share:
            counts["forwarded"] += 1
            return [mailed, TrackingRow(sid, serial, "forwarded", self.mail_date + FORWARDED_AFTER,
                                        forwarding_address(sid))]
        return [mailed, TrackingRow(sid, serial, "delivered", self.mail_date + DELIVERED_AFTER)]


def forwarding_address(statement_id: str) -> tuple[str, ...]:
    """A made-up new address (a real Springfield, IL ZIP Code, so it passes the address checks)."""
    number = 1 + int(hashlib.sha256(f"street:{statement_id}".encode()).hexdigest()[:6], 16) % 999
    return ("NEW ADDRESS LINE", f"{number} FORWARD ST", "SPRINGFIELD IL 62704")


def write_ack(outbound: Path, batch: str, rows: Iterable[AckRow]) -> Path:
    """``<batch>.ack.csv`` in ``outbound``, written whole under a dot name and renamed into
    place. Writes whatever it is given (an unknown id, a duplicate, a wrong page count), so tests
    can play a vendor that errs."""
    lines = [[r.statement_id, r.sequence, r.status, r.pages, r.reason] for r in rows]
    return _write_atomic(outbound / f"{batch}.ack.csv", _csv(ACK_COLUMNS, lines))


def write_tracking(outbound: Path, rows: Iterable[TrackingRow], *, day: date) -> Path:
    """The next ``tracking-YYYYMMDD-NNN.csv`` of ``day`` in ``outbound``, written like `write_ack`.
    Numbers already used that day, in ``outbound`` or in its ``processed/``, are not reused."""
    stamp = day.strftime("%Y%m%d")
    pattern = re.compile(rf"\.?tracking-{stamp}-([0-9]{{3}})\.csv(\.part)?")
    used = [int(m[1]) for folder in (outbound, outbound / "processed") if folder.is_dir()
            for m in map(pattern.fullmatch, os.listdir(folder)) if m]
    lines = [[r.statement_id, r.imb_serial, r.event, r.event_date.isoformat(),
              ADDRESS_SEPARATOR.join(r.new_address)] for r in rows]
    name = f"tracking-{stamp}-{max(used, default=0) + 1:03d}.csv"
    return _write_atomic(outbound / name, _csv(TRACKING_COLUMNS, lines))


def _csv(header: tuple[str, ...], rows: list[list[Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode("utf-8")


def _write_atomic(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.part")
    temp.write_bytes(data)
    os.replace(temp, path)
    return path


def _manifest_rows(path: Path) -> list[dict[str, str]]:
    """The manifest's rows that name a piece; none when it is missing or not the agreed table."""
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if tuple(reader.fieldnames or ()) != MANIFEST_COLUMNS:
                return []
            return [row for row in reader
                    if row["statement_id"] and (row["sequence"] or "").isdigit() and int(row["sequence"])]
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _failed_checks(drop: Path, batch: str, control: Path, manifest: list[dict[str, str]]) -> str:
    """The control checks the batch fails, comma separated; empty when it passes them all."""
    try:
        totals = json.loads(control.read_text(encoding="utf-8"))
        pieces, pages = int(totals["pieces"]), int(totals["pages"])
        files = {str(entry["name"]): (entry["bytes"], entry["sha256"]) for entry in totals["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return "control file unreadable"
    failed = [f"{_label(batch, name)} not in control file"
              for name in (f"{batch}.pdf", f"{batch}.manifest.csv") if name not in files]
    for name, (size, sha256) in files.items():
        path, label = drop / name, _label(batch, name)
        if name.startswith(".") or "/" in name or not path.is_file():
            failed.append(f"{label} missing")
        elif path.stat().st_size != size:
            failed.append(f"{label} bytes")
        elif sha256_of(path) != sha256:
            failed.append(f"{label} sha256")
    if len(manifest) != pieces:
        failed.append("manifest rows")
    if sum(_pages(row["pages"]) for row in manifest) != pages:
        failed.append("manifest pages")
    try:
        with pikepdf.open(drop / f"{batch}.pdf") as pdf:
            if len(pdf.pages) != pages:
                failed.append("pdf pages")
    except (OSError, pikepdf.PdfError):
        failed.append("pdf unreadable")
    return ", ".join(failed)[:MAX_REASON - len(FAILED_CHECK)]


def _label(batch: str, name: str) -> str:
    """``pdf`` or ``manifest`` for the batch's own files, else the name the control file gave."""
    return {f"{batch}.pdf": "pdf", f"{batch}.manifest.csv": "manifest"}.get(name, name[:60])


def _pages(value: str) -> int:
    """A manifest's page count; 1 for one that is not a number (its batch fails its checks)."""
    return int(value) if value.isdigit() and int(value) > 0 else 1


def _draw(statement_id: str, purpose: str) -> float:
    """A number in [0, 1) fixed by the statement id: the same piece always meets the same fate."""
    digest = hashlib.sha256(f"{purpose}:{statement_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
