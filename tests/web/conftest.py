"""The support desk app over a real ledger: a month ingested and composed from a generated extract
(with the canary member planted in its member file), statements moved into the states support
meets (tests/support/desk.py), and one desk user per role. Built once per test session; each
test gets its own copy."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.testclient import TestClient

from pipeline.delivery.suppression import suppress
from pipeline.desk.accounts import create_user
from pipeline.desk.permissions import Role
from pipeline.ledger import Ledger, Status
from pipeline.settings import Settings
from pipeline.stages import Context
from pipeline.storage import LocalObjectStore
from pipeline.web import create_app
from pipeline.web.csrf import FORM_FIELD
from pipeline.web.sessions import SESSION_COOKIE
from tests.support.desk import BUILT_AT, DeskWorld, build_world
from tests.support.desk_accounts import FAST_HASHER
from tests.support.reconcile import FakeNow

PASSWORD = "correct horse battery staple"
USERS = {
    Role.AGENT: "agent", Role.SUPERVISOR: "supervisor", Role.FINANCE: "finance",
    Role.AUDITOR: "auditor", Role.ADMIN: "admin",
}
BASE_URL = "https://testserver"
_TOKEN = re.compile(rf'name="{FORM_FIELD}" value="([^"]+)"')


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    email: str
    claim_id: str
    first_name: str
    last_name: str
    date_of_birth: str
    street: str


@dataclass(frozen=True, slots=True)
class World:
    """The session's prepared workspace and what the tests look for in it."""

    workspace: Path
    canary: Member
    paper_canary: Member
    statements: dict[str, str] = field(default_factory=dict)
    """state name -> statement id: verification (the canary's: a bounce awaiting a confirmed
    address), retry, sent, suppressed (delivered, its address then suppressed), paper (the paper
    canary's, composed)."""
    member_ids: frozenset[str] = frozenset()
    """Every member of the extract."""
    claim_ids: frozenset[str] = frozenset()
    """Every claim number on a statement of the world."""


def _member(world: DeskWorld, member_id: str) -> Member:
    row = world.members[member_id]
    return Member(member_id, row["email"], world.claims[member_id][0], row["first_name"],
                  row["last_name"], row["date_of_birth"], row["address_line1"])


@pytest.fixture(scope="session")
def desk_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """tests/support/desk.py's world (a composed month, a statement in every status), plus a
    suppressed address and one desk user per role."""
    workspace = tmp_path_factory.mktemp("desk-world")
    world = build_world(workspace, members=24)
    ledger, settings = world.ctx.ledger, world.ctx.settings
    suppressed = world.statements[Status.DELIVERED]
    suppress(ledger, world.members[world.member_of(suppressed)]["email"], cause="complaint",
             statement_id=suppressed, secret=settings.verp_secret.get_secret_value())
    for role, username in USERS.items():
        create_user(ledger, username, f"{username.title()} Tester", [role], PASSWORD, actor="test",
                    hasher=FAST_HASHER)
    for username, role in (("supervisor2", Role.SUPERVISOR), ("target", Role.AGENT)):
        create_user(ledger, username, f"{username.title()} Tester", [role], PASSWORD, actor="test",
                    hasher=FAST_HASHER)
    ledger.close()
    statements = {"verification": world.canary_statement, "retry": world.statements[Status.RETRY_SCHEDULED],
                  "sent": world.statements[Status.SENT], "suppressed": suppressed,
                  "paper": world.by_member[world.paper_canary_id]}
    return World(workspace, _member(world, world.canary_id), _member(world, world.paper_canary_id),
                 statements, frozenset(world.members),
                 frozenset(claim for claims in world.claims.values() for claim in claims))


class Desk:
    """One test's desk: its own copy of the world's ledger, a clock it moves, the app."""

    def __init__(self, world: World, folder: Path, **overrides: object) -> None:
        workspace = folder / "ws"
        shutil.copytree(world.workspace, workspace)
        self.world = world
        self.now = FakeNow(BUILT_AT.replace(hour=9))
        self.settings = Settings(workspace=workspace, shards=1, **overrides)  # type: ignore[arg-type]
        ledger = Ledger.open(self.settings.ledger_dsn, now=self.now)
        self.ctx = Context(self.settings, ledger, LocalObjectStore(workspace / "objects"), self.now)
        self.app: FastAPI = create_app(self.settings, ctx=self.ctx)
        self._clients: list[TestClient] = []

    def client(self) -> TestClient:
        client = TestClient(self.app, base_url=BASE_URL, follow_redirects=False)
        self._clients.append(client)
        return client

    def as_user(self, username: str) -> TestClient:
        """A client with a fresh session of `username` (no sign-in round trip)."""
        client = self.client()
        client.cookies.set(SESSION_COOKIE, self.app.state.desk.sessions.start(username, source="testclient"))
        return client

    def sign_in(self, client: TestClient, username: str, password: str = PASSWORD) -> int:
        page = client.get("/signin")
        response = client.post("/signin", data={"username": username, "password": password,
                                                FORM_FIELD: token_in(page.text)})
        return response.status_code

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.ctx.ledger.close()


def token_in(html: str) -> str:
    match = _TOKEN.search(html)
    assert match, "the page has no form token"
    return match.group(1)


def csrf_of(client: TestClient) -> str:
    """The session's form token, as the pages embed it."""
    return token_in(client.get("/welcome").text)


@pytest.fixture
def desk(desk_world: World, tmp_path: Path) -> Iterator[Desk]:
    made = Desk(desk_world, tmp_path)
    yield made
    made.close()
