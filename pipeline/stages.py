"""The edge between the orchestrator and the library: one function per pipeline stage.

Each function takes the settings and small identifiers, opens what it needs, does one stage's
work idempotently, and returns a small dict of counts (never PHI, never big payloads), which
is what Airflow keeps in XCom. DAG files call these and nothing else.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import os
import random
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipeline.clock import Now, iso, utc_now
from pipeline.ledger import Ledger, NewStatement, Transition
from pipeline.objectstore import ObjectStore, open_store
from pipeline.periods import parse_period
from pipeline.routing import RetryPolicy, address_hash, retry_or_paper, route
from pipeline.settings import Settings
from pipeline.statuses import Status

log = logging.getLogger(__name__)
FLUSH_EVERY = 200
TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@dataclass(slots=True)
class Context:
    settings: Settings
    ledger: Ledger
    store: ObjectStore
    now: Now = utc_now

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.settings.retry_max_attempts,
                           base_delay_seconds=self.settings.retry_base_delay_seconds)


def open_context(settings: Settings | None = None, *, now: Now = utc_now) -> Context:
    settings = settings or Settings()
    ledger = Ledger.open(settings.ledger_dsn, now=now)
    store = open_store(settings.objects_url, kms_key_id=settings.s3_kms_key_id,
                       endpoint_url=settings.s3_endpoint_url)
    return Context(settings, ledger, store, now)


def run_id_for(period: str) -> str:
    """One run per period: re-running a month resumes it instead of starting a second one."""
    parse_period(period)
    return f"eob-{period}"


def run_dir(settings: Settings, run_id: str) -> Path:
    return settings.work_dir / run_id


# -- ingest and compose --------------------------------------------------------------------
def ingest_stage(ctx: Context, period: str, source: Path | None = None) -> dict[str, Any]:
    from pipeline.ingest import ingest

    run_id = run_id_for(period)
    folder = source or ctx.settings.extracts_dir / period
    ctx.ledger.start_run(run_id, period, str(folder.name), ctx.settings.shards)
    result = ingest(folder, run_dir(ctx.settings, run_id), ctx.settings.shards)
    ctx.ledger.record_ingest(run_id, result.files, result.quarantined)
    return {"run_id": run_id, "lines_read": result.rows_read, "lines_accepted": result.rows_accepted,
            "lines_quarantined": result.rows_quarantined, "members": result.members}


def compose_stage(ctx: Context, period: str) -> dict[str, Any]:
    from pipeline.compose import iter_composed

    run_id = run_id_for(period)
    secret = ctx.settings.verp_secret.get_secret_value()

    def suppressed(email: str) -> bool:
        row = ctx.ledger.fetch_one("active_suppression", address_hash=address_hash(email, secret))
        return row is not None

    counts = {"statements": 0, "email": 0, "paper": 0, "prompt_notice": 0, "inserted": 0}
    for shard in range(ctx.settings.shards):
        rows = []
        for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                      prompt_notice_days=ctx.settings.prompt_notice_days,
                                      is_suppressed=suppressed):
            statement = composed.statement
            rows.append(NewStatement(
                statement.statement_id, run_id, period, statement.member.member_id,
                statement.version, shard, composed.channel, composed.paper_reason,
                composed.email_domain, len(statement.lines), composed.prompt_notice))
            counts["statements"] += 1
            counts[composed.channel] += 1
            counts["prompt_notice"] += int(composed.prompt_notice)
        counts["inserted"] += ctx.ledger.add_statements(rows)
    return {"run_id": run_id, **counts}


# -- render --------------------------------------------------------------------------------
def render_stage(ctx: Context, period: str, shard: int) -> dict[str, Any]:
    """Render and store every composed statement of one shard; already-rendered ones are skipped."""
    from pipeline.compose import iter_composed
    from pipeline.passwords import PasswordPolicyError, member_password
    from pipeline.pdfcrypt import encrypt_pdf
    from pipeline.render import TemplateError, render_statement

    run_id = run_id_for(period)
    pending = {row["statement_id"] for row in ctx.ledger.fetch(
        "statement_ids_in_shard", run_id=run_id, shard=shard) if row["status"] == "composed"}
    owner = ctx.settings.pdf_owner_password.get_secret_value()
    batch: list[Transition] = []
    counts = {"rendered": 0, "failed": 0, "skipped": 0, "pages": 0}
    for composed in iter_composed(run_dir(ctx.settings, run_id), shard, period,
                                  prompt_notice_days=ctx.settings.prompt_notice_days):
        statement = composed.statement
        if statement.statement_id not in pending:
            counts["skipped"] += 1
            continue
        try:
            if composed.channel == "email":
                rendered = render_statement(statement, variant="email")
                password = member_password(statement.member, ctx.settings.password_policy)
                data = encrypt_pdf(rendered.pdf, user_password=password, owner_password=owner)
                del password
                key = f"statements/{period}/{shard:03d}/{statement.statement_id}.pdf"
            else:
                rendered = render_statement(statement, variant="print")
                data = rendered.pdf
                key = f"print/{period}/{shard:03d}/{statement.statement_id}.pdf"
        except (TemplateError, PasswordPolicyError) as exc:
            batch.append(Transition(statement.statement_id, Status.FAILED, "render_failed",
                                    {"error": type(exc).__name__, "reason": str(exc)[:200]},
                                    {"last_reason": str(exc)[:200]}))
            counts["failed"] += 1
            continue
        stored = ctx.store.put(key, data, "application/pdf")
        location = {"object_key" if composed.channel == "email" else "print_key": key}
        batch.append(Transition(
            statement.statement_id, Status.RENDERED, "rendered",
            {"pages": rendered.pages, "bytes": stored.size, "variant": composed.channel},
            {**location, "sha256": stored.sha256, "pages": rendered.pages, "size_bytes": stored.size}))
        counts["rendered"] += 1
        counts["pages"] += rendered.pages
        if len(batch) >= FLUSH_EVERY:
            _flush(ctx, batch, "render", shard)
    _flush(ctx, batch, "render", shard)
    log.info("shard rendered", extra={"run_id": run_id, "shard": shard, **counts})
    return {"run_id": run_id, "shard": shard, **counts}


def _flush(ctx: Context, batch: list[Transition], action: str, shard: int) -> None:
    if not batch:
        return
    ctx.ledger.apply(batch)
    ctx.ledger.audit("pipeline", action, None,
                     {"shard": shard, "statement_ids": [t.statement_id for t in batch]})
    batch.clear()


# -- route to pools or paper ---------------------------------------------------------------
def assign_pool(statement_id: str, pools: list[tuple[str, float]]) -> str:
    """Deterministic, capacity-weighted choice: the same statement always lands in the same pool."""
    total = sum(weight for _, weight in pools)
    point = int(hashlib.sha256(statement_id.encode()).hexdigest()[:12], 16) / 16**12 * total
    for name, weight in pools:
        point -= weight
        if point < 0:
            return name
    return pools[-1][0]


def route_stage(ctx: Context, period: str) -> dict[str, Any]:
    """Rendered statements go to one IP pool's send queue, or to the paper queue."""
    run_id = run_id_for(period)
    pools = [(p.name, p.weight * p.max_per_second) for p in ctx.settings.pools]
    moves = []
    counts: dict[str, int] = {"paper": 0}
    for row in ctx.ledger.fetch("rendered_for_run", run_id=run_id):
        if row["channel"] == "paper":
            moves.append(Transition(row["statement_id"], Status.PAPER_QUEUED, "paper_queued",
                                    {"reason": "channel"}))
            counts["paper"] += 1
        else:
            pool = assign_pool(row["statement_id"], pools)
            moves.append(Transition(row["statement_id"], Status.QUEUED, "queued",
                                    {"pool": pool}, {"pool": pool}))
            counts[pool] = counts.get(pool, 0) + 1
    ctx.ledger.apply(moves)
    return {"run_id": run_id, **counts}


