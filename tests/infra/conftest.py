"""Fixtures of the deployment-artefact tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest


@pytest.fixture
def throwaway_databases(postgres_url: str) -> Iterator[dict[str, str]]:
    """An empty metadata DB and an empty ledger on the test PostgreSQL server, dropped afterwards."""
    import psycopg

    suffix = uuid.uuid4().hex[:10]
    names = {kind: f"eob_infra_{kind}_{suffix}" for kind in ("airflow", "ledger")}
    admin = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'CREATE DATABASE "{name}"')
    base = admin.rsplit("/", 1)[0]
    yield {kind: f"{base}/{name}" for kind, name in names.items()}
    with psycopg.connect(admin, autocommit=True) as conn:
        for name in names.values():
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
