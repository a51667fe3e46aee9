"""The synthetic extract is deterministic and shaped like a real month of claims."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from pipeline.demo.generate import generate_extract
from pipeline.storage import MONEY_COLUMNS


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = generate_extract(tmp_path / "a", members=50, period="2026-11", seed=3)
    b = generate_extract(tmp_path / "b", members=50, period="2026-11", seed=3)
    c = generate_extract(tmp_path / "c", members=50, period="2026-11", seed=4)
    for name in ("members.csv", "claims_part1.csv", "claims_part2.csv"):
        assert (a.folder / name).read_bytes() == (b.folder / name).read_bytes()
    assert (a.folder / "claims_part1.csv").read_bytes() != (c.folder / "claims_part1.csv").read_bytes()


def test_lines_per_member_and_amounts_reconcile(tmp_path: Path) -> None:
    extract = generate_extract(tmp_path, members=300, period="2026-11", seed=11)
    rows = _read(tmp_path / "claims_part1.csv") + _read(tmp_path / "claims_part2.csv")
    assert len(rows) == extract.claim_lines
    per_member = Counter(row["member_id"] for row in rows if row["member_id"].startswith("M0"))
    assert min(per_member.values()) >= 1 and max(per_member.values()) <= 21  # 20 + a duplicate
    reconciled = 0
    for row in rows:
        try:
            cents = [round(float(row[c]) * 100) for c in MONEY_COLUMNS]
        except ValueError:
            continue
        reconciled += cents[0] == sum(cents[1:])
    assert reconciled >= len(rows) - extract.malformed_lines
    statuses = Counter(row["status"] for row in rows)
    assert statuses["denied"] > 0 and statuses["paid"] > statuses["denied"]


def test_members_include_missing_and_invalid_emails_and_both_languages(tmp_path: Path) -> None:
    generate_extract(tmp_path, members=600, period="2026-11", seed=5)
    members = _read(tmp_path / "members.csv")
    emails = [m["email"] for m in members]
    assert any(e == "" for e in emails)
    assert any(e and ("@" not in e or e.endswith("@") or "@@" in e) for e in emails)
    assert {m["language"] for m in members} == {"en", "es"}
    assert {m["edelivery_consent"] for m in members} == {"Y", "N"}


def test_parquet_extract_matches_the_csv_one(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from pipeline.ingest import ingest

    as_csv = generate_extract(tmp_path / "csv", members=80, period="2026-11", seed=9)
    as_parquet = generate_extract(tmp_path / "pq", members=80, period="2026-11", seed=9, fmt="parquet",
                                  claim_files=3)
    assert as_parquet.claim_lines == as_csv.claim_lines
    assert sorted(p.name for p in as_parquet.folder.glob("claims*")) == [
        "claims_part1.parquet", "claims_part2.parquet", "claims_part3.parquet"]
    assert sum(pq.read_metadata(p).num_rows for p in as_parquet.folder.glob("claims*")) == as_csv.claim_lines
    a = ingest(as_csv.folder, tmp_path / "out_csv", 2)
    b = ingest(as_parquet.folder, tmp_path / "out_pq", 2)
    assert (a.rows_read, a.rows_accepted) == (b.rows_read, b.rows_accepted)
