"""Ingest: stream claim extracts, validate every row, quarantine bad rows with reasons.

Rows are read in pyarrow record batches so memory stays bounded by the batch size, and the
accepted lines are written as canonical Parquet, one file per shard (members hash to shards).
Accounting is enforced: rows read = rows accepted + rows quarantined, per file, or the task fails.
Row numbers are 1-based file lines, the header being line 1, as a spreadsheet shows them.
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from pipeline.generate import CLAIM_COLUMNS, MEMBER_COLUMNS, PLAN_COLUMNS
from pipeline.ledger import FileAccount, QuarantineRow

log = logging.getLogger(__name__)

MONEY_COLUMNS = ["billed", "discount", "plan_paid", "other_payer_paid", "deductible", "copay",
                 "coinsurance", "not_covered"]
MAX_LINE_CENTS = 10_000_000_00  # ten million dollars: anything above is a data error
_MONEY = r"^\d{1,12}(\.\d{1,2})?$"
_DATE = r"^\d{4}-\d{2}-\d{2}$"
_REASON = r"^((PR|CO|OA|PI)-[A-Z0-9]{1,4})?$"
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
BATCH_BYTES = 4 << 20

LINE_SCHEMA = pa.schema([
    ("claim_id", pa.string()), ("line_no", pa.int32()), ("member_id", pa.string()),
    ("patient_name", pa.string()), ("patient_relationship", pa.string()),
    ("provider_name", pa.string()), ("provider_npi", pa.string()), ("network", pa.string()),
    ("service_date", pa.date32()), ("received_date", pa.date32()), ("service_code", pa.string()),
    ("service_description", pa.string()), ("status", pa.string()), ("reason_code", pa.string()),
    *[(name, pa.int64()) for name in MONEY_COLUMNS],
    ("source_file", pa.string()), ("source_row", pa.int64()), ("shard", pa.int32()),
])


class ExtractFileError(ValueError):
    """A whole file cannot be read; the message names the file and what is wrong with it."""


@dataclass(slots=True)
class IngestResult:
    files: list[FileAccount] = field(default_factory=list)
    quarantined: list[QuarantineRow] = field(default_factory=list)
    members: int = 0
    shard_lines: dict[int, int] = field(default_factory=dict)

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files if f.kind == "claims")

    @property
    def rows_accepted(self) -> int:
        return sum(f.rows_accepted for f in self.files if f.kind == "claims")

    @property
    def rows_quarantined(self) -> int:
        return sum(f.rows_quarantined for f in self.files if f.kind == "claims")


class AccountingError(RuntimeError):
    """Rows read do not equal rows accepted plus rows quarantined: something was dropped."""


def shard_of(member_id: str, shards: int) -> int:
    """Stable shard of a member (crc32: the same on every machine and Python version)."""
    return zlib.crc32(member_id.encode("utf-8")) % shards


def discover(folder: Path) -> tuple[Path, Path, list[Path]]:
    """The member file, plan file and claim files of one period's extract folder."""
    members, plans = folder / "members.csv", folder / "plans.csv"
    claims = sorted([*folder.glob("claims*.csv"), *folder.glob("claims*.parquet")])
    for required in (members, plans):
        if not required.exists():
            raise ExtractFileError(f"{required.name}: not found in the extract folder {folder.name}")
    if not claims:
        raise ExtractFileError(f"no claims*.csv or claims*.parquet file in extract folder {folder.name}")
    return members, plans, claims


def ingest(folder: Path, out_dir: Path, shards: int) -> IngestResult:
    """Validate a period's extracts into out_dir/members.parquet and out_dir/lines/shard-NNN.parquet."""
    members_path, plans_path, claim_paths = discover(folder)
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(out_dir / "quarantine", ignore_errors=True)  # a re-run starts its accounts over
    (out_dir / "quarantine").mkdir()
    result = IngestResult()
    plans = _read_plans(plans_path, out_dir, result)
    members = _read_members(members_path, plans, out_dir, shards, result)
    writers = _ShardWriters(out_dir / "lines", shards)
    seen: set[int] = set()
    try:
        for path in claim_paths:
            _ingest_claims(path, members, shards, seen, writers, out_dir, result)
    finally:
        writers.close()
    result.shard_lines = writers.counts
    _check_accounts(result)
    return result


