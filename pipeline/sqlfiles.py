"""SQL lives in `sql/` as plain files; this module loads it by name.

Queries are named blocks (`-- name: foo`) so a missing name fails when the ledger opens,
not in the middle of a run. Migrations are numbered files applied in order; a migration may
have a dialect-specific variant (`NNN_name.postgresql.sql`) where portable SQL cannot say it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent.parent / "sql"
_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{3})_(\w+?)(?:\.(sqlite|postgresql))?\.sql$")


class SqlFileError(LookupError):
    """The sql/ folder is missing a query or holds a malformed migration."""


@cache
def queries(sql_dir: Path = SQL_DIR) -> dict[str, str]:
    """All named queries of sql/queries/*.sql."""
    found: dict[str, str] = {}
    for path in sorted((sql_dir / "queries").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        parts = _NAME.split(text)
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in found:
                raise SqlFileError(f"query {name!r} is defined twice (second time in {path.name})")
            found[name] = body.strip().rstrip(";")
    return found


def query(name: str) -> str:
    try:
        return queries()[name]
    except KeyError:
        raise SqlFileError(f"no query named {name!r} in sql/queries/*.sql") from None


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def migrations(dialect: str, sql_dir: Path = SQL_DIR) -> list[Migration]:
    """The ordered migrations for one dialect ('sqlite' or 'postgresql')."""
    chosen: dict[int, tuple[str, Path, bool]] = {}
    for path in sorted((sql_dir / "migrations").glob("*.sql")):
        match = _MIGRATION.match(path.name)
        if not match:
            raise SqlFileError(f"migration file {path.name} is not named NNN_name[.dialect].sql")
        version, name, for_dialect = int(match[1]), match[2], match[3]
        if for_dialect and for_dialect != dialect:
            continue
        current = chosen.get(version)
        if current and current[2] == bool(for_dialect):
            raise SqlFileError(f"two migrations numbered {version:03d} for {dialect}")
        if current is None or for_dialect:
            chosen[version] = (name, path, bool(for_dialect))
    versions = sorted(chosen)
    if versions != list(range(1, len(versions) + 1)):
        raise SqlFileError(f"migrations for {dialect} are not numbered 001..N without gaps")
    return [
        Migration(v, chosen[v][0], tuple(split_statements(chosen[v][1].read_text("utf-8"))))
        for v in versions
    ]


def split_statements(script: str) -> list[str]:
    """Split a migration into statements (our migrations never put ';' inside literals)."""
    lines = [line for line in script.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]
