"""A small ledger with a month of history for the finance report's tests: one run, statements
to every mailbox provider on two pools, acceptances, bounces at send and after, a complaint,
retries and verifications, and paper batched on either side of a mid-month price change."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from pipeline.ledger import Event, Ledger, NewStatement, Status, Transition

RUN = "eob-2026-11"
PERIOD = "2026-11"
DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "icloud.com", "acme-mail.test", "aol.com"]


class Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.at

    def day(self, d: int, hour: int = 10) -> None:
        self.at = datetime(2026, 12, d, hour, 0, tzinfo=UTC)


def sid(n: int) -> str:
    return f"st-2026-11-{n:016x}"


def build(url: str) -> tuple[Ledger, Clock]:
    clock = Clock()
    ledger = Ledger.open(url, now=clock)
    ledger.start_run(RUN, PERIOD, "extracts", 1)
    email = list(range(36))
    paper = list(range(36, 48))
    ledger.add_statements([NewStatement(sid(n), RUN, PERIOD, f"M{n:09d}", 1, 0, "email", None,
                                        DOMAINS[n % len(DOMAINS)], 3, False) for n in email]
                          + [NewStatement(sid(n), RUN, PERIOD, f"M{n:09d}", 1, 0, "paper", "no consent",
                                          None, 3, False) for n in paper])
    move = ledger.transition
    for n in email + paper:
        move(sid(n), Status.RENDERED, Event.RENDERED, pages=2 + n % 9)
    for n in email:
        move(sid(n), Status.QUEUED, Event.QUEUED, pool="pool_a" if n % 2 else "pool_b")
    for n in paper:
        move(sid(n), Status.PAPER_QUEUED, Event.PAPER_QUEUED)
    clock.day(2)
    for n in email:
        if n in (0, 6):  # rejected while sending (gmail, pool_b)
            move(sid(n), Status.BOUNCED, Event.BOUNCED, detail={"category": "mailbox_unknown"},
                 bounce_category="mailbox_unknown")
            move(sid(n), Status.VERIFICATION_PENDING, Event.VERIFICATION_REQUESTED)
        else:
            move(sid(n), Status.SENT, Event.SENT)
    clock.day(3)
    for n in email:
        if n in (12, 18, 5):  # bounced after acceptance
            category = "mailbox_full" if n == 5 else "mailbox_unknown"
            move(sid(n), Status.BOUNCED, Event.BOUNCED, detail={"category": category},
                 bounce_category=category)
            if n == 5:
                move(sid(n), Status.RETRY_SCHEDULED, Event.RETRY_SCHEDULED)
            else:
                move(sid(n), Status.VERIFICATION_PENDING, Event.VERIFICATION_REQUESTED)
        elif n not in (0, 6) and n < 30:
            move(sid(n), Status.DELIVERED, Event.DELIVERED)
    ledger.record_event(sid(1), Event.COMPLAINT_RECEIVED, {"feedback": "abuse"})
    clock.day(10)
    _batch(ledger, "B1", "2026-12-10", paper[:8])
    clock.day(12)
    for n in paper[:8]:
        move(sid(n), Status.PRINTED, Event.PRINTED)
    clock.day(16)
    move(sid(5), Status.PAPER_QUEUED, Event.PAPER_QUEUED)  # retries ran out
    _batch(ledger, "B2", "2026-12-16", [*paper[8:11], 5])
    clock.day(20)
    move(sid(47), Status.SUPERSEDED, Event.SUPERSEDED)
    return ledger, clock


def _batch(ledger: Ledger, name: str, day: str, numbers: list[int]) -> None:
    pieces = [{"batch_name": name, "statement_id": sid(n), "sequence": i, "pages": 2 + n % 9,
               "sheets": (3 + n % 9) // 2, "mail_class": "first", "imb_serial": 1000 + n}
              for i, n in enumerate(numbers)]
    batch = {"batch_name": name, "batch_day": day, "mail_class": "first", "state": "delivered",
             "pieces": len(pieces), "sheets": sum(p["sheets"] for p in pieces),
             "pages": sum(p["pages"] for p in pieces), "files": "{}", "drop_where": "folder",
             "created_at": ledger.now(), "ack_due_at": ledger.now()}
    ledger.record_print_batch(batch, pieces, [Transition(sid(n), Status.BATCHED, Event.BATCHED)
                                              for n in numbers])


def sqlite_world(tmp_path: Path) -> tuple[Ledger, Clock]:
    return build(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


LAST_DAY = date(2026, 12, 20)
