"""`eob`, the operator's command line: the demo, reports, lookups, ledger migrations, and the
operator controls of sending and reconciliation. Each command calls `pipeline.stages` or a
room's public functions; nothing here holds pipeline logic."""

from pipeline.cli.main import app

__all__ = ["app"]
