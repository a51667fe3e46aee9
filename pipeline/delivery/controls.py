"""What the send stage and the operator share through the ledger: pauses, usage, throttling.

- Pauses and suspensions (``send_pauses``): an operator's pause of a pool or of one provider
  on a pool, or a suspension the sender recorded when a provider refused our mail. While one
  is active the sender makes no attempt on that pool × provider.
- Usage (``pool_usage``): messages started per pool and UTC hour, for warm-up caps and for
  counting *sending* days.
- Throttle state (``send_throttle``): a rate cut outlives the task that made it, so the next
  run starts where the last one left off and keeps recovering.

Operator actions are written to the audit log; nothing here stores an address.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.clock import iso
from pipeline.delivery.pools import DEFAULT_PROVIDER, PoolConfig, SendConfig
from pipeline.delivery.throttle import ThrottleState
from pipeline.delivery.warmup import Caps, allowance, caps_for, sending_day
from pipeline.ledger import Ledger

ALL = "*"
OPERATOR = "operator"
SUSPEND = "suspend"


class ControlError(ValueError):
    """An operator asked for something the configuration does not know (pool, provider)."""


@dataclass(frozen=True, slots=True)
class Pause:
    pause_id: str
    pool: str
    provider: str
    kind: str
    reason: str
    actor: str
    created_at: str
    ends_at: str | None


@dataclass(frozen=True, slots=True)
class WarmupStatus:
    caps: Caps
    sent_today: int
    sent_this_hour: int
    allowance: int | None  # None: no warm-up cap applies


def _check(config: SendConfig, pool: str, provider: str) -> None:
    if pool not in config.pool_names:
        raise ControlError(f"unknown pool {pool!r} (known: {config.pool_names})")
    if provider != ALL and provider not in config.providers:
        raise ControlError(f"unknown provider {provider!r} (known: {list(config.providers)})")


# -- pauses ------------------------------------------------------------------------------------


def pause(
    ledger: Ledger, config: SendConfig, *, pool: str, provider: str = ALL, reason: str,
    actor: str, now: datetime, seconds: float | None = None, kind: str = OPERATOR,
) -> Pause:
    """Stop attempts on ``pool`` × ``provider`` (``*``: all) for ``seconds`` or until resumed."""
    _check(config, pool, provider)
    if not reason.strip():
        raise ControlError("a pause needs a reason")
    if seconds is not None and seconds <= 0:
        raise ControlError("a pause must last a positive time")
    ends = iso(now + timedelta(seconds=seconds)) if seconds is not None else None
    row = Pause(uuid.uuid4().hex, pool, provider, kind, reason.strip()[:300], actor, iso(now), ends)
    ledger.execute("pool_insert_pause", pause_id=row.pause_id, pool=pool, provider=provider,
                   kind=kind, reason=row.reason, actor=actor, created_at=row.created_at,
                   ends_at=ends)
    ledger.audit(actor, "send_pause" if kind == OPERATOR else "send_suspend", None,
                 {"pool": pool, "provider": provider, "ends_at": ends, "reason": row.reason,
                  "pause_id": row.pause_id})
    return row


def resume(
    ledger: Ledger, config: SendConfig, *, pool: str, provider: str = ALL, reason: str,
    actor: str, now: datetime,
) -> int:
    """Lift active pauses and suspensions of exactly ``pool`` × ``provider``; returns how many."""
    _check(config, pool, provider)
    lifted = ledger.execute("pool_lift_pauses", pool=pool, provider=provider, now=iso(now),
                            actor=actor, reason=reason.strip()[:300] or "resumed")
    ledger.audit(actor, "send_resume", None,
                 {"pool": pool, "provider": provider, "lifted": lifted, "reason": reason})
    return lifted


def active_pauses(ledger: Ledger, pool: str | None, now: datetime) -> list[Pause]:
    rows = (ledger.fetch("pool_active_pauses", pool=pool, now=iso(now)) if pool is not None
            else ledger.fetch("pool_all_active_pauses", now=iso(now)))
    return [Pause(**row) for row in rows]


def paused_providers(ledger: Ledger, pool: str, now: datetime) -> dict[str, str]:
    """provider (or ``*``) → why it takes nothing now; the sender's ``held`` control."""
    found: dict[str, str] = {}
    for p in active_pauses(ledger, pool, now):
        until = f"until {p.ends_at}" if p.ends_at else "until resumed"
        what = "paused by an operator" if p.kind == OPERATOR else "suspended after a refusal"
        found.setdefault(p.provider, f"{p.provider} {what} on {pool} {until}: {p.reason}")
    return found


