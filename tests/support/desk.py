"""A ledger for the support desk's tests: a month ingested and composed through the pipeline's own
stages from a generated extract with the canary planted (so claim hashes, address hashes and a
patient's own statement are made as production makes them), then one statement moved into each
status support meets, along the path the pipeline would take it (`move_to`).

    world = build_world(tmp_path / "ws", ledger_url=url)   # url: None for SQLite in the workspace
    world.statements[Status.RETRY_SCHEDULED]                # a statement id in that status
    statement_view(world.ctx, world.canary_statement)      # the canary's (verification_pending)

`move_to` works on any ledger holding a composed statement, so other tests (and benchmarks that
want realistic timelines) can use it alone. `small_desk` is the quick alternative for tests that
change statements: no extract, a handful of email statements added directly (address and claim
hashes keyed as compose keys them) with the run's contact file, each moved to the status asked.
"""

from __future__ import annotations

import csv
import random
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pipeline.delivery.suppression import address_hash
from pipeline.ledger import Event, Ledger, NewStatement, Status, Transition
from pipeline.ledger.claims import claim_hasher
from pipeline.outcomes.classify import Category, for_category
from pipeline.outcomes.routing import RetryPolicy, route, to_paper
from pipeline.settings import Settings
from pipeline.stages import Context, compose_stage, ingest_stage
from pipeline.storage import LocalObjectStore
from tests.support.canary import CANARY_LAST, PAPER_CANARY_LAST, plant_canary
from tests.support.reconcile import FakeNow

PERIOD = "2026-11"
RUN_ID = f"eob-{PERIOD}"
BUILT_AT = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
"""The run starts here (the fake clock's reading while the world is built)."""
POOL = "pool_a"

_EMAIL_PATH = (Status.RENDERED, Status.QUEUED, Status.SENT)
EVERY_STATUS: tuple[Status, ...] = tuple(Status)
EMAIL_STATUSES = frozenset({Status.QUEUED, Status.SENT, Status.DELIVERED, Status.BOUNCED,
                            Status.RETRY_SCHEDULED, Status.VERIFICATION_PENDING, Status.VERIFIED,
                            Status.VERIFICATION_FAILED})
"""Statuses only an email statement reaches (the others are given to any statement)."""


@dataclass(slots=True)
class DeskWorld:
    """The ledger built, the context over it (its clock: `now`), and what tests look for."""

    ctx: Context
    now: FakeNow
    members: dict[str, dict[str, str]]
    """member_id -> its row of the extract's members.csv (name, birth date, address, email...)."""
    claims: dict[str, list[str]]
    """recipient id -> the claim numbers on its statement (the run's accepted lines)."""
    canary_id: str
    paper_canary_id: str
    statements: dict[Status, str] = field(default_factory=dict)
    """One statement id per status (`EVERY_STATUS`)."""
    by_member: dict[str, str] = field(default_factory=dict)
    """recipient id (a member id, or `<member>~<patient>`) -> its statement id."""

    @property
    def canary_statement(self) -> str:
        """The canary's statement: emailed, bounced, waiting for a confirmed address."""
        return self.by_member[self.canary_id]

    @property
    def canary_email(self) -> str:
        return self.members[self.canary_id]["email"]

    def member_of(self, statement_id: str) -> str:
        return next(m for m, sid in self.by_member.items() if sid == statement_id)


