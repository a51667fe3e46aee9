"""`eob users …` on SQLite and PostgreSQL: the first administrator made from the command line, every
account change audited with who made it and where, passwords only from a prompt or stdin."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.desk.accounts import authenticate
from pipeline.desk.audit import entries
from pipeline.ledger import Ledger
from pipeline.settings import Settings

PASSWORD = "a long enough passphrase"


@pytest.fixture
def env(tmp_path: Path, ledger_url: str) -> dict[str, str]:
    return {"EOB_WORKSPACE": str(tmp_path / "ws"), "EOB_LEDGER_URL": ledger_url, "COLUMNS": "200"}


def _eob(env: dict[str, str], *args: str, stdin: str | None = None):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args), env=env, input=stdin)


def test_an_administrator_is_added_and_signs_in_with_the_password_given_on_stdin(
        env: dict[str, str], ledger_url: str, tmp_path: Path) -> None:
    added = _eob(env, "users", "add", "Ada", "--role", "admin", "--role", "auditor",
                 "--display-name", "Ada Admin", "--password-stdin", "--actor", "ops-1",
                 stdin=PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    assert "added ada (Ada Admin): admin, auditor; active" in added.output
    assert PASSWORD not in added.output
    ledger = Ledger.open(ledger_url)
    user = authenticate(ledger, Settings(workspace=tmp_path), "ada", PASSWORD, source=None)
    assert user.display_name == "Ada Admin"
    created = [e for e in entries(ledger) if e.action == "user_admin"][0]
    assert (created.actor, created.source, created.detail["change"]) == (
        "ops-1", f"cli@{socket.gethostname()}", "created")
    assert PASSWORD not in json.dumps(ledger.fetch("audit_chain"))
    ledger.close()


def test_a_password_is_asked_twice_at_the_prompt(env: dict[str, str]) -> None:
    added = _eob(env, "users", "add", "bob", "--role", "support_agent",
                 stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert added.exit_code == 0, added.output
    assert PASSWORD not in added.output
    listed = _eob(env, "users", "list")
    assert "bob" in listed.output and "support_agent" in listed.output and "password" in listed.output


def test_roles_password_disable_enable_and_unlock(env: dict[str, str], ledger_url: str,
                                                  tmp_path: Path) -> None:
    assert _eob(env, "users", "add", "cy", "--role", "support_agent", "--password-stdin",
                stdin=PASSWORD + "\n").exit_code == 0
    roles = _eob(env, "users", "roles", "cy", "--role", "supervisor")
    assert roles.exit_code == 0 and "cy (cy): supervisor; active" in roles.output
    assert _eob(env, "users", "password", "cy", "--password-stdin",
                stdin="another long passphrase\n").exit_code == 0
    disabled = _eob(env, "users", "disable", "cy")
    assert disabled.exit_code == 0 and "disabled: cy (cy): supervisor; disabled" in disabled.output
    assert "disabled" in _eob(env, "users", "list").output
    assert "active" in _eob(env, "users", "enable", "cy").output
    assert _eob(env, "users", "unlock", "cy").exit_code == 0
    ledger = Ledger.open(ledger_url)
    assert authenticate(ledger, Settings(workspace=tmp_path), "cy", "another long passphrase",
                        source=None).username == "cy"
    changes = [e.detail["change"] for e in reversed(entries(ledger)) if e.action == "user_admin"]
    assert changes == ["created", "roles", "password", "disabled", "enabled", "unlocked"]
    ledger.close()


def test_what_cannot_be_done_is_refused_with_a_reason(env: dict[str, str]) -> None:
    weak = _eob(env, "users", "add", "dee", "--role", "finance", "--password-stdin", stdin="short\n")
    assert weak.exit_code == 1 and "at least 12 characters" in weak.output
    role = _eob(env, "users", "add", "dee", "--role", "boss", "--no-password")
    assert role.exit_code == 1 and "unknown role 'boss'" in role.output
    missing = _eob(env, "users", "disable", "nobody")
    assert missing.exit_code == 1 and "no desk user 'nobody'" in missing.output
    assert _eob(env, "users", "add", "dee", "--role", "finance", "--no-password").exit_code == 0
    again = _eob(env, "users", "add", "dee", "--role", "finance", "--no-password")
    assert again.exit_code == 1 and "already exists" in again.output


def test_no_one_changes_their_own_roles_or_access_and_a_reason_is_kept(
        env: dict[str, str], ledger_url: str) -> None:
    assert _eob(env, "users", "add", "ops-1", "--role", "admin", "--password-stdin", "--actor",
                "setup", stdin=PASSWORD + "\n").exit_code == 0
    own = _eob(env, "users", "roles", "ops-1", "--role", "admin", "--role", "supervisor",
               "--actor", "ops-1")
    assert own.exit_code == 1 and "another administrator must change your roles" in own.output
    assert _eob(env, "users", "disable", "ops-1", "--actor", "ops-1").exit_code == 1
    details = _eob(env, "users", "disable", "ops-1", "--actor", "ops-2", "--reason",
                   "left jo@example.com")
    assert details.exit_code == 1 and "member's details" in details.output
    done = _eob(env, "users", "disable", "ops-1", "--actor", "ops-2", "--reason", "left the team")
    assert done.exit_code == 0, done.output
    ledger = Ledger.open(ledger_url)
    last = entries(ledger, limit=1)[0]
    assert (last.actor, last.detail["change"], last.reason) == ("ops-2", "disabled", "left the team")
    assert [e.detail["change"] for e in entries(ledger) if e.action == "user_admin"] == [
        "disabled", "created"]
    ledger.close()


def test_every_command_explains_itself() -> None:
    for command in ("add", "list", "roles", "password", "disable", "enable", "unlock"):
        shown = CliRunner().invoke(app, ["users", command, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "Usage" in shown.output


def test_a_password_reset_role_change_or_disable_from_the_command_line_signs_the_user_out(
        env: dict[str, str], ledger_url: str, tmp_path: Path) -> None:
    from pipeline.clock import utc_now
    from pipeline.web.sessions import Refused, SessionStore

    assert _eob(env, "users", "add", "dee", "--role", "support_agent", "--password-stdin",
                stdin=PASSWORD + "\n").exit_code == 0
    ledger = Ledger.open(ledger_url)
    store = SessionStore(ledger, Settings(workspace=tmp_path), utc_now)
    for change in (("password", "dee", "--password-stdin"),
                   ("roles", "dee", "--role", "supervisor"), ("disable", "dee")):
        cookie = store.start("dee", source="127.0.0.1")
        assert not isinstance(store.load(cookie), Refused)
        done = _eob(env, "users", *change, "--actor", "ops-1", stdin="another long passphrase\n")
        assert done.exit_code == 0, done.output
        assert "1 desk session ended" in done.output
        assert isinstance(store.load(cookie), Refused), change  # the browser is signed out
    ledger.close()
