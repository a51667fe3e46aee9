"""`eob audit …`: prove the audit log is whole, and review who looked at members' data.

`verify` walks the hash chain and names the first entry that was modified, deleted, reordered or
inserted; it prints the head (entries, hash, when the last entry was written), which an operator
keeps outside the database (a ticket, a log book) so a later `verify --expect-head` finds entries
cut off the end, or a log rewritten with its hashes recomputed. `report` writes the access review
for a compliance officer: users, counts, statement ids and masked member ids, nothing more, and
the head again, to be filed with it.
"""

from __future__ import annotations

import getpass
import re
import socket
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from pipeline.ledger import Ledger
    from pipeline.settings import Settings

app = typer.Typer(help="The audit log: verify its hash chain, write an access review.",
                  no_args_is_help=True, add_completion=False)
console = Console()


def open_ledger() -> tuple[Settings, Ledger]:
    """Settings (refused in production while they hold shipped test values) and the ledger."""
    from pipeline.ledger import Ledger
    from pipeline.settings import Settings, SettingsRefused, check_environment

    settings = Settings()
    try:
        check_environment(settings)
    except SettingsRefused as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    return settings, Ledger.open(settings.ledger_dsn)


def command_source() -> str:
    """Where a command ran, for the audit log's "from where": this machine's name."""
    return f"cli@{socket.gethostname()}"


def default_actor() -> str:
    return getpass.getuser()


def _day(value: str, option: str) -> date:
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        raise typer.BadParameter(f"{option} takes a day as YYYY-MM-DD, not {value!r}") from None


@app.command("verify")
def verify(
    expect_head: Annotated[str | None, typer.Option(
        help="A head hash printed by an earlier verify: also check it is still in the log (entries "
             "cut off the end leave a shorter chain that is otherwise intact)")] = None,
) -> None:
    """Check the whole hash chain in order. Exits with 1, naming the first modified, deleted,
    reordered or inserted entry, when the log was tampered with."""
    from pipeline.desk.audit import verify as verify_log

    if expect_head is not None and not re.fullmatch(r"[0-9a-f]{64}", expect_head.strip().lower()):
        raise typer.BadParameter("--expect-head takes the 64-character head a verify printed")
    expect_head = expect_head.strip().lower() if expect_head else None
    _settings, ledger = open_ledger()
    report = verify_log(ledger, expect_head=expect_head)
    if report.problem is not None:
        console.print(f"[bold red]audit log BROKEN at entry {report.problem.seq} "
                      f"({report.problem.kind}):[/] {report.problem.message}", soft_wrap=True)
        console.print(f"{report.entries} entries read; the chain verified up to head {report.head}. "
                      "Keep this database as it is and compare it with a backup to see what "
                      "changed.", soft_wrap=True)
        raise typer.Exit(1)
    console.print(f"[green]audit log intact[/]: {report.entries} entries", soft_wrap=True)
    written = f"last entry written {report.head_at[:19]} UTC" if report.head_at else "no entry yet"
    console.print(f"head {report.head} ({report.entries} entries, {written}, checked "
                  f"{ledger.now()[:19]} UTC)", soft_wrap=True, markup=False)
    if expect_head:
        console.print("the expected head is in the chain", soft_wrap=True)
    else:
        console.print("keep the head outside this database (a ticket, the compliance file): "
                      "`eob audit verify --expect-head HEAD` later shows whether entries were cut "
                      "off the end or the log was rewritten", soft_wrap=True, markup=False)


@app.command("report")
def report(
    since: Annotated[str, typer.Option(help="First day reviewed, YYYY-MM-DD (UTC)")],
    until: Annotated[str | None, typer.Option(
        help="Last day reviewed, YYYY-MM-DD (UTC); default: up to now")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Folder for the HTML and CSV (default: the workspace's reports folder)")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Who asks for the review (recorded in the audit log); default: this login")] = None,
) -> None:
    """The access review for a compliance officer: who looked at how many members, unusual
    volumes, looks at members with no open contact; written as HTML and CSV."""
    from pipeline.desk.audit import DeskAction, access_review, record, summary_lines, write_access_review

    first, last = _day(since, "--since"), _day(until, "--until") if until else None
    if last is not None and last < first:
        raise typer.BadParameter("--until is before --since")
    settings, ledger = open_ledger()
    review = access_review(ledger, settings, first, last)
    paths = write_access_review(review, out or settings.reports_dir)
    record(ledger, actor=actor or default_actor(), action=DeskAction.EXPORT, source=command_source(),
           detail={"report": "access_review", "since": first.isoformat(),
                   "until": last.isoformat() if last else None})
    for line in summary_lines(review):
        console.print(line, soft_wrap=True, markup=False)
    console.print(f"written: {paths['html']} and {paths['csv']} (both carry the audit log's head: "
                  "file them outside this database)", soft_wrap=True, markup=False)
    if not review.chain.intact:
        raise typer.Exit(1)
