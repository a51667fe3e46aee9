"""Code and sql/ stay in step: every query the code names exists, migrations are in order."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.sqlfiles import SqlFileError, migrations, queries, query

PIPELINE = Path(__file__).resolve().parent.parent / "pipeline"
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
