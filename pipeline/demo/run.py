"""The demo: a whole monthly run on embedded defaults, through Airflow, against real SMTP servers.

Starts one receiving SMTP server per IP pool on loopback (STARTTLS with a freshly generated
certificate authority), generates a synthetic month of claims, runs `eob_monthly`, `eob_notices`
(the prompt notices of the claims compose flagged) and then `eob_reconcile` with Airflow in this
process, then `eob_paper` (the day's print batches to a simulated print vendor's drop), lets the
simulated vendor print, mail and return some pieces, and runs `eob_paper` again to read its files
back. Returns the run's report summary.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.demo.generate import GeneratedExtract, generate_extract
from pipeline.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DemoResult:
    settings: Settings
    extract: GeneratedExtract
    summary: dict[str, Any]
    reconcile: dict[str, Any]
    received: int
    seconds: dict[str, float]
    messages: list[Any]
    paper: dict[str, int]


KEEP_MESSAGES_UP_TO = 5000
"""Members up to which the demo's SMTP servers keep whole messages (for tests to open the PDFs);
above it only headers, so a 100,000-member run does not hold gigabytes of mail in memory."""


def prepare_workspace(workspace: Path) -> Path:
    """Each demo starts clean: the workspace is removed and made again."""
    workspace = workspace.resolve()
    if workspace.exists():
        marker = workspace / ".eob-workspace"
        if not marker.exists() and any(workspace.iterdir()):
            raise FileExistsError(
                f"{workspace} exists and is not a demo workspace; choose another --workspace")
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    (workspace / ".eob-workspace").write_text("created by eob demo\n")
    return workspace


def demo_environment(workspace: Path, ca_file: Path, shards: int) -> dict[str, str]:
    """The EOB_* settings the DAG tasks will read: everything inside the workspace, in demo mode
    (the shipped test secrets and example domains are accepted; production refuses them)."""
    return {
        "EOB_ENVIRONMENT": "demo",
        "EOB_WORKSPACE": str(workspace),
        "EOB_SMTP_CA_FILE": str(ca_file),
        "EOB_SHARDS": str(shards),
        "EOB_SMTP_TIMEOUT_SECONDS": "20",
        "EOB_EXTRACT_QUIET_MINUTES": "0",  # the demo writes its extract whole before the run starts
        "EOB_IMB_MAILER_ID": "123456",  # a made-up Mailer ID: the barcode is printed, not scanned
        "EOB_PAPER_ENDORSEMENT": "ADDRESS SERVICE REQUESTED",
    }


@contextmanager
def smtp_servers(settings: Settings, tls_dir: Path, *, keep_data: bool = True) -> Iterator[list[Any]]:
    """One real SMTP server per IP pool's relay address, with STARTTLS required. Without
    ``keep_data`` the servers keep each message's headers only (long runs: bounded memory)."""
    from pipeline.delivery.pools import send_config
    from pipeline.demo.smtp_sink import SmtpSink, demo_behaviour, make_tls_material

    relays = [(pool.name, relay) for pool in send_config(settings).pools for relay in pool.relays]
    material = make_tls_material(tls_dir, [*sorted({relay.host for _, relay in relays}), "localhost"])
    with ExitStack() as stack:
        sinks = []
        for name, relay in relays:
            sink = SmtpSink(relay.host, relay.port, tls=material, require_tls=True,
                            behaviour=demo_behaviour, maildir=settings.maildir,
                            reporting_mta=f"mx-{name}.sink.example", keep_data=keep_data)
            stack.enter_context(sink)
            sinks.append(sink)
        yield sinks


