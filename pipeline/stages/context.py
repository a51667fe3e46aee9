"""What every stage shares: settings, ledger and object store opened once per task."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from pipeline.clock import Now, utc_now
from pipeline.ledger import Ledger, Transition
from pipeline.outcomes.routing import DeliveryWindow, RetryPolicy
from pipeline.settings import Settings
from pipeline.storage import ObjectStore, member_contacts, open_store, run_dir, run_id_for

__all__ = [
    "Context", "NeedsOperator", "ShardCountChanged", "check_shards", "flush_transitions",
    "member_contacts", "open_context", "run_dir", "run_id_for",
]


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
    _cutoffs: dict[str, datetime | None] = field(default_factory=dict, repr=False)

    def send_cutoff(self, run_id: str) -> datetime | None:
        """The run's send cut-off (`DeliveryWindow.cutoff` of its start); None for an unknown run."""
        if run_id not in self._cutoffs:
            run = self.ledger.fetch_one("get_run", run_id=run_id)
            self._cutoffs[run_id] = self.delivery_window.cutoff(run["started_at"]) if run else None
        return self._cutoffs[run_id]

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy.from_settings(self.settings)

    @property
    def delivery_window(self) -> DeliveryWindow:
        return DeliveryWindow.from_settings(self.settings)


def open_context(settings: Settings | None = None, *, now: Now = utc_now) -> Context:
    settings = settings or Settings()
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

