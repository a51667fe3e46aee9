"""The confidential-communication requests file: few rows, read whole and checked, like plans.

A request is per patient (member_id + patient_id): where that patient's statements go instead of
the subscriber's address, by which channel, for which claims (`all`, or `sensitive` services
only), from and until when. Rows that cannot be honoured safely are quarantined with the field
and reason (an email request without a usable email, a paper request without a full postal
address, dates that end before they start, two requests in effect for one patient); rows in
effect for the period are handed to pass 2, and a request for a member the member file does not
have is quarantined there (`reject_unknown_members`). Rows not in effect are accepted and unused.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import email_shapes, string_buffers
from pipeline.ingest.checks import Problems, check_columns, rejected_rows, text_columns
from pipeline.ingest.quarantine import Quarantine
from pipeline.ingest.reading import row_numbers, whole_file
from pipeline.ingest.schema import file_spec
from pipeline.ingest.sources import ExtractFile
from pipeline.storage import as_array

__all__ = ["REQUEST_SCHEMA", "Requests", "ingest_requests"]

REQUEST_SCHEMA = pa.schema([
    ("member_id", pa.string()), ("patient_id", pa.string()), ("first_name", pa.string()),
    ("last_name", pa.string()), ("date_of_birth", pa.date32()), ("channel", pa.string()),
    ("email", pa.string()), ("address_line1", pa.string()), ("address_line2", pa.string()),
    ("city", pa.string()), ("state", pa.string()), ("postal_code", pa.string()),
    ("language", pa.string()), ("scope", pa.string()), ("source_row", pa.int64()),
])
_ADDRESS = ("address_line1", "city", "state", "postal_code")


@dataclass(frozen=True, slots=True)
class Requests:
    """The requests in effect for the period, the file they came from, and the patients
    (member_id, patient_id) whose request was set aside: their claims are held, not shown to
    the subscriber (pipeline.ingest.recipients)."""

    item: ExtractFile | None
    table: pa.Table
    held: frozenset[tuple[str, str]] = frozenset()

    @classmethod
    def none(cls) -> Requests:
        return cls(None, REQUEST_SCHEMA.empty_table())

    def reject_unknown_members(self, known: pa.Array, quarantine: Quarantine) -> Requests:
        """Requests whose member the member file does not have (or quarantined) set aside."""
        if self.item is None or not self.table.num_rows:
            return self
        unknown = pc.invert(pc.is_in(self.table["member_id"], known))
        if not pc.any(unknown).as_py():
            return self
        gone = self.table.filter(unknown)
        field, reason = file_spec("requests").rule("request_member_known")
        quarantine.reject(self.item, gone["source_row"].to_numpy(), pa.array([field] * gone.num_rows),
                          pa.array([reason] * gone.num_rows), _values(gone))
        quarantine.tally(self.item).accepted -= gone.num_rows
        return Requests(self.item, self.table.filter(pc.invert(unknown)), self.held)


def _values(table: pa.Table) -> pa.Table:
    """What the quarantine CSV keeps of a row (as text, every column of the file)."""
    blank = pa.array([""] * table.num_rows, pa.string())
    return pa.table({name: pc.cast(table[name], pa.string()) if name in table.column_names else blank
                     for name in file_spec("requests").names})


def ingest_requests(item: ExtractFile | None, quarantine: Quarantine,
                    period: tuple[date, date] | None) -> Requests:
    """Check the requests file; the accepted rows in effect during `period` (all, without one)."""
    if item is None:
        return Requests.none()
    spec = file_spec("requests")
    batch = whole_file(item, spec)
    tally = quarantine.tally(item)
    if batch is None:
        return Requests(item, REQUEST_SCHEMA.empty_table())
    text = text_columns(batch, spec)
    problems = Problems(batch.num_rows)
    typed = check_columns(text, spec, problems)
    _check_rules(typed, problems)
    in_effect = _choose(typed, problems, period)  # good rows only
    rows = row_numbers(item.first_row, 0, batch.num_rows, np.zeros(0, np.int64))
    tally.read += batch.num_rows
    rejected = rejected_rows(rows, problems, text, spec, None)
    if rejected is not None:
        quarantine.reject(item, *rejected)
    good = ~problems.bad
    tally.accepted += int(good.sum())
    keys = zip(text["member_id"].to_pylist(), text["patient_id"].to_pylist(), problems.bad, strict=True)
    held = frozenset((member, patient) for member, patient, bad in keys if bad and member and patient)
    keep = pa.array(in_effect)
    columns = {name: pc.filter(typed[name], keep) for name in REQUEST_SCHEMA.names if name != "source_row"}
    columns["source_row"] = pa.array(rows[in_effect], pa.int64())
    return Requests(item, pa.table({n: pc.cast(as_array(c), REQUEST_SCHEMA.field(n).type)
                                    for n, c in columns.items()}, schema=REQUEST_SCHEMA), held)


def _in_effect(typed: dict[str, pa.Array], period: tuple[date, date] | None) -> np.ndarray:
    """From `effective_from` to `effective_to` (open when empty) overlaps the period."""
    if period is None:
        return np.ones(len(typed["member_id"]), bool)
    first, last = (pa.scalar(day, pa.date32()) for day in period)
    started = pc.fill_null(pc.less_equal(typed["effective_from"], last), False)
    not_ended = pc.fill_null(pc.greater_equal(typed["effective_to"], first), True)
    return pc.and_(started, not_ended).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _check_rules(typed: dict[str, pa.Array], problems: Problems) -> None:
    spec = file_spec("requests")
    ends_first = pc.fill_null(pc.less(typed["effective_to"], typed["effective_from"]), False)
    problems.flag(ends_first, *spec.rule("request_dates"))
    paper = pc.equal(typed["channel"], "paper").to_numpy(zero_copy_only=False)
    no_address = np.zeros(len(paper), bool)
    for name in _ADDRESS:
        no_address |= pc.equal(typed[name], "").to_numpy(zero_copy_only=False)
    problems.flag(paper & no_address, *spec.rule("request_has_address"))
    email = as_array(typed["email"])
    usable = email_shapes(*string_buffers(email)) if len(email) else np.zeros(0, bool)
    by_email = pc.equal(typed["channel"], "email").to_numpy(zero_copy_only=False)
    problems.flag(by_email & ~usable, *spec.rule("request_has_email"))


def _choose(typed: dict[str, pa.Array], problems: Problems, period: tuple[date, date] | None) -> np.ndarray:
    """Which good rows apply to the period: per patient, the request in effect at the period's end
    (or the last to start, when none is); one that ended before the next began is replaced by
    it. Two in effect on the same day are both set aside: which one wins is not ours to guess."""
    effective = _in_effect(typed, period) & ~problems.bad
    by_patient: dict[tuple[str, str], list[int]] = {}
    members, patients = typed["member_id"].to_pylist(), typed["patient_id"].to_pylist()
    for index in np.flatnonzero(effective).tolist():
        by_patient.setdefault((members[index], patients[index]), []).append(index)
    starts, ends = typed["effective_from"].to_pylist(), typed["effective_to"].to_pylist()
    chosen = np.zeros(len(effective), bool)
    clash = np.zeros(len(effective), bool)
    for indexes in by_patient.values():
        spans = sorted((starts[i], ends[i] or date.max, i) for i in indexes)
        if any(later[0] <= earlier[1] for earlier, later in zip(spans, spans[1:], strict=False)):
            clash[indexes] = True
        else:
            chosen[spans[-1][2]] = True
    problems.flag(clash, *file_spec("requests").rule("request_unique"))
    return chosen
