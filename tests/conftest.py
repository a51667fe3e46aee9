"""Test set-up shared by every test module.

Airflow reads its configuration when first imported, so its home, DAG folder and metadata DB
are pointed at a private temporary folder here, before any test imports it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline.demo import airflow_runner as airflow_local
from tests.support import REPO

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="eob-test-airflow-"))
os.environ.setdefault("EOB_AIRFLOW_LOG_LEVEL", "INFO")  # task logs on, so PHI checks see them
# the tests run on the shipped test secrets and example domains, which production mode refuses
os.environ.setdefault("EOB_ENVIRONMENT", "demo")
airflow_local.configure(_AIRFLOW_HOME)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


def shared_data() -> Path:
    return Path(os.environ.get("EOB_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    folder = shared_data()
    if not folder.exists():
        pytest.skip(f"the shared reference data folder {folder} is not present")
    return folder


def _postgres_url() -> str | None:
    """A reachable PostgreSQL URL, or None (CI sets EOB_REQUIRE_POSTGRES=1 to forbid skipping)."""
    url = os.environ.get("EOB_TEST_POSTGRES_URL", DEFAULT_PG)
    try:
        import psycopg

        with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"),
                             connect_timeout=3):
            return url
    except Exception:
        return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    url = _postgres_url()
    if url is None:
        message = ("no PostgreSQL reachable at EOB_TEST_POSTGRES_URL "
                   f"({os.environ.get('EOB_TEST_POSTGRES_URL', DEFAULT_PG)}): ledger tests on "
                   "PostgreSQL skipped")
        if os.environ.get("EOB_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " — but EOB_REQUIRE_POSTGRES=1 demands them")
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A private schema per test, dropped afterwards, so tests never see each other's rows."""
    import psycopg

    schema = f"eob_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in postgres_url else "?"
    yield f"{postgres_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    return request.getfixturevalue("postgres_schema_url")
