"""Postfix configuration for the dedicated IP pools, made from the pool file.

A relay that binds each pool's dedicated address itself (the pool file then has no
`source_ips`) needs one listener and one transport per pool: the listener is the address the
pipeline hands that pool's mail to, and its transport connects out from the pool's address only,
with TLS toward the next hop. Generating both from the same pool file keeps the relay and the
pipeline agreeing on which address each pool's mail leaves from (`eob relay-config postfix`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import jinja2

from pipeline.delivery.pools import DEFAULT_PROVIDER, PoolConfigError, SendConfig
from pipeline.templates import TEMPLATES_DIR

TLS_LEVELS = ("verify", "secure", "encrypt")
"""Toward the next hop: `verify` (a certificate that names the MX), `secure` (one that names the
recipient domain) or `encrypt` (TLS, unverified). Never `may` or `none`: statements are PHI."""


@dataclass(frozen=True, slots=True)
class PostfixPool:
    name: str
    transport: str
    listen: str
    bind: str
    helo: str
    concurrency: int
    rate_delay: str


@dataclass(frozen=True, slots=True)
class PostfixFiles:
    main_cf: str
    master_cf: str


def postfix_pools(config: SendConfig, bind: Mapping[str, str], helo: Mapping[str, str]) -> list[PostfixPool]:
    """Each pool's listener (its first relay address), dedicated address, and limits."""
    missing = [pool.name for pool in config.pools if pool.name not in bind]
    unknown = sorted(set(bind) - set(config.pool_names))
    if missing or unknown:
        raise PoolConfigError(
            f"give every pool its dedicated address (--bind POOL=ADDRESS): missing for "
            f"{', '.join(missing) or 'none'}; not pools of the pool file: {', '.join(unknown) or 'none'}")
    out = []
    for pool in config.pools:
        relay = pool.relays[0]
        slowest = min((limit.max_per_second for limit in
                       (pool.limit_for(p) for p in config.providers) if limit.max_per_second),
                      default=None)
        delay = f"{math.ceil(1 / slowest)}s" if slowest and slowest < 1 else ""
        out.append(PostfixPool(pool.name, f"eob_{pool.name.replace('-', '_')}", f"{relay.host}:{relay.port}",
                               bind[pool.name], helo.get(pool.name, ""),
                               pool.limit_for(DEFAULT_PROVIDER).max_connections, delay))
    return out


def postfix_files(config: SendConfig, bind: Mapping[str, str], *, bounce_domain: str,
                  helo: Mapping[str, str] | None = None, tls_level: str = "verify",
                  nexthop: str = "") -> PostfixFiles:
    """The main.cf and master.cf fragments for the pools (see the module docstring).
    ``nexthop``: an outbound gateway all pools deliver through ("[host]:port"); empty: each
    recipient domain's MX."""
    if tls_level not in TLS_LEVELS:
        raise PoolConfigError(f"TLS toward the next hop must be one of {', '.join(TLS_LEVELS)}, "
                              f"not {tls_level!r}: statements never travel unencrypted")
    pools = postfix_pools(config, bind, helo or {})
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "postfix"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    values = {"pools": pools, "tls_level": tls_level, "bounce_domain": bounce_domain, "nexthop": nexthop}
    return PostfixFiles(env.get_template("main.cf.j2").render(values),
                        env.get_template("master.cf.j2").render(values))