def _check_accounts(result: IngestResult) -> None:
    for account in result.files:
        if account.rows_read != account.rows_accepted + account.rows_quarantined:
            raise AccountingError(
                f"{account.source_file}: {account.rows_read} rows read but "
                f"{account.rows_accepted} accepted + {account.rows_quarantined} quarantined")


# -- file readers --------------------------------------------------------------------------
class _InvalidRows:
    """Rows whose field count is wrong: pyarrow skips them and we account for them."""

    def __init__(self) -> None:
        self.found: list[tuple[int, int]] = []  # (expected, actual) per skipped row

    def __call__(self, row: pacsv.InvalidRow) -> str:
        self.found.append((row.expected_columns, row.actual_columns))
        return "skip"


def _csv_header(path: Path) -> list[str]:
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    except UnicodeDecodeError:
        raise ExtractFileError(f"{path.name}: the file is not UTF-8 text") from None


def _csv_batches(path: Path, columns: list[str], invalid: _InvalidRows) -> Iterator[pd.DataFrame]:
    """String-typed record batches, so values like "00123" and "12O.00" reach validation intact."""
    names = _csv_header(path)
    _check_header(path, names, columns)
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=BATCH_BYTES, use_threads=False),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=False),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
        )
        for batch in reader:
            yield batch.to_pandas().fillna("")
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise ExtractFileError(f"{path.name}: {_arrow_reason(exc)}") from None


def _parquet_batches(path: Path, columns: list[str]) -> Iterator[pd.DataFrame]:
    try:
        parquet = pq.ParquetFile(path)
        names = parquet.schema_arrow.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise ExtractFileError(f"{path.name}: not a readable Parquet file ({_arrow_reason(exc)})") from None
    _check_header(path, names, columns)
    try:
        for batch in parquet.iter_batches(batch_size=65536, columns=columns):
            frame = batch.to_pandas()
            yield frame.astype("string").fillna("").astype(object)
    except (pa.ArrowInvalid, OSError) as exc:
        raise ExtractFileError(f"{path.name}: {_arrow_reason(exc)}") from None


def _check_header(path: Path, names: list[str], columns: list[str]) -> None:
    missing = [c for c in columns if c not in names]
    if missing:
        hint = " (is the delimiter a comma?)" if len(names) == 1 else ""
        raise ExtractFileError(f"{path.name}: missing column(s) {', '.join(missing)}{hint}")


def _arrow_reason(exc: Exception) -> str:
    """A reason without file content: Arrow's CSV messages quote the offending row (PHI)."""
    text = str(exc).splitlines()[0] if str(exc) else ""
    if isinstance(exc, UnicodeDecodeError) or "UTF8" in text or "utf-8" in text.lower():
        return "the file is not UTF-8 text"
    counted = re.match(r"^(CSV parse error: Expected \d+ columns, got \d+)", text)
    if counted:
        return counted.group(1)
    if "CSV" in text:
        return f"CSV parse error ({type(exc).__name__})"
    return text[:120]


def _batches(path: Path, columns: list[str], invalid: _InvalidRows | None = None) -> Iterator[pd.DataFrame]:
    if path.suffix == ".parquet":
        return _parquet_batches(path, columns)
    return _csv_batches(path, columns, invalid or _InvalidRows())