# -- send ----------------------------------------------------------------------------------
@cache
def password_hints() -> dict[str, dict[str, str]]:
    with (TEMPLATES_DIR / "email" / "password_hints.toml").open("rb") as handle:
        return tomllib.load(handle)


def _members_email(settings: Settings, run_id: str) -> dict[str, tuple[str, str]]:
    import pandas as pd

    members = pd.read_parquet(run_dir(settings, run_id) / "members.parquet",
                              columns=["member_id", "email", "language"])
    return {m: (e, lang) for m, e, lang in members.itertuples(index=False)}


def send_stage(ctx: Context, pool_name: str, *, dry_run: bool = False) -> dict[str, Any]:
    """Send every statement queued for one IP pool; each outcome is committed as it arrives."""
    from pipeline.classify import classify
    from pipeline.send import SendResult, make_tls_context, send_pool

    settings = ctx.settings
    pool = settings.pool(pool_name)
    rows = ctx.ledger.fetch("queued_for_pool", pool=pool_name)
    if dry_run or not rows:
        return {"pool": pool_name, "queued": len(rows), "dry_run": dry_run, "attempted": 0}
    attempts = {row["statement_id"]: row["attempts"] for row in rows}

    def on_result(result: SendResult) -> None:
        tries = attempts[result.statement_id] + 1
        detail = {"pool": pool_name, "code": result.reply_code, "status": result.enhanced_status}
        if result.outcome == "accepted":
            ctx.ledger.apply([Transition(result.statement_id, Status.SENT, "sent", detail,
                                         attempts_increment=1)])
            return
        reason = f"{result.reply_code or ''} {result.enhanced_status or ''} {result.reply_text}".strip()
        if result.outcome == "rejected":
            classification = classify(result.reply_code, result.enhanced_status, result.reply_text)
            moves = route(result.statement_id, classification, attempts=tries,
                          policy=ctx.retry_policy, now=ctx.now(), source="smtp", reason=reason)
            if classification.recipient_caused:
                _suppress(ctx, result.statement_id, classification.category.value)
        else:
            moves = retry_or_paper(result.statement_id, attempts=tries, policy=ctx.retry_policy,
                                   now=ctx.now(), reason=reason)
        if moves:
            first = moves[0]
            moves[0] = Transition(first.statement_id, first.to, first.event,
                                  {**first.detail, **detail}, first.fields, attempts_increment=1)
        ctx.ledger.apply(moves)

    stats = send_pool(pool, _outgoing(ctx, rows), on_result,
                      tls_context=make_tls_context(settings.smtp_ca_file),
                      ehlo_hostname=settings.smtp_ehlo_hostname,
                      timeout=settings.smtp_timeout_seconds)
    ctx.ledger.audit("pipeline", "send", None, {"pool": pool_name, "attempted": stats.attempted})
    result = {"pool": pool_name, "queued": len(rows), "attempted": stats.attempted,
              "accepted": stats.accepted, "rejected": stats.rejected, "deferred": stats.deferred,
              "connections": stats.connections}
    log.info("pool sent", extra=result)
    return result


