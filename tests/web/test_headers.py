"""Security headers on every response, and pages that need nothing the policy forbids: no script
at all, no inline styles, nothing fetched from another site."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.web.pages import WEB_TEMPLATES
from tests.web.conftest import Desk, World

COMMON = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


def _check(response, *, cached: bool = False) -> None:  # type: ignore[no-untyped-def]
    headers = response.headers
    policy = headers["content-security-policy"]
    assert "script-src 'none'" in policy and "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy
    assert "unsafe-inline" not in policy
    for name, value in COMMON.items():
        assert headers[name] == value, name
    assert ("no-store" in headers["cache-control"]) is not cached


def test_every_kind_of_response_carries_the_headers(desk: Desk) -> None:
    anonymous = desk.client()
    _check(anonymous.get("/signin"))
    _check(anonymous.get("/search"))  # the redirect to sign in
    _check(anonymous.get("/static/desk.css"), cached=True)
    agent = desk.as_user("agent")
    _check(agent.get("/search"))
    _check(agent.get(f"/statements/{desk.world.statements['verification']}"))
    _check(agent.get("/no-such-page"))
    _check(agent.get("/audit"))  # refused: 403
    assert "strict-transport-security" not in agent.get("/search").headers


def test_hsts_is_sent_when_the_desk_is_served_over_tls(desk_world: World, tmp_path: Path) -> None:
    desk = Desk(desk_world, tmp_path, web_tls=True)
    try:
        for response in (desk.client().get("/signin"), desk.as_user("agent").get("/search")):
            assert response.headers["strict-transport-security"].startswith("max-age=31536000")
    finally:
        desk.close()


def test_the_served_access_review_keeps_its_styles_but_runs_nothing(desk: Desk) -> None:
    response = desk.as_user("auditor").get("/audit/review")
    assert "<style" in response.text
    policy = response.headers["content-security-policy"]
    assert response.status_code == 200 and "sandbox" in policy and "script" not in policy.replace(
        "default-src 'none'", "")
    assert "no-store" in response.headers["cache-control"]


def test_the_templates_hold_no_script_no_inline_style_and_nothing_from_elsewhere() -> None:
    files = sorted(WEB_TEMPLATES.rglob("*.html")) + sorted(WEB_TEMPLATES.rglob("*.css"))
    assert len(files) > 5
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert "<script" not in text.lower(), path.name
        assert not re.search(r"\son[a-z]+\s*=", text), f"{path.name}: an event handler attribute"
        assert not re.search(r"\sstyle\s*=", text), f"{path.name}: an inline style attribute"
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE), \
            f"{path.name}: a resource from another site"
        assert "javascript:" not in text.lower(), path.name
