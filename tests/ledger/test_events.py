"""Event names are one closed vocabulary, in the code and in sql/ alike."""

from __future__ import annotations

import re

import pytest

from pipeline.ledger import Event, Ledger, NewStatement, Status, Transition
from pipeline.ledger.events import UnknownEvent, is_event_name
from tests.support import REPO

_SQL_EVENT_LITERALS = re.compile(r"\bevent\s*(?:=\s*'(\w+)'|IN\s*\(([^)]*)\))", re.I)


def _sql_event_names() -> set[str]:
    names: set[str] = set()
    for path in (REPO / "sql").rglob("*.sql"):
        for single, listed in _SQL_EVENT_LITERALS.findall(path.read_text()):
            names |= {single} if single else set(re.findall(r"'(\w+)'", listed))
    return names


def test_every_event_name_written_in_sql_is_in_the_vocabulary() -> None:
    names = _sql_event_names()
    assert {"send_attempt", "reinstated", "bounced"} <= names, "the pattern is out of date"
    assert not sorted(n for n in names if not is_event_name(n))


def test_code_passes_event_names_as_the_enum_not_loose_strings() -> None:
    loose = re.compile(r"""(?:Transition\([^,()]+,\s*(?:Status|S)\.\w+,|record_event\([^,()]+,)\s*["']""")
    offenders = [str(p.relative_to(REPO)) for p in (REPO / "pipeline").rglob("*.py")
                 if loose.search(p.read_text())]
    assert not offenders


def _ledger(tmp_path) -> Ledger:  # type: ignore[no-untyped-def]
    ledger = Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    ledger.start_run("eob-2026-11", "2026-11", "extracts", 1)
    ledger.add_statements([NewStatement("S1", "eob-2026-11", "2026-11", "M000000001", 1, 0, "email",
                                        None, "gmail.com", 4, False)])
    return ledger


def test_the_ledger_refuses_an_event_name_outside_the_vocabulary(tmp_path) -> None:
    ledger = _ledger(tmp_path)
    with pytest.raises(UnknownEvent, match="rendred"):
        ledger.record_event("S1", "rendred", {})  # type: ignore[arg-type]
    with pytest.raises(UnknownEvent):
        ledger.apply([Transition("S1", Status.RENDERED, "rendred")])  # type: ignore[arg-type]
    assert [e["event"] for e in ledger.timeline("S1")] == ["composed"], "nothing was written"


def test_a_refused_transition_is_kept_as_an_ignored_event(tmp_path) -> None:
    ledger = _ledger(tmp_path)
    assert ledger.apply([Transition("S1", Status.SENT, Event.SENT)]) == 0
    assert [e["event"] for e in ledger.timeline("S1")] == ["composed", "sent_ignored"]