def _outgoing(ctx: Context, rows: list[dict[str, Any]]) -> Iterator[Any]:
    """Build each message only when the sender is ready for it: bounded memory."""
    from pipeline.mail import build_message, render_email
    from pipeline.send import Outgoing
    from pipeline.verp import return_path

    settings = ctx.settings
    secret = settings.verp_secret.get_secret_value()
    contacts: dict[str, dict[str, tuple[str, str]]] = {}
    contents: dict[str, Any] = {}
    for row in rows:
        statement = ctx.ledger.statement(row["statement_id"])
        assert statement is not None
        run_members = contacts.setdefault(statement["run_id"],
                                          _members_email(settings, statement["run_id"]))
        email, language = run_members[statement["member_id"]]
        if language not in contents:
            hint = password_hints()[settings.password_policy]
            contents[language] = render_email(language=language, context={
                "support_phone": _brand_phone(), "brand_name": _brand_name(),
                "password_hint": hint.get(language, hint["en"]),
                "period_label": statement["period"]})
        envelope = return_path(row["statement_id"], secret, settings.bounce_domain)
        message = build_message(
            statement_id=row["statement_id"], recipient=email,
            from_address=settings.mail_from_address, from_name=settings.mail_from_name,
            envelope_from=envelope, message_id_domain=settings.message_id_domain,
            content=contents[language], pdf=ctx.store.get(row["object_key"]),
            pdf_filename=f"statement-{statement['period']}.pdf")
        yield Outgoing(row["statement_id"], email, envelope, message)


def _brand_phone() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.phone")


def _brand_name() -> str:
    from pipeline.templates import brand

    return brand("default").string("identity.short_name")


def _suppress(ctx: Context, statement_id: str, cause: str, address: str | None = None) -> None:
    """Keep a recipient-caused failure from being retried in later runs (keyed hash only)."""
    if address is None:
        statement = ctx.ledger.statement(statement_id)
        if statement is None:
            return
        address = _members_email(ctx.settings, statement["run_id"])[statement["member_id"]][0]
    with ctx.ledger.begin() as conn:
        from sqlalchemy import text

        from pipeline.sqlfiles import query

        conn.execute(text(query("insert_suppression")), {
            "address_hash": address_hash(address, ctx.settings.verp_secret.get_secret_value()),
            "cause": cause, "statement_id": statement_id, "at": ctx.ledger.now()})


