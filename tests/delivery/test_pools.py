"""Pool configuration: the shipped file loads, mistakes fail loudly, credentials stay secret."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.delivery.pools import (
    DEFAULT_PROVIDER_LIMITS,
    PoolConfig,
    PoolConfigError,
    Relay,
    credentials_from_uri,
    load_pool_file,
    parse_pool_file,
    relay_credentials,
    send_config,
)
from pipeline.settings import PoolSettings, Settings
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
    assert config.pool_names == settings.pool_names
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


def test_credentials_come_from_the_airflow_connection_and_never_show() -> None:
    pool = PoolConfig(name="p", source_ips=("127.0.0.41",), relays=(Relay(host="h"),),
                      credentials_conn_id="smtp_pool_p")
    uri = "smtp://mailer%40eob.example:s3cr%2Ft@mta.internal:587"
    creds = relay_credentials(pool, {"AIRFLOW_CONN_SMTP_POOL_P": uri})
    assert creds is not None
    assert (creds.username, creds.password) == ("mailer@eob.example", "s3cr/t")
    assert "s3cr" not in repr(creds)
    as_json = json.dumps({"conn_type": "smtp", "login": "u", "password": "p", "host": "h"})
    assert credentials_from_uri(as_json) == creds.model_copy(update={"username": "u",
                                                                     "password": "p"})
    with pytest.raises(PoolConfigError, match="AIRFLOW_CONN_SMTP_POOL_P"):
        relay_credentials(pool, {})
    assert relay_credentials(PoolConfig.from_settings(
        PoolSettings(name="q", source_ip="127.0.0.41", relay_host="h")), {}) is None