def run_demo(
    *, workspace: Path, members: int, period: str, seed: int, shards: int = 2,
    on_stage: Callable[[str], None] = lambda _stage: None,
    watch: Callable[[Settings, threading.Event], None] | None = None,
    after_generate: Callable[[Path], None] = lambda _folder: None,
    configure_airflow: bool = True, parallel: bool = True,
) -> DemoResult:
    """Run the whole month. Tests that configured Airflow themselves pass configure_airflow=False.
    ``parallel``: `eob_monthly` on Airflow's LocalExecutor (render shards and pool senders side by
    side, see pipeline.demo.airflow_runner); False runs its tasks one by one in this process."""
    import time
    from datetime import UTC, datetime

    from pipeline.demo import airflow_runner as airflow_local
    from pipeline.demo.smtp_sink import make_tls_material  # noqa: F401  (fail early if missing)

    timings: dict[str, float] = {}
    started = time.perf_counter()
    workspace = prepare_workspace(workspace)
    ca_file = workspace / "tls" / "ca.pem"
    os.environ.update(demo_environment(workspace, ca_file, shards))
    settings = Settings()
    on_stage("generate")
    extract = generate_extract(settings.extracts_dir / period, members=members, period=period,
                               seed=seed)
    after_generate(extract.folder)
    on_stage("airflow")
    if configure_airflow:
        airflow_local.configure(workspace / "airflow")
    airflow_local.init_metadata_db()
    timings["setup"] = time.perf_counter() - started
    with smtp_servers(settings, workspace / "tls", keep_data=members <= KEEP_MESSAGES_UP_TO) as sinks:
        stop = threading.Event()
        watcher = None
        if watch:
            watcher = threading.Thread(target=watch, args=(settings, stop), daemon=True)
            watcher.start()
        try:
            on_stage("eob_monthly")
            mark = time.perf_counter()
            airflow_local.run_dag("eob_monthly", {"period": period}, parallel=parallel)
            timings["eob_monthly"] = time.perf_counter() - mark
            on_stage("eob_notices")  # what the compose task's asset triggers in a deployment
            mark = time.perf_counter()
            airflow_local.run_dag("eob_notices", {"day": datetime.now(UTC).date().isoformat()})
            timings["eob_notices"] = time.perf_counter() - mark
            on_stage("eob_reconcile")
            mark = time.perf_counter()
            airflow_local.run_dag("eob_reconcile")
            timings["eob_reconcile"] = time.perf_counter() - mark
            on_stage("eob_paper")
            mark = time.perf_counter()
            paper_vendor = run_paper(settings, airflow_local.run_dag)
            timings["eob_paper"] = time.perf_counter() - mark
        finally:
            stop.set()
            if watcher:
                watcher.join(timeout=5)
        messages = [message for sink in sinks for message in sink.received]
    from pipeline.stages import open_context, report_stage

    ctx = open_context(settings)
    summary = report_stage(ctx, period)
    reconcile = {row["outcome"]: row["n"] for row in ctx.ledger.fetch("bounce_message_outcomes")}
    timings["total"] = time.perf_counter() - started
    batches = ctx.ledger.fetch("paper_batches")
    paper = {**paper_vendor, **{row["status"]: row["n"] for row in ctx.ledger.fetch("paper_status_counts")},
             "batches": len(batches), "sheets": sum(int(b["sheets"]) for b in batches)}
    return DemoResult(settings, extract, summary, reconcile, len(messages), timings, messages, paper)


def run_paper(settings: Settings, run_dag: Callable[[str, dict[str, Any] | None], Any]) -> dict[str, int]:
    """`eob_paper` for the batch day whose cut-off is still ahead (so this run's paper statements
    are in it), the simulated vendor printing and mailing what it received, and `eob_paper` again
    to read the vendor's acknowledgement and tracking back. Returns the vendor's counts."""
    from datetime import UTC, date, datetime, timedelta

    from pipeline.demo.print_vendor import PrintVendor

    now = datetime.now(UTC)
    day = (now.date() if now.hour < settings.paper_cutoff_hour else now.date() + timedelta(days=1))
    run_dag("eob_paper", {"day": day.isoformat()})
    vendor = PrintVendor(settings.workspace / "vendor-drop", mail_date=date.fromisoformat(day.isoformat()))
    counts = vendor.process()
    run_dag("eob_paper", {"day": day.isoformat()})
    return {f"vendor_{key}": value for key, value in counts.items()}
