"""Send controls in the ledger behave the same on SQLite and PostgreSQL (migration 004)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.delivery import controls as controls_db
from pipeline.delivery.pools import parse_pool_file
from pipeline.delivery.throttle import ThrottleState
from pipeline.ledger import Ledger

NOW = datetime(2026, 12, 3, 10, 30, tzinfo=UTC)
CONFIG = parse_pool_file("""
[[pool]]
name = "pool_c"
source_ips = ["127.0.0.48"]
relays = [{ host = "127.0.0.57" }]
[pool.warmup]
min_messages_per_day = 10
steps = [{ day = 1, daily = 100, hourly = 30 }, { day = 2, daily = 200 }]
""")
POOL = CONFIG.pool("pool_c")


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    ledger = Ledger.open(ledger_url, now=lambda: NOW)
    yield ledger
    ledger.close()


def test_pauses_hold_until_their_end_or_a_resume(ledger: Ledger) -> None:
    controls_db.pause(ledger, CONFIG, pool="pool_c", provider="gmail", reason="spike",
                      actor="ops", now=NOW, seconds=3600)
    controls_db.pause(ledger, CONFIG, pool="pool_c", reason="incident", actor="ops", now=NOW)
    held = controls_db.paused_providers(ledger, "pool_c", NOW)
    assert set(held) == {"gmail", "*"} and "spike" in held["gmail"]
    later = NOW + timedelta(hours=2)
    assert set(controls_db.paused_providers(ledger, "pool_c", later)) == {"*"}  # the gmail pause ended
    assert controls_db.resume(ledger, CONFIG, pool="pool_c", reason="over", actor="ops",
                              now=later) == 1
    assert controls_db.paused_providers(ledger, "pool_c", later) == {}
    with pytest.raises(controls_db.ControlError, match="unknown pool"):
        controls_db.pause(ledger, CONFIG, pool="nope", reason="x", actor="ops", now=NOW)
    with pytest.raises(controls_db.ControlError, match="needs a reason"):
        controls_db.pause(ledger, CONFIG, pool="pool_c", reason=" ", actor="ops", now=NOW)


def test_usage_counts_sending_days_not_calendar_days(ledger: Ledger) -> None:
    first = NOW - timedelta(days=40)
    controls_db.add_usage(ledger, "pool_c", 25, first)
    controls_db.add_usage(ledger, "pool_c", 4, first + timedelta(days=1))  # below the minimum
    controls_db.add_usage(ledger, "pool_c", 12, NOW)
    controls_db.add_usage(ledger, "pool_c", 7, NOW + timedelta(hours=1))
    controls_db.add_usage(ledger, "pool_c", -2, NOW)  # an unused reservation given back
    status = controls_db.warmup_status(ledger, POOL, NOW)
    assert status.caps.day == 2  # one earlier day counted; the 4-message day did not
    assert (status.sent_today, status.sent_this_hour) == (17, 10)
    assert status.allowance == 200 - 17


def test_throttle_state_round_trips(ledger: Ledger) -> None:
    controls_db.save_throttle(ledger, "pool_c", {"gmail": ThrottleState(4.0, 30.0)},
                              ["gmail", "yahoo"], NOW)
    state = controls_db.load_throttle(ledger, "pool_c", NOW + timedelta(seconds=60))
    assert state == {"gmail": ThrottleState(4.0, pytest.approx(90.0))}
    controls_db.save_throttle(ledger, "pool_c", {}, ["gmail"], NOW)  # recovered: forgotten
    assert controls_db.load_throttle(ledger, "pool_c", NOW) == {}


def test_route_weights_follow_what_each_pool_can_send_today(ledger: Ledger) -> None:
    config = parse_pool_file("""
[[pool]]
name = "warm"
source_ips = ["127.0.0.48"]
relays = [{ host = "127.0.0.57" }]
max_per_second = 10
[[pool]]
name = "young"
source_ips = ["127.0.0.49"]
relays = [{ host = "127.0.0.58" }]
max_per_second = 10
[pool.warmup]
steps = [{ day = 1, daily = 2000, hourly = 300 }]
""")
    weights = dict(controls_db.route_weights(ledger, config, NOW))
    assert weights == {"warm": 864_000.0, "young": 2000.0}  # not 50/50 by rate
    controls_db.add_usage(ledger, "young", 500, NOW)
    assert dict(controls_db.route_weights(ledger, config, NOW))["young"] == 1500.0
    controls_db.pause(ledger, config, pool="warm", reason="incident", actor="ops", now=NOW)
    assert controls_db.route_weights(ledger, config, NOW) == [("young", 1500.0)]
