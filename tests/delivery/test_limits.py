"""Token bucket on a fake clock: rate and burst honoured, nothing sleeps for real."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from pipeline.delivery.limits import SlidingWindow, TokenBucket
from tests.support.clock import FakeClock


def waited(bucket: TokenBucket, clock: FakeClock) -> float:
    """How long ``acquire`` waited for one token (on the fake clock, which its sleep moves)."""
    before = clock.now
    asyncio.run(bucket.acquire(sleep=clock.sleep))
    return clock.now - before


def test_burst_is_available_at_once_then_the_rate_applies() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=5.0, burst=3.0, clock=clock)
    assert [waited(bucket, clock) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert waited(bucket, clock) == pytest.approx(0.2)
    clock.advance(0.1)
    assert bucket.tokens == pytest.approx(0.5)  # looking at the balance consumes nothing
    assert waited(bucket, clock) == pytest.approx(0.1)  # time already passed counts
    clock.advance(0.2)
    assert waited(bucket, clock) == 0.0
    assert waited(bucket, clock) == pytest.approx(0.2)


def test_saved_tokens_never_exceed_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=2.0, clock=clock)
    clock.advance(3600)
    assert bucket.tokens == pytest.approx(2.0)
    assert [waited(bucket, clock) for _ in range(3)] == pytest.approx([0.0, 0.0, 0.1])


def test_take_waits_for_several_tokens() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=4.0, burst=4.0, clock=clock)
    assert bucket.take(4) == 0.0
    assert bucket.take(2) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        bucket.take(5)
    assert bucket.tokens == pytest.approx(-2.0)  # the refused request reserved nothing


def test_sustained_rate_over_a_simulated_minute() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=200.0, burst=20.0, clock=clock)

    async def send(n: int) -> None:
        for _ in range(n):
            await bucket.acquire(sleep=clock.sleep)

    asyncio.run(send(12_020))
    assert clock.now == pytest.approx(60.0)  # 20 from the burst, then 200 per second


def test_take_reserves_distinct_slots_for_concurrent_waiters() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=1.0, clock=clock)
    waits = [bucket.take() for _ in range(4)]
    assert waits == pytest.approx([0.0, 0.1, 0.2, 0.3])


def test_fake_clock_only_moves_forward() -> None:
    clock = FakeClock(now=5.0)
    clock.advance(1.5)
    assert clock.monotonic() == 6.5
    assert clock.utc_now() - FakeClock().utc_now() == timedelta(seconds=6.5)  # wall time too
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_invalid_parameters() -> None:
    with pytest.raises(ValueError):
        TokenBucket(rate=0, burst=1, clock=FakeClock())
    with pytest.raises(ValueError):
        TokenBucket(rate=1, burst=0.5, clock=FakeClock())


# -- set_rate and the sliding window ------------------------------------------------------------


def test_set_rate_keeps_tokens_earned_at_the_old_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10.0, burst=5.0, clock=clock)
    for _ in range(5):
        assert bucket.take() == 0.0
    clock.advance(0.2)  # two tokens earned at 10/s
    bucket.set_rate(1.0)
    assert bucket.tokens == pytest.approx(2.0)
    clock.advance(1.0)
    assert bucket.tokens == pytest.approx(3.0)  # one more at the new rate
    with pytest.raises(ValueError):
        bucket.set_rate(0)


def test_sliding_window_never_admits_more_than_the_limit_in_any_window() -> None:
    clock = FakeClock()
    window = SlidingWindow(limit=3, window=1.0, clock=clock)
    starts: list[float] = []

    async def go(n: int) -> None:
        for _ in range(n):
            await window.admit(clock.sleep)
            starts.append(clock.now)
            clock.advance(0.01)  # work between starts

    asyncio.run(go(30))
    for i, start in enumerate(starts):
        assert sum(1 for s in starts if start <= s < start + 1.0 - 1e-6) <= 3, i  # float noise
    assert starts[:4] == pytest.approx([0.0, 0.01, 0.02, 1.0])


def test_sliding_window_per_second_with_guard() -> None:
    clock = FakeClock()
    window = SlidingWindow.per_second(2.5, clock, guard=0.02)
    assert (window.limit, window.window) == (2, pytest.approx(1.02))
    window.record()
    window.record()
    assert window.wait() == pytest.approx(1.02)
    clock.advance(1.02)
    assert window.wait() == 0.0
    with pytest.raises(ValueError):
        SlidingWindow(0, 1.0, clock)
