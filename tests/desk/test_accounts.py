"""Desk accounts on SQLite and PostgreSQL: argon2id passwords, a refusal that never says which half
was wrong, lockout after repeated failures, every sign-in audited without the name a stranger
typed, accounts of the identity provider, and administration that leaves a trail."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import event

from pipeline.desk.accounts import (
    UNKNOWN_USER,
    AccountError,
    AccountLocked,
    OidcNameTaken,
    SignInRefused,
    UnknownUser,
    WeakPassword,
    authenticate,
    create_user,
    get_user,
    list_users,
    oidc_user,
    set_active,
    set_password,
    set_roles,
    unlock,
)
from pipeline.desk.audit import entries
from pipeline.desk.errors import DeskError
from pipeline.desk.permissions import Permission, Role
from pipeline.desk.reasons import ReasonRefused
from pipeline.ledger import Ledger
from pipeline.settings import Settings
from tests.support.desk_accounts import FAST_HASHER, PASSWORD
from tests.support.send import WallClock


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(workspace=tmp_path, web_max_failed_signins=3, web_lockout_minutes=15)


def _alice(ledger: Ledger, *roles: Role) -> None:
    create_user(ledger, "Alice", "Alice Agent", roles or [Role.AGENT], PASSWORD, actor="admin",
                source="cli@host", hasher=FAST_HASHER)


def _sign_in(ledger: Ledger, settings: Settings, password: str = PASSWORD, name: str = "alice"):  # type: ignore[no-untyped-def]
    return authenticate(ledger, settings, name, password, source="10.0.0.7", hasher=FAST_HASHER)


def _audit_text(ledger: Ledger) -> str:
    return json.dumps(ledger.fetch("audit_chain"), default=str)


def test_a_user_signs_in_with_the_right_password_and_gets_their_roles(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger, Role.AGENT, Role.SUPERVISOR)
    user = _sign_in(ledger, settings)
    assert (user.username, user.display_name, user.active, user.oidc) == (
        "alice", "Alice Agent", True, False)
    assert user.roles == {Role.AGENT, Role.SUPERVISOR}
    assert user.may(Permission.APPROVE_ADDRESS_CHANGE) and not user.may(Permission.VIEW_AUDIT)
    assert user.last_signin_at is not None
    last = entries(ledger, limit=1)[0]
    assert (last.actor, last.action, last.source, last.detail) == (
        "alice", "sign_in", "10.0.0.7", {"method": "password"})
    stored = ledger.fetch_one("desk_user_get", username="alice")
    assert stored is not None and stored["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in _audit_text(ledger) and stored["password_hash"] not in _audit_text(ledger)


def test_a_wrong_password_and_an_unknown_name_get_the_same_refusal(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    with pytest.raises(SignInRefused) as wrong:
        _sign_in(ledger, settings, "not the password at all")
    with pytest.raises(SignInRefused) as unknown:
        _sign_in(ledger, settings, name="my secret passw0rd")  # a password typed in the name box
    assert str(wrong.value) == str(unknown.value) == "wrong user name or password"
    assert type(wrong.value) is type(unknown.value) is SignInRefused
    failed = [e for e in entries(ledger) if e.action == "sign_in_failed"]
    assert [(e.actor, e.detail["why"]) for e in reversed(failed)] == [
        ("alice", "password"), (UNKNOWN_USER, "unknown_user")]
    assert failed[0].source == "10.0.0.7"
    assert len(failed[0].detail["attempted"]) == 16
    assert "secret" not in _audit_text(ledger), "the name typed is kept only as a keyed hash"


class _CountingHasher(PasswordHasher):
    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        self.verified.append(str(hash).rsplit("$", 2)[0])  # the parameters, not salt and hash
        return super().verify(hash, password)


def test_an_unknown_name_costs_the_same_argon2_verification_as_a_known_one(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    hasher = _CountingHasher()
    for name in ("alice", "nobody"):
        with pytest.raises(SignInRefused):
            authenticate(ledger, settings, name, "wrong password here", source=None, hasher=hasher)
    assert len(hasher.verified) == 2 and hasher.verified[0] == hasher.verified[1]


def test_repeated_failures_lock_the_account_until_the_lockout_ends(
        ledger: Ledger, settings: Settings, clock: WallClock) -> None:
    _alice(ledger)
    for _ in range(2):
        with pytest.raises(SignInRefused) as refused:
            _sign_in(ledger, settings, "wrong password here")
        assert not isinstance(refused.value, AccountLocked)
    with pytest.raises(AccountLocked) as locked:
        _sign_in(ledger, settings, "wrong password here")  # the third in a row
    assert "locked until 10:15 UTC" in str(locked.value)
    with pytest.raises(AccountLocked):
        _sign_in(ledger, settings)  # even the right password, while locked
    user = get_user(ledger, "alice")
    assert user is not None and user.locked_until == locked.value.until
    clock.advance(minutes=16)
    assert _sign_in(ledger, settings).locked_until is None
    reasons = [e.detail.get("why") for e in reversed(entries(ledger)) if e.action.startswith("sign_in")]
    assert reasons == ["password", "password", "password", "locked", None]


def test_a_success_starts_the_count_of_failures_again(ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    for attempt in ("wrong password here", "wrong password here", PASSWORD,
                    "wrong password here", "wrong password here", PASSWORD):
        if attempt == PASSWORD:
            _sign_in(ledger, settings)
        else:
            with pytest.raises(SignInRefused):
                _sign_in(ledger, settings, attempt)
    assert get_user(ledger, "alice").locked_until is None  # type: ignore[union-attr]


def test_an_administrator_unlocks_an_account_and_it_is_audited(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    for _ in range(3):
        with pytest.raises(SignInRefused):
            _sign_in(ledger, settings, "wrong password here")
    assert unlock(ledger, "alice", actor="admin", source="cli@host").locked_until is None
    assert _sign_in(ledger, settings).username == "alice"
    admin = [e.detail for e in entries(ledger, actor="admin")]
    assert {"user": "alice", "change": "unlocked"} in admin


def test_a_disabled_account_cannot_sign_in_and_enabling_it_restores_it(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    user = set_active(ledger, "alice", False, actor="admin")
    assert not user.active and not user.may(Permission.SEARCH)
    with pytest.raises(SignInRefused, match="wrong user name or password"):
        _sign_in(ledger, settings)
    assert entries(ledger, limit=1)[0].detail["why"] == "disabled"
    set_active(ledger, "alice", True, actor="admin")
    assert _sign_in(ledger, settings).active


def test_a_hash_made_with_older_parameters_is_replaced_at_sign_in(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    stronger = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1)
    authenticate(ledger, settings, "alice", PASSWORD, source=None, hasher=stronger)
    stored = ledger.fetch_one("desk_user_get", username="alice")["password_hash"]  # type: ignore[index]
    assert "m=2048,t=2,p=1" in stored
    assert authenticate(ledger, settings, "alice", PASSWORD, source=None, hasher=stronger)


def test_administration_refuses_what_it_cannot_do_and_says_why(ledger: Ledger) -> None:
    _alice(ledger)
    with pytest.raises(AccountError, match="already exists"):
        _alice(ledger)
    with pytest.raises(WeakPassword, match="at least 12"):
        create_user(ledger, "bob", "Bob", [Role.AGENT], "short", actor="admin", hasher=FAST_HASHER)
    with pytest.raises(WeakPassword, match="user name"):
        create_user(ledger, "bobby-the-agent", "Bob", [Role.AGENT], "Bobby-The-Agent", actor="admin",
                    hasher=FAST_HASHER)
    with pytest.raises(AccountError, match="unknown role 'boss'.*support_agent"):
        create_user(ledger, "bob", "Bob", ["boss"], PASSWORD, actor="admin", hasher=FAST_HASHER)
    with pytest.raises(AccountError, match="user name is"):
        create_user(ledger, "bob smith", "Bob", [Role.AGENT], PASSWORD, actor="admin")
    with pytest.raises(UnknownUser, match="no desk user 'carol'"):
        set_roles(ledger, "carol", [Role.AGENT], actor="admin")
    assert issubclass(AccountError, DeskError)
    assert [u.username for u in list_users(ledger)] == ["alice"]


def test_roles_and_passwords_change_with_an_audit_entry_each(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    assert set_roles(ledger, "alice", [Role.AUDITOR], actor="admin", source="10.0.0.1").roles == {
        Role.AUDITOR}
    set_password(ledger, "alice", "a whole new passphrase", actor="admin", hasher=FAST_HASHER)
    with pytest.raises(SignInRefused):
        _sign_in(ledger, settings)
    assert _sign_in(ledger, settings, "a whole new passphrase").roles == {Role.AUDITOR}
    changes = [(e.detail["change"], e.detail.get("roles"), e.source)
               for e in reversed(entries(ledger, actor="admin"))]
    assert changes == [("created", ["support_agent"], "cli@host"), ("roles", ["auditor"], "10.0.0.1"),
                       ("password", None, None)]
    assert "a whole new passphrase" not in _audit_text(ledger)


ISSUER = "https://login.insurer.example"


def _company(ledger: Ledger, name: str, subject: str, roles: list[str], issuer: str = ISSUER):  # type: ignore[no-untyped-def]
    return oidc_user(ledger, name, name.split("@")[0].title(), roles, issuer=issuer,
                     subject=subject, source="10.0.0.9")


def test_an_identity_provider_user_is_created_and_follows_the_roles_of_its_token(
        ledger: Ledger, settings: Settings) -> None:
    user = _company(ledger, "Dana@Insurer.Example", "sub-dana", ["supervisor", "Domain Users"])
    assert (user.username, user.oidc, user.roles) == ("dana@insurer.example", True, {Role.SUPERVISOR})
    assert _company(ledger, "dana@insurer.example", "sub-dana", ["auditor"]).roles == {Role.AUDITOR}
    with pytest.raises(SignInRefused):  # no local password: the password form refuses it
        authenticate(ledger, settings, "dana@insurer.example", PASSWORD, source=None,
                     hasher=FAST_HASHER)
    set_active(ledger, "dana@insurer.example", False, actor="admin")
    with pytest.raises(SignInRefused, match="disabled"):
        _company(ledger, "dana@insurer.example", "sub-dana", ["auditor"])
    trail = [(e.actor, e.action) for e in reversed(entries(ledger))]
    assert trail[:4] == [("oidc", "user_admin"), ("dana@insurer.example", "sign_in"),
                         ("oidc", "user_admin"), ("dana@insurer.example", "sign_in")]
    assert trail[-1] == ("dana@insurer.example", "sign_in_failed")


def test_an_identity_provider_user_never_takes_over_a_local_account(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger, Role.SUPERVISOR)
    with pytest.raises(OidcNameTaken, match="'alice' belongs to another account"):
        _company(ledger, "alice", "sub-mallory", ["admin", "supervisor"])
    user = get_user(ledger, "alice")
    assert user is not None and not user.oidc and user.roles == {Role.SUPERVISOR}
    assert _sign_in(ledger, settings).roles == {Role.SUPERVISOR}, "her password still works"
    refused = next(e for e in entries(ledger) if e.action == "sign_in_failed")
    assert (refused.actor, refused.detail["why"], refused.detail["user"], refused.detail["subject"]) == (
        UNKNOWN_USER, "local_account", "alice", "sub-mallory")


def test_a_name_is_one_persons_and_a_person_keeps_their_account_when_their_name_changes(
        ledger: Ledger) -> None:
    _company(ledger, "dana", "sub-dana", ["support_agent"])
    with pytest.raises(OidcNameTaken):  # another person of the provider showing the same name
        _company(ledger, "dana", "sub-other", ["supervisor"])
    with pytest.raises(OidcNameTaken):  # the same subject at another issuer is another person
        _company(ledger, "dana", "sub-dana", ["supervisor"], issuer="https://other.example")
    renamed = _company(ledger, "dana.smith", "sub-dana", ["support_agent"])
    assert renamed.username == "dana", "the account is the subject's, not the name's"
    assert [u.username for u in list_users(ledger)] == ["dana"]
    assert get_user(ledger, "dana").roles == {Role.AGENT}  # type: ignore[union-attr]


def test_an_account_made_for_the_identity_provider_is_bound_to_its_first_sign_in(
        ledger: Ledger, settings: Settings) -> None:
    made = create_user(ledger, "erin", "Erin", [Role.AGENT], None, actor="admin")
    assert made.oidc, "no password: an account of the identity provider"
    assert _company(ledger, "erin", "sub-erin", ["supervisor"]).roles == {Role.SUPERVISOR}
    with pytest.raises(OidcNameTaken):
        _company(ledger, "erin", "sub-someone-else", ["supervisor"])
    with pytest.raises(SignInRefused):
        authenticate(ledger, settings, "erin", PASSWORD, source=None, hasher=FAST_HASHER)
    assert _company(ledger, "erin", "sub-erin", ["support_agent"]).roles == {Role.AGENT}


def test_an_administrator_cannot_change_their_own_roles_or_access(ledger: Ledger) -> None:
    create_user(ledger, "root", "Root", [Role.ADMIN], PASSWORD, actor="setup", hasher=FAST_HASHER)
    with pytest.raises(AccountError, match="another administrator must change your roles"):
        set_roles(ledger, "root", [Role.ADMIN, Role.SUPERVISOR], actor="Root")
    with pytest.raises(AccountError, match="another administrator"):
        set_active(ledger, "root", False, actor="root")
    user = get_user(ledger, "root")
    assert user is not None and user.roles == {Role.ADMIN} and user.active
    assert [e.detail["change"] for e in entries(ledger, actor="root")] == []
    assert set_roles(ledger, "root", [Role.AUDITOR], actor="ops").roles == {Role.AUDITOR}


def test_an_administrators_reason_is_recorded_and_one_holding_member_details_is_refused(
        ledger: Ledger) -> None:
    _alice(ledger)
    set_roles(ledger, "alice", [Role.SUPERVISOR], actor="admin", reason="promoted  to team lead")
    assert entries(ledger, limit=1)[0].reason == "promoted to team lead"
    for why in ("member jo@example.com asked", "member born 04/12/1961", "ok"):
        with pytest.raises(ReasonRefused):
            set_active(ledger, "alice", False, actor="admin", reason=why)
    assert get_user(ledger, "alice").active  # type: ignore[union-attr]
    assert "example.com" not in _audit_text(ledger) and "1961" not in _audit_text(ledger)


def _statements(ledger: Ledger) -> list[str]:
    """The SQL statements the ledger runs while the list is open (appended as they run)."""
    ran: list[str] = []
    event.listen(ledger.engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_rest: ran.append(statement.split("\n")[-1][:40]))
    return ran


def test_an_unknown_name_runs_the_same_statements_as_a_wrong_password(
        ledger: Ledger, settings: Settings) -> None:
    _alice(ledger)
    ran = _statements(ledger)
    runs = []
    for name in ("alice", "nobody", "not a valid name!"):
        with pytest.raises(SignInRefused):
            _sign_in(ledger, settings, "wrong password here", name=name)
        runs.append(list(ran))
        ran.clear()
    assert runs[0] == runs[1] == runs[2] and len(runs[0]) >= 3


class _SlowHasher(PasswordHasher):
    """argon2id that takes a while and counts the checks against a real account's hash."""

    def __init__(self, real: str) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.real, self.checked, self.guard = real, 0, threading.Lock()

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
        if hash == self.real:
            with self.guard:
                self.checked += 1
        time.sleep(0.05)
        return super().verify(hash, password)


