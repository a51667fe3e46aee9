"""Airflow connections → relay credentials: the one place the library reads Airflow's secrets.

A pool names the Airflow connection that holds its relay login (``credentials_conn_id``).
Inside a send task the DAG asks Airflow for it (``relay_credentials``), so a secrets backend
(Vault, AWS Secrets Manager, …) configured in Airflow serves the password. Outside Airflow
(``eob send run``), the send stage reads the connection as Airflow exports it to a process's
environment (``credentials_from_environment``). Nothing else in the library knows Airflow
exists.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from urllib.parse import unquote, urlsplit

from pipeline.delivery import PoolConfig, PoolConfigError, RelayCredentials, send_config
from pipeline.settings import Settings


def relay_credentials(settings: Settings, pool_name: str) -> RelayCredentials | None:
    """The relay login of one IP pool, from the Airflow connection its pool entry names."""
    pool = send_config(settings).pool(pool_name)
    if not pool.credentials_conn_id:
        return None
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(pool.credentials_conn_id)
    return RelayCredentials(username=connection.login or "", password=connection.password or "")


def credentials_from_environment(
    pool: PoolConfig, environ: Mapping[str, str] | None = None
) -> RelayCredentials | None:
    """The pool's relay login from Airflow's ``AIRFLOW_CONN_<ID>`` variable, if it names one.

    Airflow exports connections to process environments in this form (and a secrets backend
    can too), which is how a run outside Airflow gets the same login.
    """
    if pool.credentials_conn_id is None:
        return None
    env = os.environ if environ is None else environ
    uri = env.get(f"AIRFLOW_CONN_{pool.credentials_conn_id.upper()}")
    if not uri:
        raise PoolConfigError(
            f"pool {pool.name}: connection {pool.credentials_conn_id!r} is not available "
            f"(AIRFLOW_CONN_{pool.credentials_conn_id.upper()} is unset)")
    return credentials_from_uri(uri)


def credentials_from_uri(uri: str) -> RelayCredentials | None:
    """An Airflow connection as exported to the environment → user and password.

    Both forms Airflow writes: a URI (``smtp://user:password@host:587``) or JSON
    (``{"conn_type": "smtp", "login": "user", "password": "..."}``).
    """
    if uri.lstrip().startswith("{"):
        data = json.loads(uri)
        login = data.get("login")
        return RelayCredentials(username=login, password=data.get("password") or "") if login \
            else None
    parts = urlsplit(uri)
    if not parts.username:
        return None
    return RelayCredentials(username=unquote(parts.username),
                            password=unquote(parts.password or ""))
