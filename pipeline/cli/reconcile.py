"""`eob reconcile …`: the verification work list, the suppression list, the deadline sweeper.

Every command that touches member-related data takes `--actor` and writes the audit log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Bounce reconciliation: verification work list, suppressions, deadline sweeper.",
                  no_args_is_help=True, add_completion=False)
suppression_app = typer.Typer(help="The suppression list (addresses never emailed again).",
                              no_args_is_help=True)
app.add_typer(suppression_app, name="suppression")
console = Console()

Actor = Annotated[str, typer.Option(help="Who runs this (recorded in the audit log)")]


@app.command("export-verification")
def export_verification(
    out: Annotated[Path, typer.Argument(help="Work list file: .xlsx or .csv")],
    actor: Actor = "outreach",
) -> None:
    """Write the verification work list for outreach staff (no statement content)."""
    from pipeline.reconcile import export_worklist
    from pipeline.stages import open_context

    rows = export_worklist(open_context(), out, actor=actor)
    console.print(f"{rows} statements awaiting address verification written to {out}")


@app.command("import-verification")
def import_verification(
    path: Annotated[Path, typer.Argument(help="The filled-in work list (.xlsx or .csv)")],
    actor: Actor = "outreach",
) -> None:
    """Apply outreach outcomes: verified → resend to the confirmed address; failed → paper."""
    from pipeline.reconcile import VerificationError, import_outcomes
    from pipeline.stages import open_context

    try:
        result = import_outcomes(open_context(), path, actor=actor)
    except VerificationError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    console.print(f"verified {result.verified}, failed {result.failed}, unchanged {result.unchanged}")
    for row, problem in result.problems:
        console.print(f"[yellow]row {row}: {problem}[/]")
    if result.problems:
        raise typer.Exit(1)


@suppression_app.command("lift")
def lift_suppression(
    reason: Annotated[str, typer.Option(help="Why the address may be emailed again")],
    address: Annotated[str | None, typer.Option(help="The suppressed address")] = None,
    statement: Annotated[
        str | None, typer.Option(help="Or: the statement whose bounce suppressed it")] = None,
    actor: Actor = "support",
) -> None:
    """Lift a suppression (with a reason; audited)."""
    from pipeline.delivery.suppression import SuppressionError, lift
    from pipeline.stages import open_context

    ctx = open_context()
    try:
        n = lift(ctx.ledger, reason=reason, actor=actor, address=address, statement_id=statement,
                 secret=ctx.settings.verp_secret.get_secret_value())
    except SuppressionError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from None
    console.print(f"lifted {n} suppression entr{'y' if n == 1 else 'ies'}")


@suppression_app.command("show")
def show_suppression(
    address: Annotated[str, typer.Option(help="The address to look up")],
    actor: Actor = "support",
) -> None:
    """Whether an address is suppressed, since when and why (audited)."""
    from pipeline.delivery.suppression import entry
    from pipeline.stages import open_context

    ctx = open_context()
    found = entry(ctx.ledger, address, ctx.settings.verp_secret.get_secret_value())
    ctx.ledger.audit(actor, "suppression_lookup", found.statement_id if found else None, {})
    if found is None:
        console.print("not on the suppression list")
        return
    state = f"lifted {found.lifted_at}: {found.lifted_reason}" if found.lifted_at else "active"
    console.print(f"cause {found.cause}, since {found.created_at}, statement {found.statement_id}, {state}")


@app.command()
def sweep() -> None:
    """Run the delivery-deadline sweeper once (the reconcile DAG runs it every 15 minutes)."""
    from pipeline.stages import open_context, sweep_stage

    console.print(sweep_stage(open_context()) or "nothing was due")


@app.command()
def queues(period: Annotated[str, typer.Option(help="Statement month, YYYY-MM")]) -> None:
    """Where a run's bounced statements are: retry, verification, paper or resolved."""
    from pipeline.reconcile import unsettled
    from pipeline.stages import open_context, run_id_for
    from pipeline.stages.reconcile import queue_counts

    ctx = open_context()
    run_id = run_id_for(period)
    console.print(queue_counts(ctx, run_id))
    console.print({"unsettled": unsettled(ctx.ledger, run_id)})
