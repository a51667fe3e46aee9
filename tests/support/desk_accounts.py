"""Helpers for the desk's account, audit and contact tests (no tests here): a cheap argon2id
hasher, a ledger on a clock the test moves, statements of known members."""

from __future__ import annotations

from argon2 import PasswordHasher

from pipeline.ledger import Ledger, NewStatement
from tests.support.send import WallClock

FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
"""argon2id at a cost a test can afford dozens of times; the production cost is the default."""
PASSWORD = "correct horse battery"
RUN_ID = "eob-2026-11"


def open_ledger(url: str, clock: WallClock) -> Ledger:
    ledger = Ledger.open(url, now=clock)
    ledger.start_run(RUN_ID, "2026-11", "extracts", 1)
    return ledger


def add_statements(ledger: Ledger, members: dict[str, str]) -> None:
    """One statement per id, for the member (or `<member>~<patient>` recipient) given."""
    ledger.add_statements([
        NewStatement(sid, RUN_ID, "2026-11", member, 1, 0, "email", None, "example.com", 3, False)
        for sid, member in members.items()])
