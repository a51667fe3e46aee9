"""`eob paper …` for support and operations: batches listed and shown without an address in
sight, a lost batch re-dropped from the same files, a cancellation past its window refused."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli.main import app
from pipeline.stages import paper_batch_stage
from tests.support.paper import ADDRESSES, DAY, paper_context, queue_paper
from tests.support.send import WallClock

NAME = "EOB-20261203-FIRST-001"


def test_list_show_redrop_and_a_refused_cancel(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    ctx = paper_context(workspace, WallClock())
    queue_paper(ctx, 3)
    paper_batch_stage(ctx, DAY)
    env = {"EOB_WORKSPACE": str(workspace), "EOB_IMB_MAILER_ID": "123456", "COLUMNS": "200"}
    runner = CliRunner()

    listed = runner.invoke(app, ["paper", "list"], env=env)
    assert listed.exit_code == 0, listed.output
    assert NAME in listed.output and "delivered" in listed.output and "batched 3" in listed.output

    shown = runner.invoke(app, ["paper", "show", NAME], env=env)
    assert shown.exit_code == 0, shown.output
    assert "pieces 3" in shown.output and f"{NAME}.pdf" in shown.output and "sha256" in shown.output
    for line1, _line2, city, _state, _zip in ADDRESSES:
        assert line1.upper() not in shown.output + listed.output and city.upper() not in shown.output

    (workspace / "vendor-drop" / f"{NAME}.manifest.csv").unlink()
    redropped = runner.invoke(app, ["paper", "redrop", NAME, "--actor", "ops"], env=env)
    assert redropped.exit_code == 0, redropped.output
    assert (workspace / "vendor-drop" / f"{NAME}.manifest.csv").is_file()

    late = runner.invoke(app, ["paper", "cancel", NAME, "--actor", "ops"], env=env)
    assert late.exit_code == 1 and "past its cancellation window" in late.output
    forwarded = runner.invoke(app, ["paper", "forwarded", "--actor", "support-7"], env=env)
    assert forwarded.exit_code == 0 and "new address" in forwarded.output
    assert any(e["action"] == "paper_forwarding_listed" for e in ctx.ledger.fetch("audit_chain"))
    missing = runner.invoke(app, ["paper", "show", "EOB-NOPE"], env=env)
    assert missing.exit_code == 1 and "no batch EOB-NOPE" in missing.output
