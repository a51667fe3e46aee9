"""Airflow connections → relay credentials: the one place the library reads Airflow's secrets.

Called from inside a send task, so a secrets backend (Vault, AWS Secrets Manager, …) configured
in Airflow serves the relay passwords; nothing else in the library knows Airflow exists.
"""

from __future__ import annotations

from pipeline.delivery.pools import RelayCredentials, send_config
from pipeline.settings import Settings


def relay_credentials(settings: Settings, pool_name: str) -> RelayCredentials | None:
    """The relay login of one IP pool, from the Airflow connection its pool entry names."""
    pool = send_config(settings).pool(pool_name)
    if not pool.credentials_conn_id:
        return None
    from airflow.sdk import BaseHook

    connection = BaseHook.get_connection(pool.credentials_conn_id)
    return RelayCredentials(username=connection.login or "", password=connection.password or "")