# -- reconcile -----------------------------------------------------------------------------
def reconcile_stage(ctx: Context) -> dict[str, Any]:
    """Read new bounce messages from the Maildir and route each affected statement."""
    from pipeline.bounces import UnparseableBounce, parse_bounce
    from pipeline.verp import ForgedToken, verify_token

    settings = ctx.settings
    folder = settings.maildir
    mailbox.Maildir(folder, create=True)  # makes new/, cur/ and tmp/ when missing
    secret = settings.verp_secret.get_secret_value()
    counts: dict[str, int] = {}
    for name in sorted(os.listdir(folder / "new")):
        path = folder / "new" / name
        raw = path.read_bytes()
        outcome, statement_id, kind, reason = "routed", None, "unknown", ""
        message_key = hashlib.sha256(raw).hexdigest()
        if ctx.ledger.fetch_one("bounce_message_seen", message_key=message_key):
            outcome = "duplicate"
        else:
            try:
                bounce = parse_bounce(raw, bounce_domain=settings.bounce_domain)
                kind = bounce.kind
                statement_id = verify_token(bounce.verp_token or "", secret)
                if ctx.ledger.statement(statement_id) is None:
                    outcome, reason = "unknown_statement", "token names no statement in the ledger"
                else:
                    outcome = _route_bounce(ctx, statement_id, bounce)
            except UnparseableBounce as exc:
                outcome, reason = "unparseable", str(exc)[:200]
            except ForgedToken:
                outcome, reason, statement_id = "forged", "VERP token signature does not verify", None
            _record_bounce(ctx, message_key, kind, outcome, statement_id, reason)
        counts[outcome] = counts.get(outcome, 0) + 1
        os.replace(path, folder / "cur" / f"{name}:2,S")
    return {"messages": sum(counts.values()), **counts}


def _route_bounce(ctx: Context, statement_id: str, bounce: Any) -> str:
    statement = ctx.ledger.statement(statement_id)
    assert statement is not None
    outcomes = [r for r in bounce.recipients if r.action in ("failed", "delayed", "")]
    if not outcomes:
        return "ignored"
    worst = outcomes[0]
    moves = route(statement_id, worst.classification, attempts=statement["attempts"],
                  policy=ctx.retry_policy, now=ctx.now(), source="dsn",
                  reason=f"{worst.status or ''} {worst.diagnostic}".strip(),
                  rng=random.Random(statement_id))
    if not moves:
        return f"ignored_{worst.classification.category.value}"
    moved = ctx.ledger.apply(moves)
    if worst.classification.recipient_caused:
        _suppress(ctx, statement_id, worst.classification.category.value, worst.recipient)
    return f"routed_{worst.classification.queue.value}" if moved else "already_routed"


def _record_bounce(ctx: Context, message_key: str, kind: str, outcome: str,
                   statement_id: str | None, reason: str) -> None:
    from sqlalchemy import text

    from pipeline.sqlfiles import query

    with ctx.ledger.begin() as conn:
        conn.execute(text(query("insert_bounce_message")), {
            "message_key": message_key, "received_at": ctx.ledger.now(), "kind": kind,
            "outcome": outcome, "statement_id": statement_id, "reason": reason})


def requeue_due_stage(ctx: Context) -> dict[str, Any]:
    """Retries whose backoff has passed go back to their pool's send queue."""
    rows = ctx.ledger.fetch("due_retries", now=iso(ctx.now()))
    moves = [Transition(row["statement_id"], Status.QUEUED, "requeued",
                        {"pool": row["pool"], "attempt": row["attempts"] + 1}) for row in rows]
    return {"requeued": ctx.ledger.apply(moves)}


# -- report --------------------------------------------------------------------------------
def report_stage(ctx: Context, period: str) -> dict[str, Any]:
    from pipeline.report import build_report, write_report

    run_id = run_id_for(period)
    report = build_report(ctx.ledger, run_id, ctx.settings.email_cost_cents,
                          ctx.settings.paper_cost_cents)
    paths = write_report(report, ctx.settings.reports_dir)
    failed = [check.name for check in report.checks if not check.ok]
    return {"run_id": run_id, **report.summary(), "html": str(paths["html"]),
            "csv": str(paths["csv"]), "failed_checks": failed}
