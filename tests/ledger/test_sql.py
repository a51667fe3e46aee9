"""Code and sql/ stay in step: every query the code names exists, migrations are in order."""

from __future__ import annotations

import re

import pytest

from pipeline.ledger.sql import REQUIRED_QUERIES, SqlFileError, check_queries, migrations, queries, query
from tests.support import REPO

PIPELINE = REPO / "pipeline"
_USED = re.compile(r"""(?:query|fetch|fetch_one)\(\s*["'](\w+)["']""")


def test_every_query_named_in_code_exists() -> None:
    used = {name for path in PIPELINE.rglob("*.py") for name in _USED.findall(path.read_text())}
    assert used, "no query names found in pipeline/: the pattern is out of date"
    missing = sorted(used - set(queries()))
    assert not missing, f"queries used in code but missing from sql/queries: {missing}"


def test_missing_query_fails_with_its_name() -> None:
    with pytest.raises(SqlFileError, match="no query named 'nope'"):
        query("nope")


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_migrations_are_numbered_without_gaps(dialect: str) -> None:
    versions = [m.version for m in migrations(dialect)]
    assert versions == list(range(1, len(versions) + 1))


def test_queries_use_named_parameters_only() -> None:
    for name, sql in queries().items():
        assert "?" not in sql and "%s" not in sql, f"query {name} uses positional parameters"


_RUNS_QUERY = re.compile(
    r"""(?:query|clause|_with_ids|fetch|fetch_one|fetch_for_ids|execute)\(\s*["'](\w+)["']""")


def test_required_queries_are_exactly_the_names_the_code_runs() -> None:
    """The start-up check covers every name used anywhere, direct `.execute` calls included."""
    used = {name for path in PIPELINE.rglob("*.py") for name in _RUNS_QUERY.findall(path.read_text())}
    assert "apply_transition" in used and "pool_add_usage" in used, "the pattern is out of date"
    assert used == set(REQUIRED_QUERIES), (
        f"named in code, not required: {sorted(used - REQUIRED_QUERIES)}; "
        f"required, not used: {sorted(REQUIRED_QUERIES - used)}")
    check_queries()


def test_opening_the_ledger_fails_fast_naming_a_missing_query(tmp_path, monkeypatch) -> None:
    import pipeline.ledger.store as store

    monkeypatch.setattr(store, "REQUIRED_QUERIES", REQUIRED_QUERIES | {"statement_lookup_v9"})
    with pytest.raises(SqlFileError, match="statement_lookup_v9"):
        store.Ledger.open(f"sqlite:///{tmp_path / 'ledger.sqlite'}")
    assert not (tmp_path / "ledger.sqlite").exists(), "nothing is created before the check"


def test_check_queries_reads_the_folder_it_is_given(tmp_path) -> None:
    (tmp_path / "queries").mkdir()
    (tmp_path / "queries" / "a.sql").write_text("-- name: get_statement\nSELECT 1;\n")
    with pytest.raises(SqlFileError, match="apply_transition"):
        check_queries(sql_dir=tmp_path)
