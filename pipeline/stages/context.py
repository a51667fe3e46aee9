"""What every stage shares: settings, ledger and object store opened once per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.clock import Now, moment, utc_now
from pipeline.deadlines import MailCalendar, NoticeRule
from pipeline.ledger import Ledger, Transition
from pipeline.outcomes.routing import DeliveryWindow, RetryPolicy
from pipeline.settings import Settings, SettingsRefused, check_environment
from pipeline.stages.passwords import check_password_policy
from pipeline.storage import ObjectStore, member_contacts, open_store, run_dir, run_id_for

if TYPE_CHECKING:
    from pipeline.compose import StatementIds

__all__ = [
    "ConfigurationRefused", "Context", "ExtractRefused", "IngestNotSucceeded", "NeedsOperator",
    "ShardCountChanged",
    "check_ingested", "check_shards", "check_statement_resources", "flush_transitions",
    "member_contacts", "open_context", "run_dir", "run_id_for",
]


class NeedsOperator(RuntimeError):
    """A stage stopped for a decision only an operator can make: retrying cannot help. The
    message says what was found and what to do."""


class ShardCountChanged(NeedsOperator):
    """EOB_SHARDS differs from the count the period was started with."""


class ExtractRefused(NeedsOperator):
    """Ingest refused the period's extract as a whole (a file it cannot read, a missing or
    unusable extract location, rows that do not add up): the same files would be refused again.
    `reason` is ingest's own message, naming the file and, where it has them, row and field."""

    def __init__(self, period: str, reason: str) -> None:
        self.period, self.reason = period, reason
        super().__init__(
            f"the {period} extract was refused: {reason}. Correct or re-deliver the extract, then run "
            f"ingest again (a retry of the same files cannot help); the period's previous ingest is "
            f"kept as it was, and compose and render wait for an ingest that succeeds")


class IngestNotSucceeded(NeedsOperator):
    """Compose or render was asked to work on a period whose latest ingest did not succeed."""


def check_ingested(ledger: Ledger, run_id: str, period: str, stage: str) -> None:
    """Compose and render work from the canonical lines of the period's latest ingest, and only
    when it succeeded: after a failed one they would work from lines that are not the extract's
    (or from none, and find nothing to do)."""
    run = ledger.ingest_state(run_id)
    state = run["ingest_state"] if run else None
    if state == "succeeded":
        return
    if run is None or state is None:
        raise IngestNotSucceeded(f"{period} has not been ingested: run ingest for {period} first, then "
                                 f"{stage}")
    if state == "running":
        raise IngestNotSucceeded(
            f"the latest ingest of {period} (started {run['ingest_at']}) has not finished: {stage} waits "
            f"for it; if it was interrupted, run ingest for {period} again")
    raise IngestNotSucceeded(
        f"the latest ingest of {period} failed ({run['ingest_at']}): {run['ingest_error']}. "
        f"{stage.capitalize()} refuses the period until an ingest of it succeeds: correct the extract "
        f"and run ingest again")


def check_shards(ledger: Ledger, settings: Settings, run_id: str, period: str) -> None:
    """A member's statements stay in the shard they started in, so a period keeps its shard count."""
    run = ledger.fetch_one("get_run", run_id=run_id)
    if run is not None and int(run["shards"]) != settings.shards:
        raise ShardCountChanged(
            f"{period} was started with {run['shards']} shards and EOB_SHARDS is now {settings.shards}: "
            f"keep EOB_SHARDS={run['shards']} for this period (statements are spread over shards by member)")