def test_parallel_guesses_cannot_get_past_the_lockout(
        ledger: Ledger, ledger_url: str, settings: Settings, clock: WallClock) -> None:
    _alice(ledger)
    hasher = _SlowHasher(ledger.fetch_one("desk_user_get", username="alice")["password_hash"])  # type: ignore[index]
    threads = 12
    ready = threading.Barrier(threads)
    outcomes: list[str] = []

    def guess(n: int) -> None:
        own = Ledger.open(ledger_url, now=clock, migrate=False)
        try:
            ready.wait()
            authenticate(own, settings, "alice", f"guess number {n:04d}", source=f"10.0.1.{n}",
                         hasher=hasher)
            outcomes.append("signed in")
        except AccountLocked:
            outcomes.append("locked")
        except SignInRefused:
            outcomes.append("refused")
        finally:
            own.close()

    workers = [threading.Thread(target=guess, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(outcomes) == threads and "signed in" not in outcomes
    assert hasher.checked <= settings.web_max_failed_signins, (
        f"{hasher.checked} guesses checked before the lock")
    assert outcomes.count("locked") >= threads - settings.web_max_failed_signins + 1
    with pytest.raises(AccountLocked):  # the right password, inside the locked window
        authenticate(ledger, settings, "alice", PASSWORD, source=None, hasher=hasher)
    assert hasher.checked <= settings.web_max_failed_signins
    clock.advance(minutes=16)
    assert authenticate(ledger, settings, "alice", PASSWORD, source=None, hasher=hasher)


def test_a_right_password_racing_a_lock_is_refused_once_the_lock_is_set(
        ledger: Ledger, settings: Settings) -> None:
    """The password is checked after the attempt is admitted; a lock set meanwhile wins."""
    _alice(ledger)

    class _LockMeanwhile(PasswordHasher):
        def __init__(self) -> None:
            super().__init__(time_cost=1, memory_cost=1024, parallelism=1)

        def verify(self, hash: str | bytes, password: str | bytes) -> bool:  # noqa: A002
            ledger.execute("desk_user_signin_attempt", username="alice", max_failures=1,
                           until="2026-12-03T11:00:00.000000+00:00", now=ledger.now())
            return super().verify(hash, password)

    with pytest.raises(AccountLocked, match="locked until 11:00 UTC"):
        authenticate(ledger, settings, "alice", PASSWORD, source=None, hasher=_LockMeanwhile())
    assert entries(ledger, limit=1)[0].detail["why"] == "locked"
