"""Reports: what happened to every statement of a run, rebuilt from the ledger (HTML with a chart,
CSV), with the reconciliation checks finance relies on."""

from pipeline.report.run_report import build_report, write_report

__all__ = ["build_report", "write_report"]
