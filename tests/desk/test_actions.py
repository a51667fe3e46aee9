"""Support's actions on a statement, on SQLite and PostgreSQL: each with a reason on the timeline and
in the audit log (never one holding the member's details), each refused (changing nothing) where the
statement's status does not allow it, and an address change only with a second person's approval,
after which the pipeline's own resend path sends the statement to the new address. An approval
moves the statement only from the status it was decided on; two at once in one run both reach the
contact file; a change the statement can no longer use is closed and its sealed address erased."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.delivery.suppression import is_suppressed, suppress
from pipeline.desk.actions import (
    cancel_resend,
    decide_address_change,
    lift_suppression,
    move_to_paper,
    pending_changes,
    request_address_change,
)
from pipeline.desk.audit import entries
from pipeline.desk.changes import expire_changes
from pipeline.desk.errors import ActionRefused, ChangeNotApplied, DeskError
from pipeline.desk.lookup import statement_view
from pipeline.desk.reasons import ReasonRefused
from pipeline.ledger import Event, Status, Transition
from pipeline.outcomes.routing import to_paper
from pipeline.reconcile import resend_verified
from pipeline.storage import member_contacts
from tests.support.desk import RUN_ID, SmallDesk, ledger_text, small_desk

S = Status
NEW_ADDRESS = "Jordan.NewBox@Example.net"
WHY = "member called, confirmed on the phone"
CHANGEABLE = (S.VERIFICATION_PENDING, S.RETRY_SCHEDULED, S.VERIFIED)


@pytest.fixture
def desk(tmp_path: Path, ledger_url: str) -> Iterator[SmallDesk]:
    made = small_desk(tmp_path / "ws", [S.VERIFICATION_PENDING, S.RETRY_SCHEDULED, S.VERIFIED, S.SENT,
                                        S.DELIVERED, S.PAPER_QUEUED, S.MAILED, S.COMPOSED, S.QUEUED],
                      ledger_url=ledger_url)
    yield made
    made.ctx.ledger.close()


def _events(desk: SmallDesk, status: Status) -> list[str]:
    return [e["event"] for e in desk.ctx.ledger.timeline(desk.statements[status])]


def _status(desk: SmallDesk, status: Status) -> str:
    return desk.ctx.ledger.statement(desk.statements[status])["status"]  # type: ignore[index,no-any-return]


def _request(desk: SmallDesk, status: Status = S.VERIFICATION_PENDING, actor: str = "agent.alice"):  # type: ignore[no-untyped-def]
    return request_address_change(desk.ctx, desk.statements[status], NEW_ADDRESS, actor=actor, reason=WHY,
                                  verified_via="phone", source="10.1.2.3")


def test_an_agents_address_change_waits_for_a_supervisor_sealed(desk: SmallDesk) -> None:
    sid = desk.statements[S.VERIFICATION_PENDING]
    change = _request(desk)
    assert change.email_masked == "j***@e***.net" and change.requested_by == "agent.alice"
    assert pending_changes(desk.ctx) == [change]
    view = statement_view(desk.ctx, sid)
    assert view is not None and view.pending_change == change and view.queue == "approval"
    assert view.status == "verification_pending"  # nothing moves before the approval
    assert view.entries[-1].event == Event.ADDRESS_CHANGE_REQUESTED
    assert ("reason", WHY) in view.entries[-1].details and ("by", "agent.alice") in view.entries[-1].details
    stored = ledger_text(desk.ctx.ledger).lower()
    assert NEW_ADDRESS.lower() not in stored and "newbox" not in stored  # sealed, never in clear
    entry = entries(desk.ctx.ledger, statement_id=sid)[0]
    assert (entry.action, entry.actor, entry.source, entry.reason) == (
        "address_change_requested", "agent.alice", "10.1.2.3", WHY)


def test_the_person_who_entered_a_change_cannot_decide_it(desk: SmallDesk) -> None:
    change = _request(desk, actor="sam.super")
    for approve in (True, False):
        with pytest.raises(ActionRefused, match="two-person rule"):
            decide_address_change(desk.ctx, change.change_id, actor=" Sam.Super ", approve=approve,
                                  reason="looks right to me", source="10.1.2.4")
    assert pending_changes(desk.ctx) == [change]
    assert _status(desk, S.VERIFICATION_PENDING) == "verification_pending"


@pytest.mark.parametrize("waiting", [S.VERIFICATION_PENDING, S.RETRY_SCHEDULED, S.VERIFIED])
def test_an_approved_address_reenters_the_resend_path(desk: SmallDesk, waiting: Status) -> None:
    sid = desk.statements[waiting]
    change = _request(desk, waiting)
    decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True,
                          reason="call recording checked", source="10.1.2.4")
    assert _status(desk, waiting) == "verified"
    assert member_contacts(desk.ctx.settings, RUN_ID)[desk.member_of(sid)][0] == NEW_ADDRESS
    assert pending_changes(desk.ctx) == []
    row = desk.ctx.ledger.fetch_one("desk_change", change_id=change.change_id)
    assert row is not None and (row["state"], row["decided_by"], row["sealed_address"]) == (
        "approved", "sam.super", None)
    assert Event.ADDRESS_CHANGE_APPROVED in _events(desk, waiting)
    assert _events(desk, waiting)[-1] == Event.ADDRESS_VERIFIED
    # the reconcile cycle's own resend step sends it now, to the confirmed address
    assert resend_verified(desk.ctx)["resend_queued"] == 1
    assert _status(desk, waiting) == "queued" and _events(desk, waiting)[-1] == Event.RESEND_QUEUED
    actions = [e.action for e in entries(desk.ctx.ledger, statement_id=sid)]
    assert actions[:2] == ["address_change_approved", "address_change_requested"]


def test_an_approval_lifts_an_email_block_on_the_new_address(desk: SmallDesk) -> None:
    secret = desk.ctx.settings.verp_secret.get_secret_value()
    suppress(desk.ctx.ledger, NEW_ADDRESS, cause="user_unknown", statement_id=None, secret=secret)
    change = _request(desk)
    decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True,
                          reason="member confirmed it works now", source="10.1.2.4")
    assert not is_suppressed(desk.ctx.ledger, NEW_ADDRESS, secret)


def test_a_rejected_change_erases_the_address_and_changes_nothing_else(desk: SmallDesk) -> None:
    sid = desk.statements[S.RETRY_SCHEDULED]
    before = desk.ctx.ledger.statement(sid)
    change = _request(desk, S.RETRY_SCHEDULED)
    decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=False,
                          reason="caller could not pass security", source="10.1.2.4")
    assert desk.ctx.ledger.statement(sid) == before
    assert member_contacts(desk.ctx.settings, RUN_ID)[desk.member_of(sid)][0] == desk.emails[sid]
    row = desk.ctx.ledger.fetch_one("desk_change", change_id=change.change_id)
    assert row is not None and (row["state"], row["sealed_address"]) == ("rejected", None)
    assert _events(desk, S.RETRY_SCHEDULED)[-1] == Event.ADDRESS_CHANGE_REJECTED
    with pytest.raises(ActionRefused, match="already rejected by sam.super"):
        decide_address_change(desk.ctx, change.change_id, actor="other.super", approve=True,
                              reason="second thoughts", source=None)


@pytest.mark.parametrize("status", [S.SENT, S.DELIVERED, S.PAPER_QUEUED, S.MAILED, S.COMPOSED, S.QUEUED])
def test_an_address_change_is_refused_where_it_cannot_be_used(desk: SmallDesk, status: Status) -> None:
    before = ledger_text(desk.ctx.ledger)
    with pytest.raises(ActionRefused, match="it is now: "):
        _request(desk, status)
    assert ledger_text(desk.ctx.ledger) == before


@pytest.mark.parametrize(("change", "refusal"), [
    ({"new_address": "not an address"}, "not a valid email address"),
    ({"new_address": "a@b.example, c@d.example"}, "not a valid email address"),
    ({"verified_via": "a hunch"}, "how the member confirmed"),
    ({"reason": "ok"}, "(?i)give a reason"),
    ({"actor": "  "}, "name of who"),
])
def test_an_address_change_needs_an_address_a_channel_a_reason_and_an_actor(
        desk: SmallDesk, change: dict[str, str], refusal: str) -> None:
    given = {"new_address": NEW_ADDRESS, "actor": "agent.alice", "reason": WHY, "verified_via": "phone",
             **change}
    with pytest.raises(ActionRefused, match=refusal):
        request_address_change(desk.ctx, desk.statements[S.VERIFICATION_PENDING], given["new_address"],
                               actor=given["actor"], reason=given["reason"],
                               verified_via=given["verified_via"], source=None)
    assert pending_changes(desk.ctx) == []


def test_one_change_at_a_time_per_statement(desk: SmallDesk) -> None:
    _request(desk)
    with pytest.raises(ActionRefused, match="already waits for a supervisor"):
        _request(desk, actor="agent.bob")
    assert len(pending_changes(desk.ctx)) == 1


def test_an_approval_is_refused_once_the_statement_has_moved_on(desk: SmallDesk) -> None:
    change = _request(desk)
    timed_out = Transition(change.statement_id, S.VERIFICATION_FAILED, Event.VERIFICATION_TIMED_OUT)
    desk.ctx.ledger.apply([timed_out])
    with pytest.raises(ActionRefused, match="reject this change"):
        decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True, reason="too late?",
                              source=None)
    assert [c.change_id for c in pending_changes(desk.ctx)] == [change.change_id]


@pytest.mark.parametrize("waiting", [S.RETRY_SCHEDULED, S.VERIFIED])
def test_cancel_resend_stops_a_statement_waiting_to_be_emailed_again(desk: SmallDesk,
                                                                     waiting: Status) -> None:
    from pipeline.stages.reconcile import requeue_due_stage

    sid = desk.statements[waiting]
    cancel_resend(desk.ctx, sid, actor="agent.alice", reason="member says the address is wrong",
                  source="10.1.2.3")
    assert _status(desk, waiting) == "verification_pending"
    view = statement_view(desk.ctx, sid)
    assert view is not None and view.queue == "verification"
    assert view.entries[-1].event == Event.RESEND_CANCELLED
    desk.now.advance(days=1)  # the retry's time has come: this one is not emailed
    requeue_due_stage(desk.ctx)
    resend_verified(desk.ctx)
    assert _status(desk, waiting) == "verification_pending"
    assert entries(desk.ctx.ledger, statement_id=sid)[0].action == "resend_cancelled"


@pytest.mark.parametrize("status", [S.SENT, S.QUEUED, S.VERIFICATION_PENDING, S.PAPER_QUEUED, S.DELIVERED])
def test_cancel_resend_is_refused_when_nothing_waits_to_be_resent(desk: SmallDesk, status: Status) -> None:
    with pytest.raises(ActionRefused, match="only a statement waiting for a retry or a resend"):
        cancel_resend(desk.ctx, desk.statements[status], actor="agent.alice", reason="just in case",
                      source=None)
    assert _status(desk, status) == status.value


@pytest.mark.parametrize("status", [S.SENT, S.RETRY_SCHEDULED, S.VERIFICATION_PENDING, S.VERIFIED, S.QUEUED])
def test_move_to_paper_queues_it_for_the_next_print_batch(desk: SmallDesk, status: Status) -> None:
    sid = desk.statements[status]
    move_to_paper(desk.ctx, sid, actor="agent.alice", reason="member asked for a letter", source="10.1.2.3")
    row = desk.ctx.ledger.statement(sid)
    assert row is not None and (row["status"], row["paper_reason"]) == ("paper_queued", "support_request")
    assert _events(desk, status)[-1] == Event.MOVED_TO_PAPER
    assert sid in [c["statement_id"] for c in desk.ctx.ledger.fetch(  # the paper run's next batch
        "paper_candidates", cutoff=(desk.now() + timedelta(hours=1)).isoformat())]
    view = statement_view(desk.ctx, sid)
    assert view is not None and view.queue == "paper"
    assert ("reason", "member asked for a letter") in view.entries[-1].details


@pytest.mark.parametrize(("status", "refusal"), [
    (S.PAPER_QUEUED, "on paper already"), (S.MAILED, "on paper already"),
    (S.DELIVERED, "not yet delivered"), (S.COMPOSED, "not yet delivered"),
])
def test_move_to_paper_is_refused_where_it_makes_no_sense(desk: SmallDesk, status: Status,
                                                         refusal: str) -> None:
    with pytest.raises(ActionRefused, match=refusal):
        move_to_paper(desk.ctx, desk.statements[status], actor="agent.alice", reason="member asked for paper",
                      source=None)
    assert _status(desk, status) == status.value


def test_move_to_paper_is_refused_after_a_returned_letter(desk: SmallDesk) -> None:
    sid = desk.statements[S.MAILED]
    desk.ctx.ledger.apply([Transition(sid, S.VERIFICATION_PENDING, Event.RETURNED_TO_SENDER,
                                      {"event": "returned_to_sender"})])
    with pytest.raises(ActionRefused, match="letter came back"):
        move_to_paper(desk.ctx, sid, actor="agent.alice", reason="print it again", source=None)


def test_lift_suppression_lifts_the_block_on_the_statements_address(desk: SmallDesk) -> None:
    sid = desk.statements[S.PAPER_QUEUED]
    secret = desk.ctx.settings.verp_secret.get_secret_value()
    suppress(desk.ctx.ledger, desk.emails[sid], cause="complaint", statement_id="another-statement",
             secret=secret)
    view = statement_view(desk.ctx, sid)
    assert view is not None and view.suppressed
    assert lift_suppression(desk.ctx, sid, actor="sam.super", reason="member unsubscribed the spam report",
                            source="10.1.2.4") == 1
    assert not is_suppressed(desk.ctx.ledger, desk.emails[sid], secret)
    view = statement_view(desk.ctx, sid)
    assert view is not None and not view.suppressed and view.entries[-1].event == Event.SUPPRESSION_LIFTED
    entry = entries(desk.ctx.ledger, statement_id=sid)[0]
    assert (entry.action, entry.actor, entry.source) == ("suppression_lifted", "sam.super", "10.1.2.4")
    with pytest.raises(ActionRefused, match="no email block"):
        lift_suppression(desk.ctx, sid, actor="sam.super", reason="once more please", source=None)


def test_an_unknown_statement_is_refused_in_words(desk: SmallDesk) -> None:
    with pytest.raises(DeskError, match="no statement with that id"):
        move_to_paper(desk.ctx, "st-2026-11-nope", actor="agent.alice", reason="member asked", source=None)


# -- reasons -----------------------------------------------------------------------------------


def _every_action(desk: SmallDesk, reason: str) -> list[Callable[[], object]]:
    pending = _request(desk, S.RETRY_SCHEDULED)
    return [
        lambda: request_address_change(desk.ctx, desk.statements[S.VERIFICATION_PENDING], NEW_ADDRESS,
                                       actor="agent.alice", reason=reason, verified_via="phone", source=None),
        lambda: decide_address_change(desk.ctx, pending.change_id, actor="sam.super", approve=True,
                                      reason=reason, source=None),
        lambda: decide_address_change(desk.ctx, pending.change_id, actor="sam.super", approve=False,
                                      reason=reason, source=None),
        lambda: move_to_paper(desk.ctx, desk.statements[S.SENT], actor="agent.alice", reason=reason,
                              source=None),
        lambda: cancel_resend(desk.ctx, desk.statements[S.VERIFIED], actor="agent.alice", reason=reason,
                              source=None),
        lambda: lift_suppression(desk.ctx, desk.statements[S.PAPER_QUEUED], actor="sam.super", reason=reason,
                                 source=None),
    ]


@pytest.mark.parametrize("reason", [
    "member said use jordan.newbox@example.net", "caller gave DOB 04/12/1961 to pass security",
    "called from 555-867-5309", "member id 123456789 confirmed"])
def test_a_reason_holding_the_members_details_is_refused_and_nothing_is_written(
        desk: SmallDesk, reason: str) -> None:
    secret = desk.ctx.settings.verp_secret.get_secret_value()
    sid = desk.statements[S.PAPER_QUEUED]
    suppress(desk.ctx.ledger, desk.emails[sid], cause="complaint", statement_id=sid, secret=secret)
    actions = _every_action(desk, reason)
    before = ledger_text(desk.ctx.ledger)
    for action in actions:
        with pytest.raises(ReasonRefused, match="must not hold the member's details"):
            action()
    assert ledger_text(desk.ctx.ledger) == before  # no timeline, no audit entry, no change
    assert len(pending_changes(desk.ctx)) == 1


# -- an approval: atomic, serialised ------------------------------------------------------------


def test_an_approval_is_all_or_nothing_when_the_statement_moves_meanwhile(
        desk: SmallDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.desk.actions as actions

    change = _request(desk)
    sid = change.statement_id
    real_unseal = actions.unseal

    def unseal_while_the_sweeper_moves_it(token: str, secret: str) -> str:
        desk.ctx.ledger.apply([Transition(sid, S.VERIFICATION_FAILED, Event.VERIFICATION_TIMED_OUT)])
        return real_unseal(token, secret)

    monkeypatch.setattr(actions, "unseal", unseal_while_the_sweeper_moves_it)
    events_before = _events(desk, S.VERIFICATION_PENDING)
    with pytest.raises(ActionRefused, match="changed meanwhile"):
        decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True,
                              reason="call recording checked", source=None)
    assert _status(desk, S.VERIFICATION_PENDING) == "verification_failed"
    assert _events(desk, S.VERIFICATION_PENDING) == [*events_before, Event.VERIFICATION_TIMED_OUT]
    assert member_contacts(desk.ctx.settings, RUN_ID)[desk.member_of(sid)][0] == desk.emails[sid]
    assert [c.change_id for c in pending_changes(desk.ctx)] == [change.change_id]  # for the sweep to close
    assert [e.action for e in entries(desk.ctx.ledger, statement_id=sid)] == ["address_change_requested"]


def test_an_approval_whose_address_cannot_be_written_says_so_and_nothing_is_emailed(desk: SmallDesk) -> None:
    change = _request(desk, S.RETRY_SCHEDULED)
    contacts = desk.ctx.settings.work_dir / RUN_ID / "members.parquet"
    kept = contacts.read_bytes()
    contacts.unlink()
    with pytest.raises(ChangeNotApplied, match="could not be written to the run's contact file.*operator"):
        decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True,
                              reason="call recording checked", source=None)
    row = desk.ctx.ledger.fetch_one("desk_change", change_id=change.change_id)
    assert row is not None and (row["state"], row["sealed_address"]) == ("approved", None)
    assert _status(desk, S.RETRY_SCHEDULED) == "verified"
    view = statement_view(desk.ctx, change.statement_id)
    assert view is not None and view.entries[-1].event == Event.ADDRESS_CHANGE_NOT_APPLIED
    assert ("error", "contact_file_not_written") in view.entries[-1].details
    contacts.write_bytes(kept)  # the file is back, still with the old address: the resend waits
    assert resend_verified(desk.ctx)["resend_queued"] == 0
    assert _status(desk, S.RETRY_SCHEDULED) == "verified"


def test_two_approvals_in_one_run_at_once_both_reach_the_contact_file(
        desk: SmallDesk, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    addresses = {status: f"new.{status.value}@example.net" for status in CHANGEABLE}
    changes = [request_address_change(desk.ctx, desk.statements[status], address, actor="agent.alice",
                                      reason=WHY, verified_via="phone", source=None)
               for status, address in addresses.items()]
    real_read = pq.ParquetFile.read_row_group

    def slow_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.05)  # each reads the file well before the others write it back
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "read_row_group", slow_read)
    start, failures = threading.Barrier(len(changes)), []

    def approve(change_id: str) -> None:
        start.wait()
        try:
            decide_address_change(desk.ctx, change_id, actor="sam.super", approve=True,
                                  reason="call recording checked", source=None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=approve, args=(c.change_id,)) for c in changes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    contacts = member_contacts(desk.ctx.settings, RUN_ID)
    for status, address in addresses.items():
        assert contacts[desk.member_of(desk.statements[status])][0] == address
        assert _status(desk, status) == "verified"
    assert resend_verified(desk.ctx)["resend_queued"] == len(CHANGEABLE)


# -- a change the statement can no longer use --------------------------------------------------


def _closed(desk: SmallDesk, change_id: str) -> dict[str, Any]:
    row = desk.ctx.ledger.fetch_one("desk_change", change_id=change_id)
    assert row is not None and row["state"] == "expired" and row["sealed_address"] is None
    return row


@pytest.mark.parametrize("take_it_off", ["move_to_paper", "cancel_resend"])
def test_an_action_that_takes_the_statement_off_the_address_closes_its_change(
        desk: SmallDesk, take_it_off: str) -> None:
    change = _request(desk, S.RETRY_SCHEDULED)
    action = {"move_to_paper": move_to_paper, "cancel_resend": cancel_resend}[take_it_off]
    action(desk.ctx, change.statement_id, actor="agent.bob", reason="member asked us to stop", source=None)
    assert _closed(desk, change.change_id)["decided_by"] == "agent.bob"
    assert pending_changes(desk.ctx) == []
    view = statement_view(desk.ctx, change.statement_id)
    assert view is not None and view.pending_change is None and view.queue != "approval"
    assert view.entries[-1].event == Event.ADDRESS_CHANGE_EXPIRED
    with pytest.raises(ActionRefused, match="expired .*enter it again"):
        decide_address_change(desk.ctx, change.change_id, actor="sam.super", approve=True,
                              reason="call recording checked", source=None)
    assert member_contacts(desk.ctx.settings, RUN_ID)[desk.member_of(change.statement_id)][0] != NEW_ADDRESS


def test_the_sweep_closes_changes_whose_statement_moved_on(desk: SmallDesk) -> None:
    from pipeline.stages import sweep_stage

    stale, fresh = _request(desk), _request(desk, S.RETRY_SCHEDULED)
    timed_out = Transition(stale.statement_id, S.VERIFICATION_FAILED, Event.VERIFICATION_TIMED_OUT)
    desk.ctx.ledger.apply([timed_out, to_paper(stale.statement_id, "verification_timed_out")])
    assert sweep_stage(desk.ctx).get("address_changes_expired") == 1
    assert _closed(desk, stale.change_id)["decision_reason"] == "the statement is now: waiting to be printed"
    assert [c.change_id for c in pending_changes(desk.ctx)] == [fresh.change_id]
    view = statement_view(desk.ctx, stale.statement_id)
    assert view is not None and view.entries[-1].event == Event.ADDRESS_CHANGE_EXPIRED
    assert ("by", "eob reconcile sweep") in view.entries[-1].details
    assert "address_changes_expired" not in sweep_stage(desk.ctx)


def test_a_change_undecided_past_the_verification_window_expires(desk: SmallDesk) -> None:
    change = _request(desk, S.VERIFIED)
    desk.now.advance(days=desk.ctx.settings.verification_days - 0.1)
    assert expire_changes(desk.ctx) == 0
    desk.now.advance(days=0.2)
    assert expire_changes(desk.ctx) == 1
    assert "not decided within 7 days" in _closed(desk, change.change_id)["decision_reason"]
    assert _status(desk, S.VERIFIED) == "verified"  # the statement itself is the sweeper's to move
    assert NEW_ADDRESS.lower() not in ledger_text(desk.ctx.ledger).lower()
