"""Reading an extract file in record batches of text, so validation sees every value as
delivered ("00123" and "12O.00" stay intact), and numbering its rows as the file does.

CSV is parsed by pyarrow, which skips rows with the wrong number of fields; they are counted
here and numbered with the csv module when need be. Parquet columns of any type become text,
as a CSV export would show them.
"""

from __future__ import annotations

import csv
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
    "InvalidRows", "bad_field_count_rows", "csv_header", "file_batches", "refuse_invalid_rows",
    "row_numbers", "source_refs", "source_rows", "text_batches",
]

BATCH_BYTES = 8 << 20
PARSE_BLOCK_BYTES = 1 << 20
"""CSV is parsed in 1 MiB blocks (they stay in the processor's cache while the parser converts
them: about 15% less parse time than 8 MiB blocks) and checked in batches of eight, so each
check's fixed cost is spread over some 40,000 rows."""
PARQUET_BATCH_ROWS = 131_072
_TEXT_DICTIONARY = pa.dictionary(pa.int32(), pa.string())


class InvalidRows:
    """Rows whose field count is wrong: pyarrow skips them and we account for them."""

    def __init__(self) -> None:
        self.found: list[tuple[int | None, int, int]] = []  # (row number, expected, actual)

    def __call__(self, row: pacsv.InvalidRow) -> str:
        number = row.number if row.number is not None and row.number >= 0 else None
        self.found.append((number, row.expected_columns, row.actual_columns))
        return "skip"


def csv_header(path: Path) -> list[str]:
    """The column names of a CSV file's first line."""
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise ExtractFileError(f"{path.name}: the file is not UTF-8 text") from None
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


def file_batches(item: ExtractFile, spec: FileSpec, invalid: InvalidRows) -> Iterator[pa.RecordBatch]:
    """String-typed record batches, so values like "00123" and "12O.00" reach validation intact."""
    if item.path.suffix == ".parquet":
        yield from _parquet_batches(item, spec)
        return
    names = csv_header(item.path)
    _check_header(item, names, spec.required_columns)
    wanted = [n for n in names if n in spec.names or n.startswith("_")]
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
        for batch in reader:
            pending.append(batch)
            if len(pending) == blocks:
                yield _joined(pending)
                pending = []
        if pending:
            yield _joined(pending)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ExtractFileError(f"{item.source_name}: {arrow_reason(exc)}") from None
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

