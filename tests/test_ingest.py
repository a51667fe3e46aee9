"""Every claim row is accepted or quarantined with file, row, field and reason; bad files fail loudly."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipeline.generate import generate_extract
from pipeline.ingest import ExtractFileError, ingest


@pytest.fixture
def extract(tmp_path: Path) -> Path:
    return generate_extract(tmp_path / "in", members=200, period="2026-11", seed=21).folder


def test_rows_read_equal_accepted_plus_quarantined(extract: Path, tmp_path: Path) -> None:
    result = ingest(extract, tmp_path / "out", shards=3)
    assert result.rows_read == result.rows_accepted + result.rows_quarantined
    assert result.rows_quarantined > 0
    written = sum(pq.read_metadata(p).num_rows for p in (tmp_path / "out" / "lines").rglob("*.parquet"))
    assert written == result.rows_accepted
    assert sorted(result.shard_lines) == [0, 1, 2]


def test_quarantined_row_names_file_row_field_and_reason(extract: Path, tmp_path: Path) -> None:
    path = extract / "claims_part1.csv"
    rows = list(csv.reader(path.open(newline="")))
    header = rows[0]
    rows[3][header.index("billed")] = "12O.00"
    rows[4][header.index("service_date")] = "2026-02-30"
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    result = ingest(extract, tmp_path / "out", shards=2)
    found = {(q.source_file, q.row_number): (q.field, q.reason) for q in result.quarantined}
    assert found[("claims_part1.csv", 4)][0] == "billed"
    assert "dollars and cents" in found[("claims_part1.csv", 4)][1]
    assert found[("claims_part1.csv", 5)] == ("service_date", "not a valid date (expected YYYY-MM-DD)")
    qfile = tmp_path / "out" / "quarantine" / "claims_part1.quarantine.csv"
    assert "12O.00" in qfile.read_text()


def test_duplicate_line_across_files_is_quarantined(extract: Path, tmp_path: Path) -> None:
    first = (extract / "claims_part1.csv").read_text().splitlines()
    with (extract / "claims_part2.csv").open("a") as handle:
        handle.write(first[1] + "\n")
    result = ingest(extract, tmp_path / "out", shards=2)
    reasons = [q.reason for q in result.quarantined if q.source_file == "claims_part2.csv"]
    assert any("duplicate claim line" in r for r in reasons)


def test_parquet_extract_is_accepted_like_csv(extract: Path, tmp_path: Path) -> None:
    csv_result = ingest(extract, tmp_path / "csv", shards=2)
    table = pacsv.read_csv(extract / "claims_part2.csv")
    table = table.cast(pa.schema([(name, pa.string()) for name in table.column_names]))
    pq.write_table(table, extract / "claims_part2.parquet")
    (extract / "claims_part2.csv").unlink()
    parquet_result = ingest(extract, tmp_path / "pq", shards=2)
    assert parquet_result.rows_read == csv_result.rows_read
    assert parquet_result.rows_accepted == csv_result.rows_accepted


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_text(p.read_text().replace("billed,", "", 1)), "missing column(s) billed"),
        (lambda p: p.write_text(p.read_text().replace(",", ";")), "is the delimiter a comma?"),
        (lambda p: p.write_bytes(p.read_bytes().replace(b"Medical", b"M\xe9dical\xff")), "not UTF-8"),
    ],
    ids=["missing-column", "wrong-delimiter", "bad-encoding"],
)
def test_whole_file_problem_names_the_file(extract: Path, tmp_path: Path, damage, message) -> None:  # type: ignore[no-untyped-def]
    damage(extract / "claims_part2.csv")
    with pytest.raises(ExtractFileError) as caught:
        ingest(extract, tmp_path / "out", shards=2)
    assert str(caught.value).startswith("claims_part2.csv:")
    assert message in str(caught.value)


def test_truncated_parquet_names_the_file(extract: Path, tmp_path: Path) -> None:
    pq.write_table(pacsv.read_csv(extract / "claims_part2.csv"), extract / "claims_part3.parquet")
    data = (extract / "claims_part3.parquet").read_bytes()
    (extract / "claims_part3.parquet").write_bytes(data[: len(data) // 2])
    with pytest.raises(ExtractFileError, match=r"^claims_part3.parquet: not a readable Parquet"):
        ingest(extract, tmp_path / "out", shards=2)


def test_missing_member_file_is_reported(extract: Path, tmp_path: Path) -> None:
    (extract / "members.csv").unlink()
    with pytest.raises(ExtractFileError, match="members.csv: not found"):
        ingest(extract, tmp_path / "out", shards=2)
    shutil.rmtree(tmp_path / "out", ignore_errors=True)


def test_rows_with_wrong_field_count_are_quarantined_with_exact_row_numbers(
    extract: Path, tmp_path: Path
) -> None:
    path = extract / "claims_part1.csv"
    lines = path.read_text().splitlines()
    lines[6] = lines[6] + ",surplus"  # file row 7
    lines[10] = ",".join(lines[10].split(",")[:5])  # file row 11
    path.write_text("\n".join(lines) + "\n")
    result = ingest(extract, tmp_path / "out", shards=2)
    mine = {q.row_number: q for q in result.quarantined if q.source_file == "claims_part1.csv"}
    assert mine[7].field == "(row)" and "fields" in mine[7].reason
    assert mine[11].field == "(row)"
    account = next(f for f in result.files if f.source_file == "claims_part1.csv")
    assert account.rows_read == len(lines) - 1
    assert account.rows_read == account.rows_accepted + account.rows_quarantined
    # rows after the skipped ones keep their true row numbers in the canonical lines
    table = pq.read_table(tmp_path / "out" / "lines").to_pandas()
    row12 = table[(table.source_file == "claims_part1.csv") & (table.source_row == 12)]
    expected_claim = lines[11].split(",")[0]
    assert row12.empty or row12.iloc[0]["claim_id"] == expected_claim


def test_csv_parse_errors_never_quote_the_row(extract: Path, tmp_path: Path) -> None:
    path = extract / "members.csv"
    lines = path.read_text().splitlines()
    lines[3] = lines[3] + ",extra,CANARY-Zebedee"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(ExtractFileError) as caught:
        ingest(extract, tmp_path / "out", shards=2)
    assert "members.csv" in str(caught.value) and "[4]" in str(caught.value)
    assert "CANARY" not in str(caught.value)
    first_name = lines[3].split(",")[1]
    assert first_name not in str(caught.value)