def _bad_field_count_rows(path: Path, expected: int) -> list[tuple[int, int]]:
    """(row number, fields) of rows with the wrong number of fields; scanned only when some exist."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [(number, len(row)) for number, row in enumerate(csv.reader(handle), start=1)
                if number > 1 and len(row) != expected and row]


def _row_numbers(start: int, count: int, skipped: list[int]) -> pd.Series:
    """File row numbers of delivered rows start..start+count, given rows pyarrow skipped."""
    import numpy as np

    delivered = np.arange(start, start + count)
    if not skipped:
        return pd.Series(delivered + 2)
    marks = np.asarray(skipped) - 2 - np.arange(len(skipped))  # delivered index at each skip
    return pd.Series(delivered + 2 + np.searchsorted(marks, delivered, side="right"))


# -- validation ----------------------------------------------------------------------------
class _Problems:
    """First problem per row of a batch: (field, reason); later checks don't overwrite it."""

    def __init__(self, index: pd.Index) -> None:
        self.field = pd.Series("", index=index, dtype=object)
        self.reason = pd.Series("", index=index, dtype=object)

    def flag(self, mask: pd.Series, field_name: str, reason: str) -> None:
        fresh = mask & (self.field == "")
        self.field[fresh] = field_name
        self.reason[fresh] = reason

    @property
    def bad(self) -> pd.Series:
        return self.field != ""


def _require(frame: pd.DataFrame, problems: _Problems, columns: list[str]) -> None:
    for column in columns:
        problems.flag(frame[column].str.strip() == "", column, "required value is empty")


def _dates(frame: pd.DataFrame, problems: _Problems, column: str) -> pd.Series:
    text = frame[column].str.strip()
    parsed = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    problems.flag((text != "") & (~text.str.match(_DATE) | parsed.isna()), column,
                  "not a valid date (expected YYYY-MM-DD)")
    return parsed


def _cents(frame: pd.DataFrame, problems: _Problems, column: str) -> pd.Series:
    text = frame[column].str.strip()
    problems.flag(text.str.startswith("-"), column, "negative amount")
    problems.flag(~text.str.match(_MONEY), column, "not an amount in dollars and cents (e.g. 123.45)")
    numeric = pd.to_numeric(text.where(text.str.match(_MONEY), "0"), errors="coerce").fillna(0)
    cents = (numeric * 100).round().astype("int64")
    problems.flag(cents > MAX_LINE_CENTS, column, "amount is implausibly large")
    return cents


def _ingest_claims(path: Path, members: dict[str, int], shards: int, seen: set[int],
                   writers: _ShardWriters, out_dir: Path, result: IngestResult) -> None:
    skipped: list[tuple[int, int]] = []
    outcome = _claims_pass(path, members, shards, set(seen), writers, out_dir, skipped)
    if outcome is None:  # rows with a wrong field count: locate them, then read again
        writers.discard(path.stem)
        skipped = _bad_field_count_rows(path, len(_csv_header(path)))
        outcome = _claims_pass(path, members, shards, set(seen), writers, out_dir, skipped)
        if outcome is None:
            raise ExtractFileError(f"{path.name}: rows with a wrong number of fields could not "
                                   "be located; check quoting in the file")
    read, accepted, quarantined, keys = outcome
    seen |= keys
    result.files.append(FileAccount(path.name, "claims", read, accepted, len(quarantined)))
    result.quarantined.extend(quarantined)
    log.info("claims file ingested", extra={"file": path.name, "read": read, "accepted": accepted,
                                            "quarantined": len(quarantined)})


