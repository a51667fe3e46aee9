"""The one clock: aware UTC wall time, a monotonic reading, and a wait that yields to the loop."""

from __future__ import annotations

import asyncio
from datetime import UTC

from pipeline.clock import Clock, SystemClock, iso


def test_system_clock_reads_wall_and_monotonic_time_and_waits_on_the_event_loop() -> None:
    clock: Clock = SystemClock()
    assert clock.utc_now().tzinfo is UTC
    assert iso(clock.utc_now()).endswith("+00:00")

    async def nap() -> None:
        await clock.sleep(0.01)

    before = clock.monotonic()
    asyncio.run(nap())
    assert clock.monotonic() - before >= 0.009  # asyncio may wake within its clock resolution
