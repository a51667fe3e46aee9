"""Pass 2: bucket by bucket, the checks that need other rows (members once each, lines of
known members once each), then the bucket's lines as Parquet and its members, with their line
totals, appended to members.parquet. Two buckets are worked on at once; their results are
applied in bucket order, so members.parquet keeps each shard's members together."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ingest.bucket_lines import BucketLines
from pipeline.ingest.members import BucketMembers
from pipeline.ingest.ordered_work import OrderedWork
from pipeline.ingest.recipients import RecipientSplit
from pipeline.ingest.totals import line_totals
from pipeline.storage import LINE_SCHEMA, LINE_TOTALS, MEMBER_SCHEMA, parquet_options

__all__ = ["write_buckets"]

_Done = tuple[int, pa.Table, int, list[Callable[[], None]]]
"""What a worker hands back for one bucket: its shard, members, line count, and effects."""


def write_buckets(out_dir: Path, shards: int, buckets: int, members: BucketMembers,
                  lines: BucketLines, recipients: RecipientSplit) -> dict[int, int]:
    """Every bucket's members and lines written, each line under its statement's recipient
    (`recipients`); returns the accepted lines per shard."""
    shard_lines = dict.fromkeys(range(shards), 0)
    members_path = out_dir / "members.parquet"
    with pq.ParquetWriter(members_path, MEMBER_SCHEMA, **parquet_options(MEMBER_SCHEMA)) as members_out, \
            OrderedWork() as work:  # two buckets checked and written at once, applied in order
        for bucket in _bucket_order(shards, buckets):
            shard = bucket % shards
            work.submit(partial(_bucket, out_dir, members, lines, recipients),
                        partial(_apply, members_out, shard_lines),
                        bucket, shard)
    for shard in range(shards):
        (out_dir / "lines" / f"shard-{shard:03d}").mkdir(parents=True, exist_ok=True)
    return shard_lines


def _bucket_order(shards: int, buckets: int) -> list[int]:
    """Buckets shard by shard, so each shard's members sit together in members.parquet."""
    return [b for shard in range(shards) for b in range(shard, buckets, shards)]


def _bucket(out_dir: Path, members: BucketMembers, lines: BucketLines, recipients: RecipientSplit,
            bucket: int, shard: int) -> _Done:
    """Pure per-bucket work (runs in a worker thread): checks, sort, the lines' Parquet file.
    What it changes in the quarantine and the tallies comes back as effects, applied in order."""
    effects: list[Callable[[], None]] = []
    accepted = members.take(bucket, shard, effects)
    table, owners = lines.take(bucket, shard, accepted["member_id"], effects)
    accepted, table, owners = recipients.split(accepted, table, owners)
    totals = line_totals(table, owners, accepted.num_rows)
    for total in LINE_TOTALS:
        accepted = accepted.append_column(total, totals[total.name])
    folder = out_dir / "lines" / f"shard-{shard:03d}"
    folder.mkdir(parents=True, exist_ok=True)
    if table.num_rows:
        # without the Arrow schema, readers get the dictionary columns back as plain strings;
        # no statistics: a bucket file is always read whole
        pq.write_table(table, folder / f"bucket-{bucket:05d}.parquet",
                       **(parquet_options(LINE_SCHEMA) | {"write_statistics": False}), store_schema=False)
    return shard, accepted, table.num_rows, effects


def _apply(members_out: pq.ParquetWriter, shard_lines: dict[int, int], done: _Done) -> None:
    shard, members, line_count, effects = done
    for effect in effects:
        effect()
    members_out.write_table(members)
    shard_lines[shard] += line_count
