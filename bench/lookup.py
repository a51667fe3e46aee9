"""Benchmark: the support desk's pages on a production-sized PostgreSQL ledger.

What is measured: the time a support agent waits for a page, over HTTP, from the desk served by
uvicorn exactly as `eob web` serves it (sessions, CSRF, permission checks and the audit entry
each page writes included): a search by each key (statement id, member id, claim number, email
address; each a POST, as the desk sends it) and the statement page with its whole timeline.

The ledger is generated directly in PostgreSQL, not through the pipeline (which would take
hours): `--statements` statements (default 2,000,000: twelve monthly runs of the same members)
and six timeline events each (12,000,000), with each statement's email hash and two claim
numbers' hashes keyed exactly as compose keys them, so the desk's searches find them. The
statements are spread over every status a support agent meets.

    .venv/bin/python bench/lookup.py [--statements 2000000] [--samples 200] [--reuse]

Needs the PostgreSQL server of EOB_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432)
with the pgcrypto extension (Debian's postgresql-contrib, part of the server package).
Last line: p50_ms=… p95_ms=… statements=… events=…
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERVER = os.environ.get("EOB_TEST_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test").rsplit("/", 1)[0]
DATABASE = "eob_bench_lookup"
PERIODS = [f"2026-{month:02d}" for month in range(1, 13)]
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "comcast.net")
SECRETS = {
    "EOB_VERP_SECRET": "bench-verp-secret-0b6f1d2e",
    "EOB_STATEMENT_ID_KEY": "bench-statement-id-key-93ac",
    "EOB_DESK_SECRET": "bench-desk-secret-5e27a9",
}
# Where the generated statements are, as a share of each month (the rest were delivered).
STATES = (("mailed", "paper", 0.06), ("retry_scheduled", "email", 0.01),
          ("verification_pending", "email", 0.01), ("paper_queued", "paper", 0.01),
          ("sent", "email", 0.02))
EVENTS = (("composed", None, "composed"), ("rendered", "composed", "rendered"),
          ("queued", "rendered", "queued"), ("send_attempt", None, None),
          ("sent", "queued", "sent"), ("delivered", "sent", "delivered"))


def email_of(member: int) -> str:
    return f"member{member}@{DOMAINS[member % len(DOMAINS)]}"


def claim_of(period: str, member: int, n: int) -> str:
    return f"CLM{period.replace('-', '')}{member:09d}{n}"


def member_of(member: int) -> str:
    return f"M{member:09d}"


def _literal(value: str | None) -> str:
    return f"'{value}'" if value else "NULL"


def create_database() -> str:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return f"{SERVER}/{DATABASE}"


def fill(url: str, statements: int) -> tuple[int, int]:
    """Statements, their events and claim hashes, generated in SQL with the pipeline's keys."""
    import hmac

    import psycopg

    from pipeline.ledger import Ledger
    from pipeline.ledger.claims import CLAIM_HASH_HEX, CLAIM_HASH_LABEL

    Ledger.open(url).engine.dispose()  # the schema, by the project's migrations
    claim_key = hmac.digest(SECRETS["EOB_STATEMENT_ID_KEY"].encode(), CLAIM_HASH_LABEL, "sha256").hex()
    status_case = "CASE " + " ".join(
        f"WHEN r < {sum(share for _, _, share in STATES[:i + 1]):.4f} THEN '{status}'"
        for i, (status, _, _) in enumerate(STATES)) + " ELSE 'delivered' END"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pgcrypto")
        for month, period in enumerate(PERIODS, start=1):
            # the same members every month; the first months have one more to make the total
            members = statements // len(PERIODS) + (month <= statements % len(PERIODS))
            started = time.perf_counter()
            conn.execute(
                "INSERT INTO runs (run_id, period, started_at, finished_at, state, source, shards) "
                "VALUES (%s, %s, %s, %s, 'succeeded', 'bench', 4)",
                (f"eob-{period}", period, f"{period}-05T06:00:00+00:00", f"{period}-05T07:00:00+00:00"))
            conn.execute(f"""
                INSERT INTO statements (statement_id, run_id, period, member_id, version, shard, status,
                    channel, pool, email_domain, line_count, attempts, created_at, updated_at,
                    address_hash, next_attempt_at)
                SELECT 'st-{period}-' || substr(md5('{period}' || i), 1, 16), 'eob-{period}', '{period}',
                       'M' || lpad(i::text, 9, '0'), 1, i % 4, s.status,
                       CASE WHEN s.status IN ('mailed', 'paper_queued') THEN 'paper' ELSE 'email' END,
                       CASE WHEN i % 2 = 0 THEN 'pool_a' ELSE 'pool_b' END,
                       (ARRAY{list(DOMAINS)})[i % {len(DOMAINS)} + 1], 3, 1,
                       '{period}-05T06:10:00+00:00', '{period}-05T09:00:00+00:00',
                       encode(hmac('member' || i || '@' || (ARRAY{list(DOMAINS)})[i % {len(DOMAINS)} + 1],
                                   '{SECRETS["EOB_VERP_SECRET"]}', 'sha256'), 'hex'),
                       CASE WHEN s.status = 'retry_scheduled' THEN '{period}-06T09:00:00+00:00' END
                FROM generate_series(1, {members}) AS i,
                     LATERAL (SELECT {status_case} AS status
                              FROM (SELECT ((hashtext('{period}' || i) & 65535) / 65536.0) AS r) AS x) AS s
            """)
            conn.execute(f"""
                INSERT INTO statement_claims (claim_hash, statement_id)
                SELECT substr(encode(hmac(
                           convert_to('CLM{period.replace('-', '')}' || lpad(i::text, 9, '0') || n, 'UTF8'),
                           decode('{claim_key}', 'hex'), 'sha256'), 'hex'), 1, {CLAIM_HASH_HEX}),
                       'st-{period}-' || substr(md5('{period}' || i), 1, 16)
                FROM generate_series(1, {members}) AS i, generate_series(1, 2) AS n
            """)
            values = ", ".join(f"({k}, '{event}', {_literal(before)}, {_literal(after)})"
                               for k, (event, before, after) in enumerate(EVENTS))
            conn.execute(f"""
                INSERT INTO statement_events (statement_id, at, event, from_status, to_status, detail)
                SELECT s.statement_id, '{period}-05T06:' || lpad((10 + e.k * 5)::text, 2, '0') || ':00+00:00',
                       e.event, e.before, e.after,
                       CASE WHEN e.event IN ('queued', 'sent') THEN '{{"pool": "' || s.pool || '"}}'
                            WHEN e.event = 'send_attempt' THEN '{{"attempt": 1}}' ELSE '{{}}' END
                FROM statements s, (VALUES {values}) AS e (k, event, before, after)
                WHERE s.run_id = 'eob-{period}'
            """)
            print(f"\rfilling the ledger: {month}/{len(PERIODS)} months "
                  f"({time.perf_counter() - started:.0f} s for the last)", end="", file=sys.stderr)
        print(file=sys.stderr)
        conn.execute("VACUUM ANALYZE")
        counts = conn.execute("SELECT (SELECT count(*) FROM statements), "
                              "(SELECT count(*) FROM statement_events)").fetchone()
    assert counts is not None
    return int(counts[0]), int(counts[1])


