"""The pool send lease on a real ledger (SQLite and PostgreSQL): one sender per pool at a time,
a dead holder's lease freed (at once on its own host, by expiry elsewhere), a lost lease seen."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from pipeline.delivery.lease import PoolBusy, PoolLease, holder_name
from pipeline.ledger import Ledger
from tests.support.send import WallClock


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    return Ledger.open(ledger_url, now=WallClock())


def _lease(ledger: Ledger, clock: WallClock, holder: str | None = None, ttl: float = 60) -> PoolLease:
    return PoolLease(ledger, "pool_a", ttl=ttl, now=clock, holder=holder)


def test_a_second_sender_is_refused_while_the_first_holds_the_pool(ledger: Ledger) -> None:
    clock = WallClock()
    first = _lease(ledger, clock)
    first.take()
    try:
        with pytest.raises(PoolBusy) as refused:
            _lease(ledger, clock).take()
        assert refused.value.holder == first.holder
        assert _lease(ledger, clock, holder=first.holder).try_take()  # its own holder may renew
    finally:
        first.release()
    second = _lease(ledger, clock)
    second.take()  # released: free at once
    second.release()


def test_an_expired_lease_is_free_and_a_waiting_sender_gets_the_released_one(ledger: Ledger) -> None:
    clock = WallClock()
    stale = _lease(ledger, clock, holder="another-host:1234:abcd")
    assert stale.try_take()
    assert not _lease(ledger, clock).try_take()
    clock.advance(seconds=61)
    fresh = _lease(ledger, clock)
    assert fresh.try_take(), "a lease not renewed within its ttl is free"
    ledger.execute("send_lease_release", pool="pool_a", holder=fresh.holder)


def _exit_at_once() -> None:
    return None


def test_the_lease_of_a_process_that_died_on_this_host_is_taken_over_at_once(ledger: Ledger) -> None:
    clock = WallClock()
    child = multiprocessing.get_context("fork").Process(target=_exit_at_once)
    child.start()
    child.join()
    this_host = holder_name().split(":")[0]  # host name and boot
    dead = f"{this_host}:{child.pid}:deadbeef"
    assert _lease(ledger, clock, holder=dead).try_take()
    successor = _lease(ledger, clock)
    started = time.monotonic()
    successor.take(wait_seconds=30)
    assert time.monotonic() - started < 5, "a gone holder must not make the successor wait out the ttl"
    assert ledger.fetch_one("send_lease_get", pool="pool_a")["holder"] == successor.holder
    successor.release()


def test_a_holder_renews_in_the_background_and_learns_when_it_lost_the_pool(ledger: Ledger) -> None:
    clock = WallClock()
    lease = _lease(ledger, clock, ttl=5)
    lease.take()
    try:
        before = ledger.fetch_one("send_lease_get", pool="pool_a")["expires_at"]
        clock.advance(seconds=3)
        time.sleep(1.6)  # a renewal beat is ttl/4
        after = ledger.fetch_one("send_lease_get", pool="pool_a")["expires_at"]
        assert after > before, "the lease is renewed while its holder works"
        ledger.execute("send_lease_steal", pool="pool_a", previous=lease.holder,
                       holder="other:1:x", now="2026-12-03T10:00:00", expires_at="2099-01-01T00:00:00")
        time.sleep(1.6)
        assert lease.lost.is_set()
        with pytest.raises(RuntimeError, match="expired while sending"):
            lease.check()
    finally:
        lease.release()
    assert ledger.fetch_one("send_lease_get", pool="pool_a")["holder"] == "other:1:x", \
        "releasing a lost lease must not free the new holder's"
