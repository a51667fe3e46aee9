"""Statements: one per member, amounts exact to the cent, flags a member or regulator would miss."""

from __future__ import annotations

import csv
import hashlib
import re
import shutil
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.compose import (
    KEYED_IDS,
    UNKEYED_IDS,
    StaleComposition,
    StatementIds,
    UnknownIdScheme,
    Version,
    compose_shard,
    explain_reason,
    iter_composed,
    make_statement_id,
    write_versions,
)
from pipeline.compose.accumulators import BucketFigures, plan_year, read_extract_table
from pipeline.compose.accumulators import figures as accumulator_figures
from pipeline.compose.reasons import is_adverse, is_reduction, line_codes
from pipeline.compose.statements import load_plans
from pipeline.deadlines import NoticeRule
from pipeline.demo.generate import generate_extract
from pipeline.ingest import ingest
from pipeline.model import ACCUMULATOR_KEYS, MEMBER_SHARE_FIELDS
from pipeline.periods import statement_date
from pipeline.reason_codes import reason_table
from pipeline.recipients import subscriber_id
from pipeline.storage import ACCRUED_COLUMNS, MONEY_COLUMNS, bucket_count, read_bucket_members

PERIOD = "2026-11"
NOTICES = NoticeRule.leaving_on(30, statement_date(PERIOD))  # leaving on the statement date
SHARDS = 2
KEY = b"test statement id key"
IDS = StatementIds(KEYED_IDS, KEY)
PARTS = MONEY_COLUMNS[1:]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("compose")
    extract = generate_extract(base / "in", members=300, period=PERIOD, seed=8).folder
    ingest(extract, base / "out", SHARDS, period=PERIOD)
    return extract, base / "out"


def _composed(out: Path, **kwargs):  # type: ignore[no-untyped-def]
    return [c for shard in range(SHARDS)
            for c in iter_composed(out, shard, PERIOD, notices=NOTICES, statement_ids=IDS, **kwargs)]


def _dollars(cents: int) -> Decimal:
    return Decimal(cents) / 100


def test_every_line_reconciles_and_totals_are_sums_of_lines(run: tuple[Path, Path]) -> None:
    _, out = run
    composed = _composed(out)
    assert len(composed) > 250
    for item in composed:
        statement = item.statement
        for line in statement.lines:
            assert _dollars(line.billed) == sum((_dollars(getattr(line, p)) for p in PARTS), Decimal(0))
        for name in MONEY_COLUMNS:
            assert _dollars(statement.total(name)) == sum(
                (_dollars(getattr(line, name)) for line in statement.lines), Decimal(0))
        assert statement.total_member_owes == sum(
            getattr(line, f) for line in statement.lines for f in MEMBER_SHARE_FIELDS)


