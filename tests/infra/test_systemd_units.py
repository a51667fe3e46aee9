"""The systemd units of a single-host install (infra/systemd/): systemd itself accepts them,
every Airflow process reads the one env file, and that file gives every process the same
secrets and an execution API URL that reaches the API server."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from pipeline.settings import Settings
from tests.infra.support import (
    INFRA,
    SHARED_SECRETS,
    SHARED_VALUES,
    VENV_BIN,
    airflow_reads,
    clean_env,
    env_file,
    env_file_entries,
    generated_secrets,
    require_tool,
)
from tests.support import REPO

UNITS = INFRA / "systemd"
ENV_EXAMPLE = UNITS / "eob-airflow.env.example"
ENV_CHECK = UNITS / "eob-airflow-env-check"
INSTALLED_ENV = "/etc/eob/eob-airflow.env"
SERVICES = {
    "eob-airflow-api-server.service": "api-server",
    "eob-airflow-scheduler.service": "scheduler",
    "eob-airflow-dag-processor.service": "dag-processor",
    "eob-airflow-triggerer.service": "triggerer",
    "eob-airflow-celery-worker@.service": "celery worker",
}
TARGET = "eob-airflow.target"
WORKER = "eob-airflow-celery-worker@.service"


def directives(path: Path) -> dict[str, list[tuple[str, str]]]:
    """section -> [(key, value), ...] in file order, repeated keys kept (ExecStartPre=)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, [])
            continue
        assert current is not None, f"{path.name}: {line!r} before any section"
        key, _, value = line.partition("=")
        sections[current].append((key.strip(), value.strip()))
    return sections


def values(path: Path, section: str, key: str) -> list[str]:
    return [value for name, value in directives(path).get(section, []) if name == key]


def one(path: Path, section: str, key: str) -> str:
    found = values(path, section, key)
    assert len(found) == 1, f"{path.name}: [{section}] {key}= appears {len(found)} times"
    return found[0]


def seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|min|h)?", value)
    assert match, f"a time span this test reads: {value!r}"
    return int(match[1]) * {"s": 1, None: 1, "min": 60, "h": 3600}[match[2]]


# -- systemd's own verdict ------------------------------------------------------------------------

def verify(folder: Path, names: list[str]) -> subprocess.CompletedProcess[str]:
    tool = require_tool("systemd-analyze", "it verifies the units (Debian's systemd package)")
    return subprocess.run(
        [tool, "verify", "--recursive-errors=no", "--man=no", *names],
        cwd=folder, capture_output=True, text=True, timeout=120)


def installed_copy(tmp_path: Path) -> Path:
    """The units as this checkout would run them: /opt/eob (where docs/deployment.md installs the
    project) mapped onto this checkout and its venv, so systemd checks that every program a
    unit starts exists and is executable, for real."""
    folder = tmp_path / "units"
    folder.mkdir()
    for unit in [*SERVICES, TARGET]:
        text = (UNITS / unit).read_text()
        text = text.replace("/opt/eob/.venv/bin/", f"{VENV_BIN}/")
        text = text.replace("/opt/eob/", f"{REPO}/").replace("=/opt/eob\n", f"={REPO}\n")
        settings = [line for line in text.splitlines() if not line.startswith("#")]
        assert not [line for line in settings if "=/opt/eob" in line and "file://" not in line], unit
        (folder / unit).write_text(text)
    return folder


def unit_names() -> list[str]:
    return [TARGET, *(name.replace("@.", "@default.") for name in SERVICES)]


def problems(result: subprocess.CompletedProcess[str]) -> list[str]:
    """What systemd-analyze said about our units (it prints parse errors as warnings and may
    still exit 0, so its output is read, not only its exit code)."""
    ours = ("eob-airflow",)
    return [line for line in (result.stdout + result.stderr).splitlines()
            if any(name in line for name in ours)]


def test_systemd_accepts_every_unit(tmp_path: Path) -> None:
    folder = installed_copy(tmp_path)
    result = verify(folder, unit_names())
    assert result.returncode == 0 and not problems(result), result.stdout + result.stderr


@pytest.mark.parametrize(("mistake", "expected"), [
    ("KillMode=mixed\n", "KillMode=mixde\n"),
    ("Restart=on-failure\n", "Restart=on-failur\n"),
    ("ExecStart=", "ExecStrat="),
    (".venv/bin/airflow celery", ".venv/bin/airflw celery"),
])
def test_systemd_verification_catches_a_broken_unit(tmp_path: Path, mistake: str, expected: str) -> None:
    """The check above can fail: one typo in the worker unit is reported."""
    folder = installed_copy(tmp_path)
    worker = folder / WORKER
    worker.write_text(worker.read_text().replace(mistake, expected, 1))
    result = verify(folder, ["eob-airflow-celery-worker@default.service"])
    assert result.returncode != 0 or problems(result), result.stdout + result.stderr


# -- one environment for every process -------------------------------------------------------------

