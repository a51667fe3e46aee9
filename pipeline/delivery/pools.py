"""IP pool configuration: where each pool sends from, through which relays, and how fast.

Mailbox providers judge a sender per IP and per day: a new IP that bursts is throttled or
blocked, and one that keeps to its limits earns the right to send more. So a pool carries
three kinds of limit, all in this one validated object:

- the pool's own ceiling (messages/s, connections, messages per connection);
- per recipient provider (gmail, yahoo, outlook, icloud, default), applied per pool, because
  each provider rates each of our IPs separately;
- an optional warm-up plan: daily and hourly caps that rise with the number of *sending days*
  (see ``pipeline.delivery.warmup``).

The file (``infra/pools.toml``, pointed at by ``EOB_POOLS_FILE``) is the production source;
without it the pools come from ``EOB_POOLS`` with default provider limits, which keeps the
embedded demo working unchanged. Credentials never live here: a pool names an Airflow
connection id and the worker resolves it (see ``pipeline.stages.connections``).

A pool's ``source_ips`` are optional: without them connections are not bound, for a relay
(Postfix, KumoMTA) that binds the dedicated address itself. Its ``ca_file`` verifies its relays,
else ``EOB_SMTP_CA_FILE``, else the system store. Whether those addresses and files are usable
on this machine is checked where a pool starts sending (``pipeline.delivery.preflight``).
"""

from __future__ import annotations

import hashlib
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pipeline.delivery.throttle import ThrottlePolicy
from pipeline.settings import PoolSettings, Settings, source_address

DEFAULT_PROVIDER = "default"

DEFAULT_PROVIDER_DOMAINS: dict[str, tuple[str, ...]] = {
    "gmail": ("gmail.com", "googlemail.com"),
    "yahoo": ("yahoo.com", "ymail.com", "rocketmail.com", "aol.com", "yahoo.co.uk"),
    "outlook": ("outlook.com", "hotmail.com", "live.com", "msn.com", "hotmail.co.uk"),
    "icloud": ("icloud.com", "me.com", "mac.com"),
}
"""Recipient domains per provider; every other domain belongs to ``default``."""