def _claims_pass(path: Path, members: dict[str, int], shards: int, seen: set[int],
                 writers: _ShardWriters, out_dir: Path, skipped: list[tuple[int, int]],
                 ) -> tuple[int, int, list[QuarantineRow], set[int]] | None:
    """One streaming pass; None when unexpected wrong-field-count rows turned up."""
    invalid = _InvalidRows()
    delivered = accepted = 0
    quarantined = [QuarantineRow(path.name, number, "(row)",
                                 f"has {fields} fields, the header has {len(CLAIM_COLUMNS)}+")
                   for number, fields in skipped]
    skipped_rows = [number for number, _ in skipped]
    before = set(seen)
    with _QuarantineFile(out_dir / "quarantine" / f"{path.stem}.quarantine.csv", CLAIM_COLUMNS) as qfile:
        for frame in _batches(path, CLAIM_COLUMNS, invalid):
            frame = frame[CLAIM_COLUMNS].reset_index(drop=True)
            rows = _row_numbers(delivered, len(frame), skipped_rows)
            delivered += len(frame)
            good, bad = _validate_claims(frame, rows, members, seen)
            quarantined.extend(QuarantineRow(path.name, r, f, why) for r, f, why in bad)
            qfile.write(frame, rows, bad)
            if len(good):
                writers.write(good.assign(source_file=path.name), path.stem)
                accepted += len(good)
    if len(invalid.found) != len(skipped):
        return None
    quarantined.sort(key=lambda q: q.row_number)
    return delivered + len(skipped), accepted, quarantined, seen - before


def _validate_claims(frame: pd.DataFrame, rows: pd.Series, members: dict[str, int],
                     seen: set[int]) -> tuple[pd.DataFrame, list[tuple[int, str, str]]]:
    rows.index = frame.index
    problems = _Problems(frame.index)
    _require(frame, problems, ["claim_id", "line_no", "member_id", "provider_name",
                               "service_date", "received_date", "service_code", "status"])
    line_no = pd.to_numeric(frame["line_no"], errors="coerce")
    problems.flag(line_no.isna() | (line_no < 1) | (line_no > 999), "line_no",
                  "not a line number between 1 and 999")
    service = _dates(frame, problems, "service_date")
    received = _dates(frame, problems, "received_date")
    problems.flag(received < service, "received_date", "received before the date of service")
    problems.flag(~frame["status"].isin(["paid", "denied", "partial"]), "status",
                  "must be paid, denied or partial")
    problems.flag(~frame["network"].isin(["in", "out"]), "network", "must be in or out")
    problems.flag(~frame["reason_code"].str.match(_REASON), "reason_code",
                  "not a group-code reason like CO-45 or PR-1")
    cents = {name: _cents(frame, problems, name) for name in MONEY_COLUMNS}
    parts = sum(cents[name] for name in MONEY_COLUMNS[1:])
    problems.flag(cents["billed"] != parts, "billed",
                  "billed does not equal discount + plan paid + other payer + member share")
    member_known = frame["member_id"].isin(members.keys())
    problems.flag(~member_known & (frame["member_id"] != ""), "member_id",
                  "member is not in the member file (or its member row was quarantined)")
    keys = (frame["claim_id"] + "#" + frame["line_no"]).map(hash)
    duplicate = pd.Series(False, index=frame.index)
    for index, key in keys[~problems.bad].items():
        if key in seen:
            duplicate[index] = True
        else:
            seen.add(key)
    problems.flag(duplicate, "claim_id", "duplicate claim line (same claim_id and line_no seen before)")
    bad_mask = problems.bad
    bad = list(zip(rows[bad_mask].tolist(), problems.field[bad_mask].tolist(),
                   problems.reason[bad_mask].tolist(), strict=True))
    ok = ~bad_mask
    good = frame.loc[ok, CLAIM_COLUMNS[:14]].copy()
    good["line_no"] = line_no[ok].astype("int32")
    good["service_date"] = service[ok].dt.date
    good["received_date"] = received[ok].dt.date
    for name in MONEY_COLUMNS:
        good[name] = cents[name][ok]
    good["source_row"] = rows[ok]
    good["shard"] = frame.loc[ok, "member_id"].map(members).astype("int32")
    return good, bad


