"""The files a print vendor sends back: one acknowledgement per batch, and tracking files.

Pure functions over bytes: reading the drop and moving ledger statuses are the stage's work. A
bad row never sinks its file: it comes back as a `RowProblem` (row and column, never the value)
beside the good rows, so the stage records it and goes on. Only a file that cannot be read as
the agreed table at all (empty, not UTF-8, wrong header, broken CSV) raises `VendorFileError`.
Rows are checked one by one; matching them with the batch (an unknown statement id, a duplicate,
a page count that differs from the manifest) is the stage's, which knows the batch.

Both files are CSV in UTF-8 (a byte-order mark is tolerated), comma separated, quoted the usual
way, CRLF or LF line ends, the header row first and exactly as below. Spaces around a value are
ignored; blank lines are skipped. Row 1 is the line after the header, so row N is line N + 1
when no value spans lines. docs/paper.md describes them for the vendor's engineers.

A forwarding address and a rejection reason may carry a member's details: they are data to
record, so no message or log line here shows a value of the file, and a row's repr leaves them out.
"""

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Literal, NamedTuple, TypeVar, cast, get_args

log = logging.getLogger(__name__)

AckStatus = Literal["accepted", "rejected"]
TrackingEvent = Literal["mailed", "in_transit", "processed_for_delivery", "delivered",
                        "returned_to_sender", "forwarded"]
ACK_STATUSES: tuple[AckStatus, ...] = get_args(AckStatus)
TRACKING_EVENTS: tuple[TrackingEvent, ...] = get_args(TrackingEvent)

ACK_COLUMNS = ("statement_id", "sequence", "status", "pages", "reason")
TRACKING_COLUMNS = ("statement_id", "imb_serial", "event", "event_date", "new_address")
ADDRESS_SEPARATOR = " | "
"""Joins the lines of a forwarding address in one `new_address` value."""
MAX_REASON = 200
MAX_ADDRESS_LINES = 5
WHOLE_ROW = "*"
"""The `RowProblem.field` of a row that cannot be split into the agreed columns."""

_ACK_NAME = re.compile(r"(?P<batch>[^./\\][^/\\]*)\.ack\.csv")
_TRACKING_NAME = re.compile(r"tracking-[0-9]{8}-[0-9]{3}\.csv")
_POSITIVE = re.compile(r"0*[1-9][0-9]{0,8}")
_STATEMENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
_SERIAL = re.compile(r"[0-9]{6}|[0-9]{9}")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_RESEND = "ask the vendor to correct it and send the file again"


class VendorFileError(ValueError):
    """A vendor file that cannot be read as the agreed table; nothing of it was recorded. The
    message names the file, the row where it went wrong (0 is the header; None: the whole file)
    and what to ask the vendor; row problems, which name a column, are `RowProblem`s instead."""

    def __init__(self, file: str, problem: str, *, row: int | None = None) -> None:
        self.file, self.row = file, row
        where = file if row is None else f"{file} {_row_label(row)}"
        super().__init__(f"{where}: {problem}; {_RESEND}")


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One bad value in a row that was set aside (the value itself is never kept)."""

    row: int
    field: str
    problem: str

    def describe(self, file: str) -> str:
        """A line for the operator and the vendor: file, row and line, column, what is wrong."""
        where = "" if self.field == WHOLE_ROW else f", column {self.field}"
        return f"{file} {_row_label(self.row)}{where}: {self.problem}; {_RESEND}"


@dataclass(frozen=True, slots=True)
class AckRow:
    """One piece as the vendor acknowledged it. ``pages`` is the vendor's own count, which the
    stage compares with the manifest's."""

    statement_id: str
    sequence: int
    status: AckStatus
    pages: int
    reason: str = field(default="", repr=False)  # free text from the vendor: may name a member


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """The vendor's answer for one batch: a row per piece it could read, and the rows it could not."""

    batch: str
    rows: tuple[AckRow, ...]
    problems: tuple[RowProblem, ...] = ()


@dataclass(frozen=True, slots=True)
class TrackingRow:
    """One mail-tracking event of one piece; ``new_address`` (its lines) only when forwarded."""

    statement_id: str
    imb_serial: str
    event: TrackingEvent
    event_date: date
    new_address: tuple[str, ...] = field(default=(), repr=False)  # PHI: record, never log


