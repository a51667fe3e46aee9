"""Where a run's working files live: one folder per run under the workspace's `work/`.

Ingest writes the canonical Parquet there; compose, render, send and verification read it. The
run id names both that folder and the ledger's run, so a period re-run resumes, never doubles.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from pipeline.periods import parse_period
from pipeline.settings import Settings


def run_id_for(period: str) -> str:
    """One run per period: re-running a month resumes it instead of starting a second one."""
    parse_period(period)
    return f"eob-{period}"


def run_dir(settings: Settings, run_id: str) -> Path:
    return settings.work_dir / run_id


def member_contacts(settings: Settings, run_id: str) -> dict[str, tuple[str, str]]:
    """member_id → (email, language) for one run, read from its canonical member file."""
    import pandas as pd

    members = pd.read_parquet(run_dir(settings, run_id) / "members.parquet",
                              columns=["member_id", "email", "language"])
    return {m: (e, lang) for m, e, lang in members.itertuples(index=False)}


class Contact(NamedTuple):
    """What the sender reads of a member when it sends: where to, in which language, and whether
    the member record allows email at all."""

    email: str
    language: str
    consent: str
    email_valid: bool

    def paper_reason(self) -> str | None:
        """Why the member record does not allow email now, or None: compose's rule (consent, an
        address, a valid one); compose checks suppression against the ledger."""
        if self.consent != "Y":
            return "no_consent"
        if not self.email:
            return "no_email"
        if not self.email_valid:
            return "invalid_email"
        return None


def send_contacts(settings: Settings, run_id: str) -> dict[str, Contact]:
    """member_id → Contact for one run, read from its canonical member file as it is now (a
    corrected extract's ingest, or a verified address, replaces it). The last file read is kept
    while it is unchanged on disk (same inode, size, modification and change times): a send task asks
    for it once per provider lane and round, and a 100,000-member file takes a second to read."""
    import pyarrow.parquet as pq

    path = run_dir(settings, run_id) / "members.parquet"
    stat = path.stat()
    stamp = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
    cached = _CONTACTS.get(str(path))
    if cached is not None and cached[0] == stamp:
        return cached[1]
    table = pq.read_table(path, columns=["member_id", "email", "language", "edelivery_consent",
                                         "email_valid"])
    columns = [table.column(name).to_pylist() for name in table.column_names]
    contacts = {member: Contact(email or "", language or "en", consent or "", bool(valid))
                for member, email, language, consent, valid in zip(*columns, strict=True)}
    _CONTACTS.clear()  # one run's file at a time: bounded memory
    _CONTACTS[str(path)] = (stamp, contacts)
    return contacts


_CONTACTS: dict[str, tuple[tuple[str, int, int, int, int], dict[str, Contact]]] = {}


class PostalAddress(NamedTuple):
    """Where a paper statement goes, as the member file has it (checked and standardised by
    `pipeline.paper.prepare_address` before it is printed)."""

    name: str
    line1: str
    line2: str
    city: str
    state: str
    postal_code: str


def postal_addresses(settings: Settings, run_id: str) -> dict[str, PostalAddress]:
    """member_id → PostalAddress for one run, from its canonical member file as it is now."""
    import pyarrow.parquet as pq

    columns = ["member_id", "first_name", "last_name", "address_line1", "address_line2", "city",
               "state", "postal_code"]
    members = pq.read_table(run_dir(settings, run_id) / "members.parquet", columns=columns)
    return {row["member_id"]: PostalAddress(
        " ".join(part for part in (row["first_name"], row["last_name"]) if part),
        row["address_line1"] or "", row["address_line2"] or "", row["city"] or "",
        row["state"] or "", row["postal_code"] or "")
        for row in members.to_pylist()}