class PoolConfigError(ValueError):
    """The pool file is missing, unreadable or inconsistent; the message names what to fix."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProviderLimit(_Strict):
    """What one pool may send to one provider: connections, reuse, and a per-second cap.

    ``max_per_second`` is a hard cap that holds in every one-second window; ``None`` means
    the provider has no cap of its own and only the pool's rate applies (adaptive
    throttling then cuts from the pool's rate).
    """

    max_connections: int = Field(default=2, ge=1)
    messages_per_connection: int = Field(default=50, ge=1)
    max_per_second: float | None = Field(default=10.0, gt=0)


DEFAULT_PROVIDER_LIMITS: dict[str, ProviderLimit] = {
    "gmail": ProviderLimit(max_connections=3, messages_per_connection=100, max_per_second=20.0),
    "yahoo": ProviderLimit(max_connections=2, messages_per_connection=20, max_per_second=5.0),
    "outlook": ProviderLimit(max_connections=2, messages_per_connection=50, max_per_second=10.0),
    "icloud": ProviderLimit(max_connections=2, messages_per_connection=50, max_per_second=5.0),
    DEFAULT_PROVIDER: ProviderLimit(max_connections=4, messages_per_connection=100,
                                    max_per_second=50.0),
}
"""Conservative starting points for a fresh dedicated IP; tune them in infra/pools.toml."""


class Relay(_Strict):
    host: str
    port: int = Field(default=587, ge=1, le=65535)


class WarmupStep(_Strict):
    """From sending day ``day`` on (1 = the pool's first day with mail), these caps apply."""

    day: int = Field(ge=1)
    daily: int = Field(ge=0)
    hourly: int | None = Field(default=None, ge=0)


class WarmupPlan(_Strict):
    """Caps that rise with the number of days the pool actually sent mail.

    Monthly statement runs leave an IP idle for weeks; providers forget an idle IP's history,
    so idle calendar days must not count as warm-up. A day counts once the pool sent at least
    ``min_messages_per_day`` messages on it. After the last step's day plus ``hold_days``
    sending days the pool is warm and only its other limits apply.
    """

    steps: tuple[WarmupStep, ...]
    min_messages_per_day: int = Field(default=1, ge=1)
    hold_days: int = Field(default=1, ge=1, description="sending days the last step lasts")

    @field_validator("steps")
    @classmethod
    def _ordered(cls, steps: tuple[WarmupStep, ...]) -> tuple[WarmupStep, ...]:
        if not steps:
            raise ValueError("a warm-up plan needs at least one step")
        days = [s.day for s in steps]
        if days[0] != 1 or days != sorted(set(days)):
            raise ValueError("warm-up steps must start at day 1 and increase strictly")
        for step in steps:
            if step.hourly is not None and step.hourly > step.daily:
                raise ValueError(f"warm-up day {step.day}: hourly cap above the daily cap")
        return steps


class PoolConfig(_Strict):
    """One dedicated IP pool."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    source_ips: tuple[str, ...] | None = Field(
        default=None, description="addresses of this machine the connections are bound to, round "
        "robin; None: not bound (the relay binds the pool's dedicated address)")
    relays: tuple[Relay, ...] = Field(min_length=1)
    ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies this pool's relays; default: "
        "EOB_SMTP_CA_FILE, then the system store")
    max_per_second: float = Field(default=200.0, gt=0)
    max_connections: int = Field(default=4, ge=1)
    messages_per_connection: int = Field(default=100, ge=1)
    weight: float = Field(default=1.0, gt=0)
    credentials_conn_id: str | None = Field(
        default=None, description="Airflow connection id with the relay's user and password"
    )
    warmup: WarmupPlan | None = None
    providers: Mapping[str, ProviderLimit] = Field(default_factory=dict)

    @field_validator("source_ips", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if isinstance(value, list | tuple) and not value:
            raise ValueError("an empty list binds nothing: list addresses of this machine, or "
                             "leave source_ips out when the relay binds the pool's dedicated address")
        return value

    @field_validator("source_ips")
    @classmethod
    def _addresses(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        return None if value is None else tuple(source_address(ip) for ip in value)

    def limit_for(self, provider: str) -> ProviderLimit:
        """The pool's limit for a provider: its own entry, else the shipped default."""
        found = self.providers.get(provider) or DEFAULT_PROVIDER_LIMITS.get(provider)
        return found or self.providers.get(DEFAULT_PROVIDER) or DEFAULT_PROVIDER_LIMITS[
            DEFAULT_PROVIDER]

    @property
    def capacity(self) -> float:
        """Share of the run this pool should take: weight × messages/s (route stage)."""
        return self.weight * self.max_per_second

    @classmethod
    def from_settings(cls, pool: PoolSettings) -> PoolConfig:
        """The single-IP, single-relay pools of ``EOB_POOLS``: no provider narrower than the pool.

        ``EOB_POOLS`` predates provider limits and drives the embedded demo; provider limits
        and warm-up plans are a production concern and come from the pool file.
        """
        same = ProviderLimit(max_connections=pool.max_connections,
                             messages_per_connection=pool.messages_per_connection,
                             max_per_second=None)
        return cls(
            name=pool.name,
            source_ips=(pool.source_ip,) if pool.source_ip else None,
            relays=(Relay(host=pool.relay_host, port=pool.relay_port),),
            ca_file=pool.ca_file,
            max_per_second=pool.max_per_second,
            max_connections=pool.max_connections,
            messages_per_connection=pool.messages_per_connection,
            weight=pool.weight,
            providers={name: same for name in (*DEFAULT_PROVIDER_DOMAINS, DEFAULT_PROVIDER)},
        )


class ThrottleSettings(_Strict):
    """``[throttle]`` of the pool file: the adaptive throttling policy (see pipeline.delivery.throttle)."""

    decrease: float = Field(default=0.5, gt=0, lt=1)
    floor_fraction: float = Field(default=0.05, gt=0, le=1)
    min_rate: float = Field(default=0.1, gt=0)
    recover_fraction: float = Field(default=0.1, gt=0, le=1)
    recover_every_seconds: float = Field(default=60.0, gt=0)
    cooldown_seconds: float = Field(default=5.0, ge=0)
    suspend_seconds: float = Field(default=3600.0, gt=0)
    suspend_after: int = Field(default=2, ge=1)

    def policy(self) -> ThrottlePolicy:
        return ThrottlePolicy(**self.model_dump())


class SendConfig(_Strict):
    """Every pool plus the provider domain map and throttling policy shared by all of them."""

    pools: tuple[PoolConfig, ...] = Field(min_length=1)
    provider_domains: Mapping[str, tuple[str, ...]] = Field(
        default_factory=lambda: dict(DEFAULT_PROVIDER_DOMAINS)
    )
    throttle: ThrottleSettings = Field(default_factory=ThrottleSettings)

    @model_validator(mode="after")
    def _consistent(self) -> SendConfig:
        names = [p.name for p in self.pools]
        if len(names) != len(set(names)):
            raise ValueError(f"pool names must be unique: {names}")
        known = set(self.provider_domains) | {DEFAULT_PROVIDER}
        for pool in self.pools:
            unknown = set(pool.providers) - known
            if unknown:
                raise ValueError(f"pool {pool.name}: limits for unknown providers {sorted(unknown)}")
        seen: dict[str, str] = {}
        for provider, domains in self.provider_domains.items():
            for domain in domains:
                if domain.lower() in seen:
                    raise ValueError(f"domain {domain} belongs to {seen[domain]} and {provider}")
                seen[domain.lower()] = provider
        return self

    def pool(self, name: str) -> PoolConfig:
        for pool in self.pools:
            if pool.name == name:
                return pool
        raise KeyError(f"no IP pool named {name!r} (known: {self.pool_names})")

    @property
    def pool_names(self) -> list[str]:
        return [pool.name for pool in self.pools]

    @property
    def providers(self) -> tuple[str, ...]:
        return (*self.provider_domains, DEFAULT_PROVIDER)

    def provider_of(self, domain: str) -> str:
        """The provider that receives mail for a recipient domain (``default`` otherwise)."""
        domain = domain.strip().lower().rstrip(".")
        for provider, domains in self.provider_domains.items():
            if domain in domains:
                return provider
        return DEFAULT_PROVIDER


def _merge(defaults: Mapping[str, Any], own: Mapping[str, Any]) -> dict[str, Any]:
    """Per-pool provider limits override the file's defaults field by field."""
    merged = {name: dict(values) for name, values in defaults.items()}
    for name, values in own.items():
        merged[name] = {**merged.get(name, {}), **values}
    return merged


def parse_pool_file(text: str, *, source: str = "pool file", base: Path | None = None) -> SendConfig:
    """Validate a pool file's TOML text (see ``infra/pools.toml`` for the layout); a relative
    ``ca_file`` is read from ``base``, the pool file's folder."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PoolConfigError(f"{source}: not valid TOML: {exc}") from None
    defaults = data.get("defaults", {}).get("providers", {})
    pools = []
    for raw in data.get("pool", []):
        raw = dict(raw)
        raw["providers"] = _merge(defaults, raw.get("providers", {}))
        if base is not None and isinstance(raw.get("ca_file"), str):
            raw["ca_file"] = base / raw["ca_file"]  # an absolute path stays as it is
        pools.append(raw)
    spec: dict[str, Any] = {"pools": pools}
    if "provider_domains" in data:
        spec["provider_domains"] = {k: tuple(v) for k, v in data["provider_domains"].items()}
    if "throttle" in data:
        spec["throttle"] = data["throttle"]
    try:
        return SendConfig.model_validate(spec)
    except ValidationError as exc:
        raise PoolConfigError(f"{source}: {exc}") from None


def load_pool_file(path: Path) -> SendConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PoolConfigError(f"cannot read pool file {path}: {exc.strerror}") from None
    return parse_pool_file(text, source=str(path), base=path.parent)


def send_config(settings: Settings) -> SendConfig:
    """The pools this deployment sends through: the pool file if set, else ``EOB_POOLS``."""
    path: Path | None = getattr(settings, "pools_file", None)
    if path is not None:
        return load_pool_file(path)
    return SendConfig(pools=tuple(PoolConfig.from_settings(p) for p in settings.pools))


def ca_file_for(pool: PoolConfig, settings: Settings) -> Path | None:
    """The CA bundle that verifies the pool's relays: its own ``ca_file``, else
    ``EOB_SMTP_CA_FILE``; None means the system store."""
    return pool.ca_file or settings.smtp_ca_file


def capacities(config: SendConfig) -> list[tuple[str, float]]:
    """Each pool with its share of the sending: weight × messages/s."""
    return [(pool.name, pool.capacity) for pool in config.pools]


def pick_pool(statement_id: str, pools: Sequence[tuple[str, float]]) -> str:
    """A deterministic, capacity-weighted choice: the same statement always lands in the same
    pool among the same candidates, so a re-run routes (or requeues) it the same way."""
    total = sum(weight for _, weight in pools)
    point = int(hashlib.sha256(statement_id.encode()).hexdigest()[:12], 16) / 16**12 * total
    for name, weight in pools:
        point -= weight
        if point < 0:
            return name
    return pools[-1][0]


def choose_pool(statement_id: str, current: str | None, pools: Sequence[tuple[str, float]],
                held: set[str], *, avoid_current: bool) -> str | None:
    """A pool for a retry or resend: not held, and another than `current` when the failure
    was ours (blocked, throttled, TLS). None when every pool is held: it waits a cycle.

    A `current` pool that is not among `pools` (renamed or removed from the pool file) is never
    kept: nothing would send from it.
    """
    open_pools = [(name, weight) for name, weight in pools if name not in held]
    if not open_pools:
        return None
    names = [name for name, _ in open_pools]
    if current in names and not (avoid_current and len(open_pools) > 1):
        return current
    others = [(name, weight) for name, weight in open_pools if name != current] or open_pools
    return pick_pool(statement_id, others)


# -- credentials --------------------------------------------------------------------------------


class RelayCredentials(BaseModel):
    """A pool's relay login, resolved when it sends; never logged, the password not in ``repr``."""

    model_config = ConfigDict(frozen=True)

    username: str
    password: str = Field(repr=False)
