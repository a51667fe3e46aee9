"""Pass 2: a bucket's lines split by recipient (pipeline.recipients).

A patient's claims move from the subscriber's statement to one of their own when the patient has
a confidential-communications request in effect (scope `all`: every claim; `sensitive`: the
claims with a sensitive-service line), or, with no request, when a dependent's claim has a
sensitive-service line and the policy is `separate`. A claim moves whole: one sensitive line
takes its other lines (same provider and date) with it. The recipient gets a member row of its
own, built from the subscriber's (plan, group, line of business) and the request (name, birth
date, address, email, language); without a request it is the patient's name at the address on
file, by paper, since the email on file is the subscriber's. An email request without a postal
address has none: a paper fallback then stops at the address exceptions for support instead of
reaching the family's mailbox. Its prior year-to-date amounts are 0: the family's accumulators
are the subscriber's, and the recipient's statement shows none (see compose).

A claim that would move but cannot be placed safely is held (quarantined with the reason, so it
is counted and loud) rather than left on the subscriber's statement: the patient's request was
set aside as malformed or conflicting (`patient_request_held`), or a dependent's sensitive claim
has no patient_id to give it a statement of its own (`sensitive_needs_patient`).

The subscriber's own lines may leave no patient_id; a request whose patient_id is the member id
matches them. Both rows stay in the subscriber's bucket, so the subscriber's shard holds every
statement the member file's row led to. A bucket nothing moves in is handed back untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import email_shapes, string_buffers
from pipeline.recipients import recipient_id
from pipeline.storage import MEMBER_FIELDS, as_array

__all__ = ["RecipientSplit"]

_DEPENDENTS = pa.array(["spouse", "child", "other"], pa.string())
_SUBSCRIBER = pa.array(["self", ""], pa.string())
_REQUEST_FIELDS = ("first_name", "last_name", "date_of_birth")
_ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code")
_SEP = "\x1f"
_FAMILY_YTD = ("ytd_family_deductible", "ytd_family_out_of_pocket", "ytd_oon_deductible",
               "ytd_oon_out_of_pocket", "ytd_oon_family_deductible", "ytd_oon_family_out_of_pocket")


@dataclass(frozen=True, slots=True)
class RecipientSplit:
    """The requests in effect (pipeline.ingest.requests), the patients whose request was set
    aside (`held`: member_id, patient_id), the policy and the requests file's name."""

    requests: pa.Table
    policy: str = "separate"
    requests_file: str = ""
    held: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def held_lines(self, lines: pa.Table) -> list[tuple[np.ndarray, str]]:
        """Lines to set aside before the split, each mask with its claims rule id (see above)."""
        found = []
        if self.held:
            members = pa.array(sorted({member for member, _ in self.held}), pa.string())
            keys = pa.array([f"{m}{_SEP}{p}" for m, p in sorted(self.held)], pa.string())
            found.append((_whole_claims(lines, _match(lines, members, keys) >= 0), "patient_request_held"))
        if self.policy == "separate":
            hit = _sensitive(lines)
            if hit.any():
                hit &= _dependent(lines) & _no_patient_id(lines)
                hit &= self._request_at(lines) < 0
            found.append((_whole_claims(lines, hit), "sensitive_needs_patient"))
        return [(mask, rule) for mask, rule in found if mask.any()]

    def _request_at(self, lines: pa.Table) -> np.ndarray:
        """Each line's request (its row in `requests`), -1 for none."""
        return _match(lines, self.requests["member_id"], _request_keys(self.requests))

    def split(self, members: pa.Table, lines: pa.Table,
              owners: np.ndarray) -> tuple[pa.Table, pa.Table, np.ndarray]:
        """The bucket's members with a row per new recipient, its lines with their recipient's id,
        and each line's row in the new members table."""
        moved, request_at = self._moved(lines)
        if moved is None:
            return members, lines, owners
        at = np.flatnonzero(moved)
        taken = pa.array(at)
        subscribers = lines["member_id"].take(taken).to_pylist()
        patients = _patient_keys(lines.select(["member_id", "patient_id", "patient_relationship"]).take(
            taken)).to_pylist()
        claims = lines["claim_id"].take(taken).to_pylist()
        names = lines["patient_name"].take(taken).to_pylist()
        recipient_of: dict[str, tuple[str, int, int, str | None]] = {}  # claim → its recipient
        for line, subscriber, key, claim, name in zip(at.tolist(), subscribers, patients, claims, names,
                                                       strict=True):
            if claim not in recipient_of and key:
                recipient_of[claim] = (recipient_id(subscriber, key.split(_SEP, 1)[1]), line,
                                       int(request_at[line]), name)
        ids = [recipient_of[claim][0] for claim in claims]
        chosen: dict[str, tuple[int, int, str | None]] = {}  # each recipient once, from its first claim
        for recipient, line, request, name in recipient_of.values():
            chosen.setdefault(recipient, (line, request, name))
        picks = list(chosen.values())
        subscriber_rows = members.take(pa.array([int(owners[line]) for line, _, _ in picks])).to_pylist()
        asked_rows = (self.requests.take(pa.array([max(request, 0) for _, request, _ in picks])).to_pylist()
                      if self.requests.num_rows else [None] * len(picks))
        rows = [self._recipient_row(row, recipient, asked if request >= 0 else None, name)
                for row, recipient, asked, (_, request, name)
                in zip(subscriber_rows, chosen, asked_rows, picks, strict=True)]
        member_ids = pc.replace_with_mask(as_array(lines["member_id"]), pa.array(moved),
                                          pa.array(ids, pa.string()))
        lines = lines.set_column(lines.schema.get_field_index("member_id"), "member_id", member_ids)
        added = pa.Table.from_pylist(rows, schema=MEMBER_FIELDS)
        added = added.set_column(added.schema.get_field_index("email_valid"), "email_valid", pa.array(
            email_shapes(*string_buffers(as_array(pc.fill_null(added["email"], ""))))))
        combined = pa.concat_tables([members.select(MEMBER_FIELDS.names).cast(MEMBER_FIELDS),
                                     added]).sort_by("member_id")
        owner_at = pc.index_in(member_ids, combined["member_id"].combine_chunks())
        return combined, lines, owner_at.to_numpy(zero_copy_only=False).astype(np.int32)

    def _moved(self, lines: pa.Table) -> tuple[np.ndarray | None, np.ndarray]:
        """Which lines move (whole claims), and each line's request (-1: none); None when none moves."""
        n = lines.num_rows
        request_at = np.full(n, -1, np.int64)
        sensitive = _sensitive(lines)
        separate = self.policy == "separate" and bool(sensitive.any())
        if not n or (not self.requests.num_rows and not separate):
            return None, request_at
        moved = np.zeros(n, bool)
        if self.requests.num_rows:
            request_at = self._request_at(lines)
            scope_all = pc.equal(self.requests["scope"], "all").to_numpy(zero_copy_only=False)
            moved = (request_at >= 0) & (scope_all[np.maximum(request_at, 0)] | sensitive)
        if separate:
            moved |= (request_at < 0) & sensitive & _dependent(lines) & ~_no_patient_id(lines)
        moved = _whole_claims(lines, moved)
        return (moved if moved.any() else None), request_at

    def _recipient_row(self, row: dict, recipient: str, asked: dict | None,  # type: ignore[type-arg]
                       patient_name: str | None) -> dict:  # type: ignore[type-arg]
        """The recipient's member row, from the subscriber's `row` and the request `asked`."""
        row = dict(row, member_id=recipient, ytd_deductible=0, ytd_out_of_pocket=0, alternate_format="",
                   **dict.fromkeys(_FAMILY_YTD))  # the family's figures would tell of others' care
        if asked is None:  # the patient's own statement, in their name, by paper to the address on file
            row.update(first_name="", last_name=patient_name or "", email="", edelivery_consent="N",
                       recipient="policy")
            return row
        row.update({name: asked[name] or "" for name in _REQUEST_FIELDS})
        row.update(language=asked["language"] or row["language"])
        if asked["address_line1"]:
            row.update({name: asked[name] or "" for name in _ADDRESS_FIELDS})
        else:  # email only: no paper fallback to the family's address (the ZIP stays, for a password policy)
            row.update(address_line1="", address_line2="", city="", state="",
                       postal_code=asked["postal_code"] or row["postal_code"])
        by_email = asked["channel"] == "email"
        row.update(email=asked["email"] if by_email else "", edelivery_consent="Y" if by_email else "N",
                   recipient="request", source_file=self.requests_file, source_row=asked["source_row"])
        return row


