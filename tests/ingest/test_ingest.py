"""Every claim row is accepted or quarantined with file, row, field and reason; bad files fail loudly."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipeline.demo.generate import generate_extract
from pipeline.ingest import ExtractFileError, ingest
from tests.support import REPO


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
        (lambda p: p.write_bytes(p.read_bytes().replace(b"claim_id", b"cl\xe9im_id\xff", 1)), "not UTF-8"),
    ],
    ids=["missing-column", "wrong-delimiter", "header-not-utf8"],
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


# -- added with the streaming two-pass ingest ------------------------------------------------
def _rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def _write_rows(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _set(path: Path, row_number: int, **values: str) -> list[str]:
    rows = _rows(path)
    header = rows[0]
    for name, value in values.items():
        rows[row_number - 1][header.index(name)] = value
    _write_rows(path, rows)
    return rows[row_number - 1]


def _reason(result, source: str, row: int):  # type: ignore[no-untyped-def]
    found = [(q.field, q.reason) for q in result.quarantined
             if q.source_file == source and q.row_number == row]
    return found[0] if found else None


def _all_lines(out: Path):  # type: ignore[no-untyped-def]
    return pq.read_table(out / "lines").to_pandas() if any((out / "lines").rglob("*.parquet")) else None


def test_duplicate_across_files_names_where_it_was_first_seen(extract: Path, tmp_path: Path) -> None:
    first = (extract / "claims_part1.csv").read_text().splitlines()
    with (extract / "claims_part2.csv").open("a") as handle:
        handle.write(first[1] + "\n")
    result = ingest(extract, tmp_path / "out", shards=2)
    last_row = len((extract / "claims_part2.csv").read_text().splitlines())
    assert _reason(result, "claims_part2.csv", last_row) == (
        "claim_id", "duplicate claim line (same claim_id and line_no seen before)")
    quarantine = (tmp_path / "out" / "quarantine" / "claims_part2.quarantine.csv").read_text()
    assert "first seen in claims_part1.csv row 2" in quarantine


def test_a_claim_naming_two_members_is_set_aside_whole(extract: Path, tmp_path: Path) -> None:
    path = extract / "claims_part1.csv"
    rows = _rows(path)
    header = rows[0]
    claim = rows[1][0]
    other_member = next(r[2] for r in rows[1:] if r[2] != rows[1][2] and r[2].startswith("M0"))
    copy = list(rows[1])
    copy[header.index("line_no")] = "77"
    copy[header.index("member_id")] = other_member
    rows.append(copy)
    _write_rows(path, rows)
    result = ingest(extract, tmp_path / "out", shards=2)
    same_claim = [n for n, r in enumerate(rows, start=1) if n > 1 and r[0] == claim]
    assert len(same_claim) >= 2
    for number in same_claim:
        assert _reason(result, "claims_part1.csv", number) == (
            "member_id", "the claim's lines name more than one member: every line of the claim set aside")
    lines = _all_lines(tmp_path / "out")
    assert claim not in set(lines["claim_id"])


def test_member_listed_twice_exact_repeat_keeps_one_conflicting_copies_all_go(extract: Path,
                                                                             tmp_path: Path) -> None:
    path = extract / "members.csv"
    rows = _rows(path)
    header = rows[0]
    exact = list(rows[1])
    conflicting = list(rows[2])
    conflicting[header.index("address_line1")] = "1 Elsewhere Rd"
    rows += [exact, conflicting]
    _write_rows(path, rows)
    result = ingest(extract, tmp_path / "out", shards=2)
    assert _reason(result, "members.csv", len(rows) - 1)[0] == "member_id"  # the exact repeat
    assert _reason(result, "members.csv", 2) is None  # its first copy stays
    assert "every copy set aside" in _reason(result, "members.csv", 3)[1]
    assert "every copy set aside" in _reason(result, "members.csv", len(rows))[1]
    members = pq.read_table(tmp_path / "out" / "members.parquet").to_pandas()
    assert rows[1][0] in set(members["member_id"]) and rows[2][0] not in set(members["member_id"])
    account = next(f for f in result.files if f.source_file == "members.csv")
    assert account.rows_read == len(rows) - 1 == account.rows_accepted + account.rows_quarantined


@pytest.mark.parametrize(("values", "expected"), [
    ({"status": "denied", "reason_code": ""},
     ("reason_code", "a denied or reduced line needs a reason code: the member must be told why")),
    ({"reason_code": "CO-999"},
     ("reason_code", "reason code has no plain-language text in templates/reason_codes.csv")),
    ({"status": "partial", "reason_code": "CO-45"},
     ("reason_code", "a denied or reduced line's reason code names no plan provision in "
                     "templates/reason_codes.csv")),
    ({"received_date": "2026-12-02"},
     ("received_date", "received after the statement period (belongs to a later statement)")),
    ({"service_date": "1899-12-31"}, ("service_date", "date is before 1900-01-01")),
    ({"line_no": "1000"}, ("line_no", "not a line number between 1 and 999")),
    ({"billed": "-12.00"}, ("billed", "negative amount")),
    ({"billed": "99999999999.00"}, ("billed", "amount is implausibly large")),
    ({"provider_npi": "12345"}, ("provider_npi", "not a 10-digit NPI")),
    ({"network": "maybe"}, ("network", "must be in or out")),
], ids=["denied-without-reason", "unknown-reason", "reduced-without-provision", "after-period",
        "absurd-date", "line-no", "negative", "absurd-amount", "npi", "network"])
def test_row_rules(extract: Path, tmp_path: Path, values: dict[str, str], expected: tuple[str, str]) -> None:
    _set(extract / "claims_part1.csv", 3, **values)
    result = ingest(extract, tmp_path / "out", shards=2, period="2026-11")
    assert _reason(result, "claims_part1.csv", 3) == expected


def test_denied_line_showing_a_plan_payment_is_quarantined(extract: Path, tmp_path: Path) -> None:
    path = extract / "claims_part1.csv"
    rows = _rows(path)
    header = rows[0]
    number = next(n for n, r in enumerate(rows, start=1)
                  if n > 1 and r[header.index("status")] == "paid"
                  and float(r[header.index("plan_paid")]) > 0)
    _set(path, number, status="denied", reason_code="CO-50")
    result = ingest(extract, tmp_path / "out", shards=2)
    assert _reason(result, "claims_part1.csv", number) == ("plan_paid", "a denied line shows a plan payment")


PHI_COLUMNS = {"first_name", "last_name", "date_of_birth", "address_line1", "email", "patient_name",
               "patient_id", "diagnosis_codes", "service_date", "received_date", "service_description",
               "billed", "plan_paid", "not_covered"}


def test_reasons_never_quote_row_values(extract: Path, tmp_path: Path) -> None:
    result = ingest(extract, tmp_path / "out", shards=2, period="2026-11")
    values = set()
    for path in extract.glob("*.csv"):
        rows = _rows(path)
        columns = [i for i, name in enumerate(rows[0]) if name in PHI_COLUMNS]
        values |= {r[i] for r in rows[1:] for i in columns if i < len(r) and len(r[i]) >= 4}
    assert len(result.quarantined) > 0
    for q in result.quarantined:
        assert not any(v in q.reason or v in q.field for v in values), q


def test_bucket_count_changes_nothing_but_memory(extract: Path, tmp_path: Path) -> None:
    one = ingest(extract, tmp_path / "one", shards=2)
    many = ingest(extract, tmp_path / "many", shards=2, bucket_rows=50)
    assert many.buckets_per_shard > one.buckets_per_shard == 1
    assert one.shard_lines == many.shard_lines
    key = ["claim_id", "line_no"]
    a = _all_lines(tmp_path / "one").drop(columns=["bucket"]).sort_values(key).reset_index(drop=True)
    b = _all_lines(tmp_path / "many").drop(columns=["bucket"]).sort_values(key).reset_index(drop=True)
    assert a.equals(b)
    assert sorted(one.quarantined, key=str) == sorted(many.quarantined, key=str)


def test_typed_parquet_columns_are_read_as_text(extract: Path, tmp_path: Path) -> None:
    table = pacsv.read_csv(extract / "claims_part2.csv",
                           convert_options=pacsv.ConvertOptions(column_types={"provider_npi": pa.string()}))
    assert pa.types.is_floating(table.schema.field("coinsurance").type)  # 12.30 arrives as a double
    pq.write_table(table, extract / "claims_part2.parquet")
    (extract / "claims_part2.csv").unlink()
    result = ingest(extract, tmp_path / "out", shards=2)
    account = next(f for f in result.files if f.source_file == "claims_part2.parquet")
    assert account.rows_read == table.num_rows == account.rows_accepted + account.rows_quarantined
    assert account.rows_accepted > 0.95 * table.num_rows


def test_hash_is_stable_across_batches_and_machines() -> None:
    from pipeline.storage import hash64, shard_of

    values = pa.array(["", "M000000001", "é", "x" * 40, "abcdefgh"])
    whole = hash64(values)
    assert [int(hash64(values.slice(i, 1))[0]) for i in range(len(values))] == [int(h) for h in whole]
    # a fixed point: if it ever changes, members move shards between runs of the same period
    assert int(hash64(pa.array(["M000000001"]))[0]) == 16957684105920313870
    assert shard_of("M000000001", 4) == int(whole[1]) % 4


def test_line_hashes_are_stable_across_releases() -> None:
    """Fixed points of the line fingerprint: if they change, re-running a period composed by an
    earlier release would reissue every statement as a new version."""
    from datetime import date

    from pipeline.ingest.totals import _HASHED_TEXT, line_hashes
    from pipeline.storage import EXTRACT_MONEY_COLUMNS

    text = {name: pa.array([f"{name[:3]}-a", "", "é" * 5], pa.string()) for name in _HASHED_TEXT}
    long_name = "Lakeside Imaging Associates of the Valley"
    text["provider_name"] = pa.array([long_name, "x", long_name]).dictionary_encode()
    numbers = {"line_no": pa.array([1, 2, 999], pa.int32()),
               "service_date": pa.array([date(1969, 12, 31), date(2026, 11, 1), date(1900, 1, 1)]),
               "received_date": pa.array([date(2026, 11, 2), None, date(2000, 2, 29)])}
    money = {name: pa.array([0, 12345, None] if i % 2 else [99999999999999, 1, 0], pa.int64())
             for i, name in enumerate(EXTRACT_MONEY_COLUMNS)}
    hashes = line_hashes(pa.table({**text, **numbers, **money}))
    assert [int(h) for h in hashes] == [5818371110020454537, 6326392864679974925, 9591378557983398401]
    # the columns of schema 2026.3 keep a line's fingerprint while they are empty, and change it when not
    later = {"denied": pa.array([0, 0, 5], pa.int64()), "pending": pa.array([0, 0, 0], pa.int64()),
             "adjustments": pa.array(["", "", ""]), "payee": pa.array(["", "provider", ""]),
             "paid_date": pa.array([None, None, None], pa.date32())}
    again = line_hashes(pa.table({**text, **numbers, **money, **later}))
    assert int(again[0]) == 5818371110020454537
    assert int(again[1]) != 6326392864679974925 and int(again[2]) != 9591378557983398401


def test_schema_file_code_and_generator_agree() -> None:
    from pipeline.demo.generate import CLAIM_COLUMNS, MEMBER_COLUMNS, PLAN_COLUMNS
    from pipeline.ingest.schema import file_spec
    from pipeline.ingest.sensitive_lines import CODE_COLUMNS
    from pipeline.storage import LINE_SCHEMA

    assert file_spec("claims").required_columns == CLAIM_COLUMNS
    assert file_spec("members").required_columns == MEMBER_COLUMNS
    assert file_spec("plans").required_columns == PLAN_COLUMNS
    # every claim column is kept on the canonical line, but for the codes only read to tell a
    # sensitive service (the line keeps the answer, `sensitive`)
    assert set(file_spec("claims").names) - set(CODE_COLUMNS) <= set(LINE_SCHEMA.names)
    docs = (REPO / "docs" / "extract-format.md").read_text()
    for kind in ("members", "plans", "claims", "requests", "accumulators"):
        for name in file_spec(kind).names:
            assert f"`{name}`" in docs, f"docs/extract-format.md does not describe {kind}.{name}"
        for _rule, (_field, reason) in file_spec(kind).rules.items():
            assert reason.split(" (")[0].split(":")[0] in docs, f"docs/extract-format.md lacks: {reason}"


def test_manifest_records_versions_and_accounts(extract: Path, tmp_path: Path) -> None:
    import json

    result = ingest(extract, tmp_path / "out", shards=2, period="2026-11")
    manifest = json.loads((tmp_path / "out" / "ingest.json").read_text())
    assert manifest["period"] == "2026-11" and manifest["reason_table_version"]
    assert sum(f["rows_read"] for f in manifest["files"] if f["kind"] == "claims") == result.rows_read


@pytest.mark.parametrize("hashes", ["real", "all claims share one hash"])
def test_claim_keys_find_later_copies_and_claims_naming_two_members(hashes: str) -> None:
    from pipeline.column_kernels import CHECK_SEED, seeded_hashes, string_buffers
    from pipeline.ingest.claim_keys import _key_problems
    from pipeline.storage import hash64

    claims = pa.array(["A", "B", "A", "C", "B", "A", "D"])
    keys = pa.table({
        "claim_hash": hash64(claims) if hashes == "real" else pa.array([42] * 7, pa.uint64()),
        "claim_check": seeded_hashes(*string_buffers(claims), CHECK_SEED),
        "line_no": pa.array([1, 1, 1, 1, 2, 2, 1], pa.int32()),
        "member_hash": pa.array([7, 8, 7, 9, 5, 7, 7], pa.uint64()),
        "order": pa.array([10, 11, 12, 13, 14, 15, 16], pa.int64()),
    })
    found = _key_problems(keys)
    assert sorted(zip(*(found[c].to_pylist() for c in ("order", "rule", "first_order")), strict=True)) == [
        (11, "claim_members_conflict", 11), (12, "duplicate_line", 10), (14, "claim_members_conflict", 14)]


def test_the_schema_date_pattern_is_the_one_the_date_check_reads() -> None:
    """The date check reads YYYY-MM-DD from the bytes; a schema that changed it must change it too."""
    from pipeline.ingest.schema import extract_schema

    assert extract_schema()["date"]["pattern"] == r"^\d{4}-\d{2}-\d{2}$"


# -- a re-ingest replaces the previous outputs whole, or not at all ------------------------------
def _tree(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_a_failed_reingest_leaves_the_previous_outputs_as_they_were(extract: Path, tmp_path: Path) -> None:
    """Refused half-way (the second claims file, after the first was read) or failing at the very
    end (the caller's commit, e.g. the ledger, refuses): the previous lines, member and plan
    files, quarantine and manifest stay, byte for byte, and no staging folder is left behind."""
    from contextlib import contextmanager

    out = tmp_path / "out"
    first = ingest(extract, out, shards=2)
    (out / "statements").mkdir()  # what compose keeps in the run's folder is not ingest's to touch
    (out / "statements" / "shard-000.parquet").write_bytes(b"compose's")
    before = _tree(out)
    assert {"ingest.json", "members.parquet", "plans.parquet"} <= set(before)
    assert any(name.startswith("lines/") for name in before)
    assert any(name.startswith("quarantine/") for name in before)
    part2 = extract / "claims_part2.csv"
    original = part2.read_text()
    part2.write_text(original.replace("billed,", "", 1))
    with pytest.raises(ExtractFileError, match="claims_part2.csv: missing column"):
        ingest(extract, out, shards=2)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]

    part2.write_text(original)
    seen: list[int] = []

    @contextmanager
    def refusing_commit(result):  # type: ignore[no-untyped-def]
        seen.append(result.rows_read)
        yield
        raise RuntimeError("the ledger refused the accounts")

    with pytest.raises(RuntimeError, match="the ledger refused"):
        ingest(extract, out, shards=2, bucket_rows=50, commit=refusing_commit)
    assert seen == [first.rows_read]
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]

    again = ingest(extract, out, shards=2, bucket_rows=50)  # 50-line buckets: other files than before
    assert again.rows_read == first.rows_read
    after = _tree(out)
    assert after["statements/shard-000.parquet"] == b"compose's"
    assert {n for n in after if n.startswith("lines/")} != {n for n in before if n.startswith("lines/")}
    assert {n for n in after if n.startswith("lines/")} == {
        str(p.relative_to(out)) for p in (out / "lines").rglob("*.parquet")}


def test_a_staging_folder_left_by_a_killed_ingest_goes_with_the_next(extract: Path, tmp_path: Path) -> None:
    leftover = tmp_path / ".out.ingest-killed" / "new" / "lines"
    leftover.mkdir(parents=True)
    (leftover / "bucket-00000.parquet").write_bytes(b"half-written")
    ingest(extract, tmp_path / "out", shards=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out"]