def test_canonical_cents_equal_the_extract_dollars_exactly(run: tuple[Path, Path]) -> None:
    extract, out = run
    source: dict[tuple[str, int], dict[str, str]] = {}
    for path in sorted(extract.glob("claims*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                source[(path.name, number)] = row
    lines = pq.read_table(out / "lines").to_pylist()
    assert lines
    for line in lines:
        row = source[(line["source_file"], line["source_row"])]
        for name in MONEY_COLUMNS:
            if name not in row:  # settled by ingest (denied split off the discount, pending)
                continue
            got = line[name] + (line["denied"] if name == "discount" and "denied" not in row else 0)
            assert Decimal(got) == Decimal(row[name]) * 100, (name, line["source_row"])


def test_vectorised_summaries_agree_with_the_statements(run: tuple[Path, Path]) -> None:
    _, out = run
    summaries = {row["member_id"]: row for shard in range(SHARDS)
                 for table in compose_shard(out, shard, PERIOD, notices=NOTICES)
                 for row in table.to_pylist()}
    composed = _composed(out)
    assert set(summaries) == {c.recipient_id for c in composed}
    for item in composed:
        summary = summaries[item.recipient_id]
        assert make_statement_id(summary["member_id"], PERIOD, key=KEY) == item.statement.statement_id
        assert summary["line_count"] == len(item.statement.lines)
        for name in MONEY_COLUMNS:
            assert summary[f"total_{name}"] == item.statement.total(name)
        assert summary["total_member_owes"] == item.statement.total_member_owes
        assert summary["channel"] == item.channel and summary["content_hash"] == item.content_hash
        shown = {(a.name, a.tier, a.network): a for a in item.statement.accumulators}
        assert summary["accumulator_overrun"] == any(a.overrun for a in shown.values())
        for name in ("deductible", "out_of_pocket"):
            if (name, "individual", "in") in shown:
                figure = shown[name, "individual", "in"]
                assert (summary[f"{name}_used"], summary[f"{name}_limit"]) == (figure.used, figure.limit)


Figures = dict[tuple[str, str, str], tuple[int, int]]


def _vectorised_accumulators(out: Path) -> dict[str, tuple[Figures, bool]]:
    """Every member's accumulators (used, limit) and overrun flag as compose's vectorised view has them."""
    plans = load_plans(out)
    extract = BucketFigures(read_extract_table(out), bucket_count(out))
    found = {}
    for bucket in range(bucket_count(out)):
        members = read_bucket_members(out, bucket)
        plan_at = pc.index_in(members["plan_id"], pa.array(list(plans))).to_numpy(zero_copy_only=False)
        figures = accumulator_figures(members, plans, plan_at, extract(bucket))
        for index, member_id in enumerate(members["member_id"].to_pylist()):
            found[member_id] = ({key: (int(figures.used[key][index]), int(figures.limit[key][index]))
                                 for key in ACCUMULATOR_KEYS}, bool(figures.overrun[index]))
    return found


def test_both_views_agree_on_every_accumulator_tier(run: tuple[Path, Path]) -> None:
    """Compose's vectorised figures (the line totals ingest keeps, the claims system's rows joined
    by member id) are the statement's, tier by tier and network by network; a patient's own
    statement shows none and never overruns."""
    _, out = run
    vectorised = _vectorised_accumulators(out)
    members = {m["member_id"]: m for m in pq.read_table(out / "members.parquet",
                                                        columns=["member_id", "recipient"]).to_pylist()}
    sources, tiers, own_statements = set(), set(), 0
    for item in _composed(out):
        figures, overrun = vectorised[item.recipient_id]
        shown = {(a.name, a.tier, a.network): a for a in item.statement.accumulators}
        assert overrun == any(a.overrun for a in shown.values())
        if members[item.recipient_id]["recipient"]:
            assert shown == {} and not overrun
            own_statements += 1
            continue
        assert set(shown) == {key for key, (_, limit) in figures.items() if limit > 0}
        for key, figure in shown.items():
            assert figures[key] == (figure.used, figure.limit), (item.recipient_id, key)
            sources.add(figure.source)
            tiers.add(key[1:])
    assert sources == {"computed", "extract"} and own_statements  # the fixture exercises each case
    assert tiers == {("individual", "in"), ("individual", "out"), ("family", "in"), ("family", "out")}


def _summaries(out: Path) -> pa.Table:
    tables = [summary for shard in range(SHARDS)
              for summary in compose_shard(out, shard, PERIOD, notices=NOTICES)]
    return pa.concat_tables(tables).sort_by("member_id")


def test_compose_reads_no_claim_line(run: tuple[Path, Path], tmp_path: Path) -> None:
    """The summaries come from members.parquet (and the claims system's accumulators) alone:
    without the lines folder they are the same."""
    _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("lines"))
    assert not (copy / "lines").exists()
    assert _summaries(copy).equals(_summaries(out))


def test_members_of_a_run_ingested_before_accumulator_tiers(run: tuple[Path, Path], tmp_path: Path) -> None:
    """members.parquet without the accumulators' line totals: every line counts as the
    subscriber's own, in network (as compose counted before tiers), and no statement changes."""
    _, out = run
    copy = tmp_path / "run"
    shutil.copytree(out, copy, ignore=shutil.ignore_patterns("lines"))
    members = pq.read_table(out / "members.parquet").drop_columns(list(ACCRUED_COLUMNS.values()))
    pq.write_table(members, copy / "members.parquet")
    old, new = _summaries(copy), _summaries(out)
    assert old["content_hash"].equals(new["content_hash"]) and old["channel"].equals(new["channel"])
    given = read_extract_table(out)
    extract_members = set() if given is None else set(given["member_id"].to_pylist())
    by_id = {m["member_id"]: m for m in members.to_pylist()}
    for row in old.to_pylist():
        member = by_id[row["member_id"]]
        if row["member_id"] in extract_members:
            continue
        assert row["deductible_used"] == member["ytd_deductible"] + member["lines_deductible"]
        assert row["out_of_pocket_used"] == member["ytd_out_of_pocket"] + sum(
            member[f"lines_{name}"] for name in ("deductible", "copay", "coinsurance"))


def test_one_statement_per_member_with_deterministic_ids(run: tuple[Path, Path]) -> None:
    _, out = run
    first = [(c.recipient_id, c.statement.statement_id, c.content_hash) for c in _composed(out)]
    again = [(c.recipient_id, c.statement.statement_id, c.content_hash) for c in _composed(out)]
    assert first == again
    members = [m for m, _, _ in first]
    assert len(members) == len(set(members))
    assert all(sid == make_statement_id(m, PERIOD, key=KEY) for m, sid, _ in first)
    assert make_statement_id("M1", PERIOD, 2, key=KEY) != make_statement_id("M1", PERIOD, 1, key=KEY)


def _unkeyed(member_id: str, period: str, version: int = 1) -> str:
    """How statement ids were made before they were keyed: anyone can compute it."""
    return f"st-{period}-{hashlib.sha256(f'{member_id}|{period}|{version}'.encode()).hexdigest()[:16]}"


def test_statement_ids_are_keyed_deterministic_and_keep_their_format() -> None:
    member = "M123456789"
    first = make_statement_id(member, PERIOD, 1, key=KEY)
    assert first == make_statement_id(member, PERIOD, 1, key=KEY) == IDS(member, PERIOD, 1)
    assert re.fullmatch(rf"st-{PERIOD}-[0-9a-f]{{16}}", first)
    assert make_statement_id(member, PERIOD, 1, key=b"another key") != first
    assert make_statement_id(member, PERIOD, 2, key=KEY) != first
    with pytest.raises(ValueError, match="EOB_STATEMENT_ID_KEY"):
        make_statement_id(member, PERIOD, 1, key=b"")
    with pytest.raises(UnknownIdScheme):
        StatementIds("md5", KEY)


def test_an_id_cannot_be_matched_by_hashing_member_ids_without_the_key() -> None:
    """Whoever holds one email and tries member IDs with the unkeyed derivation (all 10^9 of
    them on a GPU; here the true one among its neighbours) finds nothing."""
    member = "M004217733"
    sid = make_statement_id(member, PERIOD, 1, key=KEY)
    digest = sid.rsplit("-", 1)[1]
    guesses = [f"M{n:09d}" for n in range(4_217_000, 4_218_000)]
    assert member in guesses
    for guess in guesses:
        for version in (1, 2):
            assert _unkeyed(guess, PERIOD, version) != sid
            assert digest not in hashlib.sha256(f"{guess}|{PERIOD}|{version}".encode()).hexdigest()


def test_runs_composed_before_ids_were_keyed_keep_making_the_ids_they_have() -> None:
    legacy = StatementIds(UNKEYED_IDS, KEY)
    assert legacy("M123456789", PERIOD, 1) == _unkeyed("M123456789", PERIOD, 1)
    assert legacy("M123456789", PERIOD, 2) == _unkeyed("M123456789", PERIOD, 2)
    assert IDS("M123456789", PERIOD, 1) != _unkeyed("M123456789", PERIOD, 1)


def test_accumulators_add_this_period_to_the_year_so_far_and_are_never_capped(run: tuple[Path, Path]) -> None:
    """Individual: the year so far plus the subscriber's own in-network (or No Surprises) cost
    share; family: plus every line's. Above the limit stays above the limit (issue 17 item 2)."""
    _, out = run
    members = {m["member_id"]: m for m in pq.read_table(out / "members.parquet").to_pylist()}
    given = {}  # the claims system's figures, when the extract has them
    if (out / "accumulators.parquet").exists():
        given = {(row["member_id"], row["accumulator"], row["tier"], row["network"]): row["used"]
                 for row in pq.read_table(out / "accumulators.parquet").to_pylist()
                 if not row.get("patient_id")}
    checked = 0
    for item in _composed(out):
        statement, member = item.statement, members[item.recipient_id]
        if member["recipient"]:  # a patient's own statement: the family's figures are not theirs
            assert statement.accumulators == []
            continue
        by_key = {(a.name, a.tier, a.network): a for a in statement.accumulators}
        in_network = [line for line in statement.lines if line.network == "in" or line.no_surprises]
        own = [line for line in in_network if line.patient_relationship == "self"]
        deductible = member["ytd_deductible"] + sum(line.deductible for line in own)
        out_of_pocket = member["ytd_out_of_pocket"] + sum(  # not-covered does not count
            line.deductible + line.copay + line.coinsurance for line in own)
        for key, computed in ((("deductible", "individual", "in"), deductible),
                              (("out_of_pocket", "individual", "in"), out_of_pocket)):
            extract = given.get((item.recipient_id, *key))
            if key not in by_key:  # a limit the plan does not know: left off
                assert statement.plan.limit(*key) == 0
                continue
            assert by_key[key].used == (computed if extract is None else extract)
            assert by_key[key].source == ("computed" if extract is None else "extract")
        for acc in statement.accumulators:
            assert acc.as_of.isoformat() == "2026-11-30"
            assert acc.plan_year == plan_year(statement.plan, date(2026, 11, 1))
        checked += 1
    assert checked > 200


def test_adverse_lines_carry_reasons_with_plan_provisions(run: tuple[Path, Path]) -> None:
    _, out = run
    adverse = [c for c in _composed(out) if c.statement.has_adverse_determination]
    assert adverse
    for item in adverse:
        codes = {r.code: r for r in item.statement.reasons}
        for line in item.statement.lines:
            for code in line_codes(line):  # every adjustment of the line is explained
                assert codes[code].text
                if is_adverse(line) and is_reduction(code):
                    assert codes[code].plan_provision
        assert item.statement.reason_table_version == reason_table().version


def test_prompt_notice_flags_adverse_claims_received_too_early(run: tuple[Path, Path]) -> None:
    _, out = run
    composed = _composed(out)
    flagged = [c for c in composed if c.prompt_notice]
    assert flagged and len(flagged) < len(composed)
    for item in composed:
        late = {line.claim_id for line in item.statement.lines
                if is_adverse(line) and line.received_date.isoformat() < "2026-11-01"}
        assert set(item.prompt_notice_claims) == late
        assert item.prompt_notice == bool(late)


def test_prompt_notice_days_is_a_setting(run: tuple[Path, Path]) -> None:
    _, out = run
    never = [c for shard in range(SHARDS)
             for c in iter_composed(out, shard, PERIOD, statement_ids=IDS,
                                notices=NoticeRule.leaving_on(400, statement_date(PERIOD)))]
    assert not any(c.prompt_notice for c in never)


def test_paper_reasons_and_suppression(run: tuple[Path, Path]) -> None:
    _, out = run
    composed = _composed(out)
    reasons = {c.paper_reason for c in composed}
    assert {"no_consent", None} <= reasons
    emailed = next(c for c in composed if c.channel == "email")
    assert emailed.email_domain == emailed.email.rsplit("@", 1)[1].lower()
    target = emailed.email
    again = _composed(out, is_suppressed=lambda address: address == target)
    moved = next(c for c in again if c.recipient_id == emailed.recipient_id)
    assert (moved.channel, moved.paper_reason, moved.email_domain) == ("paper", "suppressed", None)


def test_spanish_reason_text_and_unknown_code() -> None:
    from pipeline.compose import UnknownReasonCode

    assert explain_reason("PR-1", "es").text.startswith("Esta cantidad")
    assert explain_reason("PR-1", "fr").text == explain_reason("PR-1", "en").text
    with pytest.raises(UnknownReasonCode, match="CO-999 has no plain-language text"):
        explain_reason("CO-999", "en")


LIMITS = ("1000.00", "4500.00")


def _one_member_extract(folder: Path, lines: list[dict[str, str]], *,
                        limits: tuple[str, str] = LIMITS,
                        member_fields: dict[str, str] | None = None) -> Path:
    from pipeline.demo.generate import CLAIM_COLUMNS, MEMBER_COLUMNS, PLAN_COLUMNS

    folder.mkdir(parents=True, exist_ok=True)
    plan = {"plan_id": "P1", "plan_name": "Plan", "brand": "default", "deductible_limit": limits[0],
            "out_of_pocket_limit": limits[1]}
    member = {"member_id": "M1", "first_name": "Ada", "last_name": "Test", "date_of_birth": "1980-01-02",
              "address_line1": "1 Main St", "address_line2": "", "city": "Town", "state": "IL",
              "postal_code": "60601", "email": "ada@example.com", "language": "en", "plan_id": "P1",
              "group_number": "G1", "line_of_business": "", "edelivery_consent": "Y",
              "ytd_deductible": "100.00", "ytd_out_of_pocket": "200.00", **(member_fields or {})}
    base = {"claim_id": "C1", "line_no": "1", "member_id": "M1", "patient_name": "Ada Test",
            "patient_relationship": "self", "provider_name": "Clinic", "provider_npi": "1245319599",
            "network": "in", "service_date": "2026-11-03", "received_date": "2026-11-05",
            "service_code": "99213", "service_description": "Office visit", "status": "paid",
            "reason_code": "", "billed": "100.00", "discount": "40.00", "plan_paid": "50.00",
            "other_payer_paid": "0.00", "deductible": "0.00", "copay": "10.00", "coinsurance": "0.00",
            "not_covered": "0.00"}
    files = (("plans.csv", PLAN_COLUMNS, [plan]), ("members.csv", MEMBER_COLUMNS, [member]),
             ("claims.csv", CLAIM_COLUMNS, [{**base, **line} for line in lines]))
    for name, columns, rows in files:
        with (folder / name).open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=columns)
            writer.writeheader()
            writer.writerows(rows)
    return folder


