"""Pass 2: a bucket's lines split by recipient (pipeline.recipients).

A patient's lines move from the subscriber's statement to one of their own when the patient has
a confidential-communications request in effect (scope `all`: every line; `sensitive`: the
sensitive-service lines), or, with no request, when the line is a dependent's sensitive service
and the policy is `separate`. The recipient gets a member row of its own, built from the
subscriber's (plan, group, line of business) and the request (name, birth date, address, email,
language); without a request it is the patient's name at the address on file, by paper, since
the email on file is the subscriber's. Its prior year-to-date amounts are 0: the family's
accumulators are the subscriber's, and the recipient's statement shows none (see compose).

Both rows stay in the subscriber's bucket, so the subscriber's shard holds every statement the
member file's row led to. A bucket nothing moves in is handed back untouched.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.column_kernels import email_shapes, string_buffers
from pipeline.recipients import recipient_id
from pipeline.storage import MEMBER_FIELDS, as_array, hash64

__all__ = ["RecipientSplit"]

_DEPENDENTS = pa.array(["spouse", "child", "other"], pa.string())
_REQUEST_FIELDS = ("first_name", "last_name", "date_of_birth", "language")
_ADDRESS_FIELDS = ("address_line1", "address_line2", "city", "state", "postal_code")


@dataclass(frozen=True, slots=True)
class RecipientSplit:
    """The requests in effect (pipeline.ingest.requests), the policy, the requests file's name."""

    requests: pa.Table
    policy: str = "separate"
    requests_file: str = ""

    def split(self, members: pa.Table, lines: pa.Table,
              owners: np.ndarray) -> tuple[pa.Table, pa.Table, np.ndarray]:
        """The bucket's members with a row per new recipient, its lines with their recipient's id,
        and each line's row in the new members table."""
        moved, request_at = self._moved(lines)
        if moved is None:
            return members, lines, owners
        at = np.flatnonzero(moved)
        patients = lines["patient_id"].take(pa.array(at)).to_pylist()
        names = lines["patient_name"].take(pa.array(at)).to_pylist()
        subscribers = lines["member_id"].take(pa.array(at)).to_pylist()
        ids = [recipient_id(m, p or _name_key(n))
               for m, p, n in zip(subscribers, patients, names, strict=True)]
        rows: dict[str, dict] = {}  # type: ignore[type-arg]
        for line, recipient, name in zip(at.tolist(), ids, names, strict=True):
            if recipient not in rows:
                rows[recipient] = self._recipient_row(members, int(owners[line]), recipient,
                                                      int(request_at[line]), name)
        mask = pa.array(moved)
        member_ids = pc.replace_with_mask(as_array(lines["member_id"]), mask, pa.array(ids, pa.string()))
        lines = lines.set_column(lines.schema.get_field_index("member_id"), "member_id", member_ids)
        added = pa.Table.from_pylist(list(rows.values()), schema=MEMBER_FIELDS)
        added = added.set_column(added.schema.get_field_index("email_valid"), "email_valid", pa.array(
            email_shapes(*string_buffers(as_array(pc.fill_null(added["email"], ""))))))
        combined = pa.concat_tables([members.select(MEMBER_FIELDS.names).cast(MEMBER_FIELDS),
                                     added]).sort_by("member_id")
        owner_at = pc.index_in(member_ids, combined["member_id"].combine_chunks())
        return combined, lines, owner_at.to_numpy(zero_copy_only=False).astype(np.int32)

    def _moved(self, lines: pa.Table) -> tuple[np.ndarray | None, np.ndarray]:
        """Which lines move, and each line's request (-1: none); None when none moves."""
        n = lines.num_rows
        request_at = np.full(n, -1, np.int64)
        sensitive = pc.fill_null(lines["sensitive"], False).to_numpy(zero_copy_only=False)
        separate = self.policy == "separate" and bool(sensitive.any())
        if not n or (not self.requests.num_rows and not separate):
            return None, request_at
        if self.requests.num_rows:
            asked = self.requests
            keys = pc.binary_join_element_wise(lines["member_id"], pc.fill_null(lines["patient_id"], ""),
                                               "\x1f")
            known = pc.binary_join_element_wise(asked["member_id"], asked["patient_id"], "\x1f")
            request_at = pc.fill_null(pc.index_in(keys, known), -1).to_numpy(zero_copy_only=False)
        has_request = request_at >= 0
        scope_all = np.asarray(pc.equal(self.requests["scope"], "all").to_numpy(zero_copy_only=False), bool)
        moved = has_request & (scope_all[np.maximum(request_at, 0)] | sensitive) if len(scope_all) else \
            np.zeros(n, bool)
        if separate:
            dependent = pc.is_in(lines["patient_relationship"].cast(pa.string()), _DEPENDENTS)
            moved |= ~has_request & sensitive & pc.fill_null(dependent, False).to_numpy(zero_copy_only=False)
        return (moved if moved.any() else None), request_at

    def _recipient_row(self, members: pa.Table, owner: int, recipient: str, request: int,
                       patient_name: str | None) -> dict:  # type: ignore[type-arg]
        row = members.slice(owner, 1).to_pylist()[0]
        row.update(member_id=recipient, ytd_deductible=0, ytd_out_of_pocket=0)
        if request < 0:  # the patient's own statement, in their name, by paper to the address on file
            row.update(first_name="", last_name=patient_name or "", email="", edelivery_consent="N",
                       recipient="policy")
            return row
        asked = self.requests.slice(request, 1).to_pylist()[0]
        row.update({name: asked[name] or row[name] for name in _REQUEST_FIELDS})
        if asked["address_line1"]:
            row.update({name: asked[name] for name in _ADDRESS_FIELDS})
        by_email = asked["channel"] == "email"
        row.update(email=asked["email"] if by_email else "", edelivery_consent="Y" if by_email else "N",
                   recipient="request", source_file=self.requests_file, source_row=asked["source_row"])
        return row


def _name_key(name: str | None) -> str:
    """A patient without a patient_id, told apart by name (stable, and not the name itself)."""
    return "n" + format(int(hash64(pa.array([name or ""], pa.string()))[0]), "016x")[:10]