def _cookies(response: object, jar: dict[str, str]) -> None:
    """The desk's cookies are Secure; over loopback HTTP the bench keeps them itself, as a
    browser does for a loopback address."""
    for header in response.headers.get_list("set-cookie"):  # type: ignore[attr-defined]
        name, _, rest = header.partition("=")
        value = rest.split(";", 1)[0]
        if "max-age=0" in header.lower() or not value.strip('"'):
            jar.pop(name, None)
        else:
            jar[name] = value


def _token(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if match is None:
        raise SystemExit("the page has no CSRF token: is the desk up to date?")
    return match.group(1)


def serve(url: str, workspace: Path, port: int) -> object:
    """`eob web` on the bench ledger, as an operator starts it."""
    import subprocess

    env = {**os.environ, **SECRETS, "EOB_ENVIRONMENT": "demo", "EOB_LEDGER_URL": url,
           "EOB_WORKSPACE": str(workspace)}
    process = subprocess.Popen([str(Path(sys.executable).with_name("eob")), "web", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    import httpx

    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}/signin", timeout=1)
            return process
        except httpx.HTTPError:
            if process.poll() is not None:
                stderr = process.stderr.read().decode()[-2000:] if process.stderr else ""
                raise SystemExit(f"eob web stopped: {stderr}") from None
            time.sleep(0.2)
    raise SystemExit("eob web did not answer in 60 s")


def measure(url: str, port: int, samples: int, seed: int) -> dict[str, list[float]]:
    import httpx
    import psycopg

    from pipeline.desk.accounts import create_user
    from pipeline.desk.permissions import Role
    from pipeline.ledger import Ledger

    password = "bench-agent-passphrase-4417"
    ledger = Ledger.open(url)
    create_user(ledger, "bench-agent", "Bench agent", [Role.AGENT], password, actor="bench")
    ledger.engine.dispose()
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT statement_id, member_id, period FROM statements "
                            "TABLESAMPLE SYSTEM (1) REPEATABLE (%s) LIMIT %s", (seed, samples)).fetchall()
    rng = random.Random(seed)
    jar: dict[str, str] = {}
    times: dict[str, list[float]] = {"statement": [], "member": [], "claim": [], "email": [], "timeline": []}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
        def call(method: str, path: str, data: dict[str, str] | None = None) -> httpx.Response:
            cookie = "; ".join(f"{name}={value}" for name, value in jar.items())
            response = client.request(method, path, data=data, headers={"cookie": cookie},
                                      follow_redirects=False)
            _cookies(response, jar)
            if response.status_code >= 400:
                raise SystemExit(f"{method} {path} answered {response.status_code}")
            return response

        form = call("GET", "/signin")
        call("POST", "/signin", {"username": "bench-agent", "password": password,
                                 "csrf_token": _token(form.text)})
        token = _token(call("GET", "/search").text)
        for statement_id, member_id, period in rows:
            member = int(member_id[1:])
            terms = {"statement": statement_id, "member": member_id,
                     "claim": claim_of(period, member, rng.choice((1, 2))), "email": email_of(member)}
            for key, term in terms.items():
                started = time.perf_counter()
                page = call("POST", "/search", {"key": key, "term": term, "reference": "BENCH-1",
                                                "purpose": "Statement not received", "csrf_token": token})
                times[key].append(time.perf_counter() - started)
                if statement_id not in page.text:
                    raise SystemExit(f"a search by {key} did not find its statement")
            started = time.perf_counter()
            page = call("GET", f"/statements/{statement_id}")
            times["timeline"].append(time.perf_counter() - started)
            if "Delivered" not in page.text and "delivered" not in page.text:
                raise SystemExit("the statement page shows no timeline")
    return times


def _ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=2_000_000)
    parser.add_argument("--samples", type=int, default=200, help="statements looked up (5 pages each)")
    parser.add_argument("--port", type=int, default=18740)
    parser.add_argument("--reuse", action="store_true",
                        help="keep the ledger of an earlier run with as many statements (skips filling)")
    args = parser.parse_args()
    import tempfile

    import psycopg

    url = f"{SERVER}/{DATABASE}"
    counts = None
    if args.reuse:
        try:
            with psycopg.connect(url) as conn:
                row = conn.execute("SELECT (SELECT count(*) FROM statements), "
                                   "(SELECT count(*) FROM statement_events)").fetchone()
            counts = (int(row[0]), int(row[1])) if row and row[0] == args.statements else None
        except psycopg.Error:
            counts = None
    if counts is None:
        started = time.perf_counter()
        counts = fill(create_database(), args.statements)
        print(f"ledger filled: {counts[0]:,} statements, {counts[1]:,} events in "
              f"{time.perf_counter() - started:.0f} s")
    else:
        print(f"ledger reused: {counts[0]:,} statements, {counts[1]:,} events")
    with psycopg.connect(url, autocommit=True) as conn:  # a fresh account each run
        conn.execute("DELETE FROM desk_user_roles WHERE username = 'bench-agent'")
        conn.execute("DELETE FROM desk_users WHERE username = 'bench-agent'")
    with tempfile.TemporaryDirectory(prefix="eob-bench-lookup-") as workspace:
        process = serve(url, Path(workspace), args.port)
        try:
            times = measure(url, args.port, args.samples, seed=7)
        finally:
            process.terminate()  # type: ignore[attr-defined]
            process.wait(10)  # type: ignore[attr-defined]
    every = [t for values in times.values() for t in values]
    print(f"{len(every):,} pages over HTTP, one agent signed in (each page also writes its audit entry):")
    for name, values in times.items():
        what = "statement page (timeline)" if name == "timeline" else f"search by {name}"
        print(f"  {what:<28} p50 {_ms(values, 0.5):6.1f} ms   p95 {_ms(values, 0.95):6.1f} ms   "
              f"max {1000 * max(values):6.1f} ms   mean {1000 * statistics.fmean(values):6.1f} ms")
    print(f"p50_ms={_ms(every, 0.5):.1f} p95_ms={_ms(every, 0.95):.1f} "
          f"statements={counts[0]} events={counts[1]}")


if __name__ == "__main__":
    main()
