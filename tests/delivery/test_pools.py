"""Pool configuration: the shipped file loads, mistakes fail loudly, credentials stay secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.delivery.pools import (
    DEFAULT_PROVIDER_LIMITS,
    PoolConfigError,
    Relay,
    ca_file_for,
    choose_pool,
    load_pool_file,
    parse_pool_file,
    pick_pool,
    send_config,
)
from pipeline.settings import Settings
from tests.support import REPO

POOL_FILE = REPO / "infra" / "pools.toml"
AIRFLOW_POOLS = json.loads((REPO / "infra" / "airflow" / "pools.json").read_text())

MINIMAL = """
[[pool]]
name = "p1"
source_ips = ["127.0.0.41"]
relays = [{ host = "127.0.0.42", port = 2525 }]
"""


def test_the_shipped_pool_file_is_valid_and_matches_the_airflow_send_slots() -> None:
    config = load_pool_file(POOL_FILE)
    assert config.pool_names == ["pool_a", "pool_b"]
    assert len(config.pool_names) <= AIRFLOW_POOLS["eob_send"]["slots"]
    young = config.pool("pool_b")
    assert young.warmup is not None and young.warmup.steps[0].day == 1
    assert young.limit_for("gmail").max_per_second == 5  # pool override on the shared default
    assert young.limit_for("gmail").max_connections == 3  # the rest from [defaults]
    assert young.limit_for("yahoo").max_connections == 1
    for pool in config.pools:
        assert pool.credentials_conn_id  # names an Airflow connection, holds no secret
    assert not re.search(r"^\s*(password|login)\s*=", POOL_FILE.read_text(), re.MULTILINE)


def test_recipient_domains_map_to_providers() -> None:
    config = load_pool_file(POOL_FILE)
    assert config.provider_of("gmail.com") == "gmail"
    assert config.provider_of("HOTMAIL.COM.") == "outlook"
    assert config.provider_of("aol.com") == "yahoo"
    assert config.provider_of("me.com") == "icloud"
    assert config.provider_of("comcast.net") == "default"
    assert config.providers == ("gmail", "yahoo", "outlook", "icloud", "default")


def test_a_minimal_pool_gets_the_conservative_provider_defaults() -> None:
    config = parse_pool_file(MINIMAL)
    pool = config.pool("p1")
    assert pool.relays == (Relay(host="127.0.0.42", port=2525),)
    assert pool.limit_for("yahoo") == DEFAULT_PROVIDER_LIMITS["yahoo"]
    assert pool.warmup is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[pool]]\nname = 'p'\nsource_ips = []\nrelays = [{host='h'}]\n", "source_ips"),
        (MINIMAL + "max_per_sekond = 5\n", "max_per_sekond"),
        (MINIMAL + "[pool.providers.hotmail]\nmax_per_second = 1\n", "unknown providers"),
        (MINIMAL + "[pool.warmup]\nsteps = [{day = 2, daily = 10}]\n", "start at day 1"),
        (MINIMAL + "[pool.warmup]\nsteps = [{day = 1, daily = 10, hourly = 20}]\n", "hourly cap"),
        (MINIMAL + MINIMAL, "unique"),
        ("[[pool]\n", "not valid TOML"),
    ],
)
def test_mistakes_in_the_pool_file_name_what_to_fix(text: str, message: str) -> None:
    with pytest.raises(PoolConfigError, match=message):
        parse_pool_file(text)


def test_without_a_pool_file_the_embedded_pools_apply_unchanged(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path)
    config = send_config(settings)
    assert config.pool_names == [pool.name for pool in settings.pools] == ["pool_a", "pool_b"]
    pool = config.pool("pool_a")
    assert pool.source_ips == ("127.0.0.2",) and pool.relays[0].host == "127.0.0.12"
    # EOB_POOLS has no provider limits: no provider is narrower than the pool itself
    assert pool.limit_for("yahoo").max_per_second is None
    assert pool.limit_for("yahoo").max_connections == pool.max_connections


def test_settings_point_at_the_pool_file(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path, pools_file=POOL_FILE)
    assert send_config(settings).pool_names == ["pool_a", "pool_b"]
    with pytest.raises(PoolConfigError, match="cannot read"):
        send_config(Settings(workspace=tmp_path, pools_file=tmp_path / "missing.toml"))


NO_SOURCE = """
[[pool]]
name = "p1"
relays = [{ host = "mta.internal", port = 587 }]
"""


def test_source_addresses_are_optional_in_the_pool_file_and_in_eob_pools(tmp_path: Path) -> None:
    """Without them connections are not bound: the relay binds the pool's dedicated address."""
    assert parse_pool_file(NO_SOURCE).pool("p1").source_ips is None
    from_env = Settings(workspace=tmp_path, pools=[{"name": "p1", "relay_host": "mta.internal"}])
    assert send_config(from_env).pool("p1").source_ips is None
    assert parse_pool_file(MINIMAL).pool("p1").source_ips == ("127.0.0.41",)


