"""The member file. Pass 1 checks it batch by batch (plans must be known, birth dates not
after the period) and stages the accepted rows by bucket; pass 2 takes a bucket's members,
keeps each member once and sorts them by member id."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import email_shapes, string_buffers
from pipeline.ingest.checks import (
    Problems,
    check_columns,
    is_ascending,
    rejected_rows,
    repeated_values,
    text_columns,
)
from pipeline.ingest.ordered_work import OrderedWork
from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.reading import (
    InvalidRows,
    file_batches,
    refuse_invalid_rows,
    row_numbers,
    source_refs,
    source_rows,
)
from pipeline.ingest.schema import FileSpec, file_spec
from pipeline.ingest.sources import ExtractFile
from pipeline.ingest.staging import Checked, Stage, apply_checked, bucket_slices, grouping_order, take_stage
from pipeline.storage import MEMBER_FIELDS, as_array, buckets_of

__all__ = ["BucketMembers", "MemberChecks", "stage_members"]


@dataclass(frozen=True, slots=True)
class MemberChecks:
    """What a member batch is checked against: the accepted plans and the statement period."""

    plan_ids: pa.Array
    period_end: date | None
    buckets: int

    def check(self, batch: pa.RecordBatch, rows: np.ndarray) -> Checked:
        """Pure per-batch work (runs in a worker thread): checks, then bucket parts."""
        spec = file_spec("members")
        text = text_columns(batch, spec)
        problems = Problems(batch.num_rows)
        typed = check_columns(text, spec, problems)
        problems.flag(pc.and_(pc.not_equal(typed["plan_id"], ""),
                              pc.invert(pc.is_in(typed["plan_id"], self.plan_ids))),
                      *spec.rule("plan_known"))
        if self.period_end is not None:
            problems.flag(pc.greater(typed["date_of_birth"], pa.scalar(self.period_end, pa.date32())),
                          "date_of_birth", "date of birth is after the statement period")
        kept_at = np.flatnonzero(~problems.bad)
        buckets = buckets_of(typed["member_id"], self.buckets)[kept_at]
        by_bucket = grouping_order(buckets)  # one take: accepted rows, grouped by bucket
        kept_at, buckets = kept_at[by_bucket], buckets[by_bucket]
        taken = pa.array(kept_at)
        columns = {name: pc.take(typed[name], taken) for name in spec.names}
        columns["email_valid"] = pa.array(email_shapes(*string_buffers(as_array(columns["email"]))))
        columns["source_row"] = pa.array(rows[kept_at], pa.int64())
        staged = bucket_slices(pa.table(columns), buckets)
        return Checked(rejected_rows(rows, problems, text, spec, source_refs(batch)), staged, [])


def stage_members(item: ExtractFile, folder: Path, checks: MemberChecks, quarantine: Quarantine) -> None:
    """Pass 1: every batch checked, its rejected rows quarantined and its accepted rows staged
    in `folder` by bucket, in file order. A row with a wrong field count fails the file."""
    spec = file_spec("members")
    invalid = InvalidRows()
    stage = Stage(folder)
    delivered = 0
    tally = quarantine.tally(item)
    try:
        with OrderedWork(workers=1) as work:  # alongside the claims' two: one checker is enough
            for batch in file_batches(item, spec, invalid):
                rows = source_rows(batch)
                if rows is None:
                    rows = row_numbers(item.first_row, delivered, batch.num_rows, np.zeros(0, np.int64))
                delivered += batch.num_rows
                work.submit(checks.check, partial(apply_checked, quarantine, item, stage, None), batch, rows)
    finally:
        stage.close()
    refuse_invalid_rows(item, invalid)
    tally.read += delivered


class BucketMembers:
    """Pass 2, bucket by bucket: the accepted members, each once, and how many there were."""

    def __init__(self, item: ExtractFile, folder: Path, quarantine: Quarantine) -> None:
        self.item, self.folder, self.quarantine = item, folder, quarantine
        self.accepted = 0

    def take(self, bucket: int, shard: int, effects: list[Callable[[], None]]) -> pa.Table:
        """The bucket's members, sorted by member id (runs in a worker thread): what it changes
        in the quarantine and the counts is added to `effects`, applied in bucket order."""
        item, spec = self.item, file_spec("members")
        staged = take_stage(self.folder, bucket)
        if staged is None:
            return MEMBER_FIELDS.empty_table()
        ordered = is_ascending(staged["member_id"])  # member files usually come sorted already
        repeated = repeated_values(staged["member_id"], ordered)
        if repeated:
            staged = self._once(item, spec, staged, repeated, effects)
        n = staged.num_rows
        table = staged.append_column("source_file", pa.repeat(item.source_name, n))
        table = table.append_column("shard", pa.array(np.full(n, shard, np.int32)))
        table = table.append_column("bucket", pa.array(np.full(n, bucket, np.int32)))
        table = table.append_column("recipient", pa.repeat("", n))  # a member file row: the subscriber
        table = table.select(MEMBER_FIELDS.names).cast(MEMBER_FIELDS)
        if not ordered:
            table = table.sort_by("member_id")
        effects.append(partial(self._accept, item, table.num_rows))
        return table

    def _accept(self, item: ExtractFile, count: int) -> None:
        self.accepted += count
        self.quarantine.tally(item).accepted += count

    def _once(self, item: ExtractFile, spec: FileSpec, staged: pa.Table,
              repeated: list[str], effects: list[Callable[[], None]]) -> pa.Table:
        """A member listed twice: exact repeats keep the first row; conflicting copies all go
        (sending a statement to the wrong one of two addresses would disclose PHI)."""
        rule_field, rule_reason = spec.rule("member_unique")
        suspects = staged.filter(pc.is_in(staged["member_id"], pa.array(repeated)))
        by_member: dict[str, list[dict]] = {}  # type: ignore[type-arg]
        for row in suspects.to_pylist():  # only the repeated members: few rows
            by_member.setdefault(row["member_id"], []).append(row)
        drop_rows: list[int] = []
        reasons: list[str] = []
        details: list[str] = []
        for rows in by_member.values():
            rows.sort(key=lambda r: r["source_row"])
            content = {tuple((k, v) for k, v in r.items() if k != "source_row") for r in rows}
            first = f"first row {rows[0]['source_row']}"
            if len(content) == 1:
                drop_rows += [r["source_row"] for r in rows[1:]]
                reasons += [f"{rule_reason} (an exact repeat: the first row is kept)"] * (len(rows) - 1)
                details += [first] * (len(rows) - 1)
            else:
                drop_rows += [r["source_row"] for r in rows]
                reasons += [f"{rule_reason} with different details: every copy set aside"] * len(rows)
                details += [first] * len(rows)
        order = np.argsort(np.array(drop_rows))
        rows_array = np.array(drop_rows, np.int64)[order]
        drop = staged.filter(pc.is_in(staged["source_row"], pa.array(rows_array)))
        drop = drop.sort_by("source_row")
        effects.append(partial(
            self.quarantine.reject, item, rows_array, pa.array([rule_field] * len(rows_array)),
            pa.array([reasons[i] for i in order], pa.string()),
            drop.select([n for n in spec.names]), pa.array([details[i] for i in order], pa.string())))
        return staged.filter(pc.invert(pc.is_in(staged["source_row"], pa.array(rows_array))))
