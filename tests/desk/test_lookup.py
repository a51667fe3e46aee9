"""One statement as support sees it, on SQLite and PostgreSQL: every status's queue, next action
and date from the pipeline's own rules, the delivery deadline, the whole timeline in plain words,
and nothing of the member beyond masked ids and a masked email (the canary is planted in the
member file to prove it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pipeline.desk.lookup import SUBSCRIBER, next_due, statement_view
from pipeline.desk.timeline import CATEGORY_WORDS, LABELS, STATUS_LABELS, details, label
from pipeline.ledger import Event, Status
from pipeline.outcomes.classify import Category
from pipeline.recipients import mask_member_id
from pipeline.settings import Settings
from tests.support.canary import CANARY_DOB, CANARY_STRINGS, HIDDEN_DOB, HIDDEN_EMAIL, HIDDEN_PROVIDER
from tests.support.desk import BUILT_AT, DeskWorld

S = Status
DEADLINE = BUILT_AT + timedelta(hours=Settings().delivery_deadline_hours)
CUTOFF = DEADLINE - timedelta(hours=Settings().bounce_quiet_hours)


def test_every_event_status_and_bounce_category_has_plain_words() -> None:
    assert set(LABELS) == set(Event)
    assert set(STATUS_LABELS) == set(Status)
    assert set(CATEGORY_WORDS) == set(Category)
    assert all(words and "_" not in words for words in [*LABELS.values(), *STATUS_LABELS.values()])


@pytest.mark.parametrize(("status", "queue", "action", "at"), [
    (S.COMPOSED, None, "Make the PDF", DEADLINE - timedelta(hours=1)),
    (S.RENDERED, "paper", "Joins the print queue", None),  # the world's is a paper statement
    (S.QUEUED, None, "Send the email", CUTOFF),
    (S.BOUNCED, None, "The bounce is routed", CUTOFF),
    (S.SENT, None, "Counted as delivered", BUILT_AT + timedelta(hours=Settings().bounce_quiet_hours)),
    (S.DELIVERED, None, None, None),
    (S.RETRY_SCHEDULED, "retry", "Email again", None),  # its own time: checked below
    (S.VERIFICATION_PENDING, "verification", "Confirm the email address",
     BUILT_AT + timedelta(days=Settings().verification_days)),
    (S.VERIFIED, "retry", "Email again to the confirmed address", CUTOFF),
    (S.PAPER_QUEUED, "paper", "Printed in the day's print batch",
     BUILT_AT.replace(hour=Settings().paper_cutoff_hour)),
    (S.PAPER_EXCEPTION, "paper", "Correct the mailing address",
     BUILT_AT + timedelta(days=Settings().paper_mail_days)),
    (S.BATCHED, "paper", "The print vendor prints and mails it",
     BUILT_AT + timedelta(days=Settings().paper_mail_days)),
    (S.MAILED, None, None, None),
    (S.FAILED, None, None, None),
    (S.SUPERSEDED, None, None, None),
])
def test_each_status_shows_its_queue_next_action_and_date(
        world: DeskWorld, status: Status, queue: str | None, action: str | None, at: datetime | None) -> None:
    view = statement_view(world.ctx, world.statements[status])
    assert view is not None
    assert (view.status, view.queue) == (status.value, queue)
    assert view.status_label == STATUS_LABELS[status]
    assert view.delivery_deadline == DEADLINE
    if action is None:
        assert view.next_action is None and view.next_action_at is None
        return
    assert view.next_action is not None and view.next_action.startswith(action)
    if at is not None:
        assert view.next_action_at == at
    if status is S.RETRY_SCHEDULED:
        row = world.ctx.ledger.statement(view.statement_id)
        assert row is not None and view.next_action_at == datetime.fromisoformat(row["next_attempt_at"])


def test_the_timeline_is_whole_and_in_plain_words(world: DeskWorld) -> None:
    view = statement_view(world.ctx, world.statements[S.RETRY_SCHEDULED])
    assert view is not None
    timeline = world.ctx.ledger.timeline(view.statement_id)
    assert [e.event for e in view.entries] == [e["event"] for e in timeline]
    assert [e.label for e in view.entries] == [
        "Statement made from the month's claims", "PDF made", "Waiting to be emailed",
        "Emailed (the mail relay accepted it)", "Bounced: mailbox full", "Email retry scheduled"]
    assert [e.status for e in view.entries][-1] == "retry_scheduled"
    bounced = view.entries[-2]
    assert ("sending pool", "pool_a") in bounced.details and ("bounce", "mailbox full") in bounced.details
    assert not any(name == "reason" for name, _ in bounced.details), "a server's reply is never shown"


def test_the_view_holds_nothing_of_the_member_beyond_masked_ids(world: DeskWorld) -> None:
    shown = "\n".join(repr(statement_view(world.ctx, sid)) for sid in world.by_member.values())
    hidden = [*CANARY_STRINGS, CANARY_DOB, HIDDEN_DOB, HIDDEN_EMAIL, HIDDEN_PROVIDER]
    for member, row in world.members.items():
        hidden += [member, row["email"], row["address_line1"], row["last_name"], row["date_of_birth"]]
        hidden += world.claims.get(member, [])
    for recipient in world.by_member:
        hidden.append(recipient)
    leaked = sorted({value for value in hidden if value and value in shown})
    assert not leaked
    assert "user unknown" not in shown and "@pool_a.example" not in shown  # the bounce's own text
    canary = statement_view(world.ctx, world.canary_statement)
    assert canary is not None
    assert (canary.recipient, canary.member_masked) == (SUBSCRIBER, mask_member_id(world.canary_id))
    assert canary.email_masked == "***@g***.com" and canary.member_id == world.canary_id


def test_an_unknown_statement_is_none(world: DeskWorld) -> None:
    assert statement_view(world.ctx, "st-2026-11-0000000000000000") is None


def test_an_ignored_event_says_it_changed_nothing() -> None:
    words = label("bounced_ignored", {"category": "user_unknown"})
    assert words == "Bounced: mailbox does not exist — no change: the statement had already moved on"


def test_details_show_only_the_whitelist_and_hide_addresses_in_what_staff_typed() -> None:
    shown = dict(details(Event.RETRY_SCHEDULED, {
        "attempt": 1, "not_before": "2026-12-01T06:15:00+00:00", "reason": "452 <j.doe@example.org> full",
        "address_hash": "ab" * 8, "unknown_key": "x"}))
    assert shown == {"attempt": "1", "not before": "2026-12-01 06:15"}
    staff = dict(details(Event.MOVED_TO_PAPER, {"actor": "agent.alice",
                                                "reason": "member said j.doe@example.org is old"}))
    assert staff == {"by": "agent.alice", "reason": "member said [address hidden] is old"}
    notice = dict(details(Event.NOTICE_SENT, {"claim_id": "CM00000000126110301", "pool": "pool_b"}))
    assert notice == {"claim": mask_member_id("CM00000000126110301"), "sending pool": "pool_b"}
    paper = dict(details(Event.PAPER_QUEUED, {"reason": "retries_exhausted"}))
    assert paper == {"reason": "email retries used up"}


def _row(status: Status, changed: datetime, **extra: object) -> dict[str, object]:
    return {"status": status.value, "run_started_at": BUILT_AT.isoformat(), "updated_at": changed.isoformat(),
            "next_attempt_at": None, **extra}


def test_next_due_follows_the_sweepers_deadlines_near_the_end_of_the_window() -> None:
    settings = Settings()
    rendered = next_due(_row(S.RENDERED, BUILT_AT, channel="email"), [], settings, BUILT_AT)
    assert (rendered.queue, rendered.at) == (None, CUTOFF)
    assert (rendered.action or "").startswith("Send the email")
    late = CUTOFF + timedelta(hours=2)
    sent = next_due(_row(S.SENT, late), [], settings, late)
    assert (sent.action or "").startswith("Goes on paper") and sent.at == DEADLINE - timedelta(hours=1)
    after_cutoff = (CUTOFF + timedelta(hours=1)).isoformat()
    retry = next_due(_row(S.RETRY_SCHEDULED, BUILT_AT, next_attempt_at=after_cutoff), [], settings, BUILT_AT)
    assert (retry.queue, retry.action, retry.at) == ("retry", "Goes on paper at the send cut-off", CUTOFF)
    verify = next_due(_row(S.VERIFICATION_PENDING, CUTOFF - timedelta(days=1)), [], settings, BUILT_AT)
    assert verify.at == CUTOFF
    returned = next_due(_row(S.VERIFICATION_PENDING, BUILT_AT),
                        [{"event": "returned_to_sender", "at": BUILT_AT.isoformat(), "to_status": None}],
                        settings, BUILT_AT)
    assert (returned.action or "").startswith("Confirm the mailing address")
    evening = BUILT_AT.replace(hour=20, tzinfo=UTC)
    paper = next_due(_row(S.PAPER_QUEUED, evening), [], settings, evening)
    assert paper.at == (evening + timedelta(days=1)).replace(hour=settings.paper_cutoff_hour)
    soon = (BUILT_AT + timedelta(hours=1)).isoformat()
    waiting = next_due(_row(S.RETRY_SCHEDULED, BUILT_AT, next_attempt_at=soon), [], settings, BUILT_AT,
                       pending=True)
    assert waiting.queue == "approval" and waiting.at == BUILT_AT + timedelta(hours=1)
    assert (waiting.action or "").startswith("A supervisor approves or rejects the new email address")


def test_the_desk_package_names_resolve_and_a_lookup_loads_no_sign_in_or_page_machinery() -> None:
    import subprocess
    import sys

    import pipeline.desk as desk
    from tests.support import REPO

    assert all(getattr(desk, name) is not None for name in desk.__all__)
    probe = ("import sys, pipeline.desk.lookup, pipeline.desk.search, pipeline.desk.actions; "
             "print(' '.join(sorted(m for m in sys.modules if '.' not in m)))")
    loaded = set(subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.split())
    assert not loaded & {"argon2", "jinja2", "fastapi", "numba"}
