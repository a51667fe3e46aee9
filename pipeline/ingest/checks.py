"""The checks of one row on its own: types, required values, dates, amounts, codes, and the
claim rules across a line's fields; plus the cross-row helpers plans and members use.

Every check is a vectorised mask over a batch; a row keeps its first problem only, and the
text of a problem is built only for the rows set aside.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import (
    CENTS_NEGATIVE,
    CENTS_OK,
    civil_dates,
    dollars_to_cents,
    edges_may_need_trim,
    string_buffers,
)
from pipeline.ingest.patterns import matches
from pipeline.ingest.schema import LOW_CARDINALITY, Column, FileSpec, extract_schema
from pipeline.storage import as_array

__all__ = [
    "NO_SURPRISES_CODES", "Problems", "among", "check_columns", "is_ascending", "no_surprises_flags",
    "nonempty", "per_value", "preset_problems", "rejected_rows", "repeated_values",
    "text_columns",
]

NO_SURPRISES_CODES = ("99281", "99282", "99283", "99284", "99285", "99291", "99292", "A0430", "A0431",
                      "A0435", "A0436")
"""Emergency care and air ambulance: out of network, the No Surprises Act protects the member."""


class Problems:
    """First problem per row of a batch: (field, reason); later checks don't overwrite it.

    Kept as one small integer per row (an index into the batch's list of problems), so a
    check costs a numpy mask and the text is built only for the rows set aside."""

    def __init__(self, n: int, fields: pa.Array | None = None, reasons: pa.Array | None = None) -> None:
        self.codes = np.zeros(n, np.int16)
        self.kinds: list[tuple[str | None, str | None]] = [(None, None)]
        if fields is not None and reasons is not None:
            preset = pc.is_valid(fields).to_numpy(zero_copy_only=False)
            at = np.flatnonzero(preset)  # rows a source mapping could not map: few
            pairs = zip(fields.take(pa.array(at)).to_pylist(), reasons.take(pa.array(at)).to_pylist(),
                        strict=True)
            for row, pair in zip(at.tolist(), pairs, strict=True):
                self.codes[row] = self._kind(*pair)

    def _kind(self, field_name: str | None, reason: str | None) -> int:
        if (field_name, reason) not in self.kinds:
            self.kinds.append((field_name, reason))
        return self.kinds.index((field_name, reason))

    def flag(self, mask: pa.Array | pa.ChunkedArray | np.ndarray, field_name: str, reason: str) -> None:
        if not isinstance(mask, np.ndarray):
            mask = pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
        fresh = mask & (self.codes == 0)
        if fresh.any():
            self.codes[fresh] = self._kind(field_name, reason)

    @property
    def bad(self) -> np.ndarray:
        return self.codes != 0

    def described(self, rows: np.ndarray) -> tuple[pa.Array, pa.Array]:
        """(field, reason) text of the given rows."""
        kinds = self.codes[rows]
        fields = pa.array([field for field, _ in self.kinds], pa.string())
        reasons = pa.array([reason for _, reason in self.kinds], pa.string())
        return pc.take(fields, pa.array(kinds)), pc.take(reasons, pa.array(kinds))


def text_columns(batch: pa.RecordBatch, spec: FileSpec) -> dict[str, pa.Array]:
    """Every schema column as text, trimmed where spaces would change the check (codes, dates,
    amounts, required values); optional columns the file lacks are empty."""
    names = batch.schema.names
    out = {}
    for column in spec.columns:
        value = (batch.column(names.index(column.name)) if column.name in names
                 else pa.repeat("", batch.num_rows))
        if value.null_count:
            value = pc.fill_null(value.cast(pa.string()), "")
        if column.name in LOW_CARDINALITY and not pa.types.is_dictionary(value.type):
            value = pc.dictionary_encode(value)  # the same types whatever the source format
        if column.required or column.type != "string" or column.pattern:
            value = _trimmed(value)
        out[column.name] = value
    return out


def _trimmed(value: pa.Array) -> pa.Array:
    if pa.types.is_dictionary(value.type):
        if not _may_need_trim(value.dictionary):
            return value
        return pa.DictionaryArray.from_arrays(value.indices, pc.utf8_trim_whitespace(value.dictionary))
    return pc.utf8_trim_whitespace(value) if _may_need_trim(value) else value


def per_value(value: pa.Array, check: Callable[[pa.Array], np.ndarray]) -> np.ndarray:
    """check(values) as one boolean per row; for a dictionary column, once per distinct value."""
    if pa.types.is_dictionary(value.type):
        distinct = np.asarray(check(value.dictionary))
        if distinct.dtype == bool and len(distinct) and (distinct.all() or not distinct.any()):
            return np.full(len(value), distinct[0])  # the usual case: every value passes alike
        return distinct[value.indices.to_numpy(zero_copy_only=False)]
    return np.asarray(check(value))


def nonempty(values: pa.Array) -> np.ndarray:
    if values.type == pa.string() and isinstance(values, pa.Array):
        return np.diff(string_buffers(values)[0]) > 0  # type: ignore[no-any-return]
    return pc.binary_length(values).to_numpy(zero_copy_only=False) > 0  # type: ignore[no-any-return]


def among(choices: Sequence[str]) -> Callable[[pa.Array], np.ndarray]:
    allowed = pa.array(list(choices), pa.string())
    return lambda values: pc.is_in(values, allowed).to_numpy(zero_copy_only=False)


def _may_need_trim(value: pa.Array) -> bool:
    """False when no value starts or ends with a byte that could be whitespace (ASCII whitespace
    or any non-ASCII byte): then trimming would change nothing, and its copy is skipped."""
    if not isinstance(value, pa.Array) or value.type != pa.string() or value.null_count:
        return True
    return bool(len(value)) and bool(edges_may_need_trim(*string_buffers(value)))


def check_columns(text: dict[str, pa.Array], spec: FileSpec, problems: Problems) -> dict[str, pa.Array]:
    """Per-column checks in schema order; returns the typed values (invalid ones null)."""
    typed: dict[str, pa.Array] = {}
    for column in spec.columns:
        value = text[column.name]
        present = per_value(value, nonempty)
        if column.required:
            problems.flag(~present, column.name, "required value is empty")
        if column.type == "date":
            typed[column.name] = _date(value, present, column, problems)
        elif column.type == "money":
            typed[column.name] = _cents(value, present, column, problems)
        elif column.type == "integer":
            typed[column.name] = _integer(value, present, column, problems)
        else:
            if column.type == "enum":
                known = per_value(value, among(column.values))
                problems.flag(present & ~known, column.name,
                              column.reason or f"must be one of {', '.join(column.values)}")
            if column.pattern:
                shaped = per_value(value, partial(matches, pattern=column.pattern))
                problems.flag(present & ~shaped, column.name, column.reason or "not in the expected format")
            typed[column.name] = value
    return typed


def _date(value: pa.Array, present: np.ndarray, column: Column, problems: Problems) -> pa.Array:
    """YYYY-MM-DD: the shape (the schema's date pattern, which a test keeps equal to this), a real
    calendar day (no 02-30), not before the schema's earliest date."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    days, real = civil_dates(*string_buffers(value))
    problems.flag(present & ~real, column.name,
                  column.reason or "not a valid date (expected YYYY-MM-DD)")
    earliest = date.fromisoformat(extract_schema()["date"]["min"])
    problems.flag(present & real & (days < (earliest - date(1970, 1, 1)).days), column.name,
                  f"date is before {earliest.isoformat()}")
    return pc.cast(pa.array(days, mask=~real), pa.date32())


def _cents(value: pa.Array, present: np.ndarray, column: Column, problems: Problems) -> pa.Array:
    """Exact integer cents of the schema's money pattern, read digit by digit (no float)."""
    if isinstance(value, pa.ChunkedArray):
        value = value.combine_chunks()
    cents, codes = dollars_to_cents(*string_buffers(value))
    valid = codes == CENTS_OK
    all_valid = bool(valid.all())
    if not all_valid:
        problems.flag(present & (codes == CENTS_NEGATIVE), column.name, "negative amount")
        problems.flag(present & ~valid, column.name, "not an amount in dollars and cents (e.g. 123.45)")
    limit = extract_schema()["money"]["max_line_cents"]
    if len(cents) and cents.max() > limit:
        problems.flag(cents > limit, column.name, "amount is implausibly large")
    if all_valid or column.required:
        return pa.array(cents, pa.int64())
    return pa.array(cents, pa.int64(), mask=~valid)


def _integer(value: pa.Array, present: np.ndarray, column: Column, problems: Problems) -> pa.Array:
    valid = matches(value, r"^\d{1,9}$")
    number = pc.cast(value if valid.all() else pc.if_else(pa.array(valid), value, "0"), pa.int64())
    in_range = valid
    numbers = number.to_numpy(zero_copy_only=False)
    if column.minimum is not None:
        in_range = in_range & (numbers >= column.minimum)
    if column.maximum is not None:
        in_range = in_range & (numbers <= column.maximum)
    problems.flag(present & ~in_range, column.name,
                  column.reason or "not a whole number in the allowed range")
    return number


def no_surprises_flags(typed: dict[str, pa.Array]) -> pa.Array:
    """Explicit Y/N wins; otherwise out of network and an emergency or air-ambulance code."""
    derived = (per_value(typed["network"], among(["out"]))
               & per_value(typed["service_code"], among(NO_SURPRISES_CODES)))
    flag = typed["no_surprises"]
    if not per_value(flag, nonempty).any():  # the usual case: no explicit flags at all
        return pa.array(derived)
    return pa.array(np.where(per_value(flag, among([""])), derived, per_value(flag, among(["Y"]))))


def rejected_rows(rows: np.ndarray, problems: Problems, text: dict[str, pa.Array], spec: FileSpec,
                  refs: pa.Array | None) -> tuple | None:  # type: ignore[type-arg]
    """The arguments of Quarantine.reject for a batch's bad rows, or None when there are none."""
    bad = problems.bad
    if not bad.any():
        return None
    at = np.flatnonzero(bad)
    taken = pa.array(at)
    values = pa.table({name: pc.take(text[name], taken) for name in spec.names})
    fields, reasons = problems.described(at)
    return rows[bad], fields, reasons, values, pc.take(refs, taken) if refs is not None else None


def preset_problems(batch: pa.RecordBatch) -> tuple[pa.Array | None, pa.Array | None]:
    """Problems a source mapping found already (FHIR/Synthea rows it could not map)."""
    names = batch.schema.names
    if "_field" not in names:
        return None, None
    fields = batch.column(names.index("_field"))
    reasons = batch.column(names.index("_reason"))
    missing = pc.equal(fields, "")
    return (pc.if_else(missing, pa.scalar(None, pa.string()), fields),
            pc.if_else(missing, pa.scalar(None, pa.string()), reasons))


def repeated_values(values: pa.Array | pa.ChunkedArray, ordered: bool = False) -> list[str]:
    """Values that occur more than once (`ordered`: values sorted, so a copy sits next to its first)."""
    if ordered:
        text = as_array(values)
        if len(text) < 2 or not pc.any(pc.equal(text.slice(1), text.slice(0, len(text) - 1))).as_py():
            return []
    counts = pc.value_counts(values)
    repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
    return [v for v in repeated.to_pylist() if v]


def is_ascending(values: pa.ChunkedArray) -> bool:
    """Are the values sorted already (member files usually are)?"""
    text = as_array(values)
    return len(text) < 2 or bool(pc.all(pc.less_equal(text.slice(0, len(text) - 1), text.slice(1))).as_py())

