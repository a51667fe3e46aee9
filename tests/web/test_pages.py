"""What support staff do on the desk, page by page: search by each key, read a statement, act on
it with a reason, approve an address change (two-person rule), read the audit log, manage users
(the run reports: test_reports.py)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from pipeline.desk.audit import entries, verify
from pipeline.desk.contacts import has_open_contact
from pipeline.web.csrf import FORM_FIELD
from tests.web.conftest import Desk, csrf_of

CALL = {"reference": "CALL-0042", "purpose": "Statement not received"}


def _search(client: TestClient, key: str, term: str, **form: str) -> tuple[int, str]:
    data = {FORM_FIELD: csrf_of(client), "key": key, "term": term, **CALL, **form}
    response = client.post("/search", data=data)
    return response.status_code, response.text


def _links(html: str) -> list[str]:
    return re.findall(r'href="/statements/([^"]+)"', html)


@pytest.mark.parametrize("key", ["statement", "member", "claim", "email"])
def test_a_search_by_each_key_finds_the_members_statement(desk: Desk, key: str) -> None:
    canary, sid = desk.world.canary, desk.world.statements["verification"]
    term = {"statement": sid, "member": canary.member_id, "claim": canary.claim_id,
            "email": canary.email.upper()}[key]
    agent = desk.as_user("agent")
    status, html = _search(agent, key, f"  {term} ")
    assert status == 200
    assert sid in _links(html)
    assert "found by" in html
    if key != "statement":  # a statement id is the results' own link
        assert term.strip() not in html, "the term is not repeated on the page"
    found = entries(desk.ctx.ledger, actor="agent")
    search = next(e for e in found if e.action == "search")
    assert search.detail["key"] == key and len(search.detail["term_hash"]) == 64
    assert term.strip() not in str(search.detail)
    assert has_open_contact(desk.ctx.ledger, actor="agent", member_id=canary.member_id, at=desk.now())
    assert not has_open_contact(desk.ctx.ledger, actor="supervisor", member_id=canary.member_id,
                                at=desk.now())


def test_a_search_by_the_subscribers_member_id_lists_no_patients_own_statement(desk: Desk) -> None:
    status, html = _search(desk.as_user("agent"), "member", desk.world.canary.member_id)
    assert status == 200 and len(_links(html)) >= 1
    assert "subscriber" in html and "patient&#39;s own statement" not in html


def test_a_search_needs_the_contact_reference_and_purpose(desk: Desk) -> None:
    agent = desk.as_user("agent")
    status, html = _search(agent, "member", desk.world.canary.member_id, reference=" ")
    assert status == 400 and "contact reference" in html and not _links(html)
    status, html = _search(agent, "member", desk.world.canary.member_id, purpose="curiosity")
    assert status == 400 and "purpose" in html
    assert not [e for e in entries(desk.ctx.ledger, actor="agent") if e.action == "search"]


def test_nothing_found_says_so(desk: Desk) -> None:
    status, html = _search(desk.as_user("agent"), "claim", "NO-SUCH-CLAIM")
    assert status == 200 and "No statement found by claim number" in html


def test_the_statement_page_shows_the_whole_timeline_the_queue_and_dates(desk: Desk) -> None:
    sid = desk.world.statements["verification"]
    html = desk.as_user("agent").get(f"/statements/{sid}").text
    for words in ("Email address to be confirmed with the member", "Statement made from the month",
                  "PDF made", "Emailed (the mail relay accepted it)", "Bounced",
                  "Verification queue", "Delivery deadline", "Next action"):
        assert words in html, words
    assert re.search(r"\*+@g\*+\.com", html), "the email address is shown masked"
    assert desk.world.canary.email not in html and desk.world.canary.member_id not in html
    views = [e for e in entries(desk.ctx.ledger, actor="agent") if e.action == "view_statement"]
    assert views[0].statement_id == sid


def test_an_unknown_statement_is_a_plain_404_and_the_look_is_audited(desk: Desk) -> None:
    response = desk.as_user("agent").get("/statements/st-2026-11-0000000000000000")
    assert response.status_code == 404 and "no statement with that id" in response.text
    view = entries(desk.ctx.ledger, actor="agent")[0]
    assert view.action == "view_statement" and view.detail == {"found": False}


def _act(client: TestClient, sid: str, action: str, **form: str) -> str:
    response = client.post(f"/statements/{sid}/{action}", data={FORM_FIELD: csrf_of(client), **form})
    assert response.status_code == 303 and response.headers["location"] == f"/statements/{sid}"
    return client.get(response.headers["location"]).text


def test_moving_to_paper_needs_a_reason_which_lands_on_the_timeline(desk: Desk) -> None:
    sid = desk.world.statements["sent"]
    agent = desk.as_user("agent")
    html = _act(agent, sid, "paper", reason="")
    assert "Nothing was done: give a reason" in html and "Moved to paper by support" not in html
    html = _act(agent, sid, "paper", reason="member has no internet access")
    assert "Moved to paper: the statement goes out in the next print batch" in html
    assert "Moved to paper by support" in html and "member has no internet access" in html
    assert "Waiting to be printed" in html
    entry = entries(desk.ctx.ledger, actor="agent", statement_id=sid)
    assert any(e.action == "moved_to_paper" and e.reason == "member has no internet access" for e in entry)
    again = _act(agent, sid, "paper", reason="member has no internet access")
    assert "Nothing was done: it is on paper already" in again


def test_cancelling_a_resend(desk: Desk) -> None:
    sid = desk.world.statements["retry"]
    html = _act(desk.as_user("agent"), sid, "cancel-resend", reason="member says the mailbox is closed")
    assert "Resend cancelled" in html and "Resend stopped by support" in html
    assert "Email address to be confirmed with the member" in html


def test_a_supervisor_lifts_a_suppression(desk: Desk) -> None:
    sid = desk.world.statements["suppressed"]
    supervisor = desk.as_user("supervisor")
    assert "suppressed: not emailed" in supervisor.get(f"/statements/{sid}").text
    html = _act(supervisor, sid, "lift-suppression", reason="member confirmed the complaint was a mistake")
    assert "Suppression lifted" in html and "suppressed: not emailed" not in html


def test_an_agents_address_change_waits_for_another_supervisor(desk: Desk) -> None:
    sid = desk.world.statements["verification"]
    agent, supervisor, second = (desk.as_user(name) for name in ("agent", "supervisor", "supervisor2"))
    new = "zebedee.moved@example.net"
    html = _act(agent, sid, "address-change", new_address=new, confirm_address="Zebedee.Moved@example.net ",
                verified_via="phone", reason="member called from the number on file")
    assert "waits for a supervisor" in html and new not in html
    assert "Address change waiting for approval" in html and "Record address for approval" not in html
    assert agent.get("/approvals").status_code == 403
    approvals = supervisor.get("/approvals").text
    change_id = re.search(r'action="/approvals/([^"]+)"', approvals).group(1)  # type: ignore[union-attr]
    assert new not in approvals and "***@e" in approvals
    page = supervisor.post(f"/approvals/{change_id}", data={
        FORM_FIELD: csrf_of(supervisor), "decision": "approve", "reason": "checked the call recording"})
    assert page.status_code == 303
    assert "Approved" in supervisor.get("/approvals").text
    html = supervisor.get(f"/statements/{sid}").text
    assert "Address confirmed, waiting to be emailed again" in html and new not in html
    assert "New email address approved by a supervisor" in html
    assert "No address change is waiting" in second.get("/approvals").text


def test_a_supervisor_cannot_approve_their_own_address_change(desk: Desk) -> None:
    sid = desk.world.statements["verification"]
    supervisor, other = desk.as_user("supervisor"), desk.as_user("supervisor2")
    _act(supervisor, sid, "address-change", new_address="a.new@example.net",
         confirm_address="a.new@example.net", verified_via="member_portal",
         reason="member updated it in the portal")
    approvals = supervisor.get("/approvals").text
    assert "You entered this change: another supervisor must decide it" in approvals
    change_id = desk.ctx.ledger.fetch("desk_pending_changes")[0]["change_id"]
    supervisor.post(f"/approvals/{change_id}", data={FORM_FIELD: csrf_of(supervisor), "decision": "approve",
                                                     "reason": "approving my own change"})
    assert "another supervisor must decide it (two-person rule)" in supervisor.get("/approvals").text
    other.post(f"/approvals/{change_id}", data={FORM_FIELD: csrf_of(other), "decision": "reject",
                                                "reason": "the member could not be reached"})
    assert "Rejected" in other.get("/approvals").text
    assert "New email address rejected by a supervisor" in other.get(f"/statements/{sid}").text


def test_an_address_typed_differently_twice_is_refused(desk: Desk) -> None:
    sid = desk.world.statements["verification"]
    html = _act(desk.as_user("agent"), sid, "address-change", new_address="one@example.net",
                confirm_address="two@example.net", verified_via="phone", reason="member called in")
    assert "typed the same way twice" in html and "Address change waiting" not in html


def test_the_auditor_sees_entries_checks_the_chain_and_opens_the_access_review(desk: Desk) -> None:
    sid = desk.world.statements["verification"]
    desk.as_user("agent").get(f"/statements/{sid}")
    auditor = desk.as_user("auditor")
    html = auditor.get("/audit").text
    assert "view statement" in html and "agent" in html and "testclient" in html
    assert "The whole log is intact" not in html
    checked = auditor.get("/audit", params={"check": "1"}).text
    assert "The whole log is intact" in checked
    only = auditor.get("/audit", params={"statement": sid}).text
    assert "view statement" in only and "sign in" not in only
    with desk.ctx.ledger.begin() as conn:
        conn.execute(text("UPDATE audit_log SET actor = 'someone-else' WHERE action = 'view_statement'"))
    broken = auditor.get("/audit", params={"check": "1"}).text
    assert "The log has been tampered with" in broken and "modified" in broken
    since = (desk.now() - timedelta(days=1)).date().isoformat()
    review = auditor.get("/audit/review", params={"since": since})
    assert review.status_code == 200 and "access review" in review.text.lower()
    assert "sandbox" in review.headers["content-security-policy"]
    assert auditor.get("/audit/review", params={"since": "yesterday"}).status_code == 400
    assert [e.detail.get("page") for e in entries(desk.ctx.ledger, actor="auditor")][:1] == ["access_review"]


def test_an_admin_adds_a_user_who_can_then_sign_in(desk: Desk) -> None:
    admin = desk.as_user("admin")
    response = admin.post("/users", data={FORM_FIELD: csrf_of(admin), "username": "New.Agent",
                                          "display_name": "New Agent", "roles": ["support_agent"],
                                          "password": "a long enough passphrase"})
    assert response.status_code == 303
    html = admin.get("/users").text
    assert "Added new.agent" in html
    assert desk.sign_in(desk.client(), "new.agent", "a long enough passphrase") == 303
    weak = admin.post("/users", data={FORM_FIELD: csrf_of(admin), "username": "weak", "display_name": "W",
                                      "roles": ["finance"], "password": "short"})
    assert weak.status_code == 303
    assert "Nothing was changed: a password needs at least" in admin.get("/users").text
    admin.post("/users/new.agent/roles", data={FORM_FIELD: csrf_of(admin), "roles": ["finance"]})
    client = desk.client()
    desk.sign_in(client, "new.agent", "a long enough passphrase")
    assert client.get("/").headers["location"] == "/reports"
    admin.post("/users/admin/active", data={FORM_FIELD: csrf_of(admin), "active": "no"})
    assert "Nothing was changed: you cannot disable or enable your own account" in admin.get("/users").text
    admin.post("/users/admin/roles", data={FORM_FIELD: csrf_of(admin), "roles": ["supervisor"]})
    assert "another administrator must change your roles" in admin.get("/users").text
    assert admin.get("/users").status_code == 200, "still an admin, still signed in"


def test_an_auditor_keeps_the_chain_head_and_a_cut_off_end_shows_later(desk: Desk) -> None:
    auditor = desk.as_user("auditor")
    checked = auditor.get("/audit", params={"check": "1"}).text
    head = re.search(r'Head of the chain now: <code class="id">([0-9a-f]{64})</code>', checked)
    assert head, "the check shows the head"
    desk.as_user("agent").get(f"/statements/{desk.world.statements['sent']}")  # more entries after it
    later = auditor.get("/audit", params={"check": "1", "head": head[1].upper()}).text
    assert "The whole log is intact" in later and "the head you kept is in it" in later
    with desk.ctx.ledger.begin() as conn:
        seq = conn.execute(text("SELECT seq FROM audit_log WHERE hash = :h"), {"h": head[1]}).scalar()
        conn.execute(text("DELETE FROM audit_log WHERE seq >= :seq"), {"seq": seq})
    cut = auditor.get("/audit", params={"check": "1", "head": head[1]}).text
    assert "The log has been tampered with" in cut and "no longer in the audit log" in cut
    assert "The whole log is intact" in auditor.get("/audit", params={"check": "1"}).text, \
        "without the head kept outside, a cut-off end goes unseen"
    assert auditor.get("/audit", params={"check": "1", "head": "not-a-head"}).status_code == 400
    review = auditor.get("/audit/review").text
    assert verify(desk.ctx.ledger).head in review, "the access review carries the head to file with it"
