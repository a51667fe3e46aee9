"""The accumulators file: the claims system's plan-year-to-date deductible and out-of-pocket
figures, per member (and patient), tier (individual, family) and network (in, out). Optional;
when delivered it is the source of truth compose shows instead of computing them.

Few rows, read whole, like plans. A row is set aside (file, row, field, reason) when a value is
malformed, its `as_of` is after the statement period, a family figure names a patient, the same
accumulator is given twice (every copy: which one is true cannot be told), or its member is not
in the member file (checked after pass 2, against members.parquet). The accepted rows go to
`accumulators.parquet` (pipeline.storage.ACCUMULATOR_SCHEMA, amounts in cents, `used` never
capped; `used` over `limit` is an overrun compose flags, not a quarantine reason).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.ingest.checks import Problems, check_columns, rejected_rows, repeated_values, text_columns
from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.reading import row_numbers, whole_file
from pipeline.ingest.schema import file_spec
from pipeline.ingest.sources import ExtractFile
from pipeline.storage import ACCUMULATOR_SCHEMA

__all__ = ["ingest_accumulators"]

_KEY = ("member_id", "patient_id", "accumulator", "tier", "network")


def ingest_accumulators(item: ExtractFile | None, out_dir: Path, quarantine: Quarantine,
                        period_end: date | None) -> int:
    """Check the accumulators file (members.parquet must be written) and write the accepted
    rows to accumulators.parquet; returns how many were accepted (0 and no file without one)."""
    if item is None:
        return 0
    spec = file_spec("accumulators")
    batch = whole_file(item, spec)
    tally = quarantine.tally(item)
    if batch is None:
        pq.write_table(ACCUMULATOR_SCHEMA.empty_table(), out_dir / "accumulators.parquet")
        return 0
    text = text_columns(batch, spec)
    problems = Problems(batch.num_rows)
    typed = check_columns(text, spec, problems)
    if period_end is not None:
        problems.flag(pc.greater(typed["as_of"], pa.scalar(period_end, pa.date32())),
                      *spec.rule("accumulator_as_of"))
    problems.flag(pc.and_(pc.equal(typed["tier"], "family"), pc.not_equal(typed["patient_id"], "")),
                  *spec.rule("accumulator_family_patient"))
    key = pc.binary_join_element_wise(*[pc.cast(typed[name], pa.string()) for name in _KEY], "\x1f")
    repeated = pc.is_in(key, pa.array(repeated_values(key), pa.string()))
    problems.flag(repeated, *spec.rule("accumulator_unique"))
    members = pq.read_table(out_dir / "members.parquet", columns=["member_id", "recipient"])
    known = pc.filter(members["member_id"], pc.equal(members["recipient"], ""))
    unknown = pc.and_(pc.not_equal(typed["member_id"], ""), pc.invert(pc.is_in(typed["member_id"], known)))
    problems.flag(unknown, *spec.rule("accumulator_member_known"))
    rows = row_numbers(item.first_row, 0, batch.num_rows, np.zeros(0, np.int64))
    tally.read += batch.num_rows
    rejected = rejected_rows(rows, problems, text, spec, None)
    if rejected is not None:
        quarantine.reject(item, *rejected)
    good = pa.array(~problems.bad)
    columns = {name: pc.filter(pc.cast(typed[name], ACCUMULATOR_SCHEMA.field(name).type), good)
               for name in ACCUMULATOR_SCHEMA.names if name != "source_row"}
    columns["source_row"] = pc.filter(pa.array(rows, pa.int64()), good)
    table = pa.table(columns, schema=ACCUMULATOR_SCHEMA)
    pq.write_table(table, out_dir / "accumulators.parquet")
    tally.accepted += table.num_rows
    return table.num_rows
