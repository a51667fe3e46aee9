"""The canary member's name, date of birth, postal address and email (planted in the member file the
ledger was built from) appear in no page, URL, log line or audit entry of a whole desk session:
every search key, the statement pages, an address change and its approval, the audit log, the
access review, the reports and the users page."""

from __future__ import annotations

import logging
import re
from datetime import date

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from pipeline.web.csrf import FORM_FIELD
from tests.support.canary import CANARY_STRINGS
from tests.web.conftest import Desk, Member, csrf_of

NEW_ADDRESS = "zebedee.canaryphi.new@gmail.com"


def _dob_forms(dob: str) -> list[str]:
    day = date.fromisoformat(dob)
    return [dob, day.strftime("%m/%d/%Y"), day.strftime("%d/%m/%Y"), day.strftime("%m%d%Y"),
            day.strftime("%Y%m%d")]


def _canaries(member: Member, *, first_name: bool = True) -> list[str]:
    """What identifies the member (a generated first name like "Mark" is left out: it is also a word)."""
    return [*([member.first_name] if first_name else []), member.last_name, member.street, member.email,
            member.email.split("@")[0], *_dob_forms(member.date_of_birth)]


class Recorder:
    """Every page body and every URL the desk sent or sent the browser to."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def keep(self, response) -> None:  # type: ignore[no-untyped-def]
        self.seen += [str(response.url), response.headers.get("location", ""), response.text]
        for name, value in response.headers.items():
            self.seen.append(f"{name}: {value}")


def _session(desk: Desk, recorder: Recorder) -> None:
    canary = desk.world.canary
    sid = desk.world.statements["verification"]

    def go(client: TestClient, method: str, url: str, **data: object) -> None:
        if method == "POST":
            data[FORM_FIELD] = csrf_of(client)
        response = client.request(method, url, data=data or None)
        recorder.keep(response)
        if response.status_code == 303:
            recorder.keep(client.get(response.headers["location"]))

    agent, supervisor, auditor, finance, admin = (desk.client() for _ in range(5))
    for client, name in ((agent, "agent"), (supervisor, "supervisor2"), (auditor, "auditor"),
                         (finance, "finance"), (admin, "admin")):
        assert desk.sign_in(client, name) == 303
    for key, term in (("statement", sid), ("member", canary.member_id), ("claim", canary.claim_id),
                      ("email", canary.email), ("email", desk.world.paper_canary.email or "none@x.org"),
                      ("member", desk.world.paper_canary.member_id)):
        go(agent, "POST", "/search", key=key, term=term, reference="CALL-7", purpose="Statement not received")
    for state_sid in desk.world.statements.values():
        go(agent, "GET", f"/statements/{state_sid}")
    go(agent, "POST", f"/statements/{sid}/address-change", new_address=NEW_ADDRESS,
       confirm_address=NEW_ADDRESS, verified_via="phone", reason="member called from the number on file")
    go(supervisor, "GET", "/approvals")
    change = desk.ctx.ledger.fetch("desk_pending_changes")[0]["change_id"]
    go(supervisor, "POST", f"/approvals/{change}", decision="approve", reason="checked the recording")
    go(supervisor, "GET", f"/statements/{sid}")
    go(agent, "POST", f"/statements/{desk.world.statements['paper']}/paper", reason="member asked for paper")
    go(auditor, "GET", "/audit")
    go(auditor, "GET", "/audit?check=1")
    go(auditor, "GET", f"/audit?statement={sid}")
    go(auditor, "GET", "/audit/review?since=2026-11-01")
    go(finance, "GET", "/reports")
    go(admin, "GET", "/users")
    go(agent, "POST", "/signout")


@pytest.mark.parametrize("level", [logging.DEBUG])
def test_no_canary_in_pages_urls_logs_or_the_audit_log(desk: Desk, caplog: pytest.LogCaptureFixture,
                                                       level: int) -> None:
    caplog.set_level(level)
    recorder = Recorder()
    _session(desk, recorder)
    canaries = (_canaries(desk.world.canary) + _canaries(desk.world.paper_canary, first_name=False)
                + CANARY_STRINGS)
    canaries += [NEW_ADDRESS, NEW_ADDRESS.split("@")[0]]
    canaries = [c for c in canaries if c and len(c) >= 4]
    pages = "\n".join(recorder.seen)
    assert "Address confirmed, waiting to be emailed again" in pages, "the session did what it says"
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    with desk.ctx.ledger.begin() as conn:
        audit = "\n".join(str(tuple(row)) for row in conn.execute(text("SELECT * FROM audit_log")))
        sessions = "\n".join(str(tuple(row)) for row in conn.execute(text("SELECT * FROM web_sessions")))
    assert audit.count("search") >= 6
    for canary in canaries:
        pattern = re.compile(re.escape(canary), re.IGNORECASE)
        assert not pattern.search(pages), f"{canary!r} on a page, in a URL or a header"
        assert not pattern.search(logged), f"{canary!r} in a log line"
        assert not pattern.search(audit), f"{canary!r} in the audit log"
        assert not pattern.search(sessions), f"{canary!r} in the sessions table"


def _everything_kept(desk: Desk) -> str:
    """The audit log, every statement's timeline and the address changes, as text."""
    with desk.ctx.ledger.begin() as conn:
        return "\n".join(str(tuple(row)) for table in ("audit_log", "statement_events", "address_changes")
                         for row in conn.execute(text(f"SELECT * FROM {table}")))  # noqa: S608


@pytest.mark.parametrize("kind", ["email", "birth date", "birth date (US)"])
def test_a_reason_holding_the_members_details_is_refused_and_kept_nowhere(desk: Desk, kind: str) -> None:
    canary = desk.world.canary
    detail = {"email": canary.email, "birth date": canary.date_of_birth,
              "birth date (US)": _dob_forms(canary.date_of_birth)[1]}[kind]
    reason = f"member confirmed {detail} on the phone"
    sid, sent = desk.world.statements["verification"], desk.world.statements["sent"]
    agent, supervisor = desk.as_user("agent"), desk.as_user("supervisor")
    before = {s: desk.ctx.ledger.statement(s)["status"] for s in (sid, sent)}  # type: ignore[index]

    def act(client: TestClient, url: str, **form: str) -> str:
        response = client.post(url, data={FORM_FIELD: csrf_of(client), **form})
        assert response.status_code == 303, url
        return client.get(response.headers["location"]).text

    pages = [
        act(agent, f"/statements/{sent}/paper", reason=reason),
        act(agent, f"/statements/{sid}/address-change", new_address=NEW_ADDRESS, confirm_address=NEW_ADDRESS,
            verified_via="phone", reason=reason),
    ]
    act(agent, f"/statements/{sid}/address-change", new_address=NEW_ADDRESS, confirm_address=NEW_ADDRESS,
        verified_via="phone", reason="member called from the number on file")
    change = desk.ctx.ledger.fetch("desk_pending_changes")[0]["change_id"]
    pages.append(act(supervisor, f"/approvals/{change}", decision="approve", reason=reason))
    for page in pages:
        assert "Nothing was done: a reason must not hold the member" in page
        assert "say why in words" in page and detail not in page
    assert {s: desk.ctx.ledger.statement(s)["status"] for s in (sid, sent)} == before  # type: ignore[index]
    assert len(desk.ctx.ledger.fetch("desk_pending_changes")) == 1, "the refused approval left it waiting"
    for page in (agent.get(f"/statements/{sent}").text, agent.get(f"/statements/{sid}").text,
                 desk.as_user("auditor").get("/audit").text):
        assert detail not in page
    assert detail.lower() not in _everything_kept(desk).lower()
