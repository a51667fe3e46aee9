"""The desk in a real browser: headless Chromium (Debian's, driven by Playwright) against the app
served by uvicorn on loopback. An agent signs in, searches by each key, opens a timeline, is
refused what their role does not allow (a page, and a form posted anyway: approving their own
address change), moves a statement to paper with a reason and enters an address change, which
waits until a supervisor approves it; finance may not search; an auditor sees the entries appear;
everyone signs out.

With EOB_SCREENSHOTS=<folder> the test also saves the search and timeline screenshots of the
support guide there (`EOB_SCREENSHOTS=docs pytest tests/web/test_browser.py` refreshes them).
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.browser import browser_or_skip
from tests.support.browser import chromium as chromium_browser
from tests.web.conftest import PASSWORD, Desk, World

CALL = "CALL-20261207-0042"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(desk_world: World, tmp_path: Path) -> Iterator[tuple[Desk, str]]:
    """The desk app served by uvicorn in a thread on a free loopback port."""
    browser_or_skip("the desk's browser tests")
    import uvicorn

    desk = Desk(desk_world, tmp_path)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(desk.app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the desk did not start"
        time.sleep(0.05)
    yield desk, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    desk.close()


@pytest.fixture
def chromium() -> Iterator[Any]:
    with chromium_browser() as browser:
        yield browser


def _sign_in(browser: Any, base: str, username: str) -> Any:
    page = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    page.goto("/")
    assert page.url.endswith("/signin"), "not signed in: sent to the sign-in page"
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_load_state()
    assert "/signin" not in page.url, page.content()
    cookie = next(c for c in page.context.cookies() if c["name"] == "__Host-eob-session")
    assert cookie["secure"] and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    return page


def _search(page: Any, key_label: str, term: str) -> list[str]:
    page.goto("/search")
    page.get_by_label(key_label, exact=True).check()
    page.get_by_label("Exact statement ID").fill(term)
    page.get_by_label("Contact reference").fill(CALL)
    page.get_by_label("Purpose of the contact").select_option("Statement not received")
    page.get_by_role("button", name="Search").click()
    page.wait_for_load_state()
    assert term not in page.url
    links = page.locator("table a[href^='/statements/']")
    return [str(links.nth(i).get_attribute("href")) for i in range(links.count())]


def _shoot(page: Any, name: str) -> None:
    folder = os.environ.get("EOB_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def _refused_post(page: Any, path: str, **form: str) -> None:
    """A form the user's roles do not allow, posted from their signed-in browser with their own
    form token (as a crafted page would): refused with 403, nothing done."""
    token = page.locator("input[name='csrf_token']").first.get_attribute("value")
    response = page.request.post(path, form={"csrf_token": str(token), **form}, max_redirects=0)
    assert response.status == 403, (path, response.status)
    assert "Not allowed for your role" in response.text()


def test_support_work_in_a_real_browser(served: tuple[Desk, str], chromium: Any) -> None:
    desk, base = served
    world = desk.world
    canary, sid = world.canary, world.statements["verification"]
    agent = _sign_in(chromium, base, "agent")
    assert agent.url.endswith("/search")

    for label, term in (("Statement ID", sid), ("Claim number", canary.claim_id),
                        ("Email address", canary.email), ("Member ID", canary.member_id)):
        assert f"/statements/{sid}" in _search(agent, label, term), label
    _shoot(agent, "support-search.png")

    agent.locator(f"a[href='/statements/{sid}']").first.click()
    agent.wait_for_load_state()
    assert agent.get_by_role("heading", name="Timeline").is_visible()
    assert agent.get_by_text("Email address to be confirmed with the member").first.is_visible()
    assert agent.get_by_text(re.compile(r"^Bounced")).first.is_visible()

    suppressed = world.statements["suppressed"]
    agent.goto(f"/statements/{suppressed}")
    assert agent.get_by_role("button", name="Lift suppression").count() == 0
    refused = agent.goto("/approvals")
    assert refused is not None and refused.status == 403
    assert agent.get_by_role("heading", name="Not allowed for your role").is_visible()

    sent = world.statements["sent"]
    agent.goto(f"/statements/{sent}")
    move = agent.locator("form[action$='/paper']")
    move.get_by_role("button", name="Move to paper").click()  # no reason: the browser keeps the form
    assert agent.url.endswith(f"/statements/{sent}")
    assert agent.get_by_text("Moved to paper by support").count() == 0
    move.get_by_label("Reason").fill("member has no internet access at home")
    move.get_by_role("button", name="Move to paper").click()
    agent.wait_for_load_state()
    assert agent.get_by_role("status").get_by_text("Moved to paper").is_visible()
    assert agent.get_by_text("Moved to paper by support").is_visible()

    agent.goto(f"/statements/{sid}")
    form = agent.locator("form[action$='/address-change']")
    form.get_by_label("New email address").fill("zebedee.new@example.net")
    form.get_by_label("Type it again").fill("zebedee.new@example.net")
    form.get_by_label("How the member confirmed it").select_option("phone")
    form.get_by_label("Reason").fill("member called from the number on file")
    form.get_by_role("button", name="Record address for approval").click()
    agent.wait_for_load_state()
    assert agent.get_by_text("waits for a supervisor's approval").is_visible()
    assert agent.get_by_role("heading", name="Address change waiting for approval").is_visible()
    _shoot(agent, "support-timeline.png")
    assert "zebedee.new@example.net" not in agent.content()
    change = desk.ctx.ledger.fetch("desk_pending_changes")[0]["change_id"]
    _refused_post(agent, f"/approvals/{change}", decision="approve", reason="approving my own change")

    supervisor = _sign_in(chromium, base, "supervisor")
    supervisor.goto("/approvals")
    card = supervisor.locator("section.card").first
    card.get_by_label("Reason for your decision").fill("checked the call recording")
    card.get_by_role("button", name="Approve").click()
    supervisor.wait_for_load_state()
    assert supervisor.get_by_text("Approved: the statement will be resent").is_visible()
    supervisor.goto(f"/statements/{sid}")
    assert supervisor.get_by_text("Address confirmed, waiting to be emailed again").first.is_visible()

    finance = _sign_in(chromium, base, "finance")
    _refused_post(finance, "/search", key="statement", term=sid, reference=CALL,
                  purpose="Statement not received")

    auditor = _sign_in(chromium, base, "auditor")
    assert auditor.url.endswith("/audit")
    rows = auditor.locator("table.audit tbody tr")
    moved = rows.filter(has_text="moved to paper")
    assert moved.count() == 1 and "member has no internet access at home" in moved.inner_text()
    assert "agent" in moved.inner_text() and "127.0.0.1" in moved.inner_text()
    assert rows.filter(has_text="address change approved").count() == 1
    auditor.get_by_role("button", name="Check the whole log now").click()
    auditor.wait_for_load_state()
    assert auditor.get_by_text("The whole log is intact").is_visible()

    for page in (agent, supervisor, finance, auditor):
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_load_state()
        assert page.get_by_text("You have signed out.").is_visible()
        page.goto("/search")
        assert page.url.endswith("/signin")
