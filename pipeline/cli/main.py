"""`eob`: the operator's command line (generate extracts, run the demo, check the configuration,
report, look up)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

app = typer.Typer(help=__doc__, no_args_is_help=True, add_completion=False)
console = Console()


def _register_subcommands() -> None:
    """Operator command groups that live beside the code they drive."""
    from pipeline.cli.audit import app as audit_app
    from pipeline.cli.cluster import app as cluster_app
    from pipeline.cli.paper import app as paper_app
    from pipeline.cli.reconcile import app as reconcile_app
    from pipeline.cli.send import app as send_app
    from pipeline.cli.users import app as users_app
    from pipeline.cli.web import web

    app.add_typer(audit_app, name="audit")
    app.add_typer(cluster_app, name="cluster")
    app.add_typer(paper_app, name="paper")
    app.add_typer(reconcile_app, name="reconcile")
    app.add_typer(send_app, name="send")
    app.add_typer(users_app, name="users")
    app.command()(web)


_register_subcommands()

Period = Annotated[str, typer.Option(help="Statement month, YYYY-MM")]


@app.command()
def generate(
    members: Annotated[int, typer.Option(min=1, help="How many members")] = 1000,
    period: Period = "2026-11",
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files")] = 7,
    out: Annotated[Path, typer.Option(help="Folder for the extract files")] = Path("var/extracts"),
) -> None:
    """Write a deterministic synthetic claim extract (members, plans, claims) for one period."""
    from pipeline.demo.generate import generate_extract

    result = generate_extract(out / period, members=members, period=period, seed=seed)
    console.print(f"wrote {result.claim_lines} claim lines ({result.malformed_lines} malformed on "
                  f"purpose) for {result.members} members to {result.folder}")


@app.command()
def demo(
    members: Annotated[int, typer.Option(min=1, help="How many members")] = 1000,
    period: Period = "2026-11",
    seed: Annotated[int, typer.Option(help="Random seed for the synthetic extract")] = 7,
    shards: Annotated[int, typer.Option(min=1, max=64, help="Render shards")] = 2,
    workspace: Annotated[Path, typer.Option(help="Demo workspace (wiped first)")] = Path("var/demo"),
    parallel: Annotated[bool, typer.Option(
        help="Run eob_monthly's tasks side by side on Airflow's LocalExecutor (every core); "
             "--no-parallel runs them one by one in this process")] = True,
) -> None:
    """A whole monthly run on embedded defaults, through Airflow, against loopback SMTP servers."""
    from pipeline.demo.run import run_demo

    logging.basicConfig(level=logging.WARNING)
    result = run_demo(workspace=workspace, members=members, period=period, seed=seed,
                      shards=shards, on_stage=lambda s: console.print(f"[bold cyan]▶ {s}[/]"),
                      watch=_watch_progress, parallel=parallel)
    _print_summary(result)
    _seed_desk(result.settings)
    attention = result.summary.get("attention_checks") or []
    if attention:  # e.g. a synthetic dependent with an e-mail address but no postal one
        from pipeline.report import TO_ACT_ON

        console.print(f"[yellow]{TO_ACT_ON}: {', '.join(attention)}[/]")
    failed = result.summary.get("failed_checks") or []
    if failed:
        console.print(f"[bold red]reconciliation failed: {failed}[/]")
        raise typer.Exit(1)


def _seed_desk(settings) -> None:  # type: ignore[no-untyped-def]
    """The support desk on the demo's ledger: one user per role, and how to start it."""
    from pipeline.demo.desk_users import seed_desk_users
    from pipeline.ledger import Ledger

    path, users = seed_desk_users(Ledger.open(settings.ledger_dsn), settings.workspace)
    table = Table(title=f"support desk users (also in {path}, readable by you only)")
    for column in ("user", "role", "password"):
        table.add_column(column)
    for user in users:
        table.add_row(user.username, user.role.value, user.password)
    console.print(table)
    console.print(f"support desk: EOB_ENVIRONMENT=demo EOB_WORKSPACE={settings.workspace} ./eob web, "
                  f"then open http://{settings.web_host}:{settings.web_port}/")


