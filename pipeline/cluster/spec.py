"""What a cluster is made of, written once by `eob cluster up` and read by every other command.

`cluster.json` in the cluster folder holds the choices `up` made (databases, broker, ports,
workers, shards), so `down`, `status`, `check` and `run` need only the folder. Nothing secret is
in it: the secrets have their own 0600 file (`secrets.py`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
"""The project's root: its `dags/` and `infra/` are what the cluster runs."""
DAGS_FOLDER = REPO / "dags"
POOLS_JSON = REPO / "infra" / "airflow" / "pools.json"
CONNECTIONS_JSON = REPO / "infra" / "airflow" / "connections.json"
POOLS_TOML = REPO / "infra" / "pools.toml"
DEFAULT_DIR = REPO / "var" / "cluster"

_DB_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class ClusterError(RuntimeError):
    """Something an operator must fix before the cluster can do what was asked; the message
    says what."""


@dataclass(frozen=True, slots=True)
class ClusterSpec:
    """Every choice `eob cluster up` made; the secrets are not part of it."""

    dir: Path
    pg_url: str = "postgresql://postgres@127.0.0.1:5432"
    airflow_db: str = "eob_airflow"
    ledger_db: str = "eob_ledger"
    redis_url: str = "redis://127.0.0.1:6379/2"
    api_port: int = 8080
    workers: int = 2
    concurrency: int = 2
    shards: int = 4
    demo_relays: bool = True
    relay_port: int = 2525
    schedules: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in (self.airflow_db, self.ledger_db):
            if not _DB_NAME.match(name):
                raise ClusterError(f"database name {name!r}: use lower-case letters, digits and _")
        if self.airflow_db == self.ledger_db:
            raise ClusterError("the Airflow metadata and the ledger need separate databases")
        if urlsplit(self.pg_url).path.strip("/"):
            raise ClusterError(f"--pg-url names a server, not a database: drop "
                               f"{urlsplit(self.pg_url).path!r} (the databases are named apart)")
        if not 1 <= self.workers <= 16 or not 1 <= self.concurrency <= 64:
            raise ClusterError("--workers takes 1 to 16 and --concurrency 1 to 64")

    @property
    def paths(self) -> ClusterPaths:
        return ClusterPaths(self.dir)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def database_url(self, name: str, driver: str = "postgresql") -> str:
        """`postgresql://…/name` on the cluster's server (`driver` e.g. postgresql+psycopg)."""
        return f"{driver}://{self.pg_url.split('://', 1)[1].rstrip('/')}/{name}"

    @property
    def ledger_url(self) -> str:
        return self.database_url(self.ledger_db)

    @property
    def worker_names(self) -> list[str]:
        return [f"worker{i}" for i in range(1, self.workers + 1)]

    @property
    def process_names(self) -> list[str]:
        """Every managed process, in start order (the relays first: their CA is the workers')."""
        relays = ["relays"] if self.demo_relays else []
        return [*relays, "api-server", "scheduler", "dag-processor", "triggerer", *self.worker_names]

    def save(self) -> None:
        data = {**asdict(self), "dir": str(self.dir)}
        self.paths.spec_file.write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: Path) -> ClusterSpec:
        file = ClusterPaths(directory.resolve()).spec_file
        if not file.exists():
            raise ClusterError(f"no cluster in {directory}: bring one up with `eob cluster up --dir "
                               f"{directory}`")
        data = json.loads(file.read_text())
        data["dir"] = Path(data["dir"])
        return cls(**data)


@dataclass(frozen=True, slots=True)
class ClusterPaths:
    """Where a cluster keeps its files: one folder, nothing outside it."""

    dir: Path

    @property
    def spec_file(self) -> Path:
        return self.dir / "cluster.json"

    @property
    def secrets_file(self) -> Path:
        return self.dir / "secrets.json"

    @property
    def env_file(self) -> Path:
        return self.dir / "cluster.env"

    @property
    def airflow_home(self) -> Path:
        return self.dir / "airflow"

    @property
    def passwords_file(self) -> Path:
        return self.airflow_home / "simple_auth_manager_passwords.json"

    @property
    def workspace(self) -> Path:
        return self.dir / "workspace"

    @property
    def tls_dir(self) -> Path:
        return self.dir / "tls"

    @property
    def relays_dir(self) -> Path:
        return self.dir / "relays"

    @property
    def run_dir(self) -> Path:
        return self.dir / "run"

    @property
    def logs_dir(self) -> Path:
        return self.dir / "logs"

    def pid_file(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def log_file(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def make(self) -> None:
        for folder in (self.dir, self.airflow_home, self.workspace, self.tls_dir, self.relays_dir,
                       self.run_dir, self.logs_dir):
            folder.mkdir(parents=True, exist_ok=True)
