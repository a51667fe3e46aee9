"""Send stage: every statement queued for one IP pool, outcomes committed as they arrive.

The ledger is the checkpoint. Before a transaction starts, a ``send_attempt`` event is
written; when the relay answers, the outcome is committed before the next message goes out on
that connection. So after a crash, a queued statement whose last event is ``send_attempt`` is
*in doubt* (the relay may have taken it): the next run records ``send_in_doubt`` on its
timeline and sends it again — at most one duplicate per connection that was in flight — while
a statement whose 250 was committed is ``sent`` and is never picked up again.

What is not attempted stays ``queued`` without using up one of its attempts: a paused or
suspended provider (its messages are never even built), the warm-up cap, the task's time
budget. The next run (the reconcile DAG sends every pool's queue every 15 minutes) picks them
up once the reason has gone.

Just before each message is built, the sender checks that the statement is still queued for
email on this pool (compose may have moved it to paper since the run read the queue) and that
the member file, which it reads the address from, still allows email (consent, an address, a
valid one): a corrected member file ingested but not yet composed holds the statement queued
(``send_held``, once) until compose decides. The address is the member file's as it is now.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pipeline.delivery import (
    PoolConfig,
    PoolConfigError,
    RelayCredentials,
    SendConfig,
    check_pool_can_connect,
    send_config,
)
from pipeline.delivery.lease import PoolBusy, PoolLease
from pipeline.delivery.suppression import suppress
from pipeline.ledger import Transition
from pipeline.ledger.events import Event
from pipeline.ledger.statuses import Status
from pipeline.outcomes import retry_or_paper, route
from pipeline.stages.connections import credentials_from_environment
from pipeline.stages.context import Context, NeedsOperator
from pipeline.stages.passwords import password_hint
from pipeline.storage import Contact, send_contacts

log = logging.getLogger(__name__)


class PoolUnavailable(NeedsOperator):
    """The pool's relays could not be used (TLS, connection, login): its statements moved to
    another pool, and the task fails so Airflow shows and alerts it; retrying will not fix a
    certificate or a login."""


class PoolMisconfigured(NeedsOperator):
    """The pool cannot send from this machine as configured (a source address that is not
    this machine's, an unusable CA bundle): refused before anything is sent."""


def _accepted_after_withdrawal(ctx: Context, statement_id: str) -> None:
    """The relay took a statement that left the queue while it was in flight (the ledger has
    recorded the refused `sent`): it is out. Superseded by a corrected extract, it joins the
    follow-up list; moved to paper because the member withdrew consent, it is recorded for
    follow-up too."""
    from pipeline.stages import channels, withdrawals

    current = ctx.ledger.statement(statement_id)
    if current is None:
        return
    if current["status"] == Status.SUPERSEDED:
        if not withdrawals.is_flagged_after_release(ctx.ledger, statement_id):
            withdrawals.flag(ctx.ledger, statement_id, "sent")
    elif current["channel"] == "paper" and current["paper_reason"] == channels.NO_CONSENT:
        channels.follow_up(ctx.ledger, statement_id, "sent")


def send_stage(
    ctx: Context, pool_name: str, *, dry_run: bool = False,
    credentials: RelayCredentials | None = None, follow_run: str | None = None,
    wait_if_busy: bool = False,
) -> dict[str, Any]:
    """Send every statement queued for one IP pool; each outcome is committed as it arrives.

    ``credentials``: the relay login, when the DAG resolved the pool's Airflow connection
    itself; otherwise it is read from ``AIRFLOW_CONN_<id>`` if the pool names one.

    ``follow_run``: keep sending while that run is still being rendered, round after round,
    as each rendered batch is routed to the pool, until none of the run's email statements
    is left to route (see ``_follow``). Without it, one round: what is queued now.

    Only one sender works a pool's queue at a time (``PoolLease``). When another holds it,
    this one returns at once with ``busy`` (its statements will be sent by that one), or with
    ``wait_if_busy`` waits for it within the send time budget (the monthly run's sender, whose
    task must not end while its statements are still queued).
    """
    config = send_config(ctx.settings)
    pool = config.pool(pool_name)
    if dry_run:
        if follow_run is not None:  # plan the pool once the run is routed (or render stalls)
            _follow(ctx, pool_name, follow_run)
        now = ctx.now()
        return plan_pool(ctx, config, pool, now, pool_holds(ctx, pool_name, now)[0])
    try:
        check_pool_can_connect(pool, ctx.settings)
    except PoolConfigError as exc:
        raise PoolMisconfigured(
            f"{exc}. Nothing was sent: the pool's statements stay queued and no attempt was spent; "
            "fix the pool's configuration (`eob check` lists every problem) and re-run this task"
        ) from None
    lease = PoolLease(ctx.ledger, pool_name, ttl=ctx.settings.send_lease_seconds, now=ctx.now)
    deadline = time.monotonic() + ctx.settings.send_max_seconds  # waiting for the lease counts
    try:
        lease.take(wait_seconds=ctx.settings.send_max_seconds if wait_if_busy else 0.0)
    except PoolBusy as exc:
        log.info("pool %s is being sent by another task; nothing to do here", pool_name)
        return {"pool": pool_name, "dry_run": False, "busy": exc.holder, "attempted": 0}
    with lease, ctx.ledger.pinned():  # a few ledger writes per message: no pool checkout each
        result = _send_rounds(ctx, config, pool, credentials, lease, follow_run, deadline)
        lease.check()  # before release: a lease lost while sending fails the task
    ctx.ledger.audit("pipeline", "send", None,
                     {"pool": pool_name, "attempted": result["attempted"], "held": result["held"]})
    log.info("pool sent", extra={k: v for k, v in result.items() if k != "by_provider"})
    if result["pool_down"] is not None:
        raise PoolUnavailable(
            f"pool {pool_name} could not deliver: {result['pool_down']}. Its undelivered statements "
            f"went back to the retry queue on another pool without spending an attempt "
            f"({result['accepted']} were accepted before it failed). Fix the relay (CA bundle, "
            "certificate, address, login) and re-run this task.")
    return result


def pool_holds(ctx: Context, pool_name: str, now: datetime) -> tuple[dict[str, str], bool]:
    """Providers held on this pool now (``"*"``: the whole pool), and whether the pool starts
    throttled."""
    from pipeline.delivery import controls as controls_db

    held = controls_db.paused_providers(ctx.ledger, pool_name, now)
    health = _pool_health(ctx, pool_name, now)
    if health is not None and health[0] == "pause":
        held.setdefault("*", health[1])
    return held, health is not None and health[0] == "throttle"


def _send_rounds(ctx: Context, config: SendConfig, pool: PoolConfig,
                 credentials: RelayCredentials | None, lease: PoolLease,
                 follow_run: str | None, deadline: float) -> dict[str, Any]:
    """Round after round of what is queued for the pool, until ``deadline`` (the task's time
    budget, `EOB_SEND_MAX_SECONDS` from its start, its wait for the lease included); one round
    unless following a run that is still being rendered."""
    from pipeline.delivery import SendStats
    from pipeline.delivery import controls as controls_db

    credentials = credentials or credentials_from_environment(pool)
    totals = SendStats()
    summary: dict[str, Any] = {"pool": pool.name, "queued": 0, "dry_run": False,
                               "in_doubt": _mark_in_doubt(ctx, pool.name), "rounds": 0}
    skipped = {"off_queue": 0, "held_member_file": 0}
    warm = None
    stuck: set[str] = set()  # handed to a round and still queued (held): not taken again
    templates: dict[tuple[str, str], Any] = {}  # (language, period): the email, made once a task
    while True:
        now = ctx.now()
        held, throttled = pool_holds(ctx, pool.name, now)
        rows = [row for row in ctx.ledger.fetch("send_queued_for_pool", pool=pool.name)
                if row["statement_id"] not in stuck]
        summary["queued"] += len(rows)
        if "*" in held:
            log.info("pool %s is paused; %d statements stay queued", pool.name, len(rows))
            summary["paused"] = held["*"]
            totals.held += len(rows)
            break
        if rows:
            warm = controls_db.warmup_status(ctx.ledger, pool, now)
            stats = _send(ctx, config, pool, rows, held, warm.allowance, credentials,
                          throttled=throttled, skipped=skipped, lease=lease,
                          max_seconds=max(0.0, deadline - time.monotonic()), templates=templates)
            totals.add(stats)
            summary["rounds"] += 1
            if stats.pool_down or stats.stopped or not lease.valid():
                break
            queued_now = {row["statement_id"] for row in ctx.ledger.fetch("send_queued_for_pool",
                                                                          pool=pool.name)}
            stuck = (stuck | {row["statement_id"] for row in rows}) & queued_now  # gone: not stuck
            time.sleep(ROUND_GAP_SECONDS)  # keeps the per-second cap across two rounds
        if follow_run is None or not _follow(ctx, pool.name, follow_run, deadline=deadline,
                                             stuck=len(stuck)):
            break
    return {**summary, **totals.summary(), **skipped,
            "warmup_day": warm.caps.day if warm else None,
            "warmup_allowance": warm.allowance if warm else None,
            "left_queued": len(ctx.ledger.fetch("send_queued_for_pool", pool=pool.name))}


ROUND_GAP_SECONDS = 1.0
FOLLOW_POLL_SECONDS = 2.0


def _follow(ctx: Context, pool_name: str, run_id: str, *, deadline: float = math.inf,
            stuck: int | None = None) -> bool:
    """Wait until there is something new to send for the pool (True: more queued than the
    ``stuck`` statements earlier rounds held), or until the run has nothing left to route, the
    render has made no progress for ``send_follow_idle_seconds``, or the time budget is spent
    (False). Without ``stuck`` (a dry run) it only waits for the run to be routed."""
    idle_limit = ctx.settings.send_follow_idle_seconds
    last = _awaiting_route(ctx, run_id)
    since = time.monotonic()
    while time.monotonic() < deadline:
        if stuck is not None:
            queued = ctx.ledger.fetch_one("send_queued_counts_total", pool=pool_name)
            if queued and int(queued["n"]) > stuck:
                return True
        if last == 0:
            return False
        time.sleep(FOLLOW_POLL_SECONDS)
        awaiting = _awaiting_route(ctx, run_id)
        if awaiting != last:
            last, since = awaiting, time.monotonic()
        elif time.monotonic() - since > idle_limit:
            log.warning("pool %s: %d statements of %s still await rendering and none has moved for "
                        "%.0f s; this task ends, the reconcile DAG sends them once routed",
                        pool_name, awaiting, run_id, idle_limit)
            return False
    return False


def _awaiting_route(ctx: Context, run_id: str) -> int:
    row = ctx.ledger.fetch_one("send_run_awaiting_route", run_id=run_id)
    return int(row["n"]) if row else 0


def _pool_health(ctx: Context, pool_name: str, now: datetime) -> tuple[str, str] | None:
    """A hold reconcile derived from sender-caused bounces of this pool (see pool_health):
    ``("pause", why)`` stops the pool, ``("throttle", why)`` starts every lane one cut down."""
    from pipeline.clock import iso
    from pipeline.delivery.pool_health import HoldPolicy, current_holds

    hold = current_holds(ctx.ledger, now, HoldPolicy.from_settings(ctx.settings)).get(pool_name)
    if hold is None:
        return None
    why = (f"pool on hold until {iso(hold.until)}: {hold.bounces} sender-caused bounces "
           f"({hold.action.value})")
    return hold.action.value, why


def _mark_in_doubt(ctx: Context, pool_name: str) -> int:
    """Queued statements whose last attempt has no outcome: note it before resending."""
    rows = ctx.ledger.fetch("send_in_doubt_for_pool", pool=pool_name)
    for row in rows:
        ctx.ledger.record_event(row["statement_id"], Event.SEND_IN_DOUBT, {
            "pool": pool_name,
            "why": "the last attempt ended without a recorded outcome (the sender stopped); "
                   "resending may duplicate one email"})
    if rows:
        log.warning("pool %s: %d statements in doubt after an interrupted run; resending",
                    pool_name, len(rows))
    return len(rows)


def _send(
    ctx: Context, config: SendConfig, pool: PoolConfig, rows: list[dict[str, Any]],
    held: dict[str, str], allowance: int | None, credentials: RelayCredentials | None,
    *, throttled: bool = False, skipped: dict[str, int], lease: PoolLease | None = None,
    max_seconds: float | None = None, templates: dict[tuple[str, str], Any],
) -> Any:
    from pipeline.delivery import SendControls, ca_file_for, make_tls_context, provider_lookup, send_pool
    from pipeline.delivery import controls as controls_db
    from pipeline.delivery.dkim import load_signer
    from pipeline.delivery.warmup import Quota

    settings = ctx.settings
    provider_of = provider_lookup(config.provider_domains)
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_provider.setdefault(provider_of(row["email_domain"] or ""), []).append(row)
    recipients: dict[str, str] = {}
    lanes = {p: _outgoing(ctx, pool.name, items, recipients, skipped, templates, lease)
             for p, items in by_provider.items() if p not in held}
    # Usage is counted even without a cap: it is what makes a day a sending day.
    quota = Quota(allowance,
                  reserve=lambda n: controls_db.add_usage(ctx.ledger, pool.name, n, ctx.now()),
                  release=lambda n: controls_db.add_usage(ctx.ledger, pool.name, -n, ctx.now()))
    attempts = {row["statement_id"]: row["attempts"] for row in rows}

    def on_attempt(item: Any) -> None:
        ctx.ledger.record_event(item.statement_id, Event.SEND_ATTEMPT,
                                {"pool": pool.name, "attempt": attempts[item.statement_id] + 1})

    def on_suspend(provider: str, seconds: float, reason: str) -> None:
        controls_db.pause(ctx.ledger, config, pool=pool.name, provider=provider, reason=reason,
                          actor="sender", now=ctx.now(), seconds=seconds,
                          kind=controls_db.SUSPEND)

    controls = SendControls(
        provider_of=provider_of,
        held=held,
        quota=quota,
        max_seconds=settings.send_max_seconds if max_seconds is None else max_seconds,
        policy=config.throttle.policy(),
        throttle_state=controls_db.load_throttle(ctx.ledger, pool.name, ctx.now()),
        start_throttled=throttled,
        on_attempt=on_attempt,
        on_suspend=on_suspend,
        sign=load_signer(settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file),
        credentials=credentials,
    )
    try:
        runs = {row["statement_id"]: row["run_id"] for row in rows}
        stats = send_pool(pool, lanes, _committer(ctx, pool.name, attempts, recipients, runs),
                          tls_context=make_tls_context(ca_file_for(pool, settings)),
                          ehlo_hostname=settings.smtp_ehlo_hostname,
                          timeout=settings.smtp_timeout_seconds, controls=controls)
    finally:
        quota.close()
    controls_db.save_throttle(ctx.ledger, pool.name, stats.throttle_state,
                              [p for p in config.providers if p in lanes], ctx.now())
    stats.held += sum(len(items) for p, items in by_provider.items() if p in held)
    return stats


def _pool_mover(ctx: Context, pool_name: str) -> Any:
    """For statements the pool could not carry (TLS, connection, relay login, relaying): the
    pool's fault, not the statement's. Each goes back to the retry queue at once, on another pool that is not
    on hold, without spending an attempt; with no other pool it stays on this one and waits.
    The pools and their holds are read once, when the first such statement comes: a broken pool
    reports every statement it had."""
    from pipeline.clock import iso
    from pipeline.delivery import HoldPolicy, capacities, choose_pool, current_holds

    found: list[tuple[list[tuple[str, float]], set[str]]] = []

    def move(result: Any, detail: dict[str, Any]) -> Transition:
        if not found:
            held = set(current_holds(ctx.ledger, ctx.now(), HoldPolicy.from_settings(ctx.settings)))
            found.append((capacities(send_config(ctx.settings)), held | {pool_name}))
        pools, closed = found[0]
        target = choose_pool(result.statement_id, pool_name, pools, closed, avoid_current=True)
        target = target or pool_name
        reason = result.reply_text[:200]
        return Transition(result.statement_id, Status.RETRY_SCHEDULED, Event.POOL_UNAVAILABLE,
                          {**detail, "reason": reason, "moved_to": target},
                          {"pool": target, "next_attempt_at": iso(ctx.now()), "last_reason": reason})

    return move


def _committer(ctx: Context, pool_name: str, attempts: dict[str, int],
               recipients: dict[str, str], runs: dict[str, str]) -> Any:
    """The on_result callback: one ledger transaction per outcome, as it arrives.

    Failures are routed exactly as bounces are (pipeline.outcomes.routing), including the delivery
    window's cut-off, so a retry is never scheduled that could not settle in time.
    """
    from pipeline.delivery import ACCEPTED, HELD, REJECTED, SendResult
    from pipeline.outcomes import classify

    settings = ctx.settings
    to_another_pool = _pool_mover(ctx, pool_name)

    def cutoff(statement_id: str) -> datetime | None:
        return ctx.send_cutoff(runs[statement_id])

    def on_result(result: SendResult) -> None:
        detail = {"pool": pool_name, "code": result.reply_code, "status": result.enhanced_status,
                  "provider": result.provider}
        if result.outcome == HELD:
            ctx.ledger.record_event(result.statement_id, Event.SEND_HELD,
                                    {**detail, "reason": result.reply_text[:200]})
            return
        if result.pool_fault:
            ctx.ledger.apply([to_another_pool(result, detail)])
            return
        if result.outcome == ACCEPTED:
            moved = ctx.ledger.apply([Transition(result.statement_id, Status.SENT, Event.SENT, detail,
                                                 attempts_increment=1, expected=Status.QUEUED)])
            if not moved:
                _accepted_after_withdrawal(ctx, result.statement_id)
            return
        tries = attempts[result.statement_id] + 1
        reason = f"{result.reply_code or ''} {result.enhanced_status or ''} {result.reply_text}"
        reason = reason.strip()
        if result.outcome == REJECTED:
            # the server's reply, never words of ours around it; with no reply at all the
            # refusal was the sender's own (an address it will not send to) and says so
            classification = classify(result.reply_code, result.enhanced_status,
                                      result.server_reply or result.reply_text)
            moves = route(result.statement_id, classification, attempts=tries,
                          policy=ctx.retry_policy, now=ctx.now(), source="smtp", reason=reason,
                          pool=pool_name, cutoff=cutoff(result.statement_id))
            if classification.recipient_caused:
                suppress(ctx.ledger, recipients[result.statement_id],
                         cause=classification.category.value, statement_id=result.statement_id,
                         secret=settings.verp_secret.get_secret_value())
        else:
            moves = retry_or_paper(result.statement_id, attempts=tries, policy=ctx.retry_policy,
                                   now=ctx.now(), reason=reason,
                                   cutoff=cutoff(result.statement_id))
        if moves:
            first = moves[0]
            moves[0] = Transition(first.statement_id, first.to, first.event,
                                  {**first.detail, **detail}, first.fields, attempts_increment=1)
        ctx.ledger.apply(moves)

    return on_result


def _outgoing(ctx: Context, pool_name: str, rows: list[dict[str, Any]], recipients: dict[str, str],
              skipped: dict[str, int], contents: dict[tuple[str, str], Any],
              lease: PoolLease | None = None) -> Iterator[Any]:
    """Build each message only when the sender is ready for it: bounded memory. A statement no
    longer queued for email on this pool, or whose member record no longer allows email, is
    not built (see the module docstring). `contents`: the email around the statement per
    (language, period), made once and shared by every lane and round of the task: making one
    is about 3 ms of the email package's work, and a following sender has many small rounds,
    each with a lane per provider."""
    from pipeline.delivery import Outgoing
    from pipeline.delivery.message import MessageTemplate, email_language, email_period_label, render_email
    from pipeline.delivery.verp import return_path

    settings = ctx.settings
    secret = settings.verp_secret.get_secret_value()
    contacts: dict[str, dict[str, Contact]] = {}
    wanted = (Status.QUEUED.value, "email", pool_name)
    for row in rows:
        if lease is not None and not lease.valid():
            return  # another sender may have the pool now: build nothing more
        current = ctx.ledger.fetch_one("send_statement_now", statement_id=row["statement_id"])
        if current is None or (current["status"], current["channel"], current["pool"]) != wanted:
            skipped["off_queue"] += 1  # moved since this run read the queue; its timeline says why
            continue
        run_members = contacts.get(row["run_id"])
        if run_members is None:
            run_members = contacts[row["run_id"]] = send_contacts(settings, row["run_id"])
        contact = run_members.get(row["member_id"])
        why_not = "not_in_member_file" if contact is None else contact.paper_reason()
        if contact is None or why_not is not None:
            _hold_for_compose(ctx, pool_name, row["statement_id"], why_not or "")
            skipped["held_member_file"] += 1
            continue
        email, language = contact.email, email_language(contact.language)
        template = contents.get((language, row["period"]))
        if template is None:
            template = contents[(language, row["period"])] = MessageTemplate(
                from_address=settings.mail_from_address, from_name=settings.mail_from_name,
                message_id_domain=settings.message_id_domain,
                pdf_filename=f"statement-{row['period']}.pdf",
                content=render_email(language=language, context={
                    "support_phone": brand_phone(), "brand_name": brand_name(),
                    "password_hint": password_hint(settings.password_policy, language),
                    "period_label": email_period_label(language, row["period"])}))
        recipients[row["statement_id"]] = email
        envelope = return_path(row["statement_id"], secret, settings.bounce_domain)
        message = template.message_bytes(statement_id=row["statement_id"], recipient=email,
                                         envelope_from=envelope, pdf=ctx.store.get(row["object_key"]))
        yield Outgoing(row["statement_id"], email, envelope, message)


def _hold_for_compose(ctx: Context, pool_name: str, statement_id: str, why_not: str) -> None:
    """The member file no longer allows email: the statement stays queued until compose moves
    it (to paper, or to a new address), or the deadline sweeper does. Recorded once."""
    last = ctx.ledger.timeline(statement_id)[-1:]
    detail = {"pool": pool_name, "reason": f"member file: {why_not}; compose decides the channel"}
    if not last or last[0]["event"] != Event.SEND_HELD or last[0]["detail"] != detail:
        ctx.ledger.record_event(statement_id, Event.SEND_HELD, detail)


def plan_pool(ctx: Context, config: SendConfig, pool: PoolConfig, now: datetime,
              held: dict[str, str]) -> dict[str, Any]:
    """The dry run: what a send would do now, without building a message or opening SMTP."""
    from pipeline.delivery import controls as controls_db

    counts = controls_db.provider_counts(ctx.ledger, config, pool.name)
    warm = controls_db.warmup_status(ctx.ledger, pool, now)
    throttle = controls_db.load_throttle(ctx.ledger, pool.name, now)
    lanes: dict[str, dict[str, Any]] = {}
    for provider, queued in sorted(counts.items()):
        limit = pool.limit_for(provider)
        rate = min(limit.max_per_second or pool.max_per_second, pool.max_per_second)
        if provider in throttle:
            rate = min(rate, throttle[provider].rate_after_decrease)
        reason = held.get(provider) or held.get("*")
        lanes[provider] = {"queued": queued, "held": reason, "rate_per_second": round(rate, 3),
                           "seconds_at_rate": None if reason else round(queued / rate, 1)}
    sendable = sum(v["queued"] for v in lanes.values() if not v["held"])
    if warm.allowance is not None:
        sendable = min(sendable, warm.allowance)
    return {"pool": pool.name, "dry_run": True, "queued": sum(counts.values()),
            "would_attempt_at_most": sendable, "paused": held.get("*"),
            "warmup_day": warm.caps.day, "warmup_daily_cap": warm.caps.daily,
            "warmup_hourly_cap": warm.caps.hourly, "sent_today": warm.sent_today,
            "sent_this_hour": warm.sent_this_hour, "lanes": lanes,
            "pool_seconds_at_rate": round(sendable / pool.max_per_second, 1)}


def brand_phone() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.phone")


def brand_name() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.short_name")