def _read_plans(path: Path, out_dir: Path, result: IngestResult) -> dict[str, tuple[int, int]]:
    invalid = _InvalidRows()
    frame = pd.concat(list(_batches(path, PLAN_COLUMNS, invalid)), ignore_index=True)
    _refuse_invalid_rows(path, invalid)
    rows = pd.Series(range(2, 2 + len(frame)), index=frame.index)
    problems = _Problems(frame.index)
    _require(frame, problems, ["plan_id", "plan_name", "brand"])
    deductible = _cents(frame, problems, "deductible_limit")
    oop = _cents(frame, problems, "out_of_pocket_limit")
    bad = _record_bad(path, frame, rows, problems, out_dir, PLAN_COLUMNS, result, "plans")
    good = frame[~problems.bad].assign(deductible_limit=deductible, out_of_pocket_limit=oop)
    good[PLAN_COLUMNS].to_parquet(out_dir / "plans.parquet", index=False)
    del bad
    return {row.plan_id: (row.deductible_limit, row.out_of_pocket_limit)
            for row in good.itertuples()}


def _read_members(path: Path, plans: dict[str, tuple[int, int]], out_dir: Path, shards: int,
                  result: IngestResult) -> dict[str, int]:
    """Validate the member file; returns member_id → shard for the accepted members."""
    parts = []
    read = 0
    invalid = _InvalidRows()
    for frame in _batches(path, MEMBER_COLUMNS, invalid):
        frame = frame[MEMBER_COLUMNS]
        rows = pd.Series(range(read + 2, read + 2 + len(frame)), index=frame.index)
        read += len(frame)
        problems = _Problems(frame.index)
        _require(frame, problems, ["member_id", "last_name", "date_of_birth", "address_line1",
                                   "city", "state", "postal_code", "plan_id"])
        dob = _dates(frame, problems, "date_of_birth")
        problems.flag(~frame["plan_id"].isin(plans.keys()), "plan_id", "plan is not in plans.csv")
        problems.flag(~frame["edelivery_consent"].isin(["Y", "N"]), "edelivery_consent",
                      "must be Y or N")
        problems.flag(~frame["postal_code"].str.match(r"^\d{5}(-\d{4})?$"), "postal_code",
                      "not a US ZIP code")
        ytd_deductible = _cents(frame, problems, "ytd_deductible")
        ytd_oop = _cents(frame, problems, "ytd_out_of_pocket")
        problems.flag(frame["member_id"].duplicated(), "member_id", "member appears twice")
        _record_bad(path, frame, rows, problems, out_dir, MEMBER_COLUMNS, result, None)
        ok = ~problems.bad
        good = frame[ok].copy()
        good["date_of_birth"] = dob[ok].dt.date
        good["ytd_deductible"] = ytd_deductible[ok]
        good["ytd_out_of_pocket"] = ytd_oop[ok]
        good["email_valid"] = good["email"].map(lambda e: bool(_EMAIL.match(e)))
        good["shard"] = good["member_id"].map(lambda m: shard_of(m, shards)).astype("int32")
        parts.append(good)
    _refuse_invalid_rows(path, invalid)
    members = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=MEMBER_COLUMNS)
    duplicated = members["member_id"].duplicated()
    if duplicated.any():  # across batches: keep the first, account for the rest
        raise ExtractFileError(f"{path.name}: member_id appears twice across the file")
    members.to_parquet(out_dir / "members.parquet", index=False)
    accepted = len(members)
    quarantined = [q for q in result.quarantined if q.source_file == path.name]
    result.files.append(FileAccount(path.name, "members", read, accepted, len(quarantined)))
    result.members = accepted
    return dict(zip(members["member_id"], members["shard"], strict=True))


def _refuse_invalid_rows(path: Path, invalid: _InvalidRows) -> None:
    """Reference files (members, plans) must be whole: a broken row there fails the file."""
    if invalid.found:
        rows = [n for n, _ in _bad_field_count_rows(path, len(_csv_header(path)))]
        raise ExtractFileError(f"{path.name}: rows {rows[:10]} have the wrong number of fields")


