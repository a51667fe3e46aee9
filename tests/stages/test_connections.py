"""Relay credentials from an Airflow connection as exported to the environment (no Airflow)."""

from __future__ import annotations

import json

import pytest

from pipeline.delivery import PoolConfig, PoolConfigError
from pipeline.delivery.pools import Relay
from pipeline.settings import PoolSettings
from pipeline.stages.connections import credentials_from_environment, credentials_from_uri


def test_credentials_from_the_environment_come_from_the_airflow_connection_and_never_show() -> None:
    pool = PoolConfig(name="p", source_ips=("127.0.0.41",), relays=(Relay(host="h"),),
                      credentials_conn_id="smtp_pool_p")
    uri = "smtp://mailer%40eob.example:s3cr%2Ft@mta.internal:587"
    creds = credentials_from_environment(pool, {"AIRFLOW_CONN_SMTP_POOL_P": uri})
    assert creds is not None
    assert (creds.username, creds.password) == ("mailer@eob.example", "s3cr/t")
    assert "s3cr" not in repr(creds)
    as_json = json.dumps({"conn_type": "smtp", "login": "u", "password": "p", "host": "h"})
    assert credentials_from_uri(as_json) == creds.model_copy(update={"username": "u",
                                                                     "password": "p"})
    with pytest.raises(PoolConfigError, match="AIRFLOW_CONN_SMTP_POOL_P"):
        credentials_from_environment(pool, {})
    assert credentials_from_environment(PoolConfig.from_settings(
        PoolSettings(name="q", source_ip="127.0.0.41", relay_host="h")), {}) is None
