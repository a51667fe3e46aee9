"""Ingest and compose stages: extracts in, statements in the ledger.

Compose is idempotent by content: a re-run with the same canonical lines adds nothing; a
corrected extract for a period already composed adds a new statement version for each member
whose statement content changed, linked to the version it replaces. What it chose per member is
written to `statements/shard-NNN.parquet`, so render renders exactly the versions in the ledger.
A statement whose content is unchanged follows the corrected member file's channel and address
while it is not yet out (see `channels`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from pathlib import Path
from typing import Any

from pipeline.deadlines import NoticeRule
from pipeline.ledger import NewStatement, Transition, close_superseded
from pipeline.ledger.claims import claim_hasher
from pipeline.ledger.events import Event
from pipeline.ledger.sql import clause
from pipeline.ledger.statuses import EMAILED, NOT_YET_OUT, Status
from pipeline.stages import channels, withdrawals
from pipeline.stages.context import (
    Context,
    ExtractRefused,
    check_ingested,
    check_shards,
    run_dir,
    run_id_for,
)

log = logging.getLogger(__name__)
INSERT_CHUNK = 2_000


def ingest_stage(ctx: Context, period: str, source: Path | None = None) -> dict[str, Any]:
    """Find the period's extract (local folder or S3 prefix), validate it, record the accounts.

    The run's outputs and the ledger's accounts change together, and only when the whole ingest
    succeeded (`pipeline.ingest.run`); the ledger records the latest ingest as running, succeeded
    or failed, and compose and render refuse a period whose latest ingest did not succeed. An
    extract refused as a whole raises ExtractRefused (the operator's to fix: no retry); anything
    else (an S3 timeout, say) is raised as it is, for the task to retry.
    """
    from pipeline.ingest import AccountingError, ExtractFileError, IngestResult, ingest, locate_period

    settings = ctx.settings
    run_id = run_id_for(period)
    work = run_dir(settings, run_id)
    check_shards(ctx.ledger, settings, run_id, period)

    def commit(done: IngestResult) -> AbstractContextManager[None]:
        return ctx.ledger.recording_ingest(run_id, done.files, done.quarantined)

    try:
        folder = source or locate_period(settings.extracts_url, settings.extracts_dir, period,
                                         work / "source", endpoint_url=settings.s3_endpoint_url)
        ctx.ledger.start_run(run_id, period, str(settings.extracts_url or folder.name), settings.shards)
        ctx.ledger.begin_ingest(run_id)
        result = ingest(folder, work, settings.shards, period=period, bucket_rows=settings.ingest_bucket_rows,
                        source_format=settings.extract_format, commit=commit,
                        damage_limit=settings.ingest_damage_limit,
                        max_field_bytes=settings.ingest_max_field_bytes,
                        sensitive_policy=settings.sensitive_services_policy)
    except (ExtractFileError, AccountingError) as exc:  # the messages name file, row, field: no content
        _ingest_failed(ctx, run_id, str(exc))
        raise ExtractRefused(period, str(exc)) from exc
    except BaseException as exc:  # its message may quote what it read: the ledger keeps its type only
        _ingest_failed(ctx, run_id, f"{type(exc).__name__} (the ingest task's log has the details)")
        raise
    summary = {"run_id": run_id, "format": result.format, "lines_read": result.rows_read,
               "lines_accepted": result.rows_accepted, "lines_quarantined": result.rows_quarantined,
               "members": result.members, "files": len(result.files), "notes": list(result.notes)}
    log.info("ingest recorded", extra=summary)
    return summary


def _ingest_failed(ctx: Context, run_id: str, error: str) -> None:
    """Record the failure (the run may not exist yet: then there is nothing to mark). A ledger
    that cannot be reached leaves the ingest marked running, which compose refuses as well."""
    try:
        ctx.ledger.fail_ingest(run_id, error)
    except Exception:
        log.warning("could not record the failed ingest in the ledger", extra={"run_id": run_id},
                    exc_info=True)


def extract_ready_stage(ctx: Context, period: str) -> bool:
    """Has the period's extract finished arriving (local period folder or S3 prefix)? Extract
    files (by name, as S3 discovery counts them; not hidden ones), none changed for
    `extract_quiet_minutes`, and the `extract_ready_marker` file when one is configured. For the
    sensor task ahead of ingest: it lists, and downloads nothing. A missing bucket or denied
    access raises ExtractSourceError naming it: waiting would not fix that (an S3 timeout or a
    dropped connection raises ExtractUnavailable, for the task's retries)."""
    from pipeline.ingest import S3Location, local_arrival, make_client, period_arrival

    settings = ctx.settings
    url, marker = settings.extracts_url, settings.extract_ready_marker
    if url and url.startswith("s3://"):
        location = S3Location.parse(url)
        where = str(location)
        arrival = period_arrival(location, period, make_client(settings.s3_endpoint_url), marker, ctx.now())
    else:
        root = Path(url.removeprefix("file://")) if url else settings.extracts_dir
        where = str(root)
        arrival = local_arrival(root / period, marker)
    waiting = arrival.waiting_for(ctx.now(), timedelta(minutes=settings.extract_quiet_minutes))
    if waiting is not None:
        log.info("extract not arrived", extra={"period": period, "where": where, "waiting_for": waiting,
                                               "files": arrival.files})
        return False
    if arrival.abandoned:  # a transfer that failed long ago: the file it was for may be missing
        log.warning("extract ready, but an upload under its prefix was abandoned unfinished; check "
                    "that no file of the delivery is missing (a ready-marker file rules this out)",
                    extra={"period": period, "where": where, "abandoned_uploads": arrival.abandoned})
    return True


def compose_stage(ctx: Context, period: str) -> dict[str, Any]:
    """Statements of every shard into the ledger: new ones, reissues, withdrawals, nothing twice."""
    from pipeline.compose import compose_shard, prompt_notice_claims, prompt_notice_columns, write_versions
    from pipeline.storage import iter_buckets

    run_id = run_id_for(period)
    work = run_dir(ctx.settings, run_id)
    check_shards(ctx.ledger, ctx.settings, run_id, period)
    check_ingested(ctx.ledger, run_id, period, "compose")
    flagged = withdrawals.flagged_after_release(ctx.ledger, period)
    withdrawals.check_limit(ctx, work, period, flagged)  # before anything changes
    suppressed = suppression_check(ctx)
    key = address_key(ctx)
    vanished: list[dict[str, Any]] = []
    notices = ctx.notice_rule(run_id)
    counts = {"statements": 0, "email": 0, "paper": 0, "prompt_notice": 0, "noticed_before": 0,
              "inserted": 0, "reissued": 0, "unchanged": 0, "withdrawn": 0, "withdrawn_after_release": 0,
              "accumulator_overrun": 0}
    overruns: list[str] = []  # statement ids only: an accumulator over its limit, for the claims system
    changes = channels.ChannelCounts()
    for shard in range(ctx.settings.shards):
        plan = _ShardPlan(ctx, run_id, period, shard, flagged)
        for summary in compose_shard(work, shard, period, notices=notices,
                                     is_suppressed=suppressed, address_key=key):
            for row in summary.to_pylist():
                plan.add(row)
                counts["statements"] += 1
                counts[row["channel"]] += 1
                counts["prompt_notice"] += int(row["prompt_notice"])
                if row.get("accumulator_overrun"):
                    overruns.append(plan.versions[row["member_id"]].statement_id)
            plan.flush()
        vanished += plan.vanished()
        for _, lines in iter_buckets(work, shard, prompt_notice_columns(work)):
            plan.add_prompt_notices(prompt_notice_claims(lines, notices), notices)
            plan.add_claims(lines)
        plan.flush()
        write_versions(work, shard, plan.versions)
        counts["inserted"] += plan.inserted
        counts["noticed_before"] += plan.noticed_before
        counts["reissued"] += plan.reissued
        counts["unchanged"] += plan.unchanged
        changes.add(plan.channel_counts)
    counts.update(changes.as_dict())
    counts["withdrawn"], counts["withdrawn_after_release"] = withdrawals.withdraw(ctx, vanished, flagged)
    if counts["reissued"] or counts["withdrawn"]:
        # the notices of the statements closed above that have not left (due, queued for paper)
        # are closed with them: the old version's notice must not reach the member, the new one
        # notices its claims afresh (what a crash here leaves, the notices stage closes)
        close_superseded(ctx.ledger, key=ctx.settings.statement_id_key.get_secret_value().encode())
    counts["accumulator_overrun"] = len(overruns)
    if overruns:  # a data problem for the claims system; the setting decides show or hold
        log.warning("accumulators above their plan limits", extra={
            "run_id": run_id, "statement_ids": overruns, "action": ctx.settings.accumulator_overrun})
        ctx.ledger.audit("pipeline", "accumulator_overrun", None, {
            "run_id": run_id, "statement_ids": overruns, "action": ctx.settings.accumulator_overrun})
    log.info("statements composed", extra={"run_id": run_id, **counts})
    return {"run_id": run_id, **counts}


def suppression_check(ctx: Context) -> Callable[[str], bool] | None:
    """Is an address suppressed? One query for the whole run, then a keyed hash per address
    (None when nothing is suppressed: compose then skips the per-address check)."""
    from pipeline.delivery.suppression import address_hash

    secret = ctx.settings.verp_secret.get_secret_value()
    active = {row["address_hash"] for row in ctx.ledger.fetch("compose_active_suppressions")}
    if not active:
        return None
    return lambda address: address_hash(address, secret) in active


def address_key(ctx: Context) -> Callable[[str], str]:
    """The keyed hash the ledger keeps of an email statement's address (as for suppressions)."""
    from pipeline.delivery.suppression import address_hash

    secret = ctx.settings.verp_secret.get_secret_value()
    return lambda address: address_hash(address, secret)


class _ShardPlan:
    """What compose does for one shard: insert new statements, reissue changed ones, in chunks."""

    def __init__(self, ctx: Context, run_id: str, period: str, shard: int, flagged: set[str]) -> None:
        from pipeline.compose import Version

        self.ctx, self.run_id, self.period, self.shard = ctx, run_id, period, shard
        self.statement_id = ctx.statement_ids(run_id)  # the run's scheme: a re-compose keeps its ids
        self.latest = {row["member_id"]: row for row in ctx.ledger.fetch(
            "compose_latest_versions", period=period, shard=shard)}
        self.versions: dict[str, Version] = {}
        self.new: list[NewStatement] = []
        self.lineage: list[dict[str, Any]] = []
        self.superseded: list[tuple[str, str, str]] = []  # (old id, old status, new id)
        self.notices: list[dict[str, Any]] = []
        self.channels: dict[str, str] = {}  # member -> channel, for statements new in this compose
        self.flagged = flagged  # withdrawn after release: a member back unchanged is reinstated
        self.reinstated: list[str] = []
        self.decided: list[channels.Decided] = []  # unchanged content, another channel or address
        self.addresses: list[dict[str, Any]] = []  # email statements composed before addresses were kept
        self.channel_counts = channels.ChannelCounts()
        self.noticed_claims: dict[str, set[str]] | None = None  # see `_noticed`
        self.claim_hash = claim_hasher(ctx.settings.statement_id_key.get_secret_value().encode())
        self.claims: list[dict[str, str]] = []  # statement_claims rows (see `add_claims`)
        self.unclaimed: set[str] | None = None
        self.inserted = self.reissued = self.unchanged = self.noticed_before = 0

    def add(self, row: dict[str, Any]) -> None:
        from pipeline.compose import Version

        member, content = row["member_id"], row["content_hash"]
        previous = self.latest.get(member)
        if (previous is not None and previous["content_hash"] in (content, None)
                and previous["status"] != Status.SUPERSEDED):  # a withdrawn member back: a new version
            # the same statement again (or one composed before hashes were kept): nothing new
            self.versions[member] = Version(previous["statement_id"], previous["version"], None, content)
            if previous["content_hash"] is None:
                self.lineage.append({"statement_id": previous["statement_id"], "content_hash": content,
                                     "replaces": None})
            if previous["statement_id"] in self.flagged:
                self.reinstated.append(previous["statement_id"])
            self._compare(previous, row)
            self.unchanged += 1
            return
        version = 1 if previous is None else int(previous["version"]) + 1
        statement_id = self.statement_id(member, self.period, version)
        replaces = None if previous is None else previous["statement_id"]
        self.versions[member] = Version(statement_id, version, replaces, content)
        self.channels[member] = row["channel"]
        self.new.append(NewStatement(statement_id, self.run_id, self.period, member, version, self.shard,
                                     row["channel"], row["paper_reason"], row["email_domain"],
                                     row["line_count"], bool(row["prompt_notice"]), row["address_hash"]))
        self.lineage.append({"statement_id": statement_id, "content_hash": content, "replaces": replaces})
        if previous is not None:
            self.superseded.append((previous["statement_id"], previous["status"], statement_id))
            if previous["status"] in EMAILED:  # emailed already: followed up if consent is withdrawn
                self._compare(previous, row)

    def _compare(self, previous: dict[str, Any], row: dict[str, Any]) -> None:
        """Compose's channel and address for a statement in the ledger, against the ledger's."""
        statement_id = previous["statement_id"]
        if channels.differs(previous, row):
            self.decided.append(channels.Decided(statement_id, self.run_id, channels.decision(row)))
        elif channels.unknown_address(previous, row):
            self.addresses.append({"statement_id": statement_id, "address_hash": row["address_hash"]})

    def vanished(self) -> list[dict[str, Any]]:
        """Standing statements of members with no lines in this extract (see withdrawals)."""
        standing = withdrawals.live(list(self.latest.values()))
        return [row for row in standing if row["member_id"] not in self.versions]

    def add_prompt_notices(self, flagged: Any, notices: NoticeRule) -> None:
        """Claims whose statement, on its channel, leaves after the claim's notice is due: for
        statements new in this compose, as their `prompt_notice` flag (an unchanged statement
        keeps the rows and flag of the compose that made it). A new version skips a claim whose
        notice an earlier version of the same recipient and period already sent, or queued for
        paper: the member gets one notice per claim, and the report counts it once, on the row
        of the notice that left."""
        for row in flagged.to_pylist():
            version = self.versions.get(row["member_id"])
            channel = self.channels.get(row["member_id"])
            if version is None or channel is None or not notices.misses(channel, row["received_date"]):
                continue
            if version.replaces is not None and row["claim_id"] in self._noticed().get(row["member_id"], ()):
                self.noticed_before += 1
                continue
            self.notices.append({"statement_id": version.statement_id, "claim_id": row["claim_id"],
                                 "notice_due": notices.due(row["received_date"]).isoformat(),
                                 "channel": channel,
                                 "statement_leaves": notices.departs[channel].isoformat()})
        if len(self.notices) >= INSERT_CHUNK:
            self.flush()

    def add_claims(self, lines: Any) -> None:
        """The keyed hash of each claim number on a statement, for the support desk's search by
        claim (`pipeline.ledger.claims`): for the shard's statements that have none yet (read
        once, when the shard's statements are in the ledger), so a statement new in this compose
        gets them, and so does one a compose stopped before recording them, or one composed
        before claims were recorded whose lines are back unchanged."""
        if self.unclaimed is None:
            self.unclaimed = {row["statement_id"] for row in self.ctx.ledger.fetch(
                "compose_statements_without_claims", run_id=self.run_id, shard=self.shard)}
        if not self.unclaimed:
            return
        pairs = lines.select(["member_id", "claim_id"]).group_by(["member_id", "claim_id"]).aggregate([])
        for member, claim in zip(pairs["member_id"].to_pylist(), pairs["claim_id"].to_pylist(), strict=True):
            version = self.versions.get(member)
            if version is not None and version.statement_id in self.unclaimed:
                self.claims.append({"claim_hash": self.claim_hash(claim),
                                    "statement_id": version.statement_id})
        if len(self.claims) >= INSERT_CHUNK:
            self.flush()

    def _noticed(self) -> dict[str, set[str]]:
        """member -> the claims whose notice left or is leaving, of any version of the period
        (read once, when the shard's statements are in the ledger). One queued for paper from a
        statement closed as superseded does not count: it is closed with its statement."""
        if self.noticed_claims is None:
            self.noticed_claims = {}
            for row in self.ctx.ledger.fetch("compose_noticed_claims", period=self.period, shard=self.shard):
                self.noticed_claims.setdefault(row["member_id"], set()).add(row["claim_id"])
        return self.noticed_claims

    def flush(self) -> None:
        ledger = self.ctx.ledger
        for start in range(0, len(self.new), INSERT_CHUNK):
            self.inserted += ledger.add_statements(self.new[start:start + INSERT_CHUNK])
        self.new.clear()
        with ledger.begin() as conn:
            if self.lineage:
                conn.execute(clause("compose_set_lineage"), self.lineage)
            if self.notices:
                conn.execute(clause("compose_insert_prompt_notice"), self.notices)
            if self.addresses:
                conn.execute(clause("compose_set_address_hash"), self.addresses)
            if self.claims:
                conn.execute(clause("compose_insert_statement_claims"), self.claims)
        self.lineage.clear()
        self.claims.clear()
        self.notices.clear()
        self.addresses.clear()
        for old_id, old_status, new_id in self.superseded:
            self._supersede(old_id, old_status, new_id)
        self.superseded.clear()
        for statement_id in self.reinstated:
            self.ctx.ledger.record_event(statement_id, Event.REINSTATED,
                                         {"cause": "its claim lines are back"})
        self.reinstated.clear()
        if self.decided:
            changes, changed = channels.apply(self.ctx, self.decided)
            self.channel_counts.add(changes)
            if changed:
                ledger.audit("pipeline", "channel_change", None,
                             {"shard": self.shard, "statement_ids": changed})
            self.decided.clear()

    def _supersede(self, old_id: str, old_status: str, new_id: str) -> None:
        """The corrected version replaces the old one on both timelines; an old version not yet
        out (not accepted by a mail server, not printed) is closed as `superseded` so it never
        goes out (its notices that have not left are closed with it at the end of compose);
        one already out keeps its status."""
        ledger = self.ctx.ledger
        ledger.record_event(new_id, Event.REISSUE, {"replaces": old_id})
        if old_status in NOT_YET_OUT:
            ledger.apply([Transition(old_id, Status.SUPERSEDED, Event.SUPERSEDED, {"by": new_id},
                                     {"last_reason": f"superseded by {new_id} (corrected extract)"})])
        else:
            ledger.record_event(old_id, Event.SUPERSEDED, {"by": new_id})
        ledger.audit("pipeline", "reissue", new_id, {"replaces": old_id})
        self.reissued += 1