@dataclass(slots=True)
class Context:
    settings: Settings
    ledger: Ledger
    store: ObjectStore
    now: Now = utc_now
    _cutoffs: dict[str, datetime | None] = field(default_factory=dict, repr=False)
    _notice_rules: dict[str, NoticeRule] = field(default_factory=dict, repr=False)

    def send_cutoff(self, run_id: str) -> datetime | None:
        """The run's send cut-off (`DeliveryWindow.cutoff` of its start); None for an unknown run."""
        if run_id not in self._cutoffs:
            run = self.ledger.fetch_one("get_run", run_id=run_id)
            self._cutoffs[run_id] = self.delivery_window.cutoff(run["started_at"]) if run else None
        return self._cutoffs[run_id]

    def notice_rule(self, run_id: str) -> NoticeRule:
        """Which adverse claims the run's statements reach after their notice deadline. They are
        taken to be ready to leave `notice_processing_hours` after now (compose: render and route
        follow), or after the run's start if that is later; see `pipeline.deadlines`."""
        if run_id not in self._notice_rules:
            run = self.ledger.fetch_one("get_run", run_id=run_id)
            if run is None:
                raise IngestNotSucceeded(f"{run_id} is not in the ledger: run ingest for its period first")
            settings = self.settings
            processing = timedelta(hours=settings.notice_processing_hours)
            ready = max(moment(run["started_at"]), self.now()) + processing
            self._notice_rules[run_id] = NoticeRule.for_run(settings.prompt_notice_days,
                                                            self.mail_calendar, ready)
        return self._notice_rules[run_id]

    @property
    def mail_calendar(self) -> MailCalendar:
        """The mail's business days and the print vendor's cut-off and production days."""
        settings = self.settings
        return MailCalendar(settings.mail_holidays_country, settings.paper_cutoff_hour,
                            settings.paper_production_days)

    def statement_ids(self, run_id: str) -> StatementIds:
        """How the run's statement ids are made: the scheme the ledger records for the run (keyed
        for new runs; unkeyed for runs composed before, so that their re-composes give the ids they
        have) and the key (`EOB_STATEMENT_ID_KEY`)."""
        from pipeline.compose import StatementIds

        scheme = self.ledger.statement_id_scheme(run_id)
        if scheme is None:
            raise IngestNotSucceeded(f"{run_id} is not in the ledger: run ingest for its period first")
        return StatementIds(scheme, self.settings.statement_id_key.get_secret_value().encode())

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)

    @property
    def delivery_window(self) -> DeliveryWindow:
        return DeliveryWindow.from_settings(self.settings)


class ConfigurationRefused(NeedsOperator):
    """The process's configuration cannot run (a shipped test value in production, a password
    policy below its floor or without its hint, an invalid setting, a missing font file, broken
    plan, state or tagline rules): no retry can fix it."""


def check_statement_resources(settings: Settings, templates_dir: Path | None = None) -> None:
    """What every statement needs, checked when a process starts rather than at its first
    statement: the font files (from `settings.font_dir`, else Debian's; `MissingFontFile` names
    the file and the package) and the legal rules, states and taglines (`TemplateError` names
    the file and the key), including a font for every character of every tagline."""
    from pipeline.render.eob.legal import check_legal_configuration
    from pipeline.render.fonts import use_font_dir
    from pipeline.templates import DEFAULT_TEMPLATES_DIR

    use_font_dir(settings.font_dir)
    check_legal_configuration(templates_dir or DEFAULT_TEMPLATES_DIR)


def open_context(settings: Settings | None = None, *, now: Now = utc_now,
                 templates_dir: Path | None = None) -> Context:
    """Settings (checked: no shipped test value in production mode; the PDF password policy
    passes its floor and has its email hint; the fonts and legal templates statements need,
    `check_statement_resources`), the ledger and the object store. A configuration that cannot
    run raises `ConfigurationRefused`, naming what to set or install."""
    from pydantic import ValidationError

    from pipeline.render import UnknownPasswordPolicy, WeakPasswordPolicy
    from pipeline.render.fonts import MissingFontFile
    from pipeline.templates import TemplateError

    try:
        settings = settings or Settings()
        check_environment(settings)
        check_password_policy(settings)
        check_statement_resources(settings, templates_dir)
    except ValidationError as exc:  # name each setting, never echo its value (it may be a secret)
        named = "; ".join(f"EOB_{'__'.join(str(part) for part in error['loc']).upper()}: {error['msg']}"
                          for error in exc.errors())
        raise ConfigurationRefused(f"invalid settings: {named}") from None
    except (SettingsRefused, UnknownPasswordPolicy, WeakPasswordPolicy, TemplateError,
            MissingFontFile) as exc:
        raise ConfigurationRefused(str(exc)) from exc
    ledger = Ledger.open(settings.ledger_dsn, now=now)
    store = open_store(settings.objects_url, kms_key_id=settings.s3_kms_key_id,
                       endpoint_url=settings.s3_endpoint_url)
    return Context(settings, ledger, store, now)


def flush_transitions(ctx: Context, batch: list[Transition], action: str, shard: int) -> None:
    if not batch:
        return
    ctx.ledger.apply(batch)
    ctx.ledger.audit("pipeline", action, None,
                     {"shard": shard, "statement_ids": [t.statement_id for t in batch]})
    batch.clear()

