"""The finance report: every figure recomputed straight from the raw ledger events with pandas,
rates that change mid-month, idempotent day facts, and the outputs (HTML, CSV, XLSX) agreeing.

The documentation's screenshot and samples come from the demo's report
(`EOB_SCREENSHOTS=docs pytest tests/test_end_to_end.py -k finance` refreshes them).
"""

from __future__ import annotations

import dataclasses
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.report.facts import (
    Rate,
    day_rows,
    read_rates,
    rebuild_day,
    rebuild_days,
    rebuild_month,
    rebuild_period,
)
from pipeline.report.figures import Figures, Thresholds, for_month, for_period, money
from pipeline.report.finance_html import write_finance_report
from tests.report.finance_world import LAST_DAY, PERIOD, RUN, sqlite_world

CHROMIUM = Path("/usr/bin/chromium")
SETTLED = {"delivered", "paper_queued", "paper_exception", "batched", "printed", "mailed", "failed",
           "superseded"}


@pytest.fixture
def world(tmp_path: Path):  # type: ignore[no-untyped-def]
    ledger, _ = sqlite_world(tmp_path)
    rebuild_period(ledger, PERIOD)
    yield ledger
    ledger.close()


def _raw(ledger) -> tuple[pd.DataFrame, pd.DataFrame]:  # type: ignore[no-untyped-def]
    with ledger.engine.connect() as conn:
        events = pd.read_sql("SELECT * FROM statement_events", conn)
        statements = pd.read_sql("SELECT * FROM statements", conn)
    events["day"] = events["at"].str[:10]
    return events, statements


def test_every_figure_recomputed_from_the_raw_events_agrees(world) -> None:  # type: ignore[no-untyped-def]
    f = for_period(world, PERIOD, Thresholds())
    events, statements = _raw(world)
    moves = events[events["to_status"].notna()].sort_values("event_id")
    final = moves.groupby("statement_id")["to_status"].last()
    assert final.to_dict() == statements.set_index("statement_id")["status"].to_dict()
    assert {r["status"]: r["statements"] for r in f.states} == final.value_counts().to_dict()
    # email outcomes by pool and provider
    providers = {"gmail.com": "gmail", "yahoo.com": "yahoo/aol", "aol.com": "yahoo/aol",
                 "outlook.com": "microsoft", "icloud.com": "apple"}
    e = events.merge(statements[["statement_id", "pool", "email_domain"]], on="statement_id")
    e["provider"] = e["email_domain"].map(lambda d: providers.get(d, "other"))
    for group, rows in (("pool", f.email_by_pool), ("provider", f.email_by_provider)):
        for row in rows:
            mine = e[e[group] == row[group]]
            accepted = int((mine["event"] == "sent").sum())
            bounced = int((mine["event"] == "bounced").sum())
            rejected = int(((mine["event"] == "bounced") & (mine["from_status"] == "queued")).sum())
            expected = (accepted, bounced, accepted + rejected)
            assert (row["accepted"], row["bounced"], row["messages"]) == expected
            assert row["complained"] == int((mine["event"] == "complaint_received").sum())
    # queues by age at the end of the last day
    last = moves.groupby("statement_id").last()
    waiting = last[last["to_status"].isin(["retry_scheduled", "verification_pending", "paper_queued"])]
    ages = (pd.Timestamp(LAST_DAY) - pd.to_datetime(waiting["day"])).dt.days
    buckets = pd.cut(ages, [-1, 2, 7, 14, 10_000], labels=["0-2", "3-7", "8-14", "15+"]).astype(str)
    expected = waiting.assign(b=buckets.values).groupby(["to_status", "b"]).size()
    names = {"retry_scheduled": "retry", "verification_pending": "verification", "paper_queued": "paper"}
    assert {(names[k[0]], k[1]): int(v) for k, v in expected.items()} == \
        {(r["queue"], r["age_bucket"]): r["statements"] for r in f.queues}
    # paper pieces and costs, each day at its own rates
    with world.engine.connect() as conn:
        pieces = pd.read_sql("SELECT b.batch_day, p.sheets FROM batch_pieces p JOIN print_batches b "
                             "ON b.batch_name = p.batch_name WHERE p.live = 1", conn)
    assert f.paper_pieces == len(pieces) and sum(r["sheets"] for r in f.paper) == pieces["sheets"].sum()
    rates = read_rates()

    def price(rate: str, day: str) -> Decimal:
        return next(r.amount for r in rates if r.rate == rate and r.valid_from <= day < r.valid_to)

    paper = sum(price("print", d) * s + price("envelope", d) + price("vendor_handling", d)
                + price("postage:first:" + ("1oz" if s <= 4 else "2oz"), d)
                for d, s in zip(pieces["batch_day"], pieces["sheets"], strict=True))
    email = sum(price("email", d) for d in events[events["event"] == "sent"]["day"])
    assert f.cost_micros("paper") == int(paper * 1_000_000)
    assert f.cost_micros("email") == int(email * 1_000_000)
    # deadline: statements not settled on the last day
    assert f.totals()["unsettled"] == int((~final.isin(SETTLED)).sum())
    assert all(check.ok for check in f.checks), f.checks