def test_no_surprises_flag_is_derived_or_taken_from_the_extract(tmp_path: Path) -> None:
    extract = _one_member_extract(tmp_path / "in", [
        {"line_no": "1", "network": "out", "service_code": "99283"},
        {"line_no": "2"},
    ])
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (item,) = _composed_one(tmp_path / "out")
    assert item.statement.has_no_surprises_protection
    extract = _one_member_extract(tmp_path / "in2", [{"line_no": "1"}])
    ingest(extract, tmp_path / "out2", 1, period=PERIOD)
    (item,) = _composed_one(tmp_path / "out2")
    assert not item.statement.has_no_surprises_protection


@pytest.mark.parametrize(("code", "language"), [
    ("ES", "es"), ("es-US", "es"), ("zh-TW", "zh-Hant"), ("zh-Hant-TW", "zh-Hant"),
    ("zh-hant", "zh-Hant"), ("es", "es"), ("fr", "en"), ("", "en"),
])
def test_the_members_language_code_is_resolved_not_matched_exactly(
        tmp_path: Path, code: str, language: str) -> None:
    """Before: only exact "en", "es", "zh-Hant" counted; "ES", "es-US" and "zh-TW" members got
    English statements."""
    extract = _one_member_extract(tmp_path / "in", [{"line_no": "1"}],
                                  member_fields={"language": code})
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (item,) = _composed_one(tmp_path / "out")
    assert item.statement.member.language == language


