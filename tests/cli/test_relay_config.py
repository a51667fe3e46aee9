"""`eob relay-config`: Postfix fragments written from the pool file named by EOB_POOLS_FILE;
a pool left without its address is refused by name."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli.main import app
from tests.delivery.test_relay_config import two_pools


def test_fragments_are_written_for_every_pool_and_a_missing_address_is_named(tmp_path: Path) -> None:
    (tmp_path / "pools.toml").write_text(two_pools(2601, 2602))
    env = {"EOB_POOLS_FILE": str(tmp_path / "pools.toml"), "EOB_WORKSPACE": str(tmp_path / "ws")}
    runner = CliRunner()
    done = runner.invoke(app, ["relay-config", "--bind", "pool_a=203.0.113.10", "--bind",
                               "pool_b=203.0.113.11", "--out", str(tmp_path / "out")], env=env)
    assert done.exit_code == 0, done.output
    master = (tmp_path / "out" / "master.cf").read_text()
    assert "smtp_bind_address=203.0.113.10" in master and "smtp_bind_address=203.0.113.11" in master
    assert (tmp_path / "out" / "main.cf").read_text().count("_destination_concurrency_limit") == 2
    refused = runner.invoke(app, ["relay-config", "--bind", "pool_a=203.0.113.10", "--out",
                                  str(tmp_path / "again")], env=env)
    assert refused.exit_code == 1 and "missing for pool_b" in refused.output
    assert not (tmp_path / "again").exists()
