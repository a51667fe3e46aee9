"""The demo's support desk users: one per role, each with a fresh random password.

The passwords are written to a file in the demo workspace that only its owner may read, and
printed once, so someone trying the demo can sign in to `eob web` as each role. A deployment
never runs this: its users are added by an administrator (`eob users add`, or the users page).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from pipeline.desk.accounts import create_user, get_user, set_password
from pipeline.desk.permissions import Role
from pipeline.ledger import Ledger

DEMO_USERS = (
    ("agent", "Alex Agent", Role.AGENT),
    ("supervisor", "Sam Supervisor", Role.SUPERVISOR),
    ("finance", "Fran Finance", Role.FINANCE),
    ("auditor", "Avery Auditor", Role.AUDITOR),
    ("admin", "Ada Admin", Role.ADMIN),
)
USERS_FILE = "desk-users.txt"


@dataclass(frozen=True, slots=True)
class DemoUser:
    username: str
    role: Role
    password: str


def seed_desk_users(ledger: Ledger, workspace: Path) -> tuple[Path, list[DemoUser]]:
    """Create (or give a new password to) one user per role; returns the file that lists them
    (mode 0600) and the users."""
    users = []
    for username, display_name, role in DEMO_USERS:
        password = secrets.token_urlsafe(12)
        if get_user(ledger, username) is None:
            create_user(ledger, username, display_name, [role], password, actor="demo")
        else:
            set_password(ledger, username, password, actor="demo")
        users.append(DemoUser(username, role, password))
    path = workspace / USERS_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)  # an existing file keeps its mode through O_CREAT
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("# support desk demo users (eob web): user name, role, password\n")
        for user in users:
            handle.write(f"{user.username}\t{user.role.value}\t{user.password}\n")
    return path, users
