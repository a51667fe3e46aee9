"""`eob paper …`: print batches for support and operations — list, show, run, cancel, re-drop.

Nothing here prints an address or claim content: batches are named by name, pieces by
statement id. Cancelling and re-dropping take `--actor` and write the audit log.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Print batches for the paper queue: list, show, make, read the vendor's "
                       "files, cancel, re-drop.", no_args_is_help=True, add_completion=False)
console = Console()

Actor = Annotated[str, typer.Option(help="Who does this (recorded in the audit log)")]


def _fail(exc: Exception) -> None:
    console.print(f"[red]{exc}[/red]")
    raise typer.Exit(1)


@app.command("list")
def list_batches() -> None:
    """Every batch with its state, pieces, sheets and what the vendor acknowledged."""
    from pipeline.stages import open_context

    ctx = open_context()
    table = Table("batch", "day", "class", "state", "pieces", "sheets", "accepted", "rejected",
                  "acknowledgement due")
    for row in ctx.ledger.fetch("paper_batches"):
        table.add_row(row["batch_name"], row["batch_day"], row["mail_class"], row["state"],
                      str(row["pieces"]), str(row["sheets"]), str(row["accepted"]), str(row["rejected"]),
                      "-" if row["state"] != "delivered" else row["ack_due_at"][:16])
    console.print(table)
    counts = {r["status"]: r["n"] for r in ctx.ledger.fetch("paper_status_counts")}
    console.print("paper statements: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))


@app.command("show")
def show(batch: Annotated[str, typer.Argument(help="Batch name, e.g. EOB-20261206-FIRST-001")]) -> None:
    """A batch's control totals, its files' hashes and its pieces' statuses."""
    from collections import Counter

    from pipeline.stages import open_context

    ctx = open_context()
    row = ctx.ledger.fetch_one("paper_batch", batch_name=batch)
    if row is None:
        _fail(LookupError(f"no batch {batch}: see `eob paper list`"))
        return
    console.print(f"{row['batch_name']}  {row['mail_class']}  {row['state']}  "
                  f"delivered to {row['drop_where']}")
    console.print(f"pieces {row['pieces']}  sheets {row['sheets']}  pages {row['pages']}  "
                  f"accepted {row['accepted']}  rejected {row['rejected']}")
    for entry in json.loads(row["files"]):
        console.print(f"  {entry['name']}  {entry['bytes']:,} bytes  sha256 {entry['sha256']}")
    pieces = ctx.ledger.fetch("paper_batch_pieces", batch_name=batch)
    statuses = Counter(p["status"] for p in pieces if p["live"])
    console.print("pieces by status: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))


@app.command("forwarded")
def forwarded(actor: Actor) -> None:
    """New addresses the post office forwarded letters to, for support to confirm with the member
    and correct in the member file (member data: every listing is audited)."""
    from pipeline.stages import open_context

    ctx = open_context()
    rows = ctx.ledger.fetch("paper_forwarding_list")
    ctx.ledger.audit(actor, "paper_forwarding_listed", None, {"rows": len(rows)})
    table = Table("statement", "reported", "status", "new address (to confirm)")
    for row in rows:
        table.add_row(row["statement_id"], row["received_at"][:10], row["status"], row["new_address"])
    console.print(table)


@app.command("run")
def run(
    day: Annotated[str | None, typer.Option(help="Batch day YYYY-MM-DD (default: today, UTC)")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only: deliver nothing")] = False,
) -> None:
    """Apply the vendor's files, then make and deliver the day's batches (what eob_paper does)."""
    from pipeline.stages import (
        NeedsOperator,
        open_context,
        paper_batch_stage,
        paper_day,
        paper_vendor_files_stage,
    )

    ctx = open_context()
    try:
        console.print(f"vendor files: {paper_vendor_files_stage(ctx)}")
        console.print(f"batches: {paper_batch_stage(ctx, paper_day(day, None), dry_run=dry_run)}")
    except NeedsOperator as exc:
        _fail(exc)


@app.command("cancel")
def cancel(batch: Annotated[str, typer.Argument(help="Batch name")], actor: Actor) -> None:
    """Cancel a delivered batch within its window; its pieces return to the paper queue."""
    from pipeline.stages import NeedsOperator, cancel_batch, open_context

    try:
        moved = cancel_batch(open_context(), batch, actor=actor)
    except NeedsOperator as exc:
        _fail(exc)
        return
    console.print(f"{batch} cancelled: {moved} statements back in the paper queue")


@app.command("redrop")
def redrop(batch: Annotated[str, typer.Argument(help="Batch name")], actor: Actor) -> None:
    """Deliver a batch again that the vendor lost: the same files, checked against their hashes."""
    from pipeline.stages import NeedsOperator, open_context, redrop_batch

    try:
        files = redrop_batch(open_context(), batch, actor=actor)
    except NeedsOperator as exc:
        _fail(exc)
        return
    for entry in files:
        console.print(f"  {entry['name']}  sha256 {entry['sha256']}")
    console.print(f"{batch} delivered again: the same {len(files)} files")
