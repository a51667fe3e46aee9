"""The demo's support desk users: one per role, fresh passwords that work, written where only the
workspace's owner can read them."""

from __future__ import annotations

import stat
from pathlib import Path

from pipeline.demo.desk_users import seed_desk_users
from pipeline.desk.accounts import authenticate, get_user
from pipeline.desk.permissions import Role
from pipeline.ledger import Ledger
from pipeline.settings import Settings


def test_one_user_per_role_whose_password_signs_in(tmp_path: Path) -> None:
    settings = Settings(workspace=tmp_path)
    ledger = Ledger.open(settings.ledger_dsn)
    path, users = seed_desk_users(ledger, tmp_path)
    assert {user.role for user in users} == set(Role)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    listed = path.read_text()
    for user in users:
        assert f"{user.username}\t{user.role.value}\t{user.password}" in listed
        signed_in = authenticate(ledger, settings, user.username, user.password, source="test")
        assert signed_in.roles == {user.role}
    path.chmod(0o644)
    _, again = seed_desk_users(ledger, tmp_path)  # a second run: new passwords, same users
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert {u.password for u in again}.isdisjoint(u.password for u in users)
    assert get_user(ledger, "agent") is not None
