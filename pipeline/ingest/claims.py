"""The claim files, pass 1: each batch checked by worker threads while the next is parsed;
accepted lines staged by member bucket, their keys (for duplicates across files) by claim
bucket. Rows with a wrong field count shift the numbers of the rows after them, so a file that
has any is read a second time, knowing where they are. A damaged region (bytes that are not
UTF-8, a NUL byte, a field over the size limit, a row longer than a parse block) is found the
same way: the file is scanned row by row, the damaged rows are quarantined, and the rest is read
again, up to a limit of damaged rows past which the file is refused."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import CHECK_SEED, seeded_hashes, string_buffers
from pipeline.ingest.checks import (
    Problems,
    check_columns,
    no_surprises_flags,
    preset_problems,
    rejected_rows,
    text_columns,
)
from pipeline.ingest.claim_rules import check_claim_rules
from pipeline.ingest.ordered_work import OrderedWork
from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.reading import (
    DamagedRegion,
    InvalidRows,
    bad_field_count_rows,
    csv_header,
    damage_masks,
    damaged_text_rows,
    file_batches,
    row_numbers,
    source_refs,
    source_rows,
    split_damaged_rows,
)
from pipeline.ingest.schema import file_spec
from pipeline.ingest.sensitive_lines import sensitive_flags
from pipeline.ingest.sources import ExtractFile, ExtractFileError
from pipeline.ingest.staging import (
    ORDER_SHIFT,
    Checked,
    Stage,
    apply_checked,
    bucket_slices,
    grouping_order,
    split_by_bucket,
)
from pipeline.ingest.totals import line_hashes
from pipeline.storage import LINE_SCHEMA, as_array, hash64

__all__ = ["DEFAULT_DAMAGE_LIMIT", "DEFAULT_MAX_FIELD_BYTES", "ClaimChecks", "ClaimStaging"]

DEFAULT_DAMAGE_LIMIT = 100
"""Damaged rows a claims file may have before it is refused whole."""
DEFAULT_MAX_FIELD_BYTES = 65_536
"""The longest value a claims field may hold; a longer one quarantines its row."""
FREE_TEXT = ["member_id", "patient_name", "provider_name", "service_description"]
"""Claim columns no pattern checks: a NUL byte or an overlong value there is looked for (a CSV
file is then scanned row by row; a Parquet or mapped source has those rows flagged)."""


@dataclass(frozen=True, slots=True)
class ClaimChecks:
    """What a claim batch is checked against: the statement period (dates after it are wrong)."""

    period_end: date | None
    buckets: int
    max_field_bytes: int = DEFAULT_MAX_FIELD_BYTES

    def check(self, index: int, batch: pa.RecordBatch, rows: np.ndarray) -> Checked:
        """Pure per-batch work (runs in a worker thread): checks, typed columns, bucket parts."""
        spec = file_spec("claims")
        text = text_columns(batch, spec)
        problems = Problems(batch.num_rows, *preset_problems(batch))
        if damaged_text_rows(batch, FREE_TEXT, self.max_field_bytes):  # a CSV's are scanned before
            for name, rows_hit, reason in damage_masks(batch, FREE_TEXT, self.max_field_bytes):
                problems.flag(rows_hit, name, reason)
        typed = check_columns(text, spec, problems)
        check_claim_rules(typed, spec, problems, self.period_end)
        rejected = rejected_rows(rows, problems, text, spec, source_refs(batch))
        kept_at = np.flatnonzero(~problems.bad)
        if not len(kept_at):
            return Checked(rejected, [], [])
        member_hash = hash64(typed["member_id"])[kept_at]
        buckets = (member_hash % np.uint64(self.buckets)).astype(np.int32)
        by_bucket = grouping_order(buckets)  # one take: accepted rows, grouped by bucket
        kept_at, member_hash, buckets = kept_at[by_bucket], member_hash[by_bucket], buckets[by_bucket]
        taken = pa.array(kept_at)
        columns = {name: pc.take(typed[name], taken) for name in spec.names if name in LINE_SCHEMA.names}
        columns["line_no"] = pc.cast(columns["line_no"], pa.int32())
        for name in ("denied", "pending", "adverse"):  # settled by the claim rules, not delivered
            columns[name] = pc.take(typed[name], taken)
        columns["no_surprises"] = no_surprises_flags(columns)
        columns["sensitive"] = sensitive_flags(
            {"service_code": columns["service_code"],
             **{name: pc.take(typed[name], taken) for name in ("diagnosis_codes", "revenue_code",
                                                                "place_of_service")}})
        kept = rows[kept_at]
        order = pa.array((np.int64(index) << ORDER_SHIFT) | kept, pa.int64())
        columns["order"] = order  # file and row: the rows' source_index and source_row, in one
        claim_hash = hash64(columns["claim_id"])  # for the line hash and the claim-key buckets
        columns["line_hash"] = pa.array(line_hashes(pa.table(columns), {"claim_id": claim_hash}), pa.uint64())
        claim_check = seeded_hashes(*string_buffers(as_array(columns["claim_id"])), CHECK_SEED)
        keys = pa.table({"claim_hash": pa.array(claim_hash), "claim_check": pa.array(claim_check),
                         "line_no": columns["line_no"], "member_hash": pa.array(member_hash), "order": order})
        return Checked(rejected, bucket_slices(pa.table(columns), buckets),
                       split_by_bucket(keys, (claim_hash % np.uint64(self.buckets)).astype(np.int32)))


class _RowsShifted(Exception):
    """Rows with a wrong field count turned up: the file is read again with them numbered."""


class ClaimStaging:
    """Pass 1 of each claim file: its lines checked, quarantined or staged, and counted."""

    def __init__(self, staging: Path, checks: ClaimChecks, quarantine: Quarantine,
                 damage_limit: int = DEFAULT_DAMAGE_LIMIT) -> None:
        self.staging, self.checks, self.quarantine = staging, checks, quarantine
        self.damage_limit = damage_limit

    def stage(self, index: int, item: ExtractFile) -> None:
        """Stage claim file number `index` (its lines' order numbers start with it)."""
        invalid = InvalidRows()
        try:
            try:
                self._read(index, item, invalid, None)
            except _RowsShifted:  # rows with a wrong field count: number them with the csv module
                found = bad_field_count_rows(item.path, len(csv_header(item.path)))
                self._discard(index, item)
                invalid = InvalidRows()
                self._read(index, item, invalid, np.array([n for n, _, _ in found], np.int64))
                if len(invalid.found) != len(found):
                    raise ExtractFileError(f"{item.source_name}: rows with a wrong number of fields could "
                                           "not be located; check quoting in the file") from None
                invalid.found = list(found)
        except DamagedRegion as damage:
            self._discard(index, item)
            self._read_around_damage(index, item, damage)
            return
        self._reject_broken_rows(item, [(n, "(row)", f"has {actual} fields, the header has {expected}")
                                        for n, expected, actual in invalid.found])

    def _read_around_damage(self, index: int, item: ExtractFile, damage: DamagedRegion) -> None:
        """The file's damaged rows quarantined (and its rows with a wrong field count), the others
        read from a copy without them; more damaged rows than the limit refuse the file."""
        clean = self.staging / f"undamaged-{index:04d}.csv"
        try:
            found = split_damaged_rows(item, clean, self.checks.max_field_bytes)
            damaged = [f for f in found if not f[2].startswith("has ")]
            if not damaged:
                reason = str(damage).removeprefix(f"{item.source_name}: ")
                raise ExtractFileError(f"{item.source_name}: {reason}; no damaged row could be located")
            if len(damaged) > self.damage_limit:
                row, name, reason = damaged[0]
                raise ExtractFileError(
                    f"{item.source_name}: {len(damaged)} damaged rows, more than the limit of "
                    f"{self.damage_limit}; the first is row {row} ({name}: {reason})")
            invalid = InvalidRows()
            skipped = np.array([n for n, _, _ in found], np.int64)
            self._read(index, replace(item, path=clean), invalid, skipped)
            if invalid.found:
                raise ExtractFileError(f"{item.source_name}: rows around the damaged ones could not be "
                                       "told apart; check quoting in the file")
        finally:
            clean.unlink(missing_ok=True)
        self._reject_broken_rows(item, found)

    def _reject_broken_rows(self, item: ExtractFile, found: Sequence[tuple[int | None, str, str]]) -> None:
        """Rows the reader could not deliver: quarantined by row number, field and reason."""
        if not found:
            return
        spec = file_spec("claims")
        ordered = sorted(found, key=lambda f: f[0] or 0)
        rows = np.array([n or 0 for n, _, _ in ordered], np.int64)
        fields = pa.array([name for _, name, _ in ordered], pa.string())
        reasons = pa.array([reason for _, _, reason in ordered], pa.string())
        self.quarantine.reject(item, rows, fields, reasons,
                               pa.table({n: pa.array([""] * len(rows), pa.string()) for n in spec.names}))
        self.quarantine.tally(item).read += len(rows)

    def _read(self, index: int, item: ExtractFile, invalid: InvalidRows, known: np.ndarray | None) -> None:
        """One streaming pass. Rows pyarrow skips (wrong field count) shift the numbers of the
        rows after them: the first pass stops at the first one, the second knows them all."""
        stage = Stage(self.staging / f"claims-{index:04d}")
        keys_stage = Stage(self.staging / f"keys-{index:04d}")
        delivered = 0
        scan = item.path.suffix == ".csv"  # a CSV's damaged rows are found by scanning it
        try:
            with OrderedWork() as work:  # check batches N and N+1 while pyarrow parses N+2
                apply = partial(apply_checked, self.quarantine, item, stage, keys_stage)
                for batch in file_batches(item, file_spec("claims"), invalid):
                    if known is None and invalid.found:
                        raise _RowsShifted
                    if scan and damaged_text_rows(batch, FREE_TEXT, self.checks.max_field_bytes):
                        raise DamagedRegion(f"{item.source_name}: a NUL byte or a value longer than "
                                            f"{self.checks.max_field_bytes} bytes")
                    skipped = known if known is not None else np.zeros(0, np.int64)
                    rows = source_rows(batch)
                    if rows is None:
                        rows = row_numbers(item.first_row, delivered, batch.num_rows, skipped)
                    delivered += batch.num_rows
                    work.submit(self.checks.check, apply, index, batch, rows)
        finally:
            stage.close()
            keys_stage.close()
        if known is None and invalid.found:
            raise _RowsShifted
        self.quarantine.tally(item).read += delivered

    def _discard(self, index: int, item: ExtractFile) -> None:
        """Forget one claims file's first attempt (it is read again with known row numbers)."""
        shutil.rmtree(self.staging / f"claims-{index:04d}", ignore_errors=True)
        shutil.rmtree(self.staging / f"keys-{index:04d}", ignore_errors=True)
        self.quarantine.forget(item)
