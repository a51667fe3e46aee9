"""The edge between the orchestrator and the library: one function per pipeline stage.

Each function takes a Context and small identifiers, does one stage's work idempotently, and
returns a small dict of counts (never PHI, never big payloads): what Airflow keeps in XCom.
DAG files call these and nothing else.
"""

from pipeline.periods import day_for_run, period_for_run
from pipeline.stages.connections import relay_credentials
from pipeline.stages.context import (
    ConfigurationRefused,
    Context,
    ExtractRefused,
    IngestNotSucceeded,
    NeedsOperator,
    open_context,
    run_dir,
    run_id_for,
)
from pipeline.stages.finance_report import finance_daily_stage, finance_month_stage, finance_period_stage
from pipeline.stages.ingest import compose_stage, extract_ready_stage, ingest_stage
from pipeline.stages.notices import NoticesNotDrawn, notices_stage
from pipeline.stages.paper import (
    BatchFilesChanged,
    DropRefused,
    SerialsExhausted,
    paper_batch_stage,
    paper_day,
)
from pipeline.stages.paper_vendor import (
    BatchNotCancellable,
    PaperOverdue,
    VendorFilesDisagree,
    cancel_batch,
    paper_checks_stage,
    paper_vendor_files_stage,
    redrop_batch,
)
from pipeline.stages.reconcile import reconcile_stage, requeue_due_stage, resend_verified_stage, sweep_stage
from pipeline.stages.render import render_stage
from pipeline.stages.report import report_stage
from pipeline.stages.route import pool_names, route_stage
from pipeline.stages.send import PoolMisconfigured, PoolUnavailable, send_stage
from pipeline.stages.task_failure import operator_failure

__all__ = [
    "BatchFilesChanged", "BatchNotCancellable", "DropRefused", "PaperOverdue", "cancel_batch",
    "paper_batch_stage", "paper_checks_stage", "paper_day", "paper_vendor_files_stage", "redrop_batch",
    "SerialsExhausted", "VendorFilesDisagree",
    "ConfigurationRefused", "Context", "ExtractRefused", "IngestNotSucceeded", "NeedsOperator",
    "PoolMisconfigured", "PoolUnavailable", "compose_stage", "extract_ready_stage", "ingest_stage",
    "open_context", "operator_failure", "period_for_run", "pool_names", "reconcile_stage",
    "relay_credentials", "render_stage", "report_stage", "requeue_due_stage", "resend_verified_stage",
    "route_stage", "run_dir", "run_id_for", "send_stage", "sweep_stage",
    "NoticesNotDrawn", "day_for_run", "notices_stage",
    "finance_daily_stage", "finance_month_stage", "finance_period_stage",
]
