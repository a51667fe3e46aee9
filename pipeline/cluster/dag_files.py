"""What the DAG files of `dags/` declare, read from their source (never imported here): the
DAG ids the cluster must have registered, and the Airflow pools their tasks name. Only literal
`dag_id="…"` and `pool="…"` keyword arguments count, which is how the project's DAGs say them."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from pipeline.cluster.spec import DAGS_FOLDER


@dataclass(frozen=True, slots=True)
class DeclaredDags:
    dag_ids: frozenset[str]
    pools: frozenset[str]


def _literal_keywords(tree: ast.AST, name: str) -> set[str]:
    return {keyword.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
            for keyword in node.keywords
            if keyword.arg == name and isinstance(keyword.value, ast.Constant)
            and isinstance(keyword.value.value, str)}


def declared_dags(folder: Path = DAGS_FOLDER) -> DeclaredDags:
    dag_ids: set[str] = set()
    pools: set[str] = set()
    for file in sorted(folder.glob("*.py")):
        tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
        dag_ids |= _literal_keywords(tree, "dag_id")
        pools |= _literal_keywords(tree, "pool")
    return DeclaredDags(frozenset(dag_ids), frozenset(pools))
