"""Adaptive throttling and warm-up caps as pure logic on a fake clock: no SMTP, no sleeps."""

from __future__ import annotations

import asyncio

import pytest

from pipeline.delivery.pools import WarmupPlan, WarmupStep
from pipeline.delivery.throttle import (
    AdaptiveRate,
    Feedback,
    LaneLimiter,
    ThrottlePolicy,
    ThrottleState,
    feedback_for,
)
from pipeline.delivery.warmup import Caps, Quota, allowance, caps_for, sending_day
from tests.support.clock import FakeClock

POLICY = ThrottlePolicy(decrease=0.5, floor_fraction=0.1, min_rate=0.5, recover_fraction=0.1,
                        recover_every_seconds=30.0, cooldown_seconds=5.0)


# -- what a reply says about our sending ---------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status", "text", "expected"),
    [
        (421, "4.7.28", "Our system has detected an unusual rate of unsolicited mail", Feedback.THROTTLE),
        (450, "4.7.1", "Rate limit exceeded, try again later", Feedback.THROTTLE),
        (421, "4.7.0", "[TSS04] Messages from 203.0.113.10 temporarily deferred due to unexpected "
                       "volume or user complaints", Feedback.SUSPEND),
        (554, "5.7.1", "Service unavailable; client host blocked using zen.spamhaus.org",
         Feedback.SUSPEND),
        (550, "5.7.606", "Access denied, banned sending IP", Feedback.SUSPEND),
        (550, "5.1.1", "user unknown", Feedback.NONE),
        (452, "4.2.2", "mailbox full", Feedback.NONE),
        (None, None, "connection lost at DATA: SMTPServerDisconnected", Feedback.NONE),
    ],
)
def test_feedback_separates_our_problems_from_the_recipients(
    code: int | None, status: str | None, text: str, expected: Feedback
) -> None:
    assert feedback_for(code, status, text) is expected


# -- AIMD --------------------------------------------------------------------------------------


def test_throttle_halves_the_rate_and_it_recovers_in_steps() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(20.0, POLICY, clock)
    assert rate.current() == 20.0 and rate.state() is None
    assert rate.decrease()
    assert rate.current() == pytest.approx(10.0)
    clock.advance(29.9)
    assert rate.current() == pytest.approx(10.0)  # no step before the interval
    clock.advance(0.1)
    assert rate.current() == pytest.approx(12.0)  # + 10 % of the configured 20/s
    clock.advance(30 * 3)
    assert rate.current() == pytest.approx(18.0)
    clock.advance(30)
    assert rate.current() == 20.0 and rate.state() is None  # whole again, and forgotten


def test_replies_of_one_burst_cut_once_then_cuts_compound_down_to_the_floor() -> None:
    clock = FakeClock()
    rate = AdaptiveRate(20.0, POLICY, clock)
    assert rate.decrease()
    assert not rate.decrease()  # same burst of in-flight replies (within the cooldown)
    assert rate.current() == pytest.approx(10.0)
    for _ in range(10):
        clock.advance(5.0)
        rate.decrease()
    assert rate.current() == pytest.approx(2.0)  # floor: 10 % of 20/s (above min_rate 0.5)


def test_floor_is_never_above_the_configured_rate() -> None:
    assert POLICY.floor(0.2) == 0.2
    assert POLICY.floor(3.0) == 0.5  # min_rate
    assert POLICY.floor(100.0) == 10.0


def test_state_carries_a_cut_into_the_next_run() -> None:
    clock = FakeClock()
    first = AdaptiveRate(20.0, POLICY, clock)
    first.decrease()
    clock.advance(40)  # one step recovered
    state = first.state()
    assert state == ThrottleState(10.0, 40.0)
    later = FakeClock(now=1000.0)  # another process, another clock
    resumed = AdaptiveRate(20.0, POLICY, later, state)
    assert resumed.current() == pytest.approx(12.0)
    later.advance(20)
    assert resumed.current() == pytest.approx(14.0)