@pytest.mark.parametrize(("line", "message"), [
    ('source_ips = ["mta-a.internal"]', "'mta-a.internal' is not an IP address"),
    ("source_ips = []", "leave source_ips out when the relay binds"),
])
def test_a_source_address_that_is_no_address_is_refused_with_what_to_do(line: str, message: str) -> None:
    with pytest.raises(PoolConfigError, match=message):
        parse_pool_file(NO_SOURCE.replace('name = "p1"', f'name = "p1"\n{line}'))


def test_a_pool_ca_file_is_read_from_the_pool_file_folder_and_wins_over_the_global_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "pools.toml").write_text(
        NO_SOURCE + 'ca_file = "relays-ca.pem"\n'
        + NO_SOURCE.replace("p1", "p2") + 'ca_file = "/etc/eob/p2-ca.pem"\n'
        + NO_SOURCE.replace("p1", "p3"))
    settings = Settings(workspace=tmp_path, pools_file=tmp_path / "pools.toml",
                        smtp_ca_file=tmp_path / "global-ca.pem")
    config = send_config(settings)
    assert ca_file_for(config.pool("p1"), settings) == tmp_path / "relays-ca.pem"
    assert ca_file_for(config.pool("p2"), settings) == Path("/etc/eob/p2-ca.pem")
    assert ca_file_for(config.pool("p3"), settings) == tmp_path / "global-ca.pem"
    assert ca_file_for(config.pool("p3"), Settings(workspace=tmp_path)) is None  # system store


def test_choose_pool_prefers_another_pool_after_a_block_and_waits_when_all_are_held() -> None:
    pools = [("pool_a", 1.0), ("pool_b", 1.0), ("pool_c", 1.0)]
    names = {name for name, _ in pools}
    assert choose_pool("s1", "pool_a", pools, set(), avoid_current=False) == "pool_a"
    assert choose_pool("s1", "pool_a", pools, set(), avoid_current=True) in {"pool_b", "pool_c"}
    assert choose_pool("s1", "pool_a", pools, {"pool_b", "pool_c"}, avoid_current=True) == "pool_a"
    assert choose_pool("s1", "pool_a", pools, names, avoid_current=True) is None


def test_a_pool_no_longer_configured_is_never_kept_for_a_retry() -> None:
    pools = [("east", 1.0), ("west", 1.0)]
    chosen = {choose_pool(f"s{n}", "pool_a", pools, set(), avoid_current=False) for n in range(50)}
    assert chosen == {"east", "west"}


def test_pick_pool_is_deterministic_and_follows_capacity() -> None:
    pools = [("big", 9.0), ("small", 1.0)]
    picks = [pick_pool(f"st-{n}", pools) for n in range(2000)]
    assert picks == [pick_pool(f"st-{n}", pools) for n in range(2000)], "same statement, same pool"
    assert 0.85 < picks.count("big") / len(picks) < 0.95
