"""The cluster's secrets: generated once, 0600, never shown."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from pipeline.cluster.secrets import (
    OPS_USER,
    SECRET_VARIABLES,
    load_or_create_secrets,
    write_passwords_file,
)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_secrets_are_made_once_into_a_file_only_its_owner_reads(tmp_path: Path) -> None:
    file = tmp_path / "secrets.json"
    first = load_or_create_secrets(file)
    assert _mode(file) == 0o600
    assert load_or_create_secrets(file) == first  # a re-run of `up` gets the same ones
    assert len({first.fernet_key, first.jwt_secret, first.api_secret_key, first.ops_password}) == 4
    assert set(first.environment()) == set(SECRET_VARIABLES)


def test_a_secrets_file_others_can_read_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "secrets.json"
    load_or_create_secrets(file)
    file.chmod(0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        load_or_create_secrets(file)


def test_no_secret_value_in_the_repr(tmp_path: Path) -> None:
    found = load_or_create_secrets(tmp_path / "secrets.json")
    assert found.jwt_secret not in repr(found) and found.fernet_key not in str(found)


def test_the_password_file_is_the_simple_auth_managers_format_and_private(tmp_path: Path) -> None:
    found = load_or_create_secrets(tmp_path / "secrets.json")
    target = tmp_path / "airflow" / "passwords.json"
    target.parent.mkdir()
    target.write_text("{}")
    target.chmod(0o644)  # an older, too open file is made private when rewritten
    write_passwords_file(target, found)
    assert json.loads(target.read_text()) == {OPS_USER: found.ops_password}
    assert _mode(target) == 0o600
