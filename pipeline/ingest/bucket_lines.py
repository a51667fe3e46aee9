"""The claim files, pass 2, bucket by bucket: the staged lines of every file, less those of
members not in the member file and the repeats and conflicting claims the claim keys found,
ready to be written as the bucket's canonical lines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.schema import file_spec
from pipeline.ingest.sources import ExtractFile
from pipeline.ingest.staging import ORDER_SHIFT, take_stage
from pipeline.storage import LINE_SCHEMA, as_integers

__all__ = ["BucketLines", "Held"]

Held = Callable[[pa.Table], list[tuple[np.ndarray, str]]]
"""A bucket's lines → masks of lines to set aside, each with its claims rule id."""


class BucketLines:
    """The accepted lines of one bucket at a time, each with its member's row in the bucket."""

    def __init__(self, staging: Path, files: Sequence[ExtractFile], key_rejects: pa.Table,
                 quarantine: Quarantine, held: Held | None = None) -> None:
        self.staging, self.files, self.key_rejects, self.quarantine = staging, files, key_rejects, quarantine
        self.names = [item.source_name for item in files]
        self.held = held

    def take(self, bucket: int, shard: int, member_ids: pa.ChunkedArray,
             effects: list[Callable[[], None]]) -> tuple[pa.Table, np.ndarray]:
        """The bucket's accepted lines, and each one's row in the bucket's members (runs in a
        worker thread): what it changes in the quarantine and the counts is added to `effects`."""
        lines = self._staged(bucket)
        if lines is None:
            return LINE_SCHEMA.empty_table(), np.zeros(0, np.int32)
        members = member_ids.combine_chunks() if member_ids.num_chunks else pa.array([], pa.string())
        owners = pc.fill_null(pc.index_in(lines["member_id"], members), -1).to_numpy(zero_copy_only=False)
        known = owners >= 0
        if not known.all():
            unknown = lines.take(pa.array(np.flatnonzero(~known)))
            self._reject(effects, unknown, *file_spec("claims").rule("member_known"))
        keep = known & ~self._repeats(lines, known, effects)
        if self.held is not None:  # lines that may not reach any statement yet (recipients)
            for mask, rule in self.held(lines):
                hit = mask & keep
                self._reject(effects, lines.filter(pa.array(hit)), *file_spec("claims").rule(rule))
                keep &= ~hit
        if not keep.all():
            lines = lines.filter(pa.array(keep))  # the one copy of the bucket's lines
            owners = owners[keep]
        n = lines.num_rows
        files = as_integers(lines["source_index"])
        lines = lines.append_column("source_file", pa.DictionaryArray.from_arrays(  # no text per line
            pa.array(files), pa.array(self.names, pa.string())))
        lines = lines.append_column("shard", pa.array(np.full(n, shard, np.int32)))
        lines = lines.append_column("bucket", pa.array(np.full(n, bucket, np.int32)))
        lines = lines.select(LINE_SCHEMA.names)
        counts = np.bincount(files, minlength=len(self.names)).tolist()
        effects.append(partial(self._accept, (self.names, counts)))
        return lines, owners

    def _staged(self, bucket: int) -> pa.Table | None:
        """The bucket's staged lines of every file, with the file and row their order encodes."""
        parts = [t for index in range(len(self.names))
                 if (t := take_stage(self.staging / f"claims-{index:04d}", bucket)) is not None]
        if not parts:
            return None
        lines = (pa.concat_tables(parts) if len(parts) > 1 else parts[0]).unify_dictionaries()
        order = as_integers(lines["order"])
        lines = lines.append_column("source_index", pa.array((order >> ORDER_SHIFT).astype(np.int32)))
        return lines.append_column("source_row", pa.array(order & ((1 << ORDER_SHIFT) - 1)))

    def _repeats(self, lines: pa.Table, known: np.ndarray, effects: list[Callable[[], None]]) -> np.ndarray:
        """Which lines of known members the claim keys set aside (repeats, conflicting claims)."""
        spec = file_spec("claims")
        rejects = self.key_rejects
        hit = np.zeros(lines.num_rows, bool)
        if rejects.num_rows:  # a line of an unknown member is reported as that, not as a repeat
            found = pc.index_in(lines["order"], rejects["order"])
            hit = pc.is_valid(found).to_numpy(zero_copy_only=False) & known
        if hit.any():
            at = pa.array(np.flatnonzero(hit))
            which = pc.take(found, at)
            flagged = lines.take(at).append_column("rule", pc.take(rejects["rule"], which)).append_column(
                "first_order", pc.take(rejects["first_order"], which))
            for rule in ("duplicate_line", "claim_members_conflict"):
                part = flagged.filter(pc.equal(flagged["rule"], rule))
                self._reject(effects, part, *spec.rule(rule),
                             first_seen=part["first_order"] if rule == "duplicate_line" else None)
        return hit

    def _accept(self, counts: tuple[list[str], list[int]]) -> None:
        for source, count in zip(*counts, strict=True):
            self.quarantine.tallies[source].accepted += count

    def _reject(self, effects: list[Callable[[], None]], rejected: pa.Table, field_name: str,
                reason: str, first_seen: pa.ChunkedArray | None = None) -> None:
        if not rejected.num_rows:
            return
        spec = file_spec("claims")
        details = None
        if first_seen is not None:
            files = pa.array(self.names, pa.string())
            first_file = pc.take(files, pc.cast(pc.shift_right(first_seen, ORDER_SHIFT), pa.int32()))
            first_row = pc.bit_wise_and(first_seen, (1 << ORDER_SHIFT) - 1)
            details = pc.binary_join_element_wise("first seen in ", first_file, " row ",
                                                  pc.cast(first_row, pa.string()), "")
            rejected = rejected.append_column("_detail", details)
        for index in np.unique(rejected["source_index"].to_numpy()):
            part = rejected.filter(pc.equal(rejected["source_index"], int(index))).sort_by("source_row")
            item = self.files[int(index)]
            values = pa.table({n: part[n] if n in part.column_names else pa.array([""] * part.num_rows)
                               for n in spec.names})
            effects.append(partial(
                self.quarantine.reject, item, part["source_row"].to_numpy(),
                pa.array([field_name] * part.num_rows), pa.array([reason] * part.num_rows, pa.string()),
                values, part["_detail"].combine_chunks() if details is not None else None))