def test_queue_ageing_of_every_day_agrees_with_the_raw_events(world) -> None:  # type: ignore[no-untyped-def]
    """The month is built in one pass: each day's queues are still that day's end state."""
    events, _ = _raw(world)
    moves = events[events["to_status"].notna()].sort_values("event_id")
    names = {"retry_scheduled": "retry", "verification_pending": "verification", "paper_queued": "paper"}
    for day in pd.date_range("2026-12-01", LAST_DAY.isoformat()):
        iso = day.date().isoformat()
        last = moves[moves["day"] <= iso].groupby("statement_id").last()
        waiting = last[last["to_status"].isin(list(names))]
        ages = (day - pd.to_datetime(waiting["day"])).dt.days
        buckets = pd.cut(ages, [-1, 2, 7, 14, 10_000], labels=["0-2", "3-7", "8-14", "15+"]).astype(str)
        expected = waiting.assign(b=buckets.values).groupby(["to_status", "b"]).size()
        rows = [r for r in day_rows(world, day.date()) if r["t"] == "queue"]
        assert {(names[k[0]], k[1]): int(v) for k, v in expected.items()} == \
            {(r["a"], r["b"]): r["v"] for r in rows}, iso


def test_a_rate_changed_mid_month_prices_each_part_at_its_own_rate(world) -> None:  # type: ignore[no-untyped-def]
    f = for_period(world, PERIOD, Thresholds())
    printing = {(r["unit_price"], r["from"]): r["quantity"] for r in f.costs if r["rate"] == "print"}
    # batch B1 on 12-10 at the old price, B2 on 12-16 after the 12-15 review
    assert set(printing) == {(Decimal("0.045"), "2026-12-10"), (Decimal("0.048"), "2026-12-16")}
    # a past month keeps its prices: a rate table changed later does not touch the 12-10 rows
    changed = [Rate(r.rate, r.unit, r.valid_from, r.valid_to, Decimal("0.9"))
               if (r.rate, r.valid_from) == ("print", "2026-12-15") else r for r in read_rates()]
    rebuild_day(world, date(2026, 12, 16), rates=changed)
    again = for_period(world, PERIOD, Thresholds())
    prices = {(r["unit_price"], r["from"]) for r in again.costs if r["rate"] == "print"}
    assert prices == {(Decimal("0.045"), "2026-12-10"), (Decimal("0.9"), "2026-12-16")}


def test_rebuilding_a_day_twice_gives_identical_rows(world) -> None:  # type: ignore[no-untyped-def]
    for day in (date(2026, 12, 2), date(2026, 12, 3), date(2026, 12, 10), LAST_DAY):
        before = day_rows(world, day)
        assert before
        rebuild_day(world, day)
        rebuild_day(world, day)
        assert day_rows(world, day) == before