def desk_settings(workspace: Path, *, ledger_url: str | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {"workspace": workspace, "shards": 1, "ledger_url": ledger_url}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def build_world(workspace: Path, *, ledger_url: str | None = None, members: int = 40, seed: int = 11,
                **overrides: object) -> DeskWorld:
    """Generate, ingest and compose a month, then move one statement into every status."""
    from pipeline.demo.generate import generate_extract

    workspace.mkdir(parents=True, exist_ok=True)
    now = FakeNow(BUILT_AT)
    settings = desk_settings(workspace, ledger_url=ledger_url, **overrides)
    ledger = Ledger.open(settings.ledger_dsn, now=now)
    ctx = Context(settings, ledger, LocalObjectStore(workspace / "objects"), now)
    extract = generate_extract(settings.extracts_dir / PERIOD, members=members, period=PERIOD, seed=seed)
    plant_canary(extract.folder)
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    rows = _read_csv(extract.folder / "members.csv")
    world = DeskWorld(ctx, now, {r["member_id"]: r for r in rows}, _claims(settings),
                      canary_id=next(r["member_id"] for r in rows if r["last_name"] == CANARY_LAST),
                      paper_canary_id=next(r["member_id"] for r in rows
                                           if r["last_name"] == PAPER_CANARY_LAST))
    statements = _statements(ledger)
    world.by_member = {row["member_id"]: row["statement_id"] for row in statements}
    email = [r["statement_id"] for r in statements if r["channel"] == "email" and "~" not in r["member_id"]
             and r["member_id"] not in (world.canary_id, world.paper_canary_id)]
    other = [r["statement_id"] for r in statements if r["channel"] == "paper"
             and r["member_id"] not in (world.canary_id, world.paper_canary_id)]
    move_to(ledger, world.canary_statement, Status.VERIFICATION_PENDING)
    world.statements[Status.VERIFICATION_PENDING] = world.canary_statement
    for status in EVERY_STATUS:
        if status is Status.VERIFICATION_PENDING:
            continue
        pool = email if status in EMAIL_STATUSES or not other else other
        world.statements[status] = sid = pool.pop(0)
        move_to(ledger, sid, status)
    return world


def move_to(ledger: Ledger, statement_id: str, status: Status, *, pool: str = POOL) -> None:
    """Move a `composed` statement to `status` along the way the pipeline takes it, each step with
    the event and details the pipeline records: render, queue, send, a bounce routed by
    `pipeline.outcomes.routing.route`, verification, paper, the print vendor."""
    now = datetime.fromisoformat(ledger.now())
    steps: list[Transition] = []
    send = [Transition(statement_id, Status.RENDERED, Event.RENDERED, {"pages": 2, "variant": "email"},
                       {"object_key": f"statements/{statement_id}.pdf", "pages": 2}),
            Transition(statement_id, Status.QUEUED, Event.QUEUED, {"pool": pool}, {"pool": pool}),
            Transition(statement_id, Status.SENT, Event.SENT, {"pool": pool, "code": 250, "status": "2.0.0"},
                       attempts_increment=1)]
    bad = route(statement_id, for_category(Category.USER_UNKNOWN), attempts=1, policy=RetryPolicy(), now=now,
                source="test", reason=f"550 5.1.1 <someone@{pool}.example>: user unknown", pool=pool)
    full = route(statement_id, for_category(Category.MAILBOX_FULL, permanent=False), attempts=1,
                 policy=RetryPolicy(), now=now, source="test", reason="452 4.2.2 mailbox full", pool=pool,
                 rng=random.Random(1))
    paper = [send[0], to_paper(statement_id, "channel")]
    match status:
        case Status.COMPOSED:
            pass
        case Status.RENDERED | Status.QUEUED | Status.SENT:
            steps = send[:_EMAIL_PATH.index(status) + 1]
        case Status.DELIVERED:
            steps = [*send, Transition(statement_id, Status.DELIVERED, Event.DELIVERED,
                                       {"evidence": "no_bounce_within", "hours": 120.0})]
        case Status.BOUNCED:
            steps = [*send, bad[0]]
        case Status.RETRY_SCHEDULED:
            steps = [*send, *full]
        case Status.VERIFICATION_PENDING:
            steps = [*send, *bad]
        case Status.VERIFIED:
            steps = [*send, *bad, Transition(statement_id, Status.VERIFIED, Event.ADDRESS_VERIFIED, {
                "channel": "phone", "verified_by": "outreach", "actor": "outreach",
                "address_hash": "0" * 16})]
        case Status.VERIFICATION_FAILED:
            steps = [*send, *bad, Transition(statement_id, Status.VERIFICATION_FAILED,
                                             Event.VERIFICATION_FAILED,
                                             {"channel": "phone", "verified_by": "outreach"})]
        case Status.PAPER_QUEUED:
            steps = paper
        case Status.PAPER_EXCEPTION:
            steps = [*paper, Transition(statement_id, Status.PAPER_EXCEPTION, Event.ADDRESS_REFUSED,
                                        {"reason": "incomplete"},
                                        {"last_reason": "mailing address: incomplete"})]
        case Status.BATCHED | Status.PRINTED | Status.MAILED:
            batch = f"eob-{now:%Y%m%d}-first-001"
            steps = [*paper, Transition(statement_id, Status.BATCHED, Event.BATCHED,
                                        {"batch": batch, "sequence": 1, "sheets": 1, "mail_class": "first"})]
            if status is not Status.BATCHED:
                steps.append(Transition(statement_id, Status.PRINTED, Event.PRINTED,
                                        {"batch": batch, "pages": 2}))
            if status is Status.MAILED:
                steps.append(Transition(statement_id, Status.MAILED, Event.MAILED, {
                    "event": "mailed", "date": (now + timedelta(days=1)).date().isoformat(),
                    "imb_serial": 1}))
        case Status.FAILED:
            steps = [Transition(statement_id, Status.FAILED, Event.RENDER_FAILED,
                                {"error": "RenderError", "reason": "font missing"},
                                {"last_reason": "font missing"})]
        case Status.SUPERSEDED:
            steps = [Transition(statement_id, Status.SUPERSEDED, Event.WITHDRAWN,
                                {"cause": "no claim lines in the corrected extract"})]
    for step in steps:  # one by one: each decided on the status the last one left
        assert ledger.apply([step]) == 1, f"{statement_id}: {step.event} to {step.to} refused"
    assert ledger.statement(statement_id)["status"] == status  # type: ignore[index]


def email_hash(settings: Settings, address: str) -> str:
    """The keyed hash the ledger keeps of an address (statements.address_hash, suppressions)."""
    return address_hash(address, settings.verp_secret.get_secret_value())


def _statements(ledger: Ledger) -> list[dict[str, str]]:
    from sqlalchemy import text

    with ledger.begin() as conn:
        return [dict(r._mapping) for r in conn.execute(text(
            "SELECT statement_id, member_id, channel FROM statements ORDER BY member_id"))]


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _claims(settings: Settings) -> dict[str, list[str]]:
    from pipeline.storage import iter_buckets, run_dir

    found: dict[str, list[str]] = {}
    for _, lines in iter_buckets(run_dir(settings, RUN_ID), 0, ["member_id", "claim_id"]):
        for member, claim in zip(lines["member_id"].to_pylist(), lines["claim_id"].to_pylist(), strict=True):
            claims = found.setdefault(member, [])
            if claim not in claims:
                claims.append(claim)
    return found


@dataclass(slots=True)
class SmallDesk:
    """A ledger of a few email statements, one per status asked, and the run's contact file."""

    ctx: Context
    now: FakeNow
    statements: dict[Status, str]
    emails: dict[str, str]
    """statement id -> the address its member's contact record holds."""
    claims: dict[str, str]
    """statement id -> a claim number on it."""

    def member_of(self, statement_id: str) -> str:
        row = self.ctx.ledger.statement(statement_id)
        assert row is not None
        return str(row["member_id"])


def small_desk(workspace: Path, statuses: Sequence[Status], *, ledger_url: str | None = None,
               **overrides: object) -> SmallDesk:
    """One email statement per status in `statuses` (member n: M00000000n, memberN@example.org)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    workspace.mkdir(parents=True, exist_ok=True)
    now = FakeNow(BUILT_AT)
    settings = desk_settings(workspace, ledger_url=ledger_url, **overrides)
    ledger = Ledger.open(settings.ledger_dsn, now=now)
    ledger.start_run(RUN_ID, PERIOD, "test", 1)
    ctx = Context(settings, ledger, LocalObjectStore(workspace / "objects"), now)
    claim_hash = claim_hasher(settings.statement_id_key.get_secret_value().encode())
    desk = SmallDesk(ctx, now, {}, {}, {})
    members: list[tuple[str, str]] = []
    for n, status in enumerate(statuses, start=1):
        member, email, claim = f"M{n:09d}", f"member{n}@example.org", f"C{n:09d}01"
        sid = f"st-{PERIOD}-{uuid.uuid5(uuid.NAMESPACE_URL, member).hex[:16]}"
        ledger.add_statements([NewStatement(sid, RUN_ID, PERIOD, member, 1, 0, "email", None, "example.org",
                                            3, False, email_hash(settings, email))])
        ledger.execute("compose_insert_statement_claims", claim_hash=claim_hash(claim), statement_id=sid)
        move_to(ledger, sid, status)
        desk.statements[status], desk.emails[sid], desk.claims[sid] = sid, email, claim
        members.append((member, email))
    folder = settings.work_dir / RUN_ID
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({
        "member_id": [m for m, _ in members], "email": [e for _, e in members],
        "language": ["en"] * len(members), "email_valid": [True] * len(members),
        "edelivery_consent": ["Y"] * len(members), "shard": pa.array([0] * len(members), pa.int32()),
    }), folder / "members.parquet")
    return desk


@contextmanager
def private_schema(postgres_url: str) -> Iterator[str]:
    """A PostgreSQL schema of its own (dropped afterwards), for a world shared by a module's tests
    (tests/conftest.py's `postgres_schema_url` is the same, per test)."""
    import psycopg

    schema = f"eob_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    try:
        yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def ledger_text(ledger: Ledger) -> str:
    """Every value of every table of the ledger, as text: what a copy of the database shows."""
    from sqlalchemy import inspect, text

    parts: list[str] = []
    with ledger.begin() as conn:
        for table in sorted(inspect(conn).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{table}"'))
            parts.extend(sorted("\x1f".join(str(value) for value in row) for row in rows))  # any order
    return "\n".join(parts)
