"""Helpers for the paper-stage tests: a real ledger on a clock that moves only when told, paper
statements with real print variants in the object store, and their run's member file with
mailing addresses. (No tests in this module.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.ledger import Ledger, NewStatement, Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.render import render_statement
from pipeline.settings import Settings
from pipeline.stages.context import Context, run_dir
from pipeline.storage import open_store
from tests.support.factories import make_member, make_statement
from tests.support.send import WallClock

RUN_ID = "eob-2026-11"
PERIOD = "2026-11"
DAY = "2026-12-03"  # the WallClock's day; its cut-off (17:00 UTC) is after the clock's 10:00

ADDRESSES = [  # (line1, line2, city, state, postal_code): real-looking, valid state/ZIP pairs
    ("1428 Maple Ave", "Apt 3B", "Springfield", "IL", "62704-1185"),
    ("77 North Main Street", "", "Madison", "WI", "53703"),
    ("PO Box 4410", "", "Boise", "ID", "83702"),
    ("9 Elm Ct", "Unit 12", "Austin", "TX", "78701-2210"),
]


def paper_context(workspace: Path, clock: WallClock, **settings: Any) -> Context:
    values: dict[str, Any] = {"workspace": workspace, "imb_mailer_id": "123456",
                              "paper_endorsement": "ADDRESS SERVICE REQUESTED"}
    values.update(settings)
    workspace.mkdir(parents=True, exist_ok=True)
    config = Settings(**values)
    return Context(config, Ledger.open(config.ledger_dsn, now=clock), open_store(config.objects_url), clock)


def queue_paper(ctx: Context, count: int, *, bad: dict[int, tuple[str, str, str, str, str]] | None = None,
                first: int = 0) -> list[str]:
    """``count`` statements rendered in the print variant, stored and at `paper_queued`, with the
    member file's addresses (``bad``: index → an address to use instead). Returns their ids."""
    if ctx.ledger.fetch_one("get_run", run_id=RUN_ID) is None:
        ctx.ledger.start_run(RUN_ID, PERIOD, "tests", 1)
    folder = run_dir(ctx.settings, RUN_ID)
    folder.mkdir(parents=True, exist_ok=True)
    ids, rows = [], []
    for n in range(first, first + count):
        line1, line2, city, state, postal = (bad or {}).get(n, ADDRESSES[n % len(ADDRESSES)])
        member = make_member(member_id=f"M{n:09d}", address_line1=line1, address_line2=line2,
                             city=city, state=state, postal_code=postal)
        statement = make_statement(n_lines=2 + n % 4, member=member)
        sid = statement.statement_id
        key = f"print/{PERIOD}/000/{sid}.pdf"
        rendered = render_statement(statement, variant="print")
        ctx.store.put(key, rendered.pdf, "application/pdf")
        ctx.ledger.add_statements([NewStatement(sid, RUN_ID, PERIOD, member.member_id, 1, 0, "paper",
                                                "no_consent", None, 3, False)])
        ctx.ledger.apply([
            Transition(sid, Status.RENDERED, Event.RENDERED, {}, {"print_key": key, "pages": rendered.pages}),
            Transition(sid, Status.PAPER_QUEUED, Event.PAPER_QUEUED, {"reason": "no_consent"}),
        ])
        ids.append(sid)
        rows.append({"member_id": member.member_id, "first_name": member.first_name,
                     "last_name": member.last_name, "address_line1": line1, "address_line2": line2,
                     "city": city, "state": state, "postal_code": postal})
    members = folder / "members.parquet"
    table = pa.Table.from_pylist(rows)
    if members.exists():
        table = pa.concat_tables([pq.read_table(members), table])
    pq.write_table(table, members)
    return ids


def statuses(ctx: Context, ids: list[str]) -> dict[str, str]:
    return {sid: ctx.ledger.statement(sid)["status"] for sid in ids}  # type: ignore[index]


def events(ctx: Context, sid: str) -> list[str]:
    return [e["event"] for e in ctx.ledger.timeline(sid)]
