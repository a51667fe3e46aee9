"""Benchmark: a month's finance facts and report on a PostgreSQL ledger of a million statements.

What is measured: rebuilding every day's facts of December 2026 from the ledger's events
(`pipeline.report.facts.rebuild_month`), reading the month's figures and writing the report
(HTML with its charts, CSV, XLSX), as `eob report --month 2026-12` does. Peak memory is the
process's; the facts are computed in SQL, so it does not grow with the number of statements.

The ledger is generated directly in PostgreSQL, not through the pipeline: one run of
`--statements` statements (default 1,000,000) started 2026-12-01, spread over the mailbox
providers and two pools, with their timelines over the month: composed, rendered, queued;
accepted by the relay and delivered, bounced at send or after (then retried, verified or put on
paper), a few complaints; paper statements batched, printed and mailed in daily print batches.

    .venv/bin/python bench/report.py [--statements 1000000] [--reuse]

Needs the PostgreSQL server of EOB_TEST_POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432).
Last line: seconds=… rss_mib=… statements=…
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SERVER = os.environ.get("EOB_TEST_POSTGRES_URL",
                        "postgresql://postgres@127.0.0.1:5432/test").rsplit("/", 1)[0]
DATABASE = "eob_bench_report"
RUN, PERIOD = "eob-2026-11", "2026-11"
DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com", "aol.com", "comcast.net", "hotmail.com")

# Each statement's path through December, by a hash of its number (r in [0, 1)):
# (upper bound of r, final status, its timeline after `queued` or `paper_queued`).
PATHS = (
    (0.08, "paper"),          # no consent: paper_queued → batched → printed → mailed
    (0.09, "paper_waiting"),  # paper, still in the paper queue
    (0.10, "rejected"),       # bounced at send → verification_pending
    (0.12, "bounced"),        # accepted, bounced → retry_scheduled
    (0.13, "bounced_paper"),  # accepted, bounced → paper_queued (retries ran out)
    (0.15, "sent"),           # accepted, no outcome yet
)


def create_database() -> str:
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return f"{SERVER}/{DATABASE}"


def fill(url: str, statements: int) -> int:
    """The run, its statements and their events, generated in SQL."""
    import psycopg

    from pipeline.ledger import Ledger

    Ledger.open(url).engine.dispose()  # the schema, by the project's migrations
    path_case = "CASE " + " ".join(f"WHEN r < {bound} THEN '{name}'" for bound, name in PATHS) + \
        " ELSE 'delivered' END"
    final = ("CASE p WHEN 'paper' THEN 'mailed' WHEN 'paper_waiting' THEN 'paper_queued' "
             "WHEN 'rejected' THEN 'verification_pending' WHEN 'bounced' THEN 'retry_scheduled' "
             "WHEN 'bounced_paper' THEN 'batched' WHEN 'sent' THEN 'sent' ELSE 'delivered' END")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("INSERT INTO runs (run_id, period, started_at, state, source, shards) "
                     "VALUES (%s, %s, '2026-12-01T06:00:00+00:00', 'succeeded', 'bench', 4)", (RUN, PERIOD))
        conn.execute(f"""
            CREATE UNLOGGED TABLE bench_paths AS
            SELECT i, 'st-{PERIOD}-' || lpad(to_hex(i), 16, '0') AS sid, p,
                   1 + i % 20 AS d  -- the day of December its sending or printing happens
            FROM (SELECT i, {path_case} AS p
                  FROM (SELECT i, ((hashtext('{PERIOD}' || i) & 65535) / 65536.0) AS r
                        FROM generate_series(1, {statements}) AS i) x) y""")
        conn.execute(f"""
            INSERT INTO statements (statement_id, run_id, period, member_id, version, shard, status, channel,
                                    pool, email_domain, line_count, pages,
                                    created_at, updated_at)
            SELECT sid, '{RUN}', '{PERIOD}', 'M' || lpad(i::text, 9, '0'), 1, i % 4, {final},
                   CASE WHEN p IN ('paper', 'paper_waiting') THEN 'paper' ELSE 'email' END,
                   CASE WHEN p IN ('paper', 'paper_waiting') THEN NULL
                        WHEN i % 2 = 0 THEN 'pool_a' ELSE 'pool_b' END,
                   (ARRAY{list(DOMAINS)})[i % {len(DOMAINS)} + 1], 3, 2 + i % 7,
                   '2026-12-01T06:10:00+00:00', '2026-12-01T06:10:00+00:00'
            FROM bench_paths""")

        def at(day: str, minute: int) -> str:
            return (f"'2026-12-' || lpad(({day})::text, 2, '0') || 'T07:' "
                    f"|| lpad('{minute}', 2, '0') || ':00+00:00'")

        moves = [  # (which paths, day, minute, event, from, to, detail)
            ("true", "1", 10, "composed", None, "composed", "{}"),
            ("true", "1", 20, "rendered", "composed", "rendered", "{}"),
            ("p IN ('paper', 'paper_waiting')", "1", 30, "paper_queued", "rendered", "paper_queued", "{}"),
            ("p NOT IN ('paper', 'paper_waiting')", "1", 30, "queued", "rendered", "queued", "{}"),
            ("p = 'rejected'", "d", 1, "bounced", "queued", "bounced", '{"category": "mailbox_unknown"}'),
            ("p = 'rejected'", "d", 2, "verification_requested", "bounced", "verification_pending", "{}"),
            ("p NOT IN ('paper', 'paper_waiting', 'rejected')", "d", 1, "sent", "queued", "sent", "{}"),
            ("p IN ('bounced', 'bounced_paper')", "d + 1", 3, "bounced", "sent", "bounced",
             '{"category": "mailbox_full"}'),
            ("p = 'bounced'", "d + 1", 4, "retry_scheduled", "bounced", "retry_scheduled", "{}"),
            ("p = 'bounced_paper'", "d + 1", 4, "paper_queued", "bounced", "paper_queued", "{}"),
            ("p = 'bounced_paper'", "d + 2", 5, "batched", "paper_queued", "batched", "{}"),
            ("p = 'delivered'", "d + 1", 6, "delivered", "sent", "delivered", "{}"),
            ("p = 'delivered' AND i % 2000 = 0", "d + 2", 7, "complaint_received", None, None,
             '{"feedback": "abuse"}'),
            ("p = 'paper'", "d + 1", 8, "batched", "paper_queued", "batched", "{}"),
            ("p = 'paper'", "d + 2", 9, "printed", "batched", "printed", "{}"),
            ("p = 'paper'", "d + 4", 10, "mailed", "printed", "mailed", "{}"),
        ]
        for where, day, minute, event, before, after, detail in moves:
            conn.execute(f"""
                INSERT INTO statement_events (statement_id, at, event, from_status, to_status, detail)
                SELECT sid, {at(day, minute)}, '{event}', {f"'{before}'" if before else 'NULL'},
                       {f"'{after}'" if after else 'NULL'}, '{detail}'
                FROM bench_paths WHERE {where}""")
        # the day's print batches: one per batch day, its pieces the statements batched that day
        conn.execute("""
            INSERT INTO print_batches (batch_name, batch_day, mail_class, state, pieces, sheets, pages,
                                       files, drop_where, created_at, ack_due_at)
            SELECT 'B-' || day, day, 'first', 'acknowledged', 0, 0, 0, '{}', 'bench',
                   day || 'T18:00:00+00:00', day || 'T18:00:00+00:00'
            FROM (SELECT DISTINCT substr(at, 1, 10) AS day
                  FROM statement_events WHERE event = 'batched') x""")
        conn.execute("""
            INSERT INTO batch_pieces (batch_name, statement_id, sequence, pages, sheets, mail_class,
                                      imb_serial, live)
            SELECT 'B-' || substr(e.at, 1, 10), e.statement_id, row_number() OVER (), s.pages,
                   (s.pages + 1) / 2, 'first', row_number() OVER (), 1
            FROM statement_events e JOIN statements s ON s.statement_id = e.statement_id
            WHERE e.event = 'batched'""")
        conn.execute("DROP TABLE bench_paths")
        conn.execute("VACUUM ANALYZE")
        return int(conn.execute("SELECT COUNT(*) FROM statement_events").fetchone()[0])  # type: ignore[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--statements", type=int, default=1_000_000)
    parser.add_argument("--reuse", action="store_true", help="keep the database of a previous run")
    args = parser.parse_args()
    url = f"{SERVER}/{DATABASE}"
    if not args.reuse:
        started = time.perf_counter()
        events = fill(create_database(), args.statements)
        print(f"generated {args.statements:,} statements and {events:,} events in "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr)

    from pipeline.ledger import Ledger
    from pipeline.report.facts import rebuild_month
    from pipeline.report.figures import Thresholds, for_month
    from pipeline.report.finance_html import write_finance_report

    ledger = Ledger.open(url)
    started = time.perf_counter()
    days = rebuild_month(ledger, "2026-12")
    facts_seconds = time.perf_counter() - started
    figures = for_month(ledger, "2026-12", Thresholds())
    with tempfile.TemporaryDirectory() as folder:
        write_finance_report(figures, Path(folder))
    seconds = time.perf_counter() - started
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    totals = figures.totals()
    print(f"facts for {days} days: {facts_seconds:.1f} s; "
          f"figures and report: {seconds - facts_seconds:.1f} s")
    print(f"statements {totals['statements']:,}: email {totals['emailed']:,}, paper {totals['on_paper']:,}, "
          f"in progress {totals['in_progress']:,}; total cost ${totals['total_cost']:,}; "
          f"checks failed: {[c.name for c in figures.checks if not c.ok]}")
    print(f"seconds={seconds:.1f} rss_mib={rss_mib:.0f} statements={totals['statements']}")


if __name__ == "__main__":
    main()
