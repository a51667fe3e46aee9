"""Reading an extract file in record batches of text, so validation sees every value as
delivered ("00123" and "12O.00" stay intact), and numbering its rows as the file does.

CSV is parsed by pyarrow, which skips rows with the wrong number of fields; they are counted
here and numbered with the csv module when need be. Parquet columns of any type become text,
as a CSV export would show them.
"""

from __future__ import annotations

import csv
import io
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.ingest.schema import LOW_CARDINALITY, FileSpec, file_spec
from pipeline.ingest.sources import ExtractFile, ExtractFileError, arrow_reason

__all__ = [
    "DamagedRegion", "InvalidRows", "bad_field_count_rows", "csv_header", "damage_masks", "damaged_text_rows",
    "file_batches", "refuse_invalid_rows", "row_numbers", "source_refs", "source_rows",
    "split_damaged_rows", "text_batches", "whole_file",
]

BATCH_BYTES = 8 << 20
PARSE_BLOCK_BYTES = 1 << 20
"""CSV is parsed in 1 MiB blocks (they stay in the processor's cache while the parser converts
them: about 15% less parse time than 8 MiB blocks) and checked in batches of eight, so each
check's fixed cost is spread over some 40,000 rows."""
PARQUET_BATCH_ROWS = 131_072
_TEXT_DICTIONARY = pa.dictionary(pa.int32(), pa.string())
MAX_ROW_BYTES = PARSE_BLOCK_BYTES // 2
"""A row must fit in a parse block; longer ones are quarantined as damage."""
SCAN_FIELD_CHARS = 64 << 20
"""The longest field the row scan of a damaged file holds in memory; a longer one leaves the
file without rows it can tell apart, and the file is refused."""
_COMPRESSED = {b"\x1f\x8b": "gzip", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ": "xz",
               b"\x28\xb5\x2f\xfd": "zstd"}


class DamagedRegion(ExtractFileError):
    """Part of a CSV file could not be parsed (bytes that are not UTF-8, a row longer than the
    parser's block) or holds damage the checks look for (a NUL byte, a field over the limit).
    A claims file is then scanned row by row (`split_damaged_rows`); a reference file is refused."""


