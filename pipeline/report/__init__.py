"""Reports: what happened to every statement of a run, rebuilt from the ledger (HTML with a chart,
CSV), with the reconciliation checks finance relies on."""

from pipeline.report.checks import TO_ACT_ON, disagreements, to_act_on
from pipeline.report.run_report import build_report, write_report

__all__ = ["TO_ACT_ON", "build_report", "disagreements", "to_act_on", "write_report"]
