"""Which IP pools are on hold because receivers are blocking or throttling them.

Sender-caused failures (block lists, reputation, rate limits, authentication/TLS) say nothing
about the member and everything about the pool that sent the message. Several of them from one
pool within a window put that pool on hold: retries are requeued on another pool meanwhile,
and the member is never suppressed. The hold is derived from the ledger's `bounced` events
(each carries its category and pool), so it needs no state of its own and any past hold can be
explained from the timeline.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from pipeline.clock import iso
from pipeline.outcomes import Category, PoolAction, pool_action

if TYPE_CHECKING:
    from pipeline.ledger import Ledger
    from pipeline.settings import Settings


@dataclass(frozen=True, slots=True)
class HoldPolicy:
    threshold: int = 5  # sender-caused bounces from one pool within `window` …
    window: timedelta = timedelta(hours=1)
    hold: timedelta = timedelta(hours=1)  # … hold it this long after the last one

    @classmethod
    def from_settings(cls, settings: Settings) -> HoldPolicy:
        return cls(threshold=settings.pool_hold_threshold,
                   window=timedelta(minutes=settings.pool_hold_window_minutes),
                   hold=timedelta(minutes=settings.pool_hold_minutes))


@dataclass(frozen=True, slots=True)
class Hold:
    pool: str
    action: PoolAction
    until: datetime
    bounces: int


@dataclass(frozen=True, slots=True)
class SenderBounce:
    at: datetime
    pool: str
    category: Category


def sender_bounces(rows: Iterable[dict[str, str]]) -> list[SenderBounce]:
    """`bounced` events (at, detail JSON) → the sender-caused ones that name their pool."""
    found = []
    for row in rows:
        detail = json.loads(row["detail"] or "{}")
        try:
            category = Category(detail.get("category", ""))
        except ValueError:
            continue
        if detail.get("pool") and pool_action(category) is not PoolAction.NONE:
            found.append(SenderBounce(datetime.fromisoformat(row["at"]), detail["pool"], category))
    return found


def holds_from_bounces(bounces: Iterable[SenderBounce], now: datetime, policy: HoldPolicy) -> dict[str, Hold]:
    """Pools on hold at `now`: `threshold` sender-caused bounces within any `window`."""
    by_pool: dict[str, list[SenderBounce]] = {}
    for bounce in bounces:
        if now - policy.window - policy.hold <= bounce.at <= now:
            by_pool.setdefault(bounce.pool, []).append(bounce)
    result: dict[str, Hold] = {}
    for pool, items in by_pool.items():
        items.sort(key=lambda b: b.at)
        start = 0
        for end, last in enumerate(items):
            while last.at - items[start].at > policy.window:
                start += 1
            count = end - start + 1
            if count >= policy.threshold and last.at + policy.hold > now:
                window_items = items[start : end + 1]
                action = (PoolAction.PAUSE if any(pool_action(b.category) is PoolAction.PAUSE
                                                  for b in window_items) else PoolAction.THROTTLE)
                result[pool] = Hold(pool, action, last.at + policy.hold, count)
    return result


def current_holds(ledger: Ledger, now: datetime, policy: HoldPolicy) -> dict[str, Hold]:
    """Holds in force now, from the ledger's recent `bounced` events."""
    since = now - policy.window - policy.hold
    rows = ledger.fetch("reconcile_bounces_since", since=iso(since))
    return holds_from_bounces(sender_bounces(rows), now, policy)
