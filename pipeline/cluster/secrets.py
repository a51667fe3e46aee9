"""The cluster's secrets, generated once and shared by every process.

Airflow's processes must agree on three secrets: the Fernet key (connections and variables are
encrypted with it; a process with another key cannot read a relay password), the JWT secret (the
scheduler signs each task's token with it and the api-server checks it), and the API secret key.
They are generated on the first `up` into `secrets.json` (mode 0600) and never again, so a
re-run of `up`, or one process restarted alone, gets the same values. The ops user's password
for the REST API lives in the same file.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.fernet import Fernet

SECRET_VARIABLES = (
    "AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY",
)
"""The variables every process of one cluster must hold identically (`eob cluster check`)."""
OPS_USER = "ops"


@dataclass(frozen=True, slots=True)
class ClusterSecrets:
    fernet_key: str
    jwt_secret: str
    api_secret_key: str
    ops_password: str

    def __repr__(self) -> str:  # never in a log or a traceback
        return "ClusterSecrets(<hidden>)"

    def environment(self) -> dict[str, str]:
        return dict(zip(SECRET_VARIABLES, (self.fernet_key, self.jwt_secret, self.api_secret_key),
                        strict=True))


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, created 0600 (never readable for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its old mode through O_CREAT


def generate_secrets() -> ClusterSecrets:
    return ClusterSecrets(
        fernet_key=Fernet.generate_key().decode(),
        jwt_secret=secrets.token_urlsafe(48),
        api_secret_key=secrets.token_urlsafe(48),
        ops_password=secrets.token_urlsafe(24),
    )


def load_or_create_secrets(path: Path) -> ClusterSecrets:
    """The cluster's secrets: read from `path`, or generated and written there (0600) the first
    time. A file readable by others is refused rather than silently used."""
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise PermissionError(f"{path} is readable by others (mode {mode:o}): `chmod 600 {path}`, "
                                  "and consider the secrets exposed (remove the file to make new ones "
                                  "on a fresh cluster)")
        return ClusterSecrets(**json.loads(path.read_text()))
    created = generate_secrets()
    write_private(path, json.dumps(asdict(created), indent=2) + "\n")
    return created


def write_passwords_file(path: Path, found: ClusterSecrets) -> None:
    """The simple auth manager's password file, in its own format ({user: password}), 0600.

    The api-server only adds users missing from it, so writing it before the server starts
    fixes the ops password instead of having one generated and printed into a log."""
    write_private(path, json.dumps({OPS_USER: found.ops_password}) + "\n")