def test_every_airflow_process_reads_the_one_env_file() -> None:
    for unit, command in SERVICES.items():
        path = UNITS / unit
        assert values(path, "Service", "EnvironmentFile") == [INSTALLED_ENV], unit
        inline = " ".join(values(path, "Service", "Environment"))
        assert not any(name in inline for name in SHARED_VALUES), (
            f"{unit} overrides a shared value inline: every process must read it from the env file")
        assert one(path, "Service", "ExecStart").startswith(f"/opt/eob/.venv/bin/airflow {command}"), unit
        assert one(path, "Service", "User") == "airflow", unit
        assert one(path, "Service", "Restart") == "on-failure", unit
        assert f"/opt/eob/infra/systemd/{ENV_CHECK.name}" in values(path, "Service", "ExecStartPre"), (
            f"{unit} starts without checking the env file")
        for key, setting in [("NoNewPrivileges", "yes"), ("ProtectSystem", "full"), ("PrivateTmp", "yes")]:
            assert one(path, "Service", key) == setting, f"{unit}: {key}"
        assert not values(path, "Service", "MemoryDenyWriteExecute"), (
            f"{unit}: numba compiles machine code at run time; MemoryDenyWriteExecute breaks it")


def test_the_target_starts_and_stops_every_process() -> None:
    wanted = " ".join(values(UNITS / TARGET, "Unit", "Wants")).split()
    assert sorted(wanted) == sorted(name.replace("@.", "@default.") for name in SERVICES)
    for unit in SERVICES:
        assert values(UNITS / unit, "Unit", "PartOf") == [TARGET], unit
        assert values(UNITS / unit, "Install", "WantedBy") == [TARGET], unit


def test_env_file_names_each_shared_value_once() -> None:
    entries = env_file_entries(ENV_EXAMPLE)
    for name in SHARED_VALUES:
        assert [key for key, _ in entries].count(name) == 1, name
    settings = env_file(ENV_EXAMPLE)
    for name in SHARED_SECRETS:  # a placeholder, never a secret every checkout shares
        assert settings[name] == "change-me", name


def test_execution_api_url_reaches_the_api_server() -> None:
    settings = env_file(ENV_EXAMPLE)
    url = urlsplit(settings["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.scheme == "http" and url.path == "/execution/"
    assert url.port == int(settings["AIRFLOW__API__PORT"])
    assert url.hostname in {settings["AIRFLOW__API__HOST"], "localhost"}
    assert "--port" not in one(UNITS / "eob-airflow-api-server.service", "Service", "ExecStart"), (
        "the API server's port comes from the env file, where the workers' URL is")


def test_airflow_reads_every_setting_of_the_env_file(tmp_path: Path) -> None:
    """Airflow (the locked version) knows each AIRFLOW__ option the file sets and reads its
    value: a misspelt name would be silently ignored, leaving a default in its place."""
    settings = env_file(ENV_EXAMPLE) | generated_secrets()
    settings["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(tmp_path / "logs")
    read = airflow_reads(settings, tmp_path / "home")
    unknown = [name for name, found in read.items() if not found["known"]]
    assert not unknown, f"options Airflow does not know: {unknown}"
    for name, found in read.items():
        assert str(found["value"]) == settings[name], name


def test_worker_warm_shutdown_outlasts_a_send_task() -> None:
    worker = UNITS / WORKER
    assert one(worker, "Service", "KillMode") == "mixed"
    assert one(worker, "Service", "KillSignal") == "SIGTERM"
    budget = Settings.model_fields["send_max_seconds"].default
    assert seconds(one(worker, "Service", "TimeoutStopSec")) > budget
    assert "--queues %i" in one(worker, "Service", "ExecStart")


# -- the start-up check of the env file ------------------------------------------------------------

def run_env_check(settings: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(ENV_CHECK)], env=clean_env(**settings), capture_output=True,
                          text=True, timeout=30)


def test_env_check_refuses_the_example_as_shipped() -> None:
    settings = env_file(ENV_EXAMPLE)
    result = run_env_check(settings)
    assert result.returncode == 1
    for name in (*SHARED_SECRETS, "EOB_VERP_SECRET", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"):
        assert f"{name}(change-me)" in result.stderr, name


def test_env_check_refuses_an_empty_secret_and_names_no_value() -> None:
    secret = generated_secrets()
    settings = {"AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://10.0.0.5:8080/execution/",
                **secret, "AIRFLOW__API_AUTH__JWT_SECRET": ""}
    result = run_env_check(settings)
    assert result.returncode == 1
    assert "AIRFLOW__API_AUTH__JWT_SECRET(empty)" in result.stderr
    assert not any(value in result.stderr + result.stdout for value in secret.values())


def test_env_check_refuses_an_execution_url_without_its_path() -> None:
    settings = {**generated_secrets(), "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": "http://10.0.0.5:8080"}
    result = run_env_check(settings)
    assert result.returncode == 1 and "AIRFLOW__CORE__EXECUTION_API_SERVER_URL(" in result.stderr


def test_env_check_accepts_a_filled_in_file() -> None:
    settings = {key: value.replace("change-me", "acme") for key, value in env_file(ENV_EXAMPLE).items()}
    result = run_env_check(settings | generated_secrets())
    assert result.returncode == 0, result.stderr
