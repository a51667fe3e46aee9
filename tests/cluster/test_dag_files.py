"""What the DAG files declare, read without importing them."""

from __future__ import annotations

from pathlib import Path

from pipeline.cluster.dag_files import declared_dags


def test_the_projects_dags_and_the_pools_they_name() -> None:
    found = declared_dags()
    assert {"eob_monthly", "eob_reconcile", "eob_paper"} <= found.dag_ids
    assert {"eob_render", "eob_send"} <= found.pools


def test_only_literal_keywords_count(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('dag(dag_id="one")\ntask(pool="p1")\ntask(pool=NAME)\n')
    found = declared_dags(tmp_path)
    assert found.dag_ids == {"one"} and found.pools == {"p1"}