def _watch_progress(settings, stop: threading.Event) -> None:  # type: ignore[no-untyped-def]
    """Progress bars fed from the ledger while Airflow runs the tasks."""
    from pipeline.ledger import Ledger

    ledger = None
    with Progress(TextColumn("{task.description:>10}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as progress:
        bars = {name: progress.add_task(name, total=None) for name in ("rendered", "sent")}
        while not stop.wait(0.5):
            try:
                ledger = ledger or Ledger.open(settings.ledger_dsn, migrate=False)
                counts = _stage_counts(ledger)
            except Exception:  # the ledger may not exist yet in the first seconds
                continue
            for name, (done, total) in counts.items():
                progress.update(bars[name], completed=done, total=total or None)


def _stage_counts(ledger) -> dict[str, tuple[int, int]]:  # type: ignore[no-untyped-def]
    run = ledger.fetch_one("latest_run")
    if run is None:
        return {}
    counts = ledger.status_counts(run["run_id"])
    total = sum(counts.values()) - counts.get("superseded", 0)  # replaced before rendering
    not_rendered = counts.get("composed", 0)
    emailable = total - not_rendered - counts.get("failed", 0) - counts.get("rendered", 0)
    queued = counts.get("queued", 0)
    paper_only = counts.get("paper_queued", 0)
    return {"rendered": (total - not_rendered, total),
            "sent": (max(emailable - queued - paper_only, 0), max(emailable - paper_only, 0))}


def _print_summary(result) -> None:  # type: ignore[no-untyped-def]
    s = result.summary
    table = Table(title=f"EOB monthly run {result.summary['run_id']}")
    table.add_column("measure")
    table.add_column("count", justify="right")
    rows = [
        ("claim lines read", s["lines_read"]), ("  accepted", s["lines_accepted"]),
        ("  quarantined", s["lines_quarantined"]), ("members", s["members"]),
        ("statements", s["statements"]),
        ("  patients' own (confidential communications)", s["own_statements"]),
        ("rendered", s["rendered"]),
        ("statements accepted by the relays (250)", s["accepted_by_relay"]),
        ("messages received (statements and notices)", result.received),
        ("  emailed, no bounce", s["sent"]),
        ("bounced (at SMTP time or by DSN)", s["bounced"]), ("  → retry queue", s["queue_retry"]),
        ("  → verification queue", s["queue_verification"]),
        ("paper (all reasons)", s["paper"]), ("failed with reason", s["failed"]),
        ("superseded or withdrawn by a correction", s["superseded"]),
        ("prompt separate notice needed (statements)", s["prompt_notice"]),
        ("  claims flagged",
         f"{s['prompt_notice_claims']} (up to {s['prompt_notice_most_days_late']} days late)"),
        ("prompt notices due (one per flagged claim)", s["notices_due"]),
        ("  sent (relay accepted, or mailed)", s["notices_sent"]),
        ("  on paper, not yet mailed", s["notices_on_paper"]),
        ("  still to send", s["notices_waiting"]),
        ("  late (left after their due date)", s["notices_late"]),
    ]
    paper = result.paper
    rows += [
        ("print batches delivered to the vendor", paper.get("batches", 0)),
        ("  pieces printed (sheets)", f"{paper.get('vendor_accepted', 0)} ({paper.get('sheets', 0)})"),
        ("  mailed", paper.get("mailed", 0)),
        ("  returned to sender → verification", paper.get("vendor_returned", 0)),
        ("  address exceptions (for support)", paper.get("paper_exception", 0)),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    objects = Path(result.settings.objects_url.removeprefix("file://"))
    console.print(f"PDFs:    {objects}")
    console.print(f"ledger:  {result.settings.ledger_dsn}")
    console.print(f"report:  {s['html']}")
    console.print(f"finance: {s['finance_html']} (its workbook and CSV tables beside it)")
    console.print(f"bounces: {result.settings.maildir}  (reconcile: {result.reconcile})")
    timing = ", ".join(f"{k} {v:.1f}s" for k, v in result.seconds.items())
    console.print(f"time:    {timing}")


@app.command()
def report(
    period: Annotated[str | None, typer.Option(help="Statement month YYYY-MM: its run's report")] = None,
    month: Annotated[str | None, typer.Option(
        help="Calendar month YYYY-MM: the finance report of every run's activity in it")] = None,
) -> None:
    """Rebuild the reports from the ledger: a period's run report (HTML + CSV) and finance report
    (HTML, CSV, XLSX), or with --month the month's finance rollup of several runs."""
    from pipeline.stages import finance_month_stage, open_context, report_stage

    if (period is None) == (month is None):
        raise typer.BadParameter("give --period YYYY-MM or --month YYYY-MM")
    if period is not None:
        result = report_stage(open_context(), period)
        console.print(f"report written: {result['html']} and {result['csv']}")
        console.print(f"finance report written: {result['finance_html']} and {result['finance_xlsx']}")
        return
    finance = finance_month_stage(open_context(), str(month))
    console.print(f"finance report written: {finance['html']}, {finance['xlsx']} and {finance['csv']}")


@app.command()
def lookup(
    statement_id: Annotated[str | None, typer.Argument(help="Statement id")] = None,
    member: Annotated[str | None, typer.Option(
        help="A member id instead of a statement id: that recipient's statements only. A subscriber's "
        "id (the one on the card) lists the subscriber's statements, never a patient's own; a "
        "patient's own statements are found by <member id>~<patient id>, a claim number, the email "
        "address or the statement id")] = None,
    claim: Annotated[str | None, typer.Option(help="A claim number on the statement")] = None,
    email: Annotated[str | None, typer.Option(
        help="The email address it was sent to (hashed before it is looked up or logged; never "
        "printed)")] = None,
    reference: Annotated[str | None, typer.Option(
        help="The contact this lookup answers: the call or ticket id (needed with --member, --claim "
        "or --email; a contact is opened with each member found, as the desk's search does)")] = None,
    purpose: Annotated[str | None, typer.Option(
        help="Why the member got in touch, e.g. 'Statement not received' (needed with --reference; "
        "never the member's details)")] = None,
    actor: Annotated[str | None, typer.Option(
        help="Who is asking (recorded in the audit log); default: this login")] = None,
) -> None:
    """A statement's status, queue, next action and its date, delivery deadline and whole
    timeline, for support: what the desk's statement page shows. Every lookup is audited."""
    from pipeline.cli.lookup import run_lookup

    raise typer.Exit(run_lookup(console, statement_id=statement_id, member=member, claim=claim,
                                email=email, actor=actor, reference=reference, purpose=purpose))


@app.command()
def passwords(
    guesses: Annotated[int, typer.Option(min=10, help="Guesses timed per policy on this CPU core")] = 200,
) -> None:
    """Each PDF password policy: guess space, bits, and the time to try every password offline
    on one CPU core (measured now) and on one GPU (a published rate), against the floor."""
    from pipeline.render import GPU_GUESSES_PER_SECOND, POLICIES, cpu_seconds_per_guess, human_duration
    from pipeline.settings import Settings

    settings = Settings()
    floor_seconds = settings.password_min_gpu_days * 86_400
    costs = {name: cpu_seconds_per_guess(name, guesses) for name in POLICIES}
    console.print(f"one guess = one Algorithm 2.B hash of the R6 key derivation. One CPU core: "
                  f"measured now with this project's handler, {guesses} guesses per policy. One GPU: "
                  f"{GPU_GUESSES_PER_SECOND:,.0f} guesses/s (hashcat mode 10700 on an RTX 5090, see "
                  f"pipeline/render/pdf/passwords.py). Floor: {settings.password_min_gpu_days:g} "
                  "day(s) on one GPU (EOB_PASSWORD_MIN_GPU_DAYS).")
    table = Table(title="PDF password policies: time to try every password of one statement offline",
                  caption="* the configured policy (EOB_PASSWORD_POLICY)")
    for column in ("policy", "built from", "guess space", "bits", "ms/guess", "one CPU core",
                   "one GPU", "floor"):
        table.add_column(column, justify="left" if column in ("policy", "built from") else "right",
                         no_wrap=column != "built from")
    for name, policy in POLICIES.items():
        label = f"{name} *" if name == settings.password_policy else name
        table.add_row(label, policy.built_from, f"{policy.guess_space:,}", f"{policy.bits:.1f}",
                      f"{1000 * costs[name]:.3f}", human_duration(policy.cpu_seconds(costs[name])),
                      human_duration(policy.gpu_seconds()),
                      "passes" if policy.gpu_seconds() >= floor_seconds else "[red]refused[/]")
    console.print(table)
    factors = {factor.name: factor for policy in POLICIES.values() for factor in policy.factors}
    for factor in factors.values():
        console.print(f"[bold]{factor.name}[/] ({factor.space:,}): {factor.assumption}")


@app.command("relay-config")
def relay_config(
    bind: Annotated[list[str], typer.Option(
        help="POOL=ADDRESS: the dedicated address a pool's mail leaves from (once per pool)")],
    out: Annotated[Path, typer.Option(help="Folder for main.cf and master.cf fragments")],
    helo: Annotated[list[str] | None, typer.Option(
        help="POOL=NAME: the name a pool's transport greets with (its address's PTR name)")] = None,
    tls: Annotated[str, typer.Option(help="TLS toward the next hop: verify, secure or encrypt")] = "verify",
    nexthop: Annotated[str, typer.Option(
        help="An outbound gateway every pool delivers through, [host]:port; default: each MX")] = "",
) -> None:
    """Postfix configuration for the IP pools of the pool file (EOB_POOLS_FILE): a listener and a
    transport bound to each pool's dedicated address, TLS required both ways. Append the two
    fragments to the relay's main.cf and master.cf (infra/postfix/README.md)."""
    from pipeline.delivery import PoolConfigError, send_config
    from pipeline.delivery.relay_config import postfix_files
    from pipeline.settings import Settings

    def pairs(items: list[str] | None, what: str) -> dict[str, str]:
        found = dict(item.partition("=")[::2] for item in items or [])
        if any(not k or not v for k, v in found.items()):
            raise typer.BadParameter(f"{what} takes POOL=VALUE")
        return found

    settings = Settings()
    try:
        files = postfix_files(send_config(settings), pairs(bind, "--bind"),
                              bounce_domain=settings.bounce_domain, helo=pairs(helo, "--helo"),
                              tls_level=tls, nexthop=nexthop)
    except PoolConfigError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    out.mkdir(parents=True, exist_ok=True)
    (out / "main.cf").write_text(files.main_cf)
    (out / "master.cf").write_text(files.master_cf)
    console.print(f"written: {out / 'main.cf'} and {out / 'master.cf'} (append them to the relay's own)")


@app.command()
def check(
    relays: Annotated[bool, typer.Option(
        "--relays", help="Also greet each relay as a send would: EHLO, verified STARTTLS, QUIT "
        "(no login, no MAIL)")] = False,
) -> None:
    """Validate the whole configuration on this machine without sending anything: settings, test
    values in production, password policy, templates, pools, source addresses, CA bundles, DKIM.
    Exits with 1 when any check failed."""
    from pipeline.cli.check import print_checks, run_checks

    print_checks(run_checks(relays=relays), "eob check")


@app.command()
def migrate() -> None:
    """Apply pending ledger migrations (SQLite or PostgreSQL, from EOB_LEDGER_URL)."""
    from pipeline.ledger import Ledger
    from pipeline.settings import Settings

    settings = Settings()
    ledger = Ledger.open(settings.ledger_dsn, migrate=False)
    applied = ledger.migrate()
    console.print(f"ledger at schema version {ledger.schema_version()} (applied now: {applied})")


if __name__ == "__main__":  # pragma: no cover
    app()
