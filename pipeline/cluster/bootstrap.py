"""What `eob cluster up` does once before any long-running process starts: the two databases,
Airflow's schema, pools and connections, and the ledger's migrations. Each step is safe to
repeat: a re-run of `up` changes nothing that is already right."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from pipeline.cluster.spec import CONNECTIONS_JSON, POOLS_JSON, REPO, ClusterError, ClusterSpec

AIRFLOW = Path(sys.executable).parent / "airflow"
Say = Callable[[str], None]


def ensure_databases(spec: ClusterSpec) -> list[str]:
    """Create the metadata and ledger databases when missing; returns those created."""
    import psycopg

    created = []
    try:
        with psycopg.connect(spec.database_url("postgres"), autocommit=True, connect_timeout=5) as conn:
            for name in (spec.airflow_db, spec.ledger_db):
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                    continue
                conn.execute(f'CREATE DATABASE "{name}"')  # the name is checked by ClusterSpec
                created.append(name)
    except psycopg.OperationalError as exc:
        raise ClusterError(f"PostgreSQL at {spec.pg_url} refused or did not answer ({exc}): start it, "
                           "or give --pg-url") from None
    return created


def airflow_cli(args: Sequence[str], env: Mapping[str, str], *, timeout: float = 600) -> str:
    """Run one `airflow …` command with the cluster's environment; ClusterError (with the end of
    its output) when it fails."""
    done = subprocess.run([str(AIRFLOW), *args], env=dict(env), cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip().splitlines()[-15:]
        raise ClusterError(f"`airflow {' '.join(args)}` failed (exit {done.returncode}):\n"
                           + "\n".join(tail))
    return done.stdout


def migrate_ledger(spec: ClusterSpec) -> list[int]:
    """`eob migrate` for the cluster's ledger database: the migrations applied now."""
    from pipeline.ledger import Ledger

    ledger = Ledger.open(spec.ledger_url, migrate=False)
    try:
        return ledger.migrate()
    finally:
        ledger.close()


def bootstrap(spec: ClusterSpec, env: Mapping[str, str], say: Say, *, new_secrets: bool = False) -> None:
    """Databases, `airflow db migrate`, pools and connections imported, the ledger migrated.

    `new_secrets`: the secrets were generated just now; an Airflow database already there was
    then made by another cluster folder, and what it encrypted (connections, variables) cannot
    be read with the new Fernet key, so it is refused rather than half used."""
    created = ensure_databases(spec)
    if new_secrets and spec.airflow_db not in created:
        raise ClusterError(
            f"the database {spec.airflow_db} already exists, but the secrets of {spec.dir} are new: "
            "its connections are encrypted with another cluster's Fernet key. Use the cluster "
            f"folder that made it (--dir), drop it (`dropdb {spec.airflow_db}`), or choose "
            "another --airflow-db")
    say(f"databases {spec.airflow_db} (Airflow) and {spec.ledger_db} (ledger): "
        + (f"created {', '.join(created)}" if created else "already there"))
    airflow_cli(["db", "migrate"], env)
    say("Airflow metadata migrated")
    airflow_cli(["pools", "import", str(POOLS_JSON)], env)
    # without --overwrite: a connection already there (e.g. its real password set by an
    # operator) is kept, and the import reports it and exits 0
    airflow_cli(["connections", "import", str(CONNECTIONS_JSON)], env)
    say(f"pools and connections imported ({POOLS_JSON.name}, {CONNECTIONS_JSON.name})")
    applied = migrate_ledger(spec)
    say(f"ledger migrated (applied now: {applied or 'nothing'})")
