"""A damaged region of a claims CSV (bytes that are not UTF-8, a NUL byte, a value longer than
the limit or than the parser's block) quarantines the rows it touches, with their row numbers,
and the rest of the file is read; past the damage limit the file is refused, naming the first
damaged row. Empty and compressed files are named as such."""

from __future__ import annotations

import csv
import gzip
import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from pipeline.demo.generate import generate_extract
from pipeline.ingest import ExtractFileError, ingest
from tests.support import REPO

CLAIMS = "claims_part1.csv"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extract whose first claims file spans several parse blocks (1 MiB each)."""
    return generate_extract(tmp_path_factory.mktemp("damage") / "in", members=6000, period="2026-11",
                            seed=5).folder


@pytest.fixture
def extract(base: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    for path in base.iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    return folder


def _lines(path: Path) -> list[bytes]:
    lines = path.read_bytes().split(b"\n")
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:  # row N is line N
        assert sum(1 for row in csv.reader(handle) if row) == len([x for x in lines if x])
    return lines


def _damage(path: Path, rows: dict[int, tuple[str, bytes]]) -> list[bytes]:
    """Put `bytes` at the start of field `name` of each given row; returns the lines before."""
    lines = _lines(path)
    header = lines[0].decode().rstrip("\r").split(",")
    damaged = list(lines)
    for row, (name, noise) in rows.items():
        fields = next(csv.reader([damaged[row - 1].decode("utf-8", "surrogateescape")]))
        fields[header.index(name)] = noise.decode("utf-8", "surrogateescape") + fields[header.index(name)]
        text = io.StringIO()
        csv.writer(text, lineterminator="\r").writerow(fields)
        damaged[row - 1] = text.getvalue().encode("utf-8", "surrogateescape")
    path.write_bytes(b"\n".join(damaged))
    return lines


def _ingest(folder: Path, out: Path, **kwargs):  # type: ignore[no-untyped-def]
    return ingest(folder, out, shards=2, period="2026-11", **kwargs)


def _quarantined(result, source: str = CLAIMS) -> dict[int, tuple[str, str]]:  # type: ignore[no-untyped-def]
    return {q.row_number: (q.field, q.reason) for q in result.quarantined if q.source_file == source}


def _account(result, source: str = CLAIMS):  # type: ignore[no-untyped-def]
    return next(f for f in result.files if f.source_file == source)


def _accepted_rows(out: Path, source: str = CLAIMS) -> dict[int, str]:
    table = pq.read_table(out / "lines", columns=["source_file", "source_row", "claim_id"]).to_pylist()
    return {r["source_row"]: r["claim_id"] for r in table if r["source_file"] == source}


def _assert_rest_read_as_before(clean_out: Path, out: Path, damaged_rows: set[int], clean_result,  # type: ignore[no-untyped-def]
                                result) -> None:
    """Every row outside the damage is accepted or quarantined exactly as in the clean file,
    under its own row number, and the accounts add up."""
    account, before = _account(result), _account(clean_result)
    assert account.rows_read == before.rows_read
    assert account.rows_read == account.rows_accepted + account.rows_quarantined
    newly = damaged_rows - set(_quarantined(clean_result))
    assert account.rows_quarantined == before.rows_quarantined + len(newly)
    expected = {n: c for n, c in _accepted_rows(clean_out).items() if n not in damaged_rows}
    assert _accepted_rows(out) == expected
    others = {n: q for n, q in _quarantined(result).items() if n not in damaged_rows}
    assert others == {n: q for n, q in _quarantined(clean_result).items() if n not in damaged_rows}


@pytest.fixture
def clean(base: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("clean") / "out"
    return out, _ingest(base, out)


def test_binary_bytes_in_the_middle_quarantine_their_rows_only(extract: Path, tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    lines = _lines(extract / CLAIMS)
    assert len(b"\n".join(lines)) > 2 << 20  # the damage sits past the first parse block
    middle = len(lines) // 2
    rows = {middle: ("patient_name", b"\xff\xfe\x81\x9c"), middle + 7: ("billed", b"\xc3\x28")}
    _damage(extract / CLAIMS, rows)
    result = _ingest(extract, tmp_path / "out")
    found = _quarantined(result)
    assert found[middle] == ("patient_name", "damaged: invalid UTF-8")
    assert found[middle + 7] == ("billed", "damaged: invalid UTF-8")
    _assert_rest_read_as_before(*clean[:1], tmp_path / "out", set(rows), clean[1], result)
    quarantine = (tmp_path / "out" / "quarantine" / "claims_part1.quarantine.csv").read_bytes()
    assert b"\xff\xfe" not in quarantine


def test_a_nul_byte_quarantines_its_row(extract: Path, tmp_path: Path, clean) -> None:  # type: ignore[no-untyped-def]
    rows = {40: ("patient_name", b"Ann\x00")}
    _damage(extract / CLAIMS, rows)
    result = _ingest(extract, tmp_path / "out")
    assert _quarantined(result)[40] == ("patient_name", "damaged: NUL byte")
    _assert_rest_read_as_before(clean[0], tmp_path / "out", set(rows), clean[1], result)


@pytest.mark.parametrize("size", [100_000, 3 << 20], ids=["over-the-limit", "over-the-parse-block"])
def test_an_overlong_field_is_quarantined_as_such(extract: Path, tmp_path: Path, clean, size: int) -> None:  # type: ignore[no-untyped-def]
    row = len(_lines(extract / CLAIMS)) - 30
    rows = {row: ("service_description", b"x" * size)}
    _damage(extract / CLAIMS, rows)
    result = _ingest(extract, tmp_path / "out")
    assert _quarantined(result)[row] == ("service_description", "field longer than 65536 bytes")
    _assert_rest_read_as_before(clean[0], tmp_path / "out", set(rows), clean[1], result)


def test_the_field_limit_is_a_setting(extract: Path, tmp_path: Path) -> None:
    _damage(extract / CLAIMS, {9: ("patient_name", b"y" * 300)})
    result = _ingest(extract, tmp_path / "out", max_field_bytes=256)
    assert _quarantined(result)[9] == ("patient_name", "field longer than 256 bytes")


def test_damage_past_the_limit_refuses_the_file_naming_the_first_damaged_row(extract: Path,
                                                                             tmp_path: Path) -> None:
    rows = {n: ("patient_name", b"\xff\x00") for n in (30, 31, 500, 900)}
    _damage(extract / CLAIMS, rows)
    assert _ingest(extract, tmp_path / "ok", damage_limit=4).rows_read
    with pytest.raises(ExtractFileError) as caught:
        _ingest(extract, tmp_path / "out", damage_limit=3)
    assert str(caught.value) == (f"{CLAIMS}: 4 damaged rows, more than the limit of 3; the first is "
                                 "row 30 (patient_name: damaged: invalid UTF-8)")


def test_damaged_rows_and_rows_with_a_wrong_field_count_together(extract: Path, tmp_path: Path,
                                                                 clean) -> None:  # type: ignore[no-untyped-def]
    path = extract / CLAIMS
    lines = _lines(path)
    lines[11] = lines[11].rstrip(b"\r") + b",surplus\r"  # row 12
    lines[79] = lines[79].rstrip(b"\r") + b",\xffsurplus\r"  # row 80: and not UTF-8
    path.write_bytes(b"\n".join(lines))
    _damage(path, {60: ("member_id", b"\x80")})
    result = _ingest(extract, tmp_path / "out")
    found = _quarantined(result)
    assert found[12][0] == "(row)" and "fields, the header has" in found[12][1]
    assert found[60] == ("member_id", "damaged: invalid UTF-8")
    assert found[80] == ("(row)", "damaged: invalid UTF-8")
    _assert_rest_read_as_before(clean[0], tmp_path / "out", {12, 60, 80}, clean[1], result)


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "the file is empty (0 bytes)"), (None, "the file is empty (a header line and no rows)")],
    ids=["zero-bytes", "header-only"],
)
def test_an_empty_file_says_it_is_empty(extract: Path, tmp_path: Path, content: bytes | None,
                                        message: str) -> None:
    path = extract / CLAIMS
    path.write_bytes(content if content is not None else _lines(path)[0] + b"\n")
    with pytest.raises(ExtractFileError) as caught:
        _ingest(extract, tmp_path / "out")
    assert str(caught.value) == f"{CLAIMS}: {message}"


def test_a_gzip_claims_file_is_refused_as_compressed(extract: Path, tmp_path: Path) -> None:
    path = extract / CLAIMS
    (extract / f"{CLAIMS}.gz").write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    with pytest.raises(ExtractFileError) as caught:
        _ingest(extract, tmp_path / "out")
    assert str(caught.value).startswith(f"{CLAIMS}.gz: the file is compressed (.gz)")


def test_gzip_content_under_a_csv_name_is_refused_as_compressed(extract: Path, tmp_path: Path) -> None:
    path = extract / CLAIMS
    path.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ExtractFileError) as caught:
        _ingest(extract, tmp_path / "out")
    assert str(caught.value).startswith(f"{CLAIMS}: the file is gzip-compressed")


def test_a_damaged_file_leaves_stderr_clean(extract: Path, tmp_path: Path) -> None:
    path = extract / CLAIMS
    lines = _lines(path)
    lines[20] = lines[20].rstrip(b"\r") + b",\xff\xfesurplus\r"  # row 21: a field too many, not UTF-8
    path.write_bytes(b"\n".join(lines))
    _damage(path, {len(lines) // 3: ("patient_name", b"\xff\x00"),
                   len(lines) // 2: ("provider_name", b"z" * (2 << 20))})
    script = ("import sys; from pathlib import Path; from pipeline.ingest import ingest; "
              "r = ingest(Path(sys.argv[1]), Path(sys.argv[2]), shards=2, period='2026-11'); "
              "print(sum(f.rows_quarantined for f in r.files))")
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run([sys.executable, "-X", "dev", "-c", script, str(extract), str(tmp_path / "out")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr == ""
    assert int(done.stdout.strip()) >= 3


def test_a_nul_byte_or_an_overlong_value_in_parquet_quarantines_its_row(extract: Path,
                                                                         tmp_path: Path) -> None:
    header = _lines(extract / CLAIMS)[0].decode().rstrip("\r").split(",")
    table = pacsv.read_csv(extract / CLAIMS, convert_options=pacsv.ConvertOptions(
        column_types={n: pa.string() for n in header}))
    names = table["patient_name"].to_pylist()
    names[4] = "Ann\x00"  # record 5
    names[9] = "y" * 70_000  # record 10
    table = table.set_column(table.column_names.index("patient_name"), "patient_name", pa.array(names))
    pq.write_table(table, extract / "claims_part1.parquet")
    (extract / CLAIMS).unlink()
    result = _ingest(extract, tmp_path / "out")
    found = _quarantined(result, "claims_part1.parquet")
    assert found[5] == ("patient_name", "damaged: NUL byte")
    assert found[10] == ("patient_name", "field longer than 65536 bytes")
    account = _account(result, "claims_part1.parquet")
    assert account.rows_read == table.num_rows == account.rows_accepted + account.rows_quarantined
