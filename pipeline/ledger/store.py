"""The statement ledger: status per statement, an append-only timeline, runs and their accounts.

One implementation over SQLAlchemy Core serves SQLite (embedded default) and PostgreSQL
(production); all SQL comes from `sql/`. Every transition updates the statement and appends
its event in the same transaction, and only moves a statement along the state machine.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cache
from typing import Any

from sqlalchemy import Connection, Engine, TextClause, bindparam, create_engine, event, inspect, text

from pipeline.clock import Now, iso, utc_now
from pipeline.ledger.audit import append_entry, verify_chain
from pipeline.ledger.events import IGNORED_SUFFIX, Event, UnknownEvent, is_event_name
from pipeline.ledger.notices import NoticeMove, apply_notice_moves
from pipeline.ledger.records import Delivery, FileAccount, NewStatement, QuarantineRow, Transition
from pipeline.ledger.sql import REQUIRED_QUERIES, check_queries, clause, migrations
from pipeline.ledger.statuses import Status, sources_for

log = logging.getLogger(__name__)

_FIELDS = (
    "pool", "object_key", "print_key", "sha256", "pages", "size_bytes", "channel",
    "paper_reason", "bounce_category", "last_reason", "next_attempt_at",
)


class LedgerError(RuntimeError):
    """The ledger cannot do what was asked; the message says what to check."""


class UnknownStatement(LedgerError):
    pass


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for a ledger URL; psycopg 3 for PostgreSQL, WAL mode for SQLite."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    # hide_parameters: a database error's message never carries the bound values (user names,
    # contact references, hashes) into a log or a task's output
    engine = create_engine(url, future=True, pool_pre_ping=True, hide_parameters=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


class Ledger:
    def __init__(self, engine: Engine, *, now: Now = utc_now) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._now = now
        # Reads and single-statement writes need no transaction of their own: in autocommit
        # they are one round trip each, not BEGIN, the statement and COMMIT or ROLLBACK.
        self._autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._pinned = threading.local()

    @classmethod
    def open(cls, url: str, *, now: Now = utc_now, migrate: bool = True) -> Ledger:
        check_queries(REQUIRED_QUERIES)
        ledger = cls(make_engine(url), now=now)
        if migrate:
            ledger.migrate()
        return ledger

    def close(self) -> None:
        self.engine.dispose()

    # -- schema -------------------------------------------------------------------------
    def migrate(self, *, upto: int | None = None) -> list[int]:
        """Apply pending migrations in order (up to version `upto`, default all) in one
        transaction; safe to call from concurrent tasks.

        On SQLite the transaction is BEGIN IMMEDIATE (the write lock is taken before reading
        what is applied) with foreign keys off, as SQLite's procedure for rebuilding a table
        requires, and `PRAGMA foreign_key_check` must come back empty before it commits.
        """
        sqlite = self.dialect == "sqlite"
        if sqlite and not self._pending(upto):
            return []  # the usual case: no write lock just to find nothing to do
        with self.engine.connect() as conn:
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction: takes effect
            try:
                if sqlite:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                else:
                    conn.execute(clause("lock_migrations_postgresql"))
                applied = self._apply_migrations(conn, upto)
                if sqlite and applied and conn.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise LedgerError(f"migrations {applied} leave rows whose foreign keys do not "
                                      "match; nothing was applied")
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        if applied:
            log.info("ledger migrated", extra={"versions": applied, "dialect": self.dialect})
        return applied

    def _pending(self, upto: int | None) -> bool:
        wanted = {m.version for m in migrations(self.dialect) if upto is None or m.version <= upto}
        with self.engine.connect() as conn:
            if not inspect(conn).has_table("schema_migrations"):
                return True
            done = {row[0] for row in conn.execute(clause("applied_migrations"))}
        return bool(wanted - done)

    def _apply_migrations(self, conn: Connection, upto: int | None) -> list[int]:
        applied: list[int] = []
        conn.execute(clause("create_schema_migrations"))
        done = {row[0] for row in conn.execute(clause("applied_migrations"))}
        for migration in migrations(self.dialect):
            if migration.version in done or (upto is not None and migration.version > upto):
                continue
            for statement in migration.statements:
                conn.execute(text(statement))
            conn.execute(
                clause("record_migration"),
                {"version": migration.version, "name": migration.name, "applied_at": self.now()},
            )
            applied.append(migration.version)
        return applied

    def schema_version(self) -> int:
        with self.engine.connect() as conn:
            versions = [row[0] for row in conn.execute(clause("applied_migrations"))]
        return max(versions, default=0)

    # -- helpers ------------------------------------------------------------------------
    def now(self) -> str:
        return iso(self._now())

    @contextmanager
    def pinned(self) -> Iterator[None]:
        """Within the block, everything this thread does with the ledger reuses connections held
        for the block (one in autocommit, one for transactions) instead of taking one from the
        pool, and checking it is alive, for every call: for loops that touch the ledger per item
        (the sender, per message). Other threads are unaffected. A held connection that failed
        (a broken link, a failed commit) or sat idle for PINNED_IDLE_SECONDS is closed, and the
        next call takes a fresh one from the pool, checked as usual."""
        if getattr(self._pinned, "held", None) is not None:
            yield  # already pinned further up this thread
            return
        self._pinned.held = {}
        try:
            yield
        finally:
            held, self._pinned.held = self._pinned.held, None
            for conn, _used in held.values():
                conn.close()

    @contextmanager
    def _held(self, kind: str, source: Engine) -> Iterator[Connection]:
        """The pinned thread's connection of one kind, taken out while in use (a nested call
        gets its own) and put back only when the call succeeded."""
        held: dict[str, tuple[Connection, float]] = self._pinned.held
        conn, used = held.pop(kind, (None, 0.0))
        if conn is not None and (conn.invalidated or time.monotonic() - used > PINNED_IDLE_SECONDS):
            conn.close()
            conn = None
        conn = conn or source.connect()
        try:
            yield conn
        except BaseException:
            conn.close()  # its state is unknown: never reused
            raise
        spare = held.pop(kind, None)
        if spare is not None:  # a nested call's, put back first
            spare[0].close()
        held[kind] = (conn, time.monotonic())

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        """An autocommit connection: each statement commits on its own."""
        if getattr(self._pinned, "held", None) is None:
            with self._autocommit.connect() as conn:
                yield conn
            return
        with self._held("autocommit", self._autocommit) as conn:
            yield conn
            conn.commit()  # ends SQLAlchemy's own bookkeeping; the statements are committed

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction, committed when the block exits without an error."""
        if getattr(self._pinned, "held", None) is None:
            with self.engine.begin() as conn:
                yield conn
            return
        with self._held("transaction", self.engine) as conn, conn.begin():
            yield conn

    def fetch(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run a named read query and return plain dict rows."""
        with self._connect() as conn:
            return [dict(row._mapping) for row in conn.execute(clause(name), params)]

    def fetch_for_ids(self, name: str, ids: Sequence[str], **params: Any) -> list[dict[str, Any]]:
        """Run a named read query whose ``:ids`` parameter is a list, in chunks of ids that
        stay inside every database's parameter limit."""
        rows: list[dict[str, Any]] = []
        with self._connect() as conn:
            for start in range(0, len(ids), _BATCH_READ):
                chunk = list(ids[start:start + _BATCH_READ])
                rows += [dict(row._mapping)
                         for row in conn.execute(_with_ids(name), {**params, "ids": chunk})]
        return rows

    def execute(self, name: str, **params: Any) -> int:
        """Run a named write query in its own transaction; returns the rows it touched."""
        with self.begin() as conn:
            return conn.execute(clause(name), params).rowcount

    def fetch_one(self, name: str, **params: Any) -> dict[str, Any] | None:
        rows = self.fetch(name, **params)
        return rows[0] if rows else None

    # -- runs and ingest accounts -------------------------------------------------------
    def start_run(self, run_id: str, period: str, source: str, shards: int) -> None:
        with self.begin() as conn:
            conn.execute(
                clause("insert_run"),
                {"run_id": run_id, "period": period, "started_at": self.now(),
                 "source": source, "shards": shards},
            )

    def record_ingest(
        self, run_id: str, files: Sequence[FileAccount], quarantined: Iterable[QuarantineRow]
    ) -> None:
        """Replace a run's ingest accounts atomically (a re-run of ingest starts over)."""
        with self.recording_ingest(run_id, files, quarantined):
            pass

    @contextmanager
    def recording_ingest(
        self, run_id: str, files: Sequence[FileAccount], quarantined: Iterable[QuarantineRow]
    ) -> Iterator[None]:
        """Replace a run's ingest accounts and mark its ingest succeeded, in one transaction that
        commits when the block exits without an error: ingest swaps its outputs in inside the
        block, so the accounts and the files change together, or neither does."""
        with self.begin() as conn:
            conn.execute(clause("delete_quarantine"), {"run_id": run_id})
            conn.execute(clause("delete_ingest_files"), {"run_id": run_id})
            for account in files:
                conn.execute(clause("insert_ingest_file"), {"run_id": run_id, **_asdict(account)})
            rows = [{"run_id": run_id, **_asdict(row)} for row in quarantined]
            if rows:
                conn.execute(clause("insert_quarantine"), rows)
            conn.execute(clause("ingest_succeeded"), {"run_id": run_id, "at": self.now()})
            yield

    def begin_ingest(self, run_id: str) -> None:
        """An ingest of the run has started: until one succeeds, compose and render refuse it."""
        self.execute("ingest_begin", run_id=run_id, at=self.now())

    def fail_ingest(self, run_id: str, error: str) -> None:
        """The run's latest ingest failed; `error` is the operator's message (no row content)."""
        self.execute("ingest_failed", run_id=run_id, at=self.now(), error=error)

    def ingest_state(self, run_id: str) -> dict[str, Any] | None:
        """The run's latest ingest: `ingest_state` (None before any), `ingest_at`, `ingest_error`;
        None for a run the ledger does not have."""
        return self.fetch_one("ingest_state_for_run", run_id=run_id)

    def statement_id_scheme(self, run_id: str) -> str | None:
        """How the run's statement ids are made (`runs.statement_id_scheme`: 'hmac-sha256' for
        new runs, 'sha256' for runs composed before ids were keyed); None for a run the ledger
        does not have."""
        row = self.fetch_one("statement_id_scheme_for_run", run_id=run_id)
        return None if row is None else str(row["statement_id_scheme"])

    # -- statements ---------------------------------------------------------------------
    def add_statements(self, statements: Iterable[NewStatement]) -> int:
        """Insert composed statements; ones already in the ledger are left untouched.

        The chunk is read, inserted and given its `composed` events with one statement per table
        (compose adds a whole month: two round trips per statement would cost more than composing
        it); when a concurrent writer inserted one of them in between, that transaction is rolled
        back and the chunk is inserted row by row."""
        items = list(statements)
        if not items:
            return 0
        try:
            with self.begin() as conn:
                return self._add_batch(conn, items)
        except _BatchRaced:
            pass
        inserted = 0
        with self.begin() as conn:
            at = self.now()
            for new in items:
                result = conn.execute(clause("insert_statement"), _statement_row(new, at))
                if result.rowcount == 1:
                    inserted += 1
                    self._event(conn, new.statement_id, Event.COMPOSED, None, Status.COMPOSED,
                                {"shard": new.shard, "lines": new.line_count}, at)
        return inserted

    def _add_batch(self, conn: Connection, items: list[NewStatement]) -> int:
        ids = [new.statement_id for new in items]
        existing: set[str] = set()
        for start in range(0, len(ids), _BATCH_READ):
            existing |= {row[0] for row in conn.execute(_with_ids("current_statuses"),
                                                        {"ids": ids[start:start + _BATCH_READ]})}
        fresh = [new for new in items if new.statement_id not in existing]
        if not fresh:
            return 0
        at = self.now()
        inserted = conn.execute(clause("insert_statement"),
                                [_statement_row(new, at) for new in fresh]).rowcount
        if inserted != len(fresh):
            raise _BatchRaced  # inserted meanwhile by another writer (or twice in the chunk)
        conn.execute(clause("insert_event"), [
            _event_row(new.statement_id, Event.COMPOSED, None, Status.COMPOSED,
                       {"shard": new.shard, "lines": new.line_count}, at) for new in fresh])
        return len(fresh)

    def transition(
        self,
        statement_id: str,
        to: Status,
        event_name: Event,
        *,
        detail: Mapping[str, Any] | None = None,
        attempts_increment: int = 0,
        **fields: Any,
    ) -> bool:
        """Move one statement; False (and an 'ignored' event) when its status does not allow it."""
        item = Transition(statement_id, to, event_name, detail or {}, fields, attempts_increment)
        return self.apply([item]) == 1

    def apply(self, transitions: Iterable[Transition]) -> int:
        """Apply transitions in one transaction; returns how many moved a statement.

        A batch of distinct statements is read with one query and written with one statement
        per table (render and route move hundreds at a time: three round trips per statement
        cost more than the rendering's bookkeeping should); when a concurrent writer moved one
        of them in between, that transaction is rolled back and the batch is applied one by one,
        each transition deciding on the status it then finds."""
        items = list(transitions)
        if len(items) == 1 and self._moved_as_expected(items[0]):
            return 1
        if len(items) > 1 and len({item.statement_id for item in items}) == len(items):
            try:
                with self.begin() as conn:
                    return self._apply_batch(conn, items)
            except _BatchRaced:
                pass
        moved = 0
        with self.begin() as conn:
            for item in items:
                moved += self._apply_one(conn, item)
        return moved

    def _moved_as_expected(self, item: Transition) -> bool:
        """Try a transition from its expected status as one autocommitted statement; False when
        there is no expectation, the dialect cannot say it in one, or the status has changed."""
        if item.expected is None or self.dialect != "postgresql":
            return False
        _check_fields(item)
        if item.expected not in sources_for(item.to):
            return False  # decided, and recorded as ignored, on the usual path
        at = self.now()
        params = {name: item.fields.get(name) for name in _FIELDS}
        params |= _event_row(item.statement_id, item.event, item.expected, item.to, item.detail, at)
        params |= {"attempts_increment": item.attempts_increment}
        with self._connect() as conn:
            return conn.execute(clause("move_from_expected_postgresql"), params).rowcount == 1

    def _apply_batch(self, conn: Connection, items: list[Transition]) -> int:
        for item in items:
            _check_fields(item)
        ids = [item.statement_id for item in items]
        current: dict[str, str] = {}
        select = _with_ids("current_statuses")
        for start in range(0, len(ids), _BATCH_READ):
            for sid, status in conn.execute(select, {"ids": ids[start:start + _BATCH_READ]}):
                current[sid] = status
        missing = [sid for sid in ids if sid not in current]
        if missing:
            raise UnknownStatement(f"statement {missing[0]} is not in the ledger")
        at = self.now()
        updates: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        for item in items:
            status = current[item.statement_id]
            if Status(status) in sources_for(item.to):
                params = {name: item.fields.get(name) for name in _FIELDS}
                updates.append(params | {"statement_id": item.statement_id, "to_status": item.to.value,
                                         "at": at, "from_status": status,
                                         "attempts_increment": item.attempts_increment})
                events.append(_event_row(item.statement_id, item.event, status, item.to, item.detail, at))
            else:
                events.append(_event_row(item.statement_id, f"{item.event}{IGNORED_SUFFIX}", status, None,
                                         {**item.detail, "wanted": item.to.value}, at))
        if updates and conn.execute(clause("apply_transition"), updates).rowcount != len(updates):
            raise _BatchRaced  # a concurrent writer moved one first: rolled back, done one by one
        conn.execute(clause("insert_event"), events)
        return len(updates)

    def record_print_batch(self, batch: Mapping[str, Any], pieces: Sequence[Mapping[str, Any]],
                           moves: Iterable[Transition], notice_moves: Iterable[NoticeMove] = ()) -> int:
        """A print batch, its pieces and their moves to `batched` (statements' and prompt notices'),
        in one transaction: they commit together or not at all. Returns the moves made."""
        moved = 0
        with self.begin() as conn:
            conn.execute(clause("paper_insert_batch"), dict(batch))
            if pieces:
                conn.execute(clause("paper_insert_piece"), [dict(p) for p in pieces])
            for item in moves:
                moved += self._apply_one(conn, item)
            moved += apply_notice_moves(conn, notice_moves, self.now())
        return moved

    def cancel_print_batch(self, batch_name: str, statement_ids: Sequence[str],
                           moves: Iterable[Transition], notice_moves: Iterable[NoticeMove] = ()) -> int:
        """A cancelled batch: its pieces (statement or notice ids) ended, their moves back to the
        queue and the batch's state, in one transaction. Returns the moves made."""
        moved = 0
        with self.begin() as conn:
            for sid in statement_ids:
                conn.execute(clause("paper_end_piece"), {"batch_name": batch_name, "statement_id": sid})
            for item in moves:
                moved += self._apply_one(conn, item)
            moved += apply_notice_moves(conn, notice_moves, self.now())
            conn.execute(clause("paper_set_batch_state"), {
                "batch_name": batch_name, "state": "cancelled", "acknowledged_at": None,
                "cancelled_at": self.now(), "accepted": 0, "rejected": 0})
        return moved

    def set_delivery(
        self, statement_id: str, *, status: Status, delivery: Delivery, event_name: Event,
        detail: Mapping[str, Any], to: Status | None = None,
    ) -> bool:
        """Set a statement's channel, paper reason and address as given, moving it to `to` (when
        given) along the state machine, with its event, in one transaction. False, and nothing
        changed, when it is no longer in `status` (the caller reads it again) or the state
        machine does not allow the move (recorded as `<event>_ignored`)."""
        with self.begin() as conn:
            current = conn.execute(clause("current_status"), {"statement_id": statement_id}).scalar()
            if current is None:
                raise UnknownStatement(f"statement {statement_id} is not in the ledger")
            if current != status:
                return False
            at = self.now()
            if to is not None and Status(current) not in sources_for(to):
                self._event(conn, statement_id, f"{event_name}{IGNORED_SUFFIX}", current, None,
                            {**detail, "wanted": to.value}, at)
                return False
            moved = conn.execute(clause("set_statement_delivery"), {
                "statement_id": statement_id, "from_status": current,
                "to_status": (to or status).value, "moved_at": at if to is not None else None,
                **_asdict(delivery)}).rowcount
            if moved != 1:
                return False
            self._event(conn, statement_id, event_name, current if to is not None else None, to,
                        detail, at)
        return True

    def _apply_one(self, conn: Connection, item: Transition) -> int:
        _check_fields(item)
        current = conn.execute(
            clause("current_status"), {"statement_id": item.statement_id}
        ).scalar()
        if current is None:
            raise UnknownStatement(f"statement {item.statement_id} is not in the ledger")
        at = self.now()
        if Status(current) not in sources_for(item.to):
            self._event(conn, item.statement_id, f"{item.event}{IGNORED_SUFFIX}", current, None,
                        {**item.detail, "wanted": item.to.value}, at)
            return 0
        params = {name: item.fields.get(name) for name in _FIELDS}
        params |= {"statement_id": item.statement_id, "to_status": item.to.value, "at": at,
                   "from_status": current, "attempts_increment": item.attempts_increment}
        if conn.execute(clause("apply_transition"), params).rowcount != 1:
            return 0  # a concurrent writer moved it first; its event tells the story
        self._event(conn, item.statement_id, item.event, current, item.to, item.detail, at)
        return 1

    def _event(
        self, conn: Connection, statement_id: str, event_name: str, from_status: str | None,
        to_status: Status | None, detail: Mapping[str, Any], at: str,
    ) -> None:
        conn.execute(clause("insert_event"),
                     _event_row(statement_id, event_name, from_status, to_status, detail, at))

    def record_event(self, statement_id: str, event_name: Event, detail: Mapping[str, Any]) -> None:
        """Append a timeline entry that changes no status (a lookup, an operator note, a send
        attempt): one statement, committed on its own."""
        with self._connect() as conn:
            self._event(conn, statement_id, event_name, None, None, detail, self.now())

    def statement(self, statement_id: str) -> dict[str, Any] | None:
        return self.fetch_one("get_statement", statement_id=statement_id)

    def timeline(self, statement_id: str) -> list[dict[str, Any]]:
        rows = self.fetch("timeline", statement_id=statement_id)
        for row in rows:
            row["detail"] = json.loads(row["detail"] or "{}")
        return rows

    def status_counts(self, run_id: str) -> dict[str, int]:
        return {row["status"]: row["n"] for row in self.fetch("status_counts_for_run", run_id=run_id)}

    # -- audit (pipeline/ledger/audit.py) -----------------------------------------------
    def audit(self, actor: str, action: str, statement_id: str | None,
              detail: Mapping[str, Any] | None = None, *, source: str | None = None,
              reason: str | None = None) -> str:
        """Append a tamper-evident audit entry (hash chain over every previous entry)."""
        return append_entry(self.engine, self.now, actor=actor, action=action,
                            statement_id=statement_id, detail=detail, source=source, reason=reason)

    def verify_audit_chain(self) -> int:
        """Number of audit entries checked; raises LedgerError at the first broken link."""
        report = verify_chain(self.engine)
        if report.problem is not None:
            raise LedgerError(f"audit log entry {report.problem.seq} does not match the chain: "
                              f"{report.problem.message}")
        return report.entries


PINNED_IDLE_SECONDS = 5.0
"""A pinned connection unused this long is given back and a fresh one checked out (and pinged)."""

_BATCH_READ = 500
"""Statement ids per read of a batch's statuses (well inside every database's parameter limit)."""


def _check_fields(item: Transition) -> None:
    unknown = set(item.fields) - set(_FIELDS)
    if unknown:
        raise LedgerError(f"transition sets unknown statement fields {sorted(unknown)}")


@cache
def _with_ids(name: str) -> TextClause:
    return clause(name).bindparams(bindparam("ids", expanding=True))


class _BatchRaced(Exception):
    """A batch's write found a statement no longer in the status its read saw."""


def _event_row(statement_id: str, event_name: str, from_status: str | None, to_status: Status | None,
               detail: Mapping[str, Any], at: str) -> dict[str, Any]:
    if not is_event_name(event_name):
        raise UnknownEvent(f"{event_name!r} is not a ledger event name (pipeline/ledger/events.py)")
    return {"statement_id": statement_id, "at": at, "event": event_name, "from_status": from_status,
            "to_status": to_status.value if to_status else None,
            "detail": json.dumps(dict(detail), sort_keys=True, default=str)}


def _statement_row(new: NewStatement, at: str) -> dict[str, Any]:
    return _asdict(new) | {"at": at, "prompt_notice": int(new.prompt_notice)}


def _asdict(obj: Any) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}