def _patient_keys(lines: pa.Table) -> pa.Array:
    """member_id + patient, per line: the patient_id, or for a subscriber's own line without one
    (relationship self or empty) the member id; empty when the patient is unknown."""
    patient = as_array(pc.fill_null(lines["patient_id"], ""))
    relationship = as_array(pc.fill_null(lines["patient_relationship"].cast(pa.string()), ""))
    own = pc.and_(pc.equal(patient, ""), pc.is_in(relationship, _SUBSCRIBER))
    member = as_array(lines["member_id"])
    patient = pc.if_else(own, member, patient)
    keys = pc.binary_join_element_wise(member, patient, _SEP)
    return pc.if_else(pc.equal(patient, ""), pa.scalar("", pa.string()), keys)  # type: ignore[no-any-return]


def _match(lines: pa.Table, members: pa.Array | pa.ChunkedArray, keys: pa.Array) -> np.ndarray:
    """Each line's row in `keys` (member_id + patient, see `_patient_keys`), -1 for none. Only the
    lines of `members` are keyed: a bucket's few lines of patients with a request, not all."""
    found = np.full(lines.num_rows, -1, np.int64)
    if not len(keys) or not lines.num_rows:
        return found
    among = pc.fill_null(pc.is_in(lines["member_id"], members), False)
    at = np.flatnonzero(among.to_numpy(zero_copy_only=False))
    if len(at):
        some = lines.select(["member_id", "patient_id", "patient_relationship"]).take(pa.array(at))
        found[at] = pc.fill_null(pc.index_in(_patient_keys(some), keys), -1).to_numpy(zero_copy_only=False)
    return found


def _request_keys(requests: pa.Table) -> pa.Array:
    keys = pc.binary_join_element_wise(requests["member_id"], requests["patient_id"], _SEP)
    return keys  # type: ignore[no-any-return]


def _sensitive(lines: pa.Table) -> np.ndarray:
    return pc.fill_null(lines["sensitive"], False).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _no_patient_id(lines: pa.Table) -> np.ndarray:
    return pc.equal(pc.fill_null(lines["patient_id"], ""), "").to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _dependent(lines: pa.Table) -> np.ndarray:
    found = pc.is_in(lines["patient_relationship"].cast(pa.string()), _DEPENDENTS)
    return pc.fill_null(found, False).to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]


def _whole_claims(lines: pa.Table, hit: np.ndarray) -> np.ndarray:
    """`hit` widened to every line of a claim any of whose lines it holds."""
    if not hit.any() or hit.all():
        return hit
    claims = pc.unique(lines["claim_id"].filter(pa.array(hit)))
    widened = pc.fill_null(pc.is_in(lines["claim_id"], claims), False)
    return widened.to_numpy(zero_copy_only=False)  # type: ignore[no-any-return]