def _every_figure(ledger) -> list[dict]:  # type: ignore[no-untyped-def]
    return [dataclasses.asdict(f) for f in (for_period(ledger, PERIOD, Thresholds()),
                                            for_month(ledger, "2026-12", Thresholds(), as_of=LAST_DAY))]


@pytest.mark.parametrize("partial", ["late days", "one day"])
def test_a_partial_rebuild_on_a_fresh_ledger_gives_the_full_builds_figures(
        world, tmp_path: Path, partial: str) -> None:  # type: ignore[no-untyped-def]
    """A day's statuses and deadline facts sum the moves before it: rebuilding only the late part
    of the month, or only its last day, on a ledger with no facts yet still counts from the start."""
    full = _every_figure(world)
    assert sum(r["statements"] for r in full[0]["states"]) == 48
    (tmp_path / "fresh").mkdir()
    fresh, _ = sqlite_world(tmp_path / "fresh")
    try:
        if partial == "late days":
            rebuild_days(fresh, [LAST_DAY - timedelta(days=n) for n in range(6)])
        else:
            rebuild_day(fresh, LAST_DAY)
        assert _every_figure(fresh) == full
        for day in (date(2026, 12, 3), date(2026, 12, 16), LAST_DAY):
            assert day_rows(fresh, day) == day_rows(world, day), day
    finally:
        fresh.close()


def _daily_ctx(ledger, folder: Path):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    return SimpleNamespace(ledger=ledger, settings=SimpleNamespace(
        reports_dir=folder, delivery_deadline_hours=21 * 24.0, report_bounce_review_rate=0.05,
        report_complaint_review_rate=0.001, report_deadline_warn_days=3))


def test_the_daily_report_covers_complete_days_and_the_1st_completes_the_last_month(
        tmp_path: Path) -> None:
    from pipeline.ledger import Event, Status
    from pipeline.stages.finance_report import finance_daily_stage
    from tests.report.finance_world import sid

    ledger, clock = sqlite_world(tmp_path)
    try:
        ctx = _daily_ctx(ledger, tmp_path / "reports")
        mid = finance_daily_stage(ctx, "2026-12-21")  # type: ignore[arg-type]
        assert (mid["key"], mid["as_of"]) == ("2026-12", "2026-12-20")
        clock.at = clock.at.replace(day=31, hour=23, minute=30)  # a move late on the month's last day
        ledger.transition(sid(0), Status.SUPERSEDED, Event.SUPERSEDED)
        first = finance_daily_stage(ctx, "2027-01-01")  # type: ignore[arg-type]
        assert (first["key"], first["as_of"]) == ("2026-12", "2026-12-31")
        assert first["not_sent"] == "2" and mid["not_sent"] == "1"
        assert first["html"].endswith("2026-12.html")
    finally:
        ledger.close()


def test_a_month_rollup_counts_a_run_stuck_in_a_queue_all_month(tmp_path: Path) -> None:
    """January: the November run moves nothing, but four statements still wait for address
    verification and ten are not settled past the deadline; the month's queues and deadline
    show them (on a fresh ledger: the month's rebuild reaches back to the run's first day)."""
    ledger, _ = sqlite_world(tmp_path)
    try:
        rebuild_month(ledger, "2027-01")
        f = for_month(ledger, "2027-01", Thresholds())
        assert f.runs == [RUN]
        assert f.queue_totals() == {"retry": 0, "verification": 4, "paper": 0}
        assert {r["age_bucket"] for r in f.queues} == {"15+"}
        assert f.totals()["unsettled"] == 10 and f.totals()["past_deadline"] == 10
        assert f.statements == 48 and f.ledger_queue_counts == f.queue_totals()
        assert f.accepted == 0 and f.cost_micros() == 0  # nothing sent or printed in January
        assert all(check.ok for check in f.checks), f.checks
        assert ("deadline", f"run {RUN}") in {(a.kind, a.scope) for a in f.alerts}
    finally:
        ledger.close()