def _composed_one(out: Path):  # type: ignore[no-untyped-def]
    return list(iter_composed(out, 0, PERIOD, notices=NOTICES, statement_ids=IDS))


def test_unknown_plan_limits_leave_the_accumulators_off(tmp_path: Path) -> None:
    extract = _one_member_extract(tmp_path / "in", [{"line_no": "1"}], limits=("", ""))
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (item,) = _composed_one(tmp_path / "out")
    assert item.statement.accumulators == []


def test_content_hash_follows_content_not_files(tmp_path: Path) -> None:
    lines = [{"line_no": "1"}, {"line_no": "2", "claim_id": "C2"}]
    ingest(_one_member_extract(tmp_path / "a", lines), tmp_path / "out_a", 1, period=PERIOD)
    ingest(_one_member_extract(tmp_path / "b", list(reversed(lines))), tmp_path / "out_b", 1, period=PERIOD)
    changed = [{"line_no": "1"}, {"line_no": "2", "claim_id": "C2", "discount": "39.00", "copay": "11.00"}]
    ingest(_one_member_extract(tmp_path / "c", changed), tmp_path / "out_c", 1, period=PERIOD)
    a, b, c = (_composed_one(tmp_path / f"out_{x}")[0].content_hash for x in "abc")
    assert a == b != c