class TrackingFile(NamedTuple):
    """One tracking file's events in file order, and the rows that could not be read; a pair, so
    ``rows, problems = parse_tracking(...)`` reads it too."""

    rows: tuple[TrackingRow, ...]
    problems: tuple[RowProblem, ...] = ()


def classify_vendor_file(name: str) -> Literal["ack", "tracking"] | None:
    """What a file in the vendor's outbound folder is, by its name alone; None for anything else
    (and for dot names, which are files still being written)."""
    base = _base(name)
    if _ACK_NAME.fullmatch(base):
        return "ack"
    if _TRACKING_NAME.fullmatch(base):
        return "tracking"
    return None


def parse_ack(data: bytes, name: str) -> Acknowledgement:
    """``<BATCH>.ack.csv``: one row per piece of the batch, accepted or rejected with a reason."""
    match = _ACK_NAME.fullmatch(_base(name))
    if match is None:
        raise VendorFileError(name, "an acknowledgement is named <BATCH>.ack.csv")
    rows, problems = _split(_ack_row(row, values) for row, values in _records(data, name, ACK_COLUMNS))
    _log_problems(name, len(rows), problems)
    return Acknowledgement(match["batch"], rows, problems)


def parse_tracking(data: bytes, name: str) -> TrackingFile:
    """``tracking-YYYYMMDD-NNN.csv``: mail-tracking events, one per row, for any pieces of any
    batches; a piece may appear in several rows and several files."""
    if _TRACKING_NAME.fullmatch(_base(name)) is None:
        raise VendorFileError(name, "a tracking file is named tracking-YYYYMMDD-NNN.csv")
    rows, problems = _split(_tracking_row(row, values)
                            for row, values in _records(data, name, TRACKING_COLUMNS))
    _log_problems(name, len(rows), problems)
    return TrackingFile(rows, problems)


def _ack_row(row: int, values: dict[str, str]) -> AckRow | list[RowProblem]:
    found = _count_problem(row, values, ACK_COLUMNS)
    if found:
        return found
    statement_id = _statement_id(row, values, found)
    sequence = _positive(row, values, "sequence", found)
    status, reason = values["status"], values["reason"]
    if status not in ACK_STATUSES:
        found.append(RowProblem(row, "status", f"not one of {', '.join(ACK_STATUSES)}"))
    pages = _positive(row, values, "pages", found)
    if status == "rejected" and not reason:
        found.append(RowProblem(row, "reason", "empty, but a rejected piece needs a reason"))
    elif len(reason) > MAX_REASON:
        found.append(RowProblem(row, "reason", f"longer than {MAX_REASON} characters"))
    return found or AckRow(statement_id, sequence, cast(AckStatus, status), pages, reason)


def _tracking_row(row: int, values: dict[str, str]) -> TrackingRow | list[RowProblem]:
    found = _count_problem(row, values, TRACKING_COLUMNS)
    if found:
        return found
    statement_id = _statement_id(row, values, found)
    serial, event = values["imb_serial"], values["event"]
    if not _SERIAL.fullmatch(serial):
        found.append(RowProblem(row, "imb_serial", "not a barcode serial number (6 or 9 digits)"))
    if event not in TRACKING_EVENTS:
        found.append(RowProblem(row, "event", f"not one of {', '.join(TRACKING_EVENTS)}"))
    event_date = _iso_date(row, values, found)
    address = _address(row, values, event, found)
    return found or TrackingRow(statement_id, serial, cast(TrackingEvent, event), event_date, address)


_Row = TypeVar("_Row", AckRow, TrackingRow)


def _split(results: Iterable[_Row | list[RowProblem]]) -> tuple[tuple[_Row, ...], tuple[RowProblem, ...]]:
    rows: list[_Row] = []
    problems: list[RowProblem] = []
    for result in results:
        if isinstance(result, list):
            problems.extend(result)
        else:
            rows.append(result)
    return tuple(rows), tuple(problems)


