"""Member contacts on SQLite and PostgreSQL: opened by an agent's search with a reference and a
purpose, open for `desk_contact_hours`, covering the member's household, and only the agent's own."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from pipeline.clock import iso
from pipeline.desk.audit import entries, within_contact
from pipeline.desk.contacts import ContactRefused, has_open_contact, open_contact
from pipeline.desk.errors import DeskError
from pipeline.desk.reasons import ReasonRefused
from pipeline.ledger import Ledger
from pipeline.settings import Settings
from tests.support.send import WallClock


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(workspace=tmp_path, desk_contact_hours=2)


def _open(ledger: Ledger, settings: Settings, member: str = "M000000111") -> str:
    return open_contact(ledger, settings, actor="alice", member_id=member, reference="CALL-77",
                        purpose="statement not received", source="10.0.0.7")


def test_a_contact_is_open_for_its_hours_then_closes(
        ledger: Ledger, settings: Settings, clock: WallClock) -> None:
    opened = clock()
    _open(ledger, settings)
    assert has_open_contact(ledger, actor="alice", member_id="M000000111", at=opened)
    assert has_open_contact(ledger, actor="alice", member_id="M000000111",
                            at=opened + timedelta(hours=1, minutes=59))
    assert not has_open_contact(ledger, actor="alice", member_id="M000000111",
                                at=opened + timedelta(hours=2))
    assert not has_open_contact(ledger, actor="alice", member_id="M000000111",
                                at=opened - timedelta(seconds=1))


def test_a_contact_is_the_agents_own_and_the_members_own(
        ledger: Ledger, settings: Settings, clock: WallClock) -> None:
    _open(ledger, settings)
    assert not has_open_contact(ledger, actor="bob", member_id="M000000111", at=clock())
    assert not has_open_contact(ledger, actor="alice", member_id="M000000222", at=clock())


def test_a_contact_with_a_member_covers_the_patients_own_statements(
        ledger: Ledger, settings: Settings, clock: WallClock) -> None:
    _open(ledger, settings, member="M000000111~P2")  # found through a patient's own statement
    for member in ("M000000111", "M000000111~P2", "M000000111~P3"):
        assert has_open_contact(ledger, actor="alice", member_id=member, at=clock())


def test_opening_a_contact_is_audited_with_its_purpose_and_no_member_data(
        ledger: Ledger, settings: Settings) -> None:
    contact_id = _open(ledger, settings)
    (entry,) = entries(ledger)
    assert (entry.actor, entry.action, entry.source, entry.reason) == (
        "alice", "contact_opened", "10.0.0.7", "statement not received")
    assert entry.detail == {"contact": contact_id, "hours": 2}
    assert "M000000111" not in json.dumps(ledger.fetch("audit_chain"))


@pytest.mark.parametrize(("field", "value", "refusal", "message"), [
    ("reference", " ", ContactRefused, "reference"), ("member_id", "", ContactRefused, "member"),
    ("purpose", "", ReasonRefused, "at least 5"),
    ("purpose", "member born 04/12/1961", ReasonRefused, "member's details"),
    ("purpose", "asked for jo@example.com", ReasonRefused, "member's details"),
])
def test_a_contact_needs_a_member_a_reference_and_a_purpose_without_member_details(
        ledger: Ledger, settings: Settings, clock: WallClock, field: str, value: str,
        refusal: type[DeskError], message: str) -> None:
    given = {"member_id": "M000000111", "reference": "CALL-77", "purpose": "a question"} | {field: value}
    with pytest.raises(refusal, match=message):
        open_contact(ledger, settings, actor="alice", source=None, **given)
    assert issubclass(ContactRefused, DeskError) and issubclass(ReasonRefused, DeskError)
    assert entries(ledger) == []
    assert not has_open_contact(ledger, actor="alice", member_id="M000000111", at=clock())


def test_one_rule_decides_a_look_for_the_access_review_and_for_has_open_contact(
        ledger: Ledger, settings: Settings, clock: WallClock) -> None:
    _open(ledger, settings)
    windows = [(row["opened_at"], row["expires_at"]) for row in ledger.fetch(
        "desk_contact_windows", actor="alice", member_id="M000000111")]
    for later in (timedelta(0), timedelta(hours=1), timedelta(hours=2), timedelta(seconds=-1)):
        at, covered = clock() + later, timedelta(0) <= later < timedelta(hours=2)
        assert within_contact(windows, iso(at)) == has_open_contact(
            ledger, actor="alice", member_id="M000000111", at=at) == covered