def test_lines_changed_after_compose_are_refused(tmp_path: Path) -> None:
    extract = _one_member_extract(tmp_path / "in", [{"line_no": "1"}])
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (item,) = _composed_one(tmp_path / "out")
    write_versions(tmp_path / "out", 0, {"M1": Version(make_statement_id("M1", PERIOD, 2, key=KEY), 2,
                                                       item.statement.statement_id, item.content_hash)})
    (again,) = _composed_one(tmp_path / "out")
    assert (again.statement.version, again.statement.replaces) == (2, item.statement.statement_id)
    write_versions(tmp_path / "out", 0, {"M1": Version("st-x", 1, None, "0" * 16)})
    with pytest.raises(StaleComposition, match="re-run compose"):
        _composed_one(tmp_path / "out")


def test_a_corrected_version_carries_the_date_of_the_statement_it_replaces(tmp_path: Path) -> None:
    """Before: compose set `replaces` but never `replaces_date`, so a corrected statement's
    first page could not say when the statement it replaces was dated."""
    import subprocess

    from pipeline.render import render_statement

    extract = _one_member_extract(tmp_path / "in", [{"line_no": "1"}])
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (first,) = _composed_one(tmp_path / "out")
    assert (first.statement.replaces, first.statement.replaces_date) == (None, None)
    write_versions(tmp_path / "out", 0, {"M1": Version(make_statement_id("M1", PERIOD, 2, key=KEY), 2,
                                                       first.statement.statement_id, first.content_hash)})
    (again,) = _composed_one(tmp_path / "out")
    assert again.statement.replaces == first.statement.statement_id
    assert again.statement.replaces_date == first.statement.statement_date == statement_date(PERIOD)
    pdf = tmp_path / "corrected.pdf"
    pdf.write_bytes(render_statement(again.statement).pdf)
    text = " ".join(subprocess.run(["pdftotext", "-l", "1", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert (f"replaces statement {first.statement.statement_id} of December 1, 2026" in text)


def test_lines_that_no_longer_match_the_member_totals_are_refused(tmp_path: Path) -> None:
    """Render builds statements from the lines, compose from the totals kept with each member:
    if a lines file is replaced behind ingest's back, render stops instead of guessing."""
    extract = _one_member_extract(tmp_path / "in", [{"line_no": "1"}, {"line_no": "2"}])
    ingest(extract, tmp_path / "out", 1, period=PERIOD)
    (bucket,) = (tmp_path / "out" / "lines").rglob("bucket-*.parquet")
    pq.write_table(pq.read_table(bucket).slice(0, 1), bucket)
    with pytest.raises(StaleComposition, match="re-run ingest"):
        _composed_one(tmp_path / "out")


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**14 - 1), st.sampled_from([0, 1, 2]))
def test_dollar_text_becomes_exact_cents(cents: int, decimals: int) -> None:
    """The float route in ingest is exact for every amount the pattern allows (up to 12+2 digits)."""
    from pipeline.ingest.checks import Problems, _cents
    from pipeline.ingest.schema import file_spec

    dollars, rest = divmod(cents, 100)
    if decimals == 0:
        text, expected = str(dollars), dollars * 100
    elif decimals == 1:
        text, expected = f"{dollars}.{rest // 10}", dollars * 100 + (rest // 10) * 10
    else:
        text, expected = f"{dollars}.{rest:02d}", cents
    column = next(c for c in file_spec("claims").columns if c.name == "billed")
    problems = Problems(1)
    value = _cents(pa.array([text]), np.array([True]), column, problems)
    if expected > 10**9:
        fields, _ = problems.described(np.array([0]))
        assert fields.to_pylist() == ["billed"]  # implausible, but still parsed exactly
    assert value.to_pylist() == [expected]
    assert Decimal(text) * 100 == expected


def test_statement_totals_per_member_match_a_decimal_recount_of_accepted_rows(run: tuple[Path, Path]) -> None:
    extract, out = run
    accepted = {(r["source_file"], r["source_row"]) for r in pq.read_table(out / "lines").to_pylist()}
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for path in sorted(extract.glob("claims*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for number, row in enumerate(csv.DictReader(handle), start=2):
                if (path.name, number) in accepted:
                    expected[row["member_id"]] += Decimal(row["billed"])
    got: dict[str, Decimal] = defaultdict(Decimal)
    for item in _composed(out):  # a patient's own statement counts under the member it came from
        got[subscriber_id(item.recipient_id)] += _dollars(item.statement.total("billed"))
    assert dict(got) == dict(expected)


def test_statements_are_the_same_whatever_the_chunk_size(run: tuple[Path, Path],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.compose.statements as compose

    _, out = run
    whole = [(c.statement.statement_id, c.statement.lines) for c in _composed(out)]
    monkeypatch.setattr(compose, "CHUNK_STATEMENTS", 7)
    assert [(c.statement.statement_id, c.statement.lines) for c in _composed(out)] == whole
