"""Staging: accepted rows of pass 1 written per bucket (Arrow IPC), for pass 2 to take back
bucket by bucket, so neither pass holds more than a few batches or one bucket in memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc

from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.sources import ExtractFile

__all__ = ["ORDER_SHIFT", "Checked", "Stage", "apply_checked", "bucket_slices", "grouping_order",
           "split_by_bucket", "take_stage"]

ORDER_SHIFT = 40  # order = file index << 40 | row number: first occurrence wins across files


class Stage:
    """Accepted rows of one file, split into bucket files (Arrow IPC streams: cheap to write and
    read, and each batch may bring its own dictionaries)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.writers: dict[int, ipc.RecordBatchStreamWriter] = {}
        folder.mkdir(parents=True, exist_ok=True)

    def write_parts(self, parts: list[tuple[int, pa.Table]]) -> None:
        for bucket, part in parts:
            writer = self.writers.get(bucket)
            if writer is None:
                writer = ipc.new_stream(self.folder / f"bucket-{bucket:05d}.arrows", part.schema)
                self.writers[bucket] = writer
            writer.write_table(part)

    def close(self) -> None:
        for writer in self.writers.values():
            writer.close()
        self.writers.clear()


def take_stage(folder: Path, bucket: int) -> pa.Table | None:
    """A staged bucket, its file removed once mapped (each is read once): disk space comes back,
    and the cost of removing files is spread over the workers rather than left to the end."""
    path = folder / f"bucket-{bucket:05d}.arrows"
    if not path.exists():
        return None
    with pa.memory_map(str(path)) as source:
        table = ipc.open_stream(source).read_all()
    path.unlink()
    return table


@dataclass(frozen=True, slots=True)
class Checked:
    """One checked batch: its quarantine rows (or None), and its accepted rows split by bucket."""

    rejected: tuple | None  # type: ignore[type-arg]
    staged: list[tuple[int, pa.Table]]
    keys: list[tuple[int, pa.Table]]


def apply_checked(quarantine: Quarantine, item: ExtractFile, stage: Stage, keys_stage: Stage | None,
                  checked: Checked) -> None:
    """One checked batch, in file order: its quarantine rows, then its staged parts."""
    if checked.rejected is not None:
        quarantine.reject(item, *checked.rejected)
    stage.write_parts(checked.staged)
    if keys_stage is not None:
        keys_stage.write_parts(checked.keys)


def grouping_order(buckets: np.ndarray) -> np.ndarray:
    """The stable order that groups rows by bucket (a radix sort when bucket numbers are small)."""
    narrow = buckets.astype(np.int16) if len(buckets) and int(buckets.max()) < 2**15 else buckets
    return np.argsort(narrow, kind="stable")  # type: ignore[no-any-return]


def split_by_bucket(table: pa.Table, buckets: np.ndarray) -> list[tuple[int, pa.Table]]:
    """Rows grouped by bucket: one take, then zero-copy slices."""
    if not table.num_rows:
        return []
    order = grouping_order(buckets)
    return bucket_slices(table.take(pa.array(order)), buckets[order])


def bucket_slices(table: pa.Table, buckets: np.ndarray) -> list[tuple[int, pa.Table]]:
    """(bucket, rows) of a table already grouped by bucket (`buckets` ascending)."""
    counts = np.bincount(buckets, minlength=int(buckets.max()) + 1) if len(buckets) else np.zeros(0, np.int64)
    parts, start = [], 0
    for bucket, count in enumerate(counts):
        if count:
            parts.append((bucket, table.slice(start, int(count))))
            start += int(count)
    return parts