# -- warm-up usage -----------------------------------------------------------------------------


def _day_hour(now: datetime) -> tuple[str, int]:
    moment = datetime.fromisoformat(iso(now))
    return moment.date().isoformat(), moment.hour


def add_usage(ledger: Ledger, pool: str, messages: int, now: datetime) -> None:
    """Count (or with a negative number, give back) messages in the current UTC hour."""
    if messages == 0:
        return
    day, hour = _day_hour(now)
    ledger.execute("pool_add_usage", pool=pool, usage_day=day, usage_hour=hour, messages=messages)


def warmup_status(ledger: Ledger, pool: PoolConfig, now: datetime) -> WarmupStatus:
    """Today's warm-up day, caps, usage and what is still allowed."""
    day, hour = _day_hour(now)
    usage = ledger.fetch_one("pool_usage_today", pool=pool.name, usage_day=day, usage_hour=hour)
    sent_today = int(usage["day_total"]) if usage else 0
    sent_hour = int(usage["hour_total"]) if usage else 0
    if pool.warmup is None:
        return WarmupStatus(Caps(0, None, None), sent_today, sent_hour, None)
    before = ledger.fetch_one("pool_sending_days_before", pool=pool.name, usage_day=day,
                              min_messages=pool.warmup.min_messages_per_day)
    caps = caps_for(pool.warmup, sending_day(int(before["n"]) if before else 0))
    return WarmupStatus(caps, sent_today, sent_hour, allowance(caps, sent_today, sent_hour))


# -- throttle state ----------------------------------------------------------------------------


def load_throttle(ledger: Ledger, pool: str, now: datetime) -> dict[str, ThrottleState]:
    states = {}
    for row in ledger.fetch("pool_throttle_state", pool=pool):
        age = (now - datetime.fromisoformat(row["decreased_at"])).total_seconds()
        states[row["provider"]] = ThrottleState(float(row["rate"]), max(0.0, age))
    return states


def save_throttle(
    ledger: Ledger, pool: str, states: dict[str, ThrottleState], providers: list[str],
    now: datetime,
) -> None:
    """Remember each lane's cut; a lane that recovered (no state) is forgotten."""
    for provider in providers:
        state = states.get(provider)
        if state is None:
            ledger.execute("pool_clear_throttle", pool=pool, provider=provider)
            continue
        cut_at = now - timedelta(seconds=state.seconds_since_decrease)
        ledger.execute("pool_save_throttle", pool=pool, provider=provider,
                       rate=state.rate_after_decrease, decreased_at=iso(cut_at))


def provider_counts(ledger: Ledger, config: SendConfig, pool: str) -> dict[str, int]:
    """Queued statements of a pool per provider (from the recipient domain in the ledger)."""
    counts: dict[str, int] = {}
    for row in ledger.fetch("send_queued_counts_for_pool", pool=pool):
        provider = config.provider_of(row["email_domain"]) if row["email_domain"] else (
            DEFAULT_PROVIDER)
        counts[provider] = counts.get(provider, 0) + int(row["n"])
    return counts


def route_weights(ledger: Ledger, config: SendConfig, now: datetime) -> list[tuple[str, float]]:
    """Each pool's share of a run: what it can actually send today, in messages.

    A warm pool can send ``weight × max_per_second`` all day; a pool in warm-up only its
    daily cap (what is left of it today). Weighting by rate alone would park most of a monthly
    run in a day-1 pool's queue for weeks. A pool paused as a whole gets no new statements.
    """
    weights = []
    for pool in config.pools:
        if ALL in paused_providers(ledger, pool.name, now):
            continue
        per_day = pool.capacity * 86_400
        status = warmup_status(ledger, pool, now)
        if status.caps.daily is not None:
            per_day = min(per_day, max(status.caps.daily - status.sent_today, 0))
        if per_day > 0:
            weights.append((pool.name, float(per_day)))
    return weights or [(pool.name, pool.capacity) for pool in config.pools]