class InvalidRows:
    """Rows whose field count is wrong: pyarrow skips them and we account for them."""

    def __init__(self) -> None:
        self.found: list[tuple[int | None, int, int]] = []  # (row number, expected, actual)

    def __call__(self, row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None and row.number >= 0 else None
        self.found.append((number, row.expected_columns, row.actual_columns))
        return "skip"


_HOOK_LOCK = threading.Lock()


def _quiet_undecodable_rows() -> None:
    """pyarrow decodes a row with a wrong field count as UTF-8 before it calls the handler; a row
    that is not UTF-8 makes that fail, and pyarrow prints the traceback through
    `sys.unraisablehook` (then fails the read, which the damaged-region scan takes up). Only
    that case is silenced: an unraisable UnicodeDecodeError raised for an `InvalidRows`
    handler; anything else goes to the hook that was there before."""
    with _HOOK_LOCK:
        previous = sys.unraisablehook
        if getattr(previous, "quiets_undecodable_rows", False):
            return

        def hook(unraisable: sys.UnraisableHookArgs) -> None:
            if not (isinstance(unraisable.object, InvalidRows)
                    and isinstance(unraisable.exc_value, UnicodeDecodeError)):
                previous(unraisable)

        hook.quiets_undecodable_rows = True  # type: ignore[attr-defined]
        sys.unraisablehook = hook


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line (bytes that are not UTF-8 further on are
    the rows' business: see `split_damaged_rows`)."""
    try:
        with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as handle:
            names = next(csv.reader(handle), [])
        for name in names:
            name.encode("utf-8")
        return names
    except UnicodeEncodeError:
        raise ExtractFileError(f"{path.name}: the header line is not UTF-8 text") from None
    except csv.Error:
        raise ExtractFileError(f"{path.name}: the header line is not valid CSV") from None


def _check_header(item: ExtractFile, names: list[str], required: list[str]) -> None:
    missing = [c for c in required if c not in names]
    if missing:
        hint = " (is the delimiter a comma?)" if len(names) == 1 else ""
        raise ExtractFileError(f"{item.source_name}: missing column(s) {', '.join(missing)}{hint}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ExtractFileError(f"{item.source_name}: column(s) {', '.join(repeated)} appear twice")


def _check_not_empty_or_compressed(item: ExtractFile) -> None:
    """A CSV file with nothing in it, or a compressed one, is named as such."""
    with item.path.open("rb") as handle:
        start = handle.read(8)
    if not start:
        raise ExtractFileError(f"{item.source_name}: the file is empty (0 bytes)")
    for magic, kind in _COMPRESSED.items():
        if start.startswith(magic):
            raise ExtractFileError(f"{item.source_name}: the file is {kind}-compressed; deliver it "
                                   "uncompressed (UTF-8 CSV text)")


def file_batches(item: ExtractFile, spec: FileSpec, invalid: InvalidRows) -> Iterator[pa.RecordBatch]:
    """String-typed record batches, so values like "00123" and "12O.00" reach validation intact."""
    if item.path.suffix == ".parquet":
        yield from _parquet_batches(item, spec)
        return
    _check_not_empty_or_compressed(item)
    names = csv_header(item.path)
    if not names:
        raise ExtractFileError(f"{item.source_name}: the file is empty (no header line)")
    _check_header(item, names, spec.required_columns)
    wanted = [n for n in names if n in spec.names or n.startswith("_")]
    _quiet_undecodable_rows()
    # a native file: no Python in the read path, and the reader reads ahead a bounded number of
    # blocks (Arrow's background queue: 32), so with 1 MiB blocks memory does not grow with the file
    source = pa.OSFile(str(item.path))
    blocks = BATCH_BYTES // PARSE_BLOCK_BYTES
    try:
        reader = pacsv.open_csv(
            source,
            read_options=pacsv.ReadOptions(block_size=PARSE_BLOCK_BYTES, use_threads=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types={n: _TEXT_DICTIONARY if n in LOW_CARDINALITY else pa.string() for n in names},
                include_columns=wanted,
                strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
        pending: list[pa.RecordBatch] = []
        rows = 0
        for batch in reader:
            pending.append(batch)
            rows += batch.num_rows
            if len(pending) == blocks:
                yield _joined(pending)
                pending = []
        if pending:
            yield _joined(pending)
        if not rows and not invalid.found and item.path.name == item.source_name:
            raise ExtractFileError(f"{item.source_name}: the file is empty (a header line and no rows)")
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise DamagedRegion(f"{item.source_name}: {arrow_reason(exc)}") from None
    finally:
        source.close()


def _joined(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """Parsed blocks as one batch, their dictionaries merged."""
    if len(batches) == 1:
        return batches[0]
    return pa.Table.from_batches(batches).unify_dictionaries().combine_chunks().to_batches()[0]


def text_batches(item: ExtractFile) -> Iterator[pa.RecordBatch]:
    """The file's record batches as validation first sees them (text, before any check): for
    measuring what reading alone costs."""
    yield from file_batches(item, file_spec(item.kind), InvalidRows())


def _parquet_batches(item: ExtractFile, spec: FileSpec) -> Iterator[pa.RecordBatch]:
    try:
        parquet = pq.ParquetFile(item.path)
        names = parquet.schema_arrow.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise ExtractFileError(
            f"{item.source_name}: not a readable Parquet file ({arrow_reason(exc)})") from None
    _check_header(item, names, spec.required_columns)
    wanted = [n for n in names if n in spec.names or n.startswith("_")]
    try:
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH_ROWS, columns=wanted):
            yield pa.RecordBatch.from_arrays(
                [_as_text(batch.column(i)) for i in range(batch.num_columns)], names=batch.schema.names)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise ExtractFileError(
            f"{item.source_name}: not a readable Parquet file ({arrow_reason(exc)})") from None


def _as_text(column: pa.Array) -> pa.Array:
    """Any Parquet column as text, as a CSV export would show it (nulls become empty)."""
    if pa.types.is_floating(column.type):
        # 12.3 stays "12.3"; validation rejects more than two decimals
        column = pc.cast(column, pa.string())
    elif not pa.types.is_string(column.type):
        column = pc.cast(column, pa.string())
    return pc.fill_null(column, "")


def row_numbers(first_row: int, start: int, count: int, skipped: np.ndarray) -> np.ndarray:
    """File row numbers of delivered records start..start+count, given rows the reader skipped."""
    delivered = np.arange(start, start + count, dtype=np.int64)
    if not len(skipped):
        return delivered + first_row
    marks = skipped - first_row - np.arange(len(skipped))  # delivered index at each skip
    return delivered + first_row + np.searchsorted(marks, delivered, side="right")


def bad_field_count_rows(path: Path, expected: int) -> list[tuple[int, int, int]]:
    """(row number, expected, actual) of rows with the wrong number of fields (csv module scan).

    Rows are numbered as records, the header being 1; blank lines are not rows (pyarrow skips
    them too), and a quoted value with a line break does not start a new row."""
    found, number = [], 0
    with path.open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.reader(handle):
            if not row:
                continue
            number += 1
            if number > 1 and len(row) != expected:
                found.append((number, expected, len(row)))
    return found


def split_damaged_rows(item: ExtractFile, clean: Path, max_field_bytes: int) -> list[tuple[int, str, str]]:
    """Scan a CSV file the parser could not read whole: (row number, field, reason) of each row
    that is damaged (bytes that are not UTF-8, a NUL byte, a field over `max_field_bytes`) or
    has the wrong number of fields; every other row is copied, with the header, to `clean`.

    Rows are numbered as in `bad_field_count_rows` (a mapped source's by its `_row`). The scan
    is Python's csv module over the bytes decoded with `surrogateescape`, so damaged bytes stay
    inside their row and field."""
    found: list[tuple[int, str, str]] = []
    number = 0
    limit = csv.field_size_limit()
    csv.field_size_limit(max(limit, SCAN_FIELD_CHARS))
    try:
        with item.path.open("rb") as raw, clean.open("w", encoding="utf-8", newline="") as out:
            text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")
            writer = csv.writer(out, lineterminator="\n")
            header: list[str] = []
            for row in csv.reader(text):
                if not row:
                    continue
                number += 1
                if number == 1:
                    header = row
                    writer.writerow(row)
                    continue
                problem = _row_damage(row, header, max_field_bytes)
                if problem is None:
                    writer.writerow(row)
                else:
                    found.append((_source_row(row, header, number), *problem))
    except csv.Error:
        raise ExtractFileError(f"{item.source_name}: row {number + 1} has a field longer than "
                               f"{SCAN_FIELD_CHARS} characters; the rows after it cannot be told apart"
                               ) from None
    finally:
        csv.field_size_limit(limit)
    return found


def _source_row(row: list[str], header: list[str], number: int) -> int:
    """The row number to report: a mapped source's own (`_row`) when the row still has it."""
    at = header.index("_row") if "_row" in header else -1
    if 0 <= at < len(row) and row[at].isdigit():
        return int(row[at])
    return number


def _row_damage(row: list[str], header: list[str], max_field_bytes: int) -> tuple[str, str] | None:
    """(field, reason) of a scanned row's first damage, or its wrong field count; None if whole."""
    size = 0
    for at, value in enumerate(row):
        reason = _value_damage(value, max_field_bytes)
        if reason is not None:
            return (header[at] if at < len(header) else "(row)"), reason
        size += len(value) + 1
    if size > MAX_ROW_BYTES:
        return "(row)", f"row longer than {MAX_ROW_BYTES} bytes"
    if len(row) != len(header):
        return "(row)", f"has {len(row)} fields, the header has {len(header)}"
    return None


def _value_damage(value: str, max_field_bytes: int) -> str | None:
    if value.isascii():
        size = len(value)
    else:
        try:
            size = len(value.encode("utf-8"))
        except UnicodeEncodeError:  # a byte that is not UTF-8, kept as a lone surrogate
            return "damaged: invalid UTF-8"
    if "\x00" in value:
        return "damaged: NUL byte"
    if size > max_field_bytes:
        return f"field longer than {max_field_bytes} bytes"
    return None


def damaged_text_rows(batch: pa.RecordBatch, names: list[str], max_field_bytes: int) -> bool:
    """Does any of the named text columns hold a NUL byte or a value over `max_field_bytes`?
    Reads only their offsets and bytes (a dictionary column: its distinct values), so a clean
    batch costs a few buffer scans; the rows themselves are found by `split_damaged_rows`."""
    present = batch.schema.names
    for name in names:
        if name not in present:
            continue
        column = batch.column(present.index(name))
        if pa.types.is_dictionary(column.type):
            column = column.dictionary
        if column.type != pa.string() or not len(column):
            continue
        _, offsets, data = column.buffers()
        ends = np.frombuffer(offsets, np.int32, len(column) + 1, column.offset * 4)
        if ends[-1] - ends[0] > max_field_bytes and int(np.diff(ends).max()) > max_field_bytes:
            return True
        if data is not None and ends[-1] > ends[0]:
            span = np.frombuffer(data, np.uint8, int(ends[-1] - ends[0]), int(ends[0]))
            if not span.all():
                return True
    return False


def damage_masks(batch: pa.RecordBatch, names: list[str], max_field_bytes: int
                 ) -> list[tuple[str, np.ndarray, str]]:
    """(column, rows, reason) of the NUL bytes and overlong values in the named text columns:
    for sources that are not scanned as CSV (Parquet, mapped sources), after
    `damaged_text_rows` found some."""
    present = batch.schema.names
    found = []
    for name in names:
        if name not in present:
            continue
        column = batch.column(present.index(name))
        values = column.dictionary if pa.types.is_dictionary(column.type) else column
        if values.type != pa.string():
            continue
        for mask, reason in (
                (pc.match_substring(values, "\x00"), "damaged: NUL byte"),
                (pc.greater(pc.binary_length(values), max_field_bytes),
                 f"field longer than {max_field_bytes} bytes")):
            rows = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
            if pa.types.is_dictionary(column.type):
                rows = rows[column.indices.to_numpy(zero_copy_only=False)]
            if rows.any():
                found.append((name, rows, reason))
    return found


def refuse_invalid_rows(item: ExtractFile, invalid: InvalidRows) -> None:
    """Reference files (members, plans) must be whole: a broken row there fails the file."""
    if invalid.found:
        rows = [n for n, _, _ in invalid.found if n is not None] or [
            n for n, _, _ in bad_field_count_rows(item.path, len(csv_header(item.path)))]
        raise ExtractFileError(f"{item.source_name}: rows {rows[:10]} have the wrong number of fields")


def source_rows(batch: pa.RecordBatch) -> np.ndarray | None:
    """Row numbers a mapped source carries (`_row`: the delivered file's row, e.g. Synthea's)."""
    names = batch.schema.names
    if "_row" not in names:
        return None
    return pc.cast(batch.column(names.index("_row")), pa.int64()).to_numpy(zero_copy_only=False)


def source_refs(batch: pa.RecordBatch) -> pa.Array | None:
    """Where a mapped row came from (FHIR resource and item, Synthea transaction): for the data team."""
    names = batch.schema.names
    return batch.column(names.index("_ref")) if "_ref" in names else None


def whole_file(item: ExtractFile, spec: FileSpec) -> pa.RecordBatch | None:
    """A small reference file (plans, confidential requests) read whole as one batch, or None when
    it has no rows; a row with a wrong field count fails the file (`refuse_invalid_rows`)."""
    invalid = InvalidRows()
    batches = list(file_batches(item, spec, invalid))
    refuse_invalid_rows(item, invalid)
    if not sum(b.num_rows for b in batches):
        return None
    return pa.Table.from_batches(batches).combine_chunks().to_batches()[0]