def _record_bad(path: Path, frame: pd.DataFrame, rows: pd.Series, problems: _Problems,
                out_dir: Path, columns: list[str], result: IngestResult, kind: str | None) -> int:
    mask = problems.bad
    bad = list(zip(rows[mask].tolist(), problems.field[mask].tolist(),
                   problems.reason[mask].tolist(), strict=True))
    result.quarantined.extend(QuarantineRow(path.name, r, f, why) for r, f, why in bad)
    with _QuarantineFile(out_dir / "quarantine" / f"{path.stem}.quarantine.csv", columns, append=True) as q:
        q.write(frame, rows, bad)
    if kind:
        result.files.append(FileAccount(path.name, kind, len(frame), len(frame) - len(bad), len(bad)))
    return len(bad)


class _QuarantineFile:
    """CSV of rejected rows with the reason next to the original values, for the data team."""

    def __init__(self, path: Path, columns: list[str], append: bool = False) -> None:
        self.path, self.columns, self.append = path, columns, append
        self.handle = None
        self.writer = None

    def __enter__(self) -> _QuarantineFile:
        exists = self.path.exists() and self.append
        self.handle = self.path.open("a" if self.append else "w", newline="", encoding="utf-8")
        self.writer = csv.writer(self.handle)
        if not exists:
            self.writer.writerow(["row_number", "field", "reason", *self.columns])
        return self

    def write(self, frame: pd.DataFrame, rows: pd.Series, bad: list[tuple[int, str, str]]) -> None:
        if not bad:
            return
        by_row = dict(zip(rows.tolist(), frame.index, strict=True))
        for row_number, field_name, reason in bad:
            values = frame.loc[by_row[row_number], self.columns].tolist()
            self.writer.writerow([row_number, field_name, reason, *values])  # type: ignore[union-attr]

    def __exit__(self, *_exc: object) -> None:
        if self.handle:
            self.handle.close()


class _ShardWriters:
    """Parquet parts per shard and source file (lines/shard-NNN/<file>.parquet), opened lazily."""

    def __init__(self, folder: Path, shards: int) -> None:
        self.folder, self.shards = folder, shards
        self.writers: dict[tuple[int, str], pq.ParquetWriter] = {}
        self.counts: dict[int, int] = dict.fromkeys(range(shards), 0)
        self.by_file: dict[tuple[int, str], int] = {}
        if folder.exists():
            shutil.rmtree(folder)
        for shard in range(shards):
            self.shard_dir(shard).mkdir(parents=True)

    def shard_dir(self, shard: int) -> Path:
        return self.folder / f"shard-{shard:03d}"

    def write(self, frame: pd.DataFrame, stem: str) -> None:
        for shard, part in frame.groupby("shard", sort=True):
            key = (int(shard), stem)
            table = pa.Table.from_pandas(part, schema=LINE_SCHEMA, preserve_index=False)
            writer = self.writers.get(key)
            if writer is None:
                writer = pq.ParquetWriter(self.shard_dir(key[0]) / f"{stem}.parquet", LINE_SCHEMA)
                self.writers[key] = writer
            writer.write_table(table)
            self.counts[key[0]] += len(part)
            self.by_file[key] = self.by_file.get(key, 0) + len(part)

    def discard(self, stem: str) -> None:
        """Forget one source file's parts (it is about to be read again)."""
        for key in [k for k in self.writers if k[1] == stem]:
            self.writers.pop(key).close()
            (self.shard_dir(key[0]) / f"{stem}.parquet").unlink()
            self.counts[key[0]] -= self.by_file.pop(key, 0)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()


def read_shard_lines(run_dir: Path, shard: int) -> pd.DataFrame:
    """All accepted lines of one shard, in a stable order."""
    parts = sorted((run_dir / "lines" / f"shard-{shard:03d}").glob("*.parquet"))
    if not parts:
        return LINE_SCHEMA.empty_table().to_pandas()
    return pa.concat_tables([pq.read_table(p, schema=LINE_SCHEMA) for p in parts]).to_pandas()
