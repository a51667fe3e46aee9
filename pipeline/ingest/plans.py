"""The plan file: few rows, so read whole, checked and written to plans.parquet at once; the
member check needs the plan ids it accepted."""

from __future__ import annotations

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
from pipeline.storage import PLAN_SCHEMA

__all__ = ["ingest_plans"]


def ingest_plans(item: ExtractFile, out_dir: Path, quarantine: Quarantine) -> pa.Array:
    """Check the plan file and write its accepted rows; returns their plan ids."""
    spec = file_spec("plans")
    batch = whole_file(item, spec)
    tally = quarantine.tally(item)
    if batch is None:
        pq.write_table(PLAN_SCHEMA.empty_table(), out_dir / "plans.parquet")
        return pa.array([], pa.string())
    text = text_columns(batch, spec)
    problems = Problems(batch.num_rows)
    typed = check_columns(text, spec, problems)
    repeated = pc.is_in(typed["plan_id"], pa.array(repeated_values(typed["plan_id"]), pa.string()))
    problems.flag(pc.and_(repeated, pc.not_equal(typed["plan_id"], "")), *spec.rule("plan_unique"))
    rows = row_numbers(item.first_row, 0, batch.num_rows, np.zeros(0, np.int64))
    tally.read += batch.num_rows
    good = pa.array(~problems.bad)
    rejected = rejected_rows(rows, problems, text, spec, None)
    if rejected is not None:
        quarantine.reject(item, *rejected)
    table = pa.table({name: pc.filter(typed[name], good) for name in PLAN_SCHEMA.names},
                     schema=PLAN_SCHEMA)
    pq.write_table(table, out_dir / "plans.parquet")
    tally.accepted += table.num_rows
    return table["plan_id"].combine_chunks()
