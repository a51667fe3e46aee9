"""The quarantine: rows set aside with their file, row, field and reason, and each delivered
file's tally, which proves nothing was dropped (rows read = rows accepted + rows quarantined).

The ledger gets file, row, field and reason, never row content (PHI); the values go only to
the run's quarantine CSV files, one per delivered file, for the data team.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from pipeline.ingest.sources import ExtractFile
from pipeline.ledger import FileAccount, QuarantineRow

__all__ = ["Quarantine", "QuarantineLog", "Tally"]


class QuarantineLog(Sequence[QuarantineRow]):
    """Every quarantined row (file, row, field, reason), kept columnar: compact for big runs."""

    def __init__(self) -> None:
        self._parts: list[tuple[str, pa.Table]] = []
        self._length = 0

    def add(self, source: str, rows: np.ndarray, fields: pa.Array, reasons: pa.Array) -> None:
        if len(rows):
            self._parts.append((source, pa.table({"row": pa.array(rows, pa.int64()),
                                                  "field": fields, "reason": reasons})))
            self._length += len(rows)

    def __len__(self) -> int:
        return self._length

    def __iter__(self) -> Iterator[QuarantineRow]:
        for source, table in self._parts:
            for row, fld, reason in zip(*(table[c].to_pylist() for c in ("row", "field", "reason")),
                                        strict=True):
                yield QuarantineRow(source, row, fld, reason)

    def __getitem__(self, index):  # type: ignore[no-untyped-def,override]
        return list(self)[index]

    def drop(self, source: str) -> None:
        """Forget one file's rows (the file is about to be read again)."""
        self._parts = [(s, t) for s, t in self._parts if s != source]
        self._length = sum(t.num_rows for _, t in self._parts)


@dataclass(slots=True)
class Tally:
    """Per delivered file: what was read, what was set aside, what reached the canonical output."""

    file: ExtractFile
    read: int = 0
    quarantined: int = 0
    accepted: int = 0


class Quarantine:
    """Rows set aside (the log and each file's quarantine CSV) and every file's tally."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = QuarantineLog()
        self.tallies: dict[str, Tally] = {}

    def tally(self, item: ExtractFile) -> Tally:
        return self.tallies.setdefault(item.source_name, Tally(item))

    def accounts(self) -> list[FileAccount]:
        return [FileAccount(t.file.source_name, t.file.kind, t.read, t.accepted, t.quarantined)
                for t in self.tallies.values()]

    def reject(self, item: ExtractFile, rows: np.ndarray, fields: pa.Array, reasons: pa.Array,
               values: pa.Table, details: pa.Array | None = None) -> None:
        """Quarantine rows: the ledger gets file/row/field/reason, the CSV also the values."""
        if not len(rows):
            return
        self.log.add(item.source_name, rows, fields, reasons)
        self.tally(item).quarantined += len(rows)
        path = self._csv_path(item)
        detail = details if details is not None else pa.array([""] * len(rows), pa.string())
        table = pa.table({"row_number": pa.array(rows, pa.int64()), "field": fields, "reason": reasons,
                          "detail": detail, **{n: _display(values[n]) for n in values.column_names}})
        exists = path.exists()
        with path.open("ab") as handle:
            pacsv.write_csv(table, handle, write_options=pacsv.WriteOptions(include_header=not exists))

    def forget(self, item: ExtractFile) -> None:
        """Forget one file's rows and counts (the file is about to be read again)."""
        self._csv_path(item).unlink(missing_ok=True)
        self.log.drop(item.source_name)
        tally = self.tally(item)
        tally.read = tally.quarantined = tally.accepted = 0

    def _csv_path(self, item: ExtractFile) -> Path:
        return self.folder / f"{Path(item.source_name).stem}.quarantine.csv"


def _display(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Values as the data team would type them: cents back to dollars, dates as ISO text."""
    if column.type == pa.int64():
        cents = pc.fill_null(column, 0)
        dollars = pc.cast(pc.divide(cents, 100), pa.string())
        rest = pc.utf8_lpad(pc.cast(pc.remainder(cents, 100), pa.string()), 2, "0")
        return pc.binary_join_element_wise(dollars, rest, ".")
    if column.type == pa.bool_():
        return pc.if_else(pc.fill_null(column, False), "Y", "N")
    if column.type != pa.string():
        return pc.fill_null(pc.cast(column, pa.string()), "")
    return column

