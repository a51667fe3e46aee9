"""Helpers for the send-stage tests: a real ledger, object store and member file, statements
queued for a pool, and a wall clock that only moves when told. (No tests in this module.)

Used by tests/stages/test_send.py and tests/stages/test_send_crash.py (also from its child process).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr

from pipeline.ledger import Ledger, NewStatement, Transition
from pipeline.ledger.statuses import Status
from pipeline.settings import Settings
from pipeline.stages.context import Context, run_dir
from pipeline.storage import open_store

RUN_ID = "eob-2026-11"
PERIOD = "2026-11"
VERP_SECRET = "send-stage-secret"
PDF = b"%PDF-2.0\n" + os.urandom(40_000) + b"\n%%EOF\n"


class WallClock:
    """An aware UTC 'now' for the ledger and the warm-up counters; moves only when told."""

    def __init__(self, start: datetime = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)) -> None:
        self.moment = start

    def __call__(self) -> datetime:
        return self.moment

    def advance(self, **delta: float) -> None:
        self.moment += timedelta(**delta)


def pool_file(relay_host: str, relay_port: int, *, source: str | None = "127.0.0.43",
              extra: str = "", providers: str = "", name: str = "pool_t") -> str:
    """A one-pool file with fast, non-binding provider limits unless ``providers`` says so;
    ``source=None``: no source_ips (connections not bound)."""
    fast = "\n".join(
        f"[defaults.providers.{p}]\nmax_connections = 2\nmessages_per_connection = 50\n"
        "max_per_second = 1000\n"
        for p in ("gmail", "yahoo", "outlook", "icloud", "default"))
    sources = f'source_ips = ["{source}"]' if source else ""
    return f"""
{fast}
[[pool]]
name = "{name}"
{sources}
relays = [{{ host = "{relay_host}", port = {relay_port} }}]
max_per_second = 500
max_connections = 4
messages_per_connection = 50
{extra}
{providers}
"""


def join_pools(*files: str) -> str:
    """One pool file from several `pool_file` texts: the first one's provider defaults, then
    every file's [[pool]]."""
    return files[0] + "".join("\n[[pool]]" + more.split("[[pool]]", 1)[1] for more in files[1:])


def make_context(workspace: Path, pools_toml: str, ca_file: Path | None, clock: WallClock,
                 **settings: object) -> Context:
    workspace.mkdir(parents=True, exist_ok=True)
    (workspace / "pools.toml").write_text(pools_toml)
    values: dict[str, object] = {
        "workspace": workspace, "pools_file": workspace / "pools.toml", "smtp_ca_file": ca_file,
        "verp_secret": SecretStr(VERP_SECRET), "smtp_timeout_seconds": 5.0,
        "smtp_ehlo_hostname": "mailer.eob.example",
    }
    values.update(settings)
    config = Settings(**values)  # type: ignore[arg-type]
    ledger = Ledger.open(config.ledger_dsn, now=clock)
    store = open_store(config.objects_url)
    return Context(config, ledger, store, clock)


@dataclass(frozen=True, slots=True)
class Queued:
    statement_id: str
    recipient: str


def statement_id(n: int) -> str:
    return f"st-{PERIOD}-{hashlib.sha256(str(n).encode()).hexdigest()[:16]}"


def queue_statements(ctx: Context, pool: str, recipients: Sequence[str], *,
                     first: int = 0, routed: bool = True) -> list[Queued]:
    """Statements rendered, stored and queued for ``pool``, one per recipient, with a member file
    (the columns the sender reads: address, language, e-delivery consent, address valid).
    ``routed=False``: rendered only, for the route stage to queue later."""
    import pandas as pd

    ctx.ledger.start_run(RUN_ID, PERIOD, "tests", 1)
    folder = run_dir(ctx.settings, RUN_ID)
    folder.mkdir(parents=True, exist_ok=True)
    members_file = folder / "members.parquet"
    existing = pd.read_parquet(members_file) if members_file.exists() else None
    queued: list[Queued] = []
    rows = []
    for offset, recipient in enumerate(recipients):
        n = first + offset
        sid, member = statement_id(n), f"M{n:09d}"
        rows.append({"member_id": member, "email": recipient, "language": "en",
                     "edelivery_consent": "Y", "email_valid": True})
        ctx.ledger.add_statements([NewStatement(sid, RUN_ID, PERIOD, member, 1, 0, "email", None,
                                                recipient.rpartition("@")[2], 3, False)])
        key = f"{RUN_ID}/statements/{sid}.pdf"
        ctx.store.put(key, PDF, "application/pdf")
        ctx.ledger.apply([
            Transition(sid, Status.RENDERED, "rendered", {}, {"object_key": key}),
            *([Transition(sid, Status.QUEUED, "queued", {"pool": pool}, {"pool": pool})]
              if routed else []),
        ])
        queued.append(Queued(sid, recipient))
    frame = pd.DataFrame(rows)
    if existing is not None:
        frame = pd.concat([existing, frame], ignore_index=True)
    frame.to_parquet(members_file, index=False)
    return queued


def statuses(ctx: Context) -> dict[str, str]:
    """statement_id → status, for every statement in the ledger."""
    from sqlalchemy import text

    with ctx.ledger.engine.connect() as conn:
        return {r.statement_id: r.status for r in conn.execute(text(
            "SELECT statement_id, status FROM statements ORDER BY statement_id"))}


def events(ctx: Context, sid: str) -> list[str]:
    return [e["event"] for e in ctx.ledger.timeline(sid)]
