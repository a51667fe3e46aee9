"""What every stage shares: settings, ledger and object store opened once per task."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pipeline.clock import Now, utc_now
from pipeline.ledger import Ledger, Transition
from pipeline.outcomes.routing import RetryPolicy
from pipeline.periods import parse_period
from pipeline.settings import Settings
from pipeline.storage.objectstore import ObjectStore, open_store


class NeedsOperator(RuntimeError):
    """A stage stopped for a decision only an operator can make: retrying cannot help. The
    message says what was found and what to do."""


class ShardCountChanged(NeedsOperator):
    """EOB_SHARDS differs from the count the period was started with."""


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

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)


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


def flush_transitions(ctx: Context, batch: list[Transition], action: str, shard: int) -> None:
    if not batch:
        return
    ctx.ledger.apply(batch)
    ctx.ledger.audit("pipeline", action, None,
                     {"shard": shard, "statement_ids": [t.statement_id for t in batch]})
    batch.clear()


def member_contacts(settings: Settings, run_id: str) -> dict[str, tuple[str, str]]:
    """member_id → (email, language) for one run, read from its canonical member file."""
    import pandas as pd

    members = pd.read_parquet(run_dir(settings, run_id) / "members.parquet",
                              columns=["member_id", "email", "language"])
    return {m: (e, lang) for m, e, lang in members.itertuples(index=False)}
