"""Accumulators (issue 17 item 2): individual and family, in and out of network, labelled with the
plan year, from the claims system when it gives them, never capped; an overrun is flagged and,
by the `accumulator_overrun` setting, shown or held."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.compose import HOLD_OVERRUN, compose_shard, iter_composed
from pipeline.compose.accumulators import plan_year
from pipeline.ingest import ingest
from pipeline.model import Plan
from pipeline.render import RenderError, render_statement
from pipeline.render.eob import StatementHeld
from pipeline.settings import Settings
from tests.compose.test_statements import IDS, NOTICES, PERIOD, _one_member_extract

# ytd 100.00 of a 1,000.00 deductible, then 960.00 of deductible this period: 1,060.00 used
OVER_THE_DEDUCTIBLE = [{"line_no": "1", "billed": "1000.00", "discount": "40.00", "plan_paid": "0.00",
                        "copay": "0.00", "deductible": "960.00", "service_code": "73721"}]


def _run(tmp_path: Path, lines: list[dict[str, str]]) -> Path:
    ingest(_one_member_extract(tmp_path / "in", lines), tmp_path / "out", 1, period=PERIOD)
    return tmp_path / "out"


def _composed(out: Path, **kwargs):  # type: ignore[no-untyped-def]
    return list(iter_composed(out, 0, PERIOD, notices=NOTICES, statement_ids=IDS, **kwargs))


def _accumulators(statement):  # type: ignore[no-untyped-def]
    return {(a.name, a.tier, a.network): a for a in statement.accumulators}


def test_an_overrun_is_shown_as_it_is_and_flagged_to_the_operator(tmp_path: Path) -> None:
    """Before issue 17 the deductible showed 1,000.00 of 1,000.00, "Met", while the lines charged
    60.00 of deductible beyond it."""
    out = _run(tmp_path, OVER_THE_DEDUCTIBLE)
    (item,) = _composed(out)
    deductible = _accumulators(item.statement)["deductible", "individual", "in"]
    assert deductible.used == 106000 and deductible.limit == 100000 and deductible.overrun
    assert item.statement.held == ""  # the default shows it
    (summary,) = list(compose_shard(out, 0, PERIOD, notices=NOTICES))
    assert summary["accumulator_overrun"].to_pylist() == [True]
    assert summary["deductible_used"].to_pylist() == [106000]


def test_the_overrun_note_is_on_the_statement(tmp_path: Path) -> None:
    import subprocess

    out = _run(tmp_path, OVER_THE_DEDUCTIBLE)
    (item,) = _composed(out)
    pdf = tmp_path / "s.pdf"
    pdf.write_bytes(render_statement(item.statement).pdf)
    text = " ".join(subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                                   check=True).stdout.split())
    assert "$1,060.00" in text and "we are checking this" in text


def test_hold_setting_holds_an_overrun_statement_and_render_refuses_it(tmp_path: Path) -> None:
    out = _run(tmp_path, OVER_THE_DEDUCTIBLE)
    (item,) = _composed(out, accumulator_overrun="hold")
    assert item.statement.held == HOLD_OVERRUN
    with pytest.raises(StatementHeld, match="held \\(accumulator_overrun\\)") as caught:
        render_statement(item.statement)
    assert isinstance(caught.value, RenderError)  # the render stage records it as failed, with its name
    assert item.statement.statement_id in str(caught.value)
    assert Settings.model_fields["accumulator_overrun"].default == "show"


def test_no_overrun_nothing_is_held(tmp_path: Path) -> None:
    (item,) = _composed(_run(tmp_path, [{"line_no": "1"}]), accumulator_overrun="hold")
    assert item.statement.held == ""
    assert not any(a.overrun for a in item.statement.accumulators)


def test_family_and_out_of_network_tiers_with_the_plan_year(tmp_path: Path) -> None:
    out = _run(tmp_path, [
        {"line_no": "1", "billed": "300.00", "discount": "100.00", "plan_paid": "0.00", "copay": "0.00",
         "deductible": "200.00"},
        {"line_no": "2", "claim_id": "C2", "patient_name": "Bo Test", "patient_relationship": "child",
         "billed": "100.00", "discount": "0.00", "plan_paid": "50.00", "copay": "0.00",
         "coinsurance": "50.00", "network": "out"},
    ])
    plans = pq.read_table(out / "plans.parquet")
    for name, values in (("family_deductible_limit", pa.array([200000], pa.int64())),
                         ("oon_deductible_limit", pa.array([300000], pa.int64())),
                         ("oon_family_deductible_limit", pa.array([600000], pa.int64())),
                         ("family_out_of_pocket_limit", pa.array([900000], pa.int64())),
                         ("plan_year_start", pa.array([date(2026, 7, 1)], pa.date32()))):
        if name in plans.column_names:  # ingest keeps the column (empty in this extract)
            plans = plans.set_column(plans.column_names.index(name), name, values)
        else:
            plans = plans.append_column(name, values)
    pq.write_table(plans, out / "plans.parquet")
    (item,) = _composed(out)
    found = _accumulators(item.statement)
    assert found["deductible", "individual", "in"].used == 10000 + 20000  # the subscriber's own line
    assert found["deductible", "family", "in"].used == 10000 + 20000  # from the individual year so far
    assert found["out_of_pocket", "family", "in"].used == 20000 + 20000
    assert found["deductible", "individual", "out"].used == 0  # the child's line is the family's
    assert found["deductible", "family", "out"].limit == 600000
    assert ("out_of_pocket", "individual", "out") not in found  # no limit known: left off
    year = found["deductible", "individual", "in"].plan_year
    assert year == (date(2026, 7, 1), date(2027, 6, 30))


def test_an_overrun_of_another_tier_is_flagged_by_both_views(tmp_path: Path) -> None:
    """The family's out-of-network deductible over its limit, from a dependant's line: compose
    finds it from the line totals ingest keeps, without reading a line."""
    out = _run(tmp_path, [
        {"line_no": "1", "claim_id": "C2", "patient_name": "Bo Test", "patient_relationship": "child",
         "billed": "500.00", "discount": "0.00", "plan_paid": "0.00", "copay": "0.00",
         "deductible": "500.00", "network": "out"},
    ])
    plans = pq.read_table(out / "plans.parquet")
    limit = pa.array([40000], pa.int64())  # 400.00
    name = "oon_family_deductible_limit"
    plans = (plans.set_column(plans.column_names.index(name), name, limit) if name in plans.column_names
             else plans.append_column(name, limit))
    pq.write_table(plans, out / "plans.parquet")
    (item,) = _composed(out)
    family = _accumulators(item.statement)["deductible", "family", "out"]
    assert (family.used, family.limit, family.overrun) == (50000, 40000, True)
    assert not _accumulators(item.statement)["deductible", "individual", "in"].overrun
    shutil.rmtree(out / "lines")
    (summary,) = list(compose_shard(out, 0, PERIOD, notices=NOTICES))
    assert summary["accumulator_overrun"].to_pylist() == [True]
    assert summary["content_hash"].to_pylist() == [item.content_hash]


def test_the_claims_systems_figures_are_the_source_of_truth(tmp_path: Path) -> None:
    out = _run(tmp_path, [{"line_no": "1"}])
    pq.write_table(pa.table({
        "member_id": ["M1", "M1", "M1"], "patient_id": [None, None, "P9"],
        "accumulator": ["deductible", "out_of_pocket", "deductible"],
        "tier": ["individual", "family", "individual"], "network": ["in", "in", "in"],
        "used": pa.array([123400, 987600, 5], pa.int64()),
        "limit": pa.array([None, 900000, None], pa.int64()),
        "as_of": pa.array([date(2026, 11, 28)] * 3, pa.date32())}), out / "accumulators.parquet")
    (item,) = _composed(out)
    found = _accumulators(item.statement)
    assert (found["deductible", "individual", "in"].used, found["deductible", "individual", "in"].source) == (
        123400, "extract")
    assert found["deductible", "individual", "in"].as_of == date(2026, 11, 28)
    family = found["out_of_pocket", "family", "in"]
    assert (family.used, family.limit, family.overrun) == (987600, 900000, True)
    assert found["out_of_pocket", "individual", "in"].source == "computed"
    (summary,) = list(compose_shard(out, 0, PERIOD, notices=NOTICES))
    assert summary["accumulator_overrun"].to_pylist() == [True]
    assert summary["content_hash"].to_pylist() == [item.content_hash]


def test_plan_year_defaults_to_january_and_steps_back_a_year() -> None:
    plan = Plan("P", "Plan", "default", 1, 1)
    assert plan_year(plan, date(2026, 11, 1)) == (date(2026, 1, 1), date(2026, 12, 31))
    later = dataclasses.replace(plan, plan_year_start=date(2026, 12, 1))
    assert plan_year(later, date(2026, 11, 1)) == (date(2025, 12, 1), date(2026, 11, 30))