def test_lane_paces_at_the_cut_rate_without_sleeping() -> None:
    clock = FakeClock()
    lane = LaneLimiter(10.0, POLICY, clock)
    starts: list[float] = []

    async def send(n: int) -> None:
        for _ in range(n):
            wait = lane.reserve()
            await clock.sleep(wait)
            await lane.admit(clock.sleep)
            starts.append(clock.now)

    asyncio.run(send(11))  # a hard cap of 10/s is paced at 95 %: 9.5/s
    assert starts[-1] == pytest.approx(10 / 9.5)
    assert lane.throttled()
    assert lane.rate == pytest.approx(4.75)
    asyncio.run(send(5))
    gaps = [b - a for a, b in zip(starts[-6:], starts[-5:], strict=False)]
    assert gaps[1:] == pytest.approx([1 / 4.75] * 4)


def test_hard_cap_holds_in_every_window_even_after_an_idle_spell() -> None:
    clock = FakeClock()
    lane = LaneLimiter(5.0, POLICY, clock)
    starts: list[float] = []

    async def send(n: int) -> None:
        for _ in range(n):
            await clock.sleep(lane.reserve())
            await lane.admit(clock.sleep)
            starts.append(clock.now)

    asyncio.run(send(7))
    clock.advance(10)  # idle: the bucket refills (burst 1), the window forgets
    asyncio.run(send(12))
    for start in starts:
        assert sum(1 for s in starts if start <= s < start + 1.0 - 1e-6) <= 5


# -- warm-up -------------------------------------------------------------------------------------

PLAN = WarmupPlan(
    steps=(WarmupStep(day=1, daily=100, hourly=20), WarmupStep(day=2, daily=200, hourly=40),
           WarmupStep(day=4, daily=500)),
    hold_days=2,
)


def test_caps_follow_sending_days_and_end_after_the_hold() -> None:
    assert caps_for(PLAN, 1) == Caps(1, 100, 20)
    assert caps_for(PLAN, 3) == Caps(3, 200, 40)  # day 3 keeps day 2's step
    assert caps_for(PLAN, 5) == Caps(5, 500, None)
    assert caps_for(PLAN, 6).warm
    assert caps_for(None, 1).warm


def test_idle_calendar_days_do_not_advance_the_plan() -> None:
    # The pool sent on Nov 3 and Nov 4, then nothing until Dec 3: Dec 3 is sending day 3.
    sending_days_before_dec_3 = len({"2026-11-03", "2026-11-04"})
    assert sending_day(sending_days_before_dec_3) == 3
    assert caps_for(PLAN, sending_day(sending_days_before_dec_3)) == Caps(3, 200, 40)


def test_allowance_is_the_tighter_of_daily_and_hourly() -> None:
    caps = Caps(2, 200, 40)
    assert allowance(caps, sent_today=0, sent_this_hour=0) == 40
    assert allowance(caps, sent_today=190, sent_this_hour=0) == 10
    assert allowance(caps, sent_today=100, sent_this_hour=45) == 0
    assert allowance(Caps(9, None, None), 10**6, 10**6) is None


def test_quota_reserves_ahead_and_gives_back_the_unused_part() -> None:
    ledger: list[int] = []
    quota = Quota(45, reserve=ledger.append, release=lambda n: ledger.append(-n), chunk=20)
    taken = 0
    while quota.try_take():
        taken += 1
        if taken == 25:
            break
    assert taken == 25 and ledger == [20, 20]  # reserved before use, never after
    assert quota.close() == 15 and ledger == [20, 20, -15]
    assert sum(ledger) == 25


def test_quota_stops_exactly_at_the_cap() -> None:
    reserved: list[int] = []
    quota = Quota(45, reserve=reserved.append, chunk=20)
    assert sum(quota.try_take() for _ in range(100)) == 45
    assert reserved == [20, 20, 5] and quota.close() == 0


def test_quota_without_cap_still_counts_usage() -> None:
    reserved: list[int] = []
    quota = Quota(None, reserve=reserved.append, chunk=10)
    assert all(quota.try_take() for _ in range(25))
    assert reserved == [10, 10, 10] and quota.close() == 5
