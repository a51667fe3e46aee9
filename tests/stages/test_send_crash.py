"""Crash safety for real: SIGKILL the send stage at random points, re-run, count receipts.

A child process runs the send stage against a SQLite ledger and a real SMTP server on
loopback (this process), and is killed with SIGKILL at random moments while it sends; then it
is started again, and again, until a run completes. The server counts every message it
accepted per statement. What must hold:

- a statement whose 250 was committed (status ``sent``) before a kill is never received again;
- a statement received more than once was in flight at a kill (the server had accepted it but
  the ledger had not yet committed it): at most one per connection per kill, and its timeline
  says ``send_in_doubt``;
- in the end every statement is sent, or deferred with a reason (retry, verification or paper),
  and nothing is left queued.

About 40 seconds: most of it is starting Python (and pandas) six times.

    python tests/stages/test_send_crash.py child WORKSPACE RELAY_HOST RELAY_PORT CA_FILE
runs one send (what the test spawns).
"""

from __future__ import annotations

import email
import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

if __name__ == "__main__":  # the child: make the repository importable before anything else
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from pipeline.demo.smtp_sink import Decision, SmtpSink, make_tls_material  # noqa: E402
from tests.support import REPO  # noqa: E402
from tests.support.send import (  # noqa: E402
    WallClock,
    make_context,
    pool_file,
    queue_statements,
)

RELAY = "127.0.0.54"
POOL = "pool_t"
STATEMENTS = 400
CONNECTIONS = 4
KILLS = 5
FINAL = {"sent", "retry_scheduled", "verification_pending", "paper_queued"}
PROVIDERS = """
[pool.providers.gmail]
max_connections = 2
max_per_second = 150
[pool.providers.default]
max_connections = 2
"""


def behaviour(recipient: str) -> Decision:
    """Deterministic: ~4 % unknown users, ~4 % temporary refusals, the rest accepted."""
    bucket = int(hashlib.sha256(recipient.encode()).hexdigest()[:4], 16) % 100
    if bucket < 4:
        return Decision("reject", 550, "5.1.1", "user unknown")
    if bucket < 8:
        return Decision("reject", 451, "4.3.0", "temporary local problem, try again later")
    return Decision("accept")


def child(workspace: Path, host: str, port: int, ca_file: Path) -> None:
    from pipeline.stages.send import send_stage

    pools = pool_file(host, port, providers=PROVIDERS)
    ctx = make_context(workspace, pools, ca_file, WallClock())
    print(send_stage(ctx, POOL), flush=True)


def _ledger_rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(sql).fetchall()


def _receipts(sink: SmtpSink) -> Counter[str]:
    return Counter(str(email.message_from_bytes(r.data)["X-EOB-Statement"]) for r in sink.received)


def _spawn(workspace: Path, sink: SmtpSink, ca_file: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOB_")}
    return subprocess.Popen(
        [sys.executable, __file__, "child", str(workspace), sink.host, str(sink.port),
         str(ca_file)], env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for_attempts(db: Path, at_least: int, proc: subprocess.Popen[bytes]) -> None:
    """Until the child has started ``at_least`` transactions (it is mid-send), or has ended."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        n = _ledger_rows(db, "SELECT COUNT(*) FROM statement_events WHERE event = 'send_attempt'")
        if n[0][0] >= at_least:
            return
        time.sleep(0.01)


@pytest.mark.slow
def test_sigkill_at_random_points_never_resends_a_committed_250(tmp_path: Path) -> None:
    seed = int(os.environ.get("EOB_CRASH_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    tls = make_tls_material(tmp_path / "tls", [RELAY])
    workspace = tmp_path / "ws"
    with SmtpSink(RELAY, 0, tls=tls, behaviour=behaviour, keep_data=False) as sink:
        ctx = make_context(workspace, pool_file(sink.host, sink.port, providers=PROVIDERS),
                           tls.ca_file, WallClock())
        domains = ["gmail.com", "yahoo.com", "example.org", "comcast.net"]
        queue_statements(ctx, POOL, [f"member{i}@{domains[i % 4]}" for i in range(STATEMENTS)])
        db = Path(ctx.settings.ledger_dsn.removeprefix("sqlite:///"))
        ctx.ledger.close()

        kills: list[dict[str, object]] = []
        attempts_seen = 0
        for _ in range(KILLS):
            proc = _spawn(workspace, sink, tls.ca_file)
            attempts_seen += rng.randint(1, 25)
            _wait_for_attempts(db, attempts_seen, proc)
            time.sleep(rng.uniform(0.0, 0.25))
            if proc.poll() is not None:
                break  # it finished before we could kill it: the remaining runs are moot
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            time.sleep(0.3)  # let the server finish recording what it accepted
            status = dict(_ledger_rows(db, "SELECT statement_id, status FROM statements"))
            received = _receipts(sink)
            kills.append({"sent": {s for s, st in status.items() if st == "sent"},
                          "received": received,
                          "in_flight": {s for s in received if status[s] == "queued"}})
            attempts_seen = _ledger_rows(
                db, "SELECT COUNT(*) FROM statement_events WHERE event = 'send_attempt'")[0][0]

        final_run = _spawn(workspace, sink, tls.ca_file)
        output = final_run.communicate(timeout=300)[0].decode(errors="replace")
        assert final_run.returncode == 0, output[-3000:]
        time.sleep(0.3)
        receipts = _receipts(sink)

    context = f"seed={seed} (set EOB_CRASH_SEED to replay), kills={len(kills)}"
    assert len(kills) >= 3, f"too few kills landed mid-send: {context}"
    for n, kill in enumerate(kills):
        sent_before = kill["sent"]
        assert isinstance(sent_before, set) and isinstance(kill["in_flight"], set)
        before: Counter[str] = kill["received"]  # type: ignore[assignment]
        resent = {s for s in sent_before if receipts[s] != before[s]}
        assert not resent, f"committed 250s sent again after kill {n}: {sorted(resent)}; {context}"
        assert len(kill["in_flight"]) <= CONNECTIONS, context

    in_flight_ever = set().union(*(k["in_flight"] for k in kills))  # type: ignore[arg-type]
    duplicates = {s for s, count in receipts.items() if count > 1}
    assert duplicates <= in_flight_ever, context
    assert all(receipts[s] <= 1 + sum(s in k["in_flight"] for k in kills)  # type: ignore[operator]
               for s in duplicates), context

    rows = _ledger_rows(db, "SELECT statement_id, status, last_reason FROM statements")
    final = {sid: status for sid, status, _ in rows}
    assert len(final) == STATEMENTS and set(final.values()) <= FINAL, Counter(final.values())
    assert all(reason for _, status, reason in rows if status != "sent"), "deferred without reason"
    assert {s for s, st in final.items() if st == "sent"} == set(receipts), context
    doubted = {row[0] for row in _ledger_rows(
        db, "SELECT DISTINCT statement_id FROM statement_events WHERE event = 'send_in_doubt'")}
    assert duplicates <= doubted, "a duplicate without send_in_doubt on its timeline"
    print(f"{context}: duplicates={len(duplicates)} in_flight_at_kills="
          f"{[len(k['in_flight']) for k in kills]}")  # type: ignore[arg-type]


if __name__ == "__main__":
    if sys.argv[1:2] != ["child"]:
        raise SystemExit("usage: test_crash_send.py child WORKSPACE RELAY_HOST RELAY_PORT CA_FILE")
    child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), Path(sys.argv[5]))