def _records(data: bytes, name: str, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """The data rows as (row number, column → value without surrounding spaces), after the checks
    that concern the whole file. A row with the wrong number of values maps ``*`` to that number."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise VendorFileError(name, f"not UTF-8 (the first bad byte is at offset {exc.start}, on "
                              f"line {line})") from None
    if not text.strip():
        raise VendorFileError(name, f"empty: not even the header {','.join(columns)}", row=0)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict[str, str]]] = []
    row = -1  # the record being read is row + 1: the header is row 0
    try:
        _check_header(next(reader, []), columns, name)
        row = 0
        for row, values in enumerate(reader, start=1):
            if not any(value.strip() for value in values):
                continue  # a blank line: counted, so row numbers stay those of a spreadsheet
            if len(values) != len(columns):
                records.append((row, {WHOLE_ROW: str(len(values))}))
            else:
                records.append((row, {c: v.strip() for c, v in zip(columns, values, strict=True)}))
    except csv.Error:
        raise VendorFileError(name, "not valid CSV from here on (a stray or unclosed quote?)",
                              row=row + 1) from None
    return records


def _check_header(values: list[str], columns: tuple[str, ...], name: str) -> None:
    got = [value.strip().lower() for value in values]
    if got == list(columns):
        return
    missing = [c for c in columns if c not in got]
    if missing:
        detail = f"{', '.join(missing)} missing"
    elif len(got) != len(columns):
        detail = f"{len(got)} columns where {len(columns)} are agreed"
    else:
        detail = "the columns are out of order"
    raise VendorFileError(name, f"the first line must be the header {','.join(columns)} ({detail})",
                          row=0)


def _count_problem(row: int, values: dict[str, str], columns: tuple[str, ...]) -> list[RowProblem]:
    if WHOLE_ROW in values:
        return [RowProblem(row, WHOLE_ROW, f"{values[WHOLE_ROW]} values where the header has "
                                           f"{len(columns)} (a value with a comma must be quoted)")]
    return []


def _statement_id(row: int, values: dict[str, str], found: list[RowProblem]) -> str:
    """An id as the manifest gave it: a token, so that one is safe to log and a shifted column
    (an address where the id should be) is caught rather than recorded as an id."""
    value = values["statement_id"]
    if not _STATEMENT_ID.fullmatch(value):
        found.append(RowProblem(row, "statement_id", "empty or not a statement id as the manifest "
                                                     "gives it (letters, digits, '-', '_', '.', ':')"))
    return value


def _positive(row: int, values: dict[str, str], column: str, found: list[RowProblem]) -> int:
    value = values[column]
    if _POSITIVE.fullmatch(value):
        return int(value)
    found.append(RowProblem(row, column, "not a positive whole number (1, 2, 3, …)"))
    return 0


def _iso_date(row: int, values: dict[str, str], found: list[RowProblem]) -> date:
    value = values["event_date"]
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    found.append(RowProblem(row, "event_date", "not a calendar date written YYYY-MM-DD"))
    return date.min


def _address(row: int, values: dict[str, str], event: str, found: list[RowProblem]) -> tuple[str, ...]:
    value = values["new_address"]
    if not value:
        return ()
    if event != "forwarded":
        found.append(RowProblem(row, "new_address", "given, but only a forwarded row has one"))
        return ()
    lines = tuple(line.strip() for line in value.split(ADDRESS_SEPARATOR.strip()))
    if not all(lines):
        found.append(RowProblem(row, "new_address", f"has an empty line (lines are joined by "
                                                    f"'{ADDRESS_SEPARATOR}')"))
    elif len(lines) > MAX_ADDRESS_LINES:
        found.append(RowProblem(row, "new_address", f"more than {MAX_ADDRESS_LINES} lines"))
    return lines


def _base(name: str) -> str:
    return name.replace("\\", "/").rsplit("/", 1)[-1]


def _row_label(row: int) -> str:
    return "header" if row == 0 else f"row {row}"


def _log_problems(name: str, good: int, problems: tuple[RowProblem, ...]) -> None:
    """File, rows and columns only: a value may be a member's address."""
    if problems:
        log.warning("%s: %d row(s) read, %d value(s) set aside: %s", name, good, len(problems),
                    ", ".join(f"row {p.row} {p.field}" for p in problems))
