"""The desk's tests: for accounts, audit and contacts a ledger (SQLite and PostgreSQL, by the
`ledger_url` fixture) on a wall clock the test can move; for lookups and searches a world of
statements in every status, built once per test module on each database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pipeline.ledger import Ledger
from tests.support.desk import DeskWorld, build_world, private_schema
from tests.support.desk_accounts import open_ledger
from tests.support.send import WallClock


@pytest.fixture
def clock() -> WallClock:
    return WallClock()


@pytest.fixture
def ledger(ledger_url: str, clock: WallClock) -> Iterator[Ledger]:
    ledger = open_ledger(ledger_url, clock)
    yield ledger
    ledger.close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskWorld]:
    workspace = tmp_path_factory.mktemp("desk-world") / "ws"
    if request.param == "sqlite":
        made = build_world(workspace)
        yield made
        made.ctx.ledger.close()
        return
    with private_schema(request.getfixturevalue("postgres_url")) as url:
        made = build_world(workspace, ledger_url=url)
        yield made
        made.ctx.ledger.close()