def test_the_month_rollup_and_the_alerts(world, caplog) -> None:  # type: ignore[no-untyped-def]
    with caplog.at_level("WARNING"):
        month = for_month(world, "2026-12", Thresholds())
    assert month.runs == [RUN] and month.totals() == for_period(world, PERIOD, Thresholds()).totals()
    kinds = {(a.kind, a.scope) for a in month.alerts}
    assert ("bounce rate", "provider gmail") in kinds and ("complaint rate", "provider yahoo/aol") in kinds
    assert "st-2026" not in caplog.text and "M0000" not in caplog.text
    # the deadline (12-22 09:00) is 33 hours after the end of 12-20: not within a day yet
    assert month.deadline and ("deadline", f"run {RUN}") not in kinds
    quiet = for_month(world, "2026-12", Thresholds(bounce_rate=0.9, complaint_rate=0.9))
    assert quiet.alerts == []
    # 9 hours after the end of 12-21: within a day; after the end of 12-22: past it
    rebuild_days(world, [date(2026, 12, 21), date(2026, 12, 22)])
    for day, where in ((date(2026, 12, 21), "within a day of"), (date(2026, 12, 22), "past")):
        alerts = for_month(world, "2026-12", Thresholds(bounce_rate=0.9, complaint_rate=0.9),
                           as_of=day).alerts
        assert [(a.kind, a.scope) for a in alerts] == [("deadline", f"run {RUN}")], day
        assert f"{where} the delivery deadline 2026-12-22T09:00:00+00:00" in alerts[0].detail


def _written(world, folder: Path) -> tuple[Figures, dict[str, Path]]:  # type: ignore[no-untyped-def]
    f = for_period(world, PERIOD, Thresholds())
    return f, write_finance_report(f, folder)


def test_the_workbook_is_typed_and_its_totals_equal_the_page(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    f, paths = _written(world, tmp_path / "out")
    book = load_workbook(paths["xlsx"])
    assert {"summary", "costs", "email_providers", "queues", "deadline", "checks"} <= set(book.sheetnames)
    for sheet in book.worksheets:
        assert sheet.freeze_panes == "A2"
    costs = book["costs"]
    header = [c.value for c in costs[1]]
    total = next(r for r in costs.iter_rows(min_row=2) if r[0].value == "total")
    amount = total[header.index("amount")]
    assert "$" in amount.number_format and isinstance(amount.value, float)
    html = paths["html"].read_text()
    assert f"${money(f.cost_micros()):,.2f}" in html and Decimal(str(amount.value)) == money(f.cost_micros())
    rows = [r for r in costs.iter_rows(min_row=2, values_only=True) if r[0] != "total"]
    assert round(sum(r[header.index("amount")] for r in rows), 2) == pytest.approx(amount.value, abs=0.01)
    summary = {r[0]: r[1] for r in book["summary"].iter_rows(min_row=2, values_only=True)}
    assert summary["statements"] == f.statements and summary["total cost"] == float(money(f.cost_micros()))
    for path in [paths["html"], paths["xlsx"], *paths["csv"].iterdir()]:
        text = path.read_bytes()
        assert b"st-2026-11-" not in text and b"M00000" not in text, path
    assert b"<script" not in paths["html"].read_bytes()


def test_the_page_renders_its_charts_in_chromium(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tests.support.browser import chromium

    _, paths = _written(world, tmp_path / "out")
    errors: list[str] = []
    requests: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(paths["html"].as_uri())
        assert page.locator("figure svg").count() == 6
        for name in ("channel_mix", "cost", "bounce_provider", "bounce_pool", "queues", "deadline"):
            box = page.locator(f"#chart-{name} svg").bounding_box()
            assert box and box["width"] > 200 and box["height"] > 100, name
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests
