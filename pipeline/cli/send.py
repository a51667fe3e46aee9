"""`eob send …`: operator controls for the IP pools — pause, resume, status, dry run, resend.

Every command that changes what is sent takes `--actor` and `--reason` and writes the audit
log. Nothing here prints an address: statements are named by id, providers by name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipeline.delivery.pools import SendConfig
from pipeline.ledger import Ledger, Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status, sources_for

app = typer.Typer(help="IP pool send controls: pause/resume a pool or provider, status, dry run, "
                       "resend statements.", no_args_is_help=True, add_completion=False)
console = Console()

Actor = Annotated[str, typer.Option(help="Who does this (recorded in the audit log)")]
Reason = Annotated[str, typer.Option(help="Why (recorded in the audit log and the timeline)")]
Provider = Annotated[str, typer.Option(
    help="A provider (gmail, yahoo, outlook, icloud, default), or * for the whole pool")]

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class SendCommandError(ValueError):
    """An operator's request that cannot be carried out as asked."""


def parse_duration(text: str) -> float:
    """'90m', '2h', '1.5d' → seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise SendCommandError(f"duration {text!r}: use a number and s, m, h or d (e.g. 2h)")
    return float(match[1]) * _UNIT_SECONDS[match[2]]


# -- resend ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResendOutcome:
    statement_id: str
    requeued: bool
    pool: str | None
    why: str


def resend(
    ledger: Ledger, config: SendConfig, statement_ids: list[str], *, reason: str, actor: str,
    pool: str | None = None,
) -> list[ResendOutcome]:
    """Put statements back in a send queue, with the reason on each timeline and in the audit.

    Only statuses the state machine lets move to ``queued`` are resent (a retry waiting for its
    backoff, a verified address, a rendered statement never routed). An address waiting for
    verification is never resent: that is the point of verifying it first.
    """
    if not reason.strip():
        raise SendCommandError("a resend needs a reason")
    if pool is not None and pool not in config.pool_names:
        raise SendCommandError(f"unknown pool {pool!r} (known: {config.pool_names})")
    allowed = sources_for(Status.QUEUED)
    outcomes = []
    wanted = list(dict.fromkeys(statement_ids))
    found = {row["statement_id"]: row for row in ledger.fetch_for_ids("send_statements_by_id", wanted)}
    for sid in wanted:
        row = found.get(sid)
        if row is None:
            outcomes.append(ResendOutcome(sid, False, None, "no such statement"))
            continue
        status = Status(row["status"])
        if row["channel"] != "email":
            outcomes.append(ResendOutcome(sid, False, None, "a paper-only statement"))
            continue
        if status not in allowed:
            why = ("the address awaits verification; resend after it is verified"
                   if status is Status.VERIFICATION_PENDING
                   else f"status {status.value} cannot go back to the send queue")
            outcomes.append(ResendOutcome(sid, False, row["pool"], why))
            continue
        target = pool or row["pool"] or _default_pool(config, sid)
        moved = ledger.apply([Transition(sid, Status.QUEUED, Event.RESEND_REQUESTED,
                                         {"reason": reason.strip()[:200], "actor": actor,
                                          "pool": target}, {"pool": target})])
        outcomes.append(ResendOutcome(sid, moved == 1, target,
                                      "queued" if moved else "changed concurrently; not queued"))
    ledger.audit(actor, "send_resend", None, {
        "reason": reason.strip()[:200],
        "requeued": [o.statement_id for o in outcomes if o.requeued],
        "refused": {o.statement_id: o.why for o in outcomes if not o.requeued}})
    return outcomes


def _default_pool(config: SendConfig, statement_id: str) -> str:
    from pipeline.delivery.pools import capacities, pick_pool

    return pick_pool(statement_id, capacities(config))


def read_ids(ids: list[str], file: Path | None) -> list[str]:
    """Ids from arguments and/or a file (one per line, # comments allowed)."""
    found = list(ids)
    if file is not None:
        for line in file.read_text(encoding="utf-8").splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                found.append(line)
    if not found:
        raise SendCommandError("give statement ids as arguments or with --file")
    return found


# -- status ------------------------------------------------------------------------------------


def pool_status(ledger: Ledger, config: SendConfig, now: datetime) -> list[dict[str, Any]]:
    """Per pool: pauses, warm-up day and caps, usage, throttled lanes, queued per provider."""
    from pipeline.delivery import controls as controls_db

    report = []
    for pool in config.pools:
        warm = controls_db.warmup_status(ledger, pool, now)
        throttle = controls_db.load_throttle(ledger, pool.name, now)
        report.append({
            "pool": pool.name,
            "pauses": [{"provider": p.provider, "kind": p.kind, "until": p.ends_at,
                        "reason": p.reason, "by": p.actor}
                       for p in controls_db.active_pauses(ledger, pool.name, now)],
            "warmup_day": warm.caps.day if pool.warmup else None,
            "daily_cap": warm.caps.daily, "hourly_cap": warm.caps.hourly,
            "sent_today": warm.sent_today, "sent_this_hour": warm.sent_this_hour,
            "allowance": warm.allowance,
            "throttled": {p: round(s.rate_after_decrease, 3) for p, s in throttle.items()},
            "queued": controls_db.provider_counts(ledger, config, pool.name),
        })
    return report


# -- commands ----------------------------------------------------------------------------------


def _context() -> Any:
    from pipeline.stages import open_context

    return open_context()


def _config(ctx: Any) -> SendConfig:
    from pipeline.delivery.pools import send_config

    return send_config(ctx.settings)


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]{exc}[/]")
    return typer.Exit(2)


@app.command()
def pause(
    pool: Annotated[str, typer.Argument(help="IP pool name")],
    reason: Reason,
    provider: Provider = "*",
    for_: Annotated[str | None, typer.Option("--for", help="How long: 30m, 2h, 1d; "
                                                          "default: until resumed")] = None,
    actor: Actor = "operations",
) -> None:
    """Stop every attempt on a pool (or one provider on it) until resumed or for a while."""
    from pipeline.delivery import controls as controls_db

    ctx = _context()
    try:
        seconds = parse_duration(for_) if for_ else None
        row = controls_db.pause(ctx.ledger, _config(ctx), pool=pool, provider=provider,
                                reason=reason, actor=actor, now=ctx.now(), seconds=seconds)
    except (SendCommandError, controls_db.ControlError) as exc:
        raise _fail(exc) from None
    console.print(f"paused {pool} × {provider} until {row.ends_at or 'resumed'} ({row.pause_id})")


@app.command()
def resume(
    pool: Annotated[str, typer.Argument(help="IP pool name")],
    reason: Reason,
    provider: Provider = "*",
    actor: Actor = "operations",
) -> None:
    """Lift pauses and suspensions of a pool × provider (exactly as they were set)."""
    from pipeline.delivery import controls as controls_db

    ctx = _context()
    try:
        lifted = controls_db.resume(ctx.ledger, _config(ctx), pool=pool, provider=provider,
                                    reason=reason, actor=actor, now=ctx.now())
    except controls_db.ControlError as exc:
        raise _fail(exc) from None
    console.print(f"lifted {lifted} pause(s) of {pool} × {provider}")


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False,
) -> None:
    """Pauses, warm-up day and caps, usage, throttled providers and queue per pool."""
    ctx = _context()
    report = pool_status(ctx.ledger, _config(ctx), ctx.now())
    if as_json:
        console.print_json(json.dumps(report))
        return
    table = Table(title="IP pools")
    for column in ("pool", "paused", "warm-up", "today / hour", "throttled", "queued"):
        table.add_column(column)
    for row in report:
        paused = ", ".join(f"{p['provider']} ({p['kind']}, until {p['until'] or 'resumed'})"
                           for p in row["pauses"]) or "-"
        warm = (f"day {row['warmup_day']}: {row['daily_cap']}/day, {row['hourly_cap']}/h"
                if row["warmup_day"] else "warm")
        table.add_row(row["pool"], paused, warm, f"{row['sent_today']} / {row['sent_this_hour']}",
                      ", ".join(f"{p} {r}/s" for p, r in row["throttled"].items()) or "-",
                      ", ".join(f"{p} {n}" for p, n in sorted(row["queued"].items())) or "0")
    console.print(table)


@app.command("dry-run")
def dry_run(pool: Annotated[str, typer.Argument(help="IP pool name")]) -> None:
    """What a send would do now, per provider: no message built, no SMTP connection."""
    from pipeline.stages import send_stage

    ctx = _context()
    console.print_json(json.dumps(send_stage(ctx, pool, dry_run=True)))


@app.command()
def run(
    pool: Annotated[str, typer.Argument(help="IP pool name")],
    actor: Actor = "operations",
) -> None:
    """Send a pool's queue now (as the DAG's send task would), within its limits."""
    from pipeline.stages import NeedsOperator, send_stage

    ctx = _context()
    ctx.ledger.audit(actor, "send_run_manual", None, {"pool": pool})
    try:
        result = send_stage(ctx, pool)
    except NeedsOperator as exc:  # e.g. the pool's relays are unusable: say what to fix
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from None
    console.print_json(json.dumps(result, default=str))


@app.command("resend")
def resend_command(
    statement_ids: Annotated[list[str] | None, typer.Argument(help="Statement ids")] = None,
    reason: Reason = "",
    file: Annotated[Path | None, typer.Option(help="File with one statement id per line")] = None,
    pool: Annotated[str | None, typer.Option(help="Send through this pool instead")] = None,
    actor: Actor = "operations",
) -> None:
    """Put statements back in their pool's send queue, with a recorded reason."""
    ctx = _context()
    try:
        ids = read_ids(statement_ids or [], file)
        outcomes = resend(ctx.ledger, _config(ctx), ids, reason=reason, actor=actor, pool=pool)
    except SendCommandError as exc:
        raise _fail(exc) from None
    table = Table(title=f"resend: {sum(o.requeued for o in outcomes)} of {len(outcomes)} queued")
    for column in ("statement", "queued", "pool", "why"):
        table.add_column(column)
    for o in outcomes:
        table.add_row(o.statement_id, "yes" if o.requeued else "no", o.pool or "-", o.why)
    console.print(table)
    if not all(o.requeued for o in outcomes):
        raise typer.Exit(1)
