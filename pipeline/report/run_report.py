"""Run reports for finance and operations, rebuilt from the ledger so every figure reconciles.

The report is derived only from ledger rows (statements, events, ingest accounts), so any past
run can be recomputed and re-issued, and each number can be traced to the statements behind it.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from pipeline.ledger import Ledger
from pipeline.ledger.notices import LEFT, ON_PAPER, NoticeStatus
from pipeline.ledger.statuses import EMAILED, PAPER, Status
from pipeline.report.checks import Check
from pipeline.report.figures import Costs
from pipeline.templates import TEMPLATES_DIR

QUEUE_OF_STATUS = {
    Status.RETRY_SCHEDULED: "retry",
    Status.VERIFICATION_PENDING: "verification",
    Status.PAPER_QUEUED: "paper",
}


@dataclass(slots=True)
class RunReport:
    run_id: str
    period: str
    state: str
    files: list[dict[str, Any]]
    quarantine_reasons: list[dict[str, Any]]
    statuses: dict[str, int]
    channels: list[dict[str, Any]]
    bounce_categories: list[dict[str, Any]]
    pools: list[dict[str, Any]]
    members: int
    prompt_notice: int
    events: dict[str, int]
    costs: Costs | None = None  # the period's finance figures' (report_stage); None: not priced
    checks: list[Check] = field(default_factory=list)
    prompt_notice_claims: list[dict[str, Any]] = field(default_factory=list)
    reissues: list[dict[str, Any]] = field(default_factory=list)
    superseded_unexplained: int = 0
    own_statements: int = 0  # patients' own statements (pipeline.recipients), this run
    withdrawn: list[dict[str, Any]] = field(default_factory=list)
    paper_batches: list[dict[str, Any]] = field(default_factory=list)
    as_of: str = ""
    overruns: list[str] = field(default_factory=list)  # statement ids compose flagged: accumulator over limit
    held: list[dict[str, Any]] = field(default_factory=list)  # statement_id, status: render refused (held)

    def overrun_rows(self) -> list[dict[str, str]]:
        """The accumulator-overrun listing: statement ids only (no member data), whether each
        was held and, if so, its status now."""
        held = {row["statement_id"]: row["status"] for row in self.held}
        return [{"statement_id": statement_id, "held": "yes" if statement_id in held else "no",
                 "status": held.get(statement_id, "")}
                for statement_id in sorted({*self.overruns, *held})]

    @property
    def prompt_notice_days_late(self) -> list[int]:
        """Days after its due date each prompt-notice claim's statement leaves (where known)."""
        return [row["days_late"] for row in self.prompt_notice_claims if row.get("days_late") is not None]

    def notices(self, statuses: frozenset[NoticeStatus]) -> int:
        """Prompt notices (one per flagged claim) now in one of `statuses`."""
        return sum(1 for row in self.prompt_notice_claims if row["status"] in statuses)

    @property
    def notices_late(self) -> int:
        """Prompt notices that left, or are planned to leave on paper, after their due date."""
        return sum(1 for row in self.prompt_notice_claims if row["late"] == "yes")

    @property
    def lines_read(self) -> int:
        return sum(f["rows_read"] for f in self.files if f["kind"] == "claims")

    @property
    def lines_accepted(self) -> int:
        return sum(f["rows_accepted"] for f in self.files if f["kind"] == "claims")

    @property
    def lines_quarantined(self) -> int:
        return sum(f["rows_quarantined"] for f in self.files if f["kind"] == "claims")

    @property
    def statements(self) -> int:
        return sum(self.statuses.values())

    def count(self, *statuses: Status) -> int:
        return sum(self.statuses.get(s.value, 0) for s in statuses)

    @property
    def emailed(self) -> int:
        return self.count(*EMAILED)

    @property
    def paper(self) -> int:
        return self.count(*PAPER)

    @property
    def queues(self) -> dict[str, int]:
        return {name: self.count(status) for status, name in QUEUE_OF_STATUS.items()}

    @property
    def bounced_statements(self) -> int:
        return sum(row["n"] for row in self.bounce_categories)

    def money(self) -> dict[str, str]:
        """The summary CSV's amounts (US dollars, to the cent), the finance figures' own for the
        period: email, paper, and saved against sending every statement on paper. Not written
        when the report was built without them."""
        if self.costs is None:
            return {}
        return {"email_cost_usd": f"{self.costs.email:.2f}", "paper_cost_usd": f"{self.costs.paper:.2f}",
                "savings_vs_all_paper_usd": f"{self.costs.savings:.2f}"}

    @property
    def superseded(self) -> int:
        """Versions a corrected extract replaced or withdrew before they went out:
        never sent, and not failures."""
        return self.count(Status.SUPERSEDED)

    def summary(self) -> dict[str, int]:
        """The headline counts ops and the demo print."""
        rendered = self.statements - self.count(Status.COMPOSED, Status.FAILED, Status.SUPERSEDED)
        return {
            "lines_read": self.lines_read, "lines_accepted": self.lines_accepted,
            "lines_quarantined": self.lines_quarantined, "members": self.members,
            "statements": self.statements, "rendered": rendered,
            "accepted_by_relay": self.events.get("sent", 0),
            "sent": self.emailed, "bounced": self.bounced_statements,
            **{f"queue_{name}": n for name, n in self.queues.items()},
            "paper": self.paper, "failed": self.count(Status.FAILED), "superseded": self.superseded,
            "prompt_notice": self.prompt_notice, "own_statements": self.own_statements,
            "prompt_notice_claims": len(self.prompt_notice_claims),
            "prompt_notice_most_days_late": max(self.prompt_notice_days_late, default=0),
            # a notice closed with its superseded statement is not due: the new version's is
            "notices_due": sum(1 for row in self.prompt_notice_claims
                               if row["status"] != NoticeStatus.SUPERSEDED),
            "notices_sent": self.notices(LEFT),
            "notices_late": self.notices_late,
            "notices_on_paper": self.notices(ON_PAPER),
            "notices_waiting": self.notices(frozenset({NoticeStatus.DUE})),
            "reissued": len(self.reissues),
            "withdrawn": sum(1 for row in self.withdrawn if row["event"] == "withdrawn"),
            "withdrawn_after_release": sum(1 for row in self.withdrawn
                                           if row["event"] == "withdrawn_after_release"),
            "print_batches": len(self.paper_batches), "paper_mailed": self.count(Status.MAILED),
            "paper_returned": self.events.get("returned_to_sender", 0),
            "paper_exceptions": self.count(Status.PAPER_EXCEPTION),
            "accumulator_overrun": len(self.overruns),
            "held_accumulator_overrun": len(self.held),
        }


def build_report(ledger: Ledger, run_id: str, costs: Costs | None = None) -> RunReport:
    """The run's report from the ledger. `costs`: the finance figures' of the run's period
    (`Figures.priced`, from the dated rate table), so both reports show the same money; without
    them the report shows no amounts (enough for its counts and checks)."""
    run = ledger.fetch_one("get_run", run_id=run_id)
    if run is None:
        raise LookupError(f"run {run_id} is not in the ledger; has ingest run for that period?")
    members = ledger.fetch("ingest_files_for_run", run_id=run_id)
    report = RunReport(
        run_id=run_id, period=run["period"], state=run["state"],
        files=members,
        quarantine_reasons=ledger.fetch("quarantine_reasons_for_run", run_id=run_id),
        statuses=ledger.status_counts(run_id),
        channels=ledger.fetch("channel_counts_for_run", run_id=run_id),
        bounce_categories=ledger.fetch("bounce_categories_for_run", run_id=run_id),
        pools=ledger.fetch("pool_counts_for_run", run_id=run_id),
        members=sum(f["rows_accepted"] for f in members if f["kind"] == "members"),
        events={row["event"]: row["n"] for row in ledger.fetch("event_counts_for_run", run_id=run_id)},
        prompt_notice_claims=_notice_rows(ledger, run_id),
        reissues=ledger.fetch("ingest_reissues_for_run", run_id=run_id),
        withdrawn=ledger.fetch("withdrawn_for_run", run_id=run_id),
        superseded_unexplained=(ledger.fetch_one("superseded_unexplained_for_run", run_id=run_id)
                                or {}).get("n", 0),
        prompt_notice=(ledger.fetch_one("prompt_notice_count_for_run", run_id=run_id) or {}).get("n", 0),
        own_statements=(ledger.fetch_one("own_statements_for_run", run_id=run_id) or {}).get("n", 0),
        costs=costs,
        paper_batches=ledger.fetch("paper_batches_for_run", run_id=run_id), as_of=ledger.now(),
        overruns=_overruns(ledger, run_id),
        held=ledger.fetch("held_statements_for_run", run_id=run_id),
    )
    report.checks = reconciliation_checks(report)
    return report


def reconciliation_checks(report: RunReport) -> list[Check]:
    """The invariants finance relies on; a failed one is shown, never hidden."""
    checks = [
        Check("claim lines: read = accepted + quarantined",
              report.lines_read == report.lines_accepted + report.lines_quarantined,
              f"{report.lines_read} = {report.lines_accepted} + {report.lines_quarantined}"),
    ]
    for f in report.files:
        checks.append(Check(f"{f['source_file']}: read = accepted + quarantined",
                            f["rows_read"] == f["rows_accepted"] + f["rows_quarantined"],
                            f"{f['rows_read']} = {f['rows_accepted']} + {f['rows_quarantined']}"))
    unfinished = report.count(Status.COMPOSED)
    checks.append(Check("every statement rendered, failed with a reason, or superseded",
                        unfinished == 0, f"{unfinished} still composed"))
    replaced = sum(1 for row in report.reissues if row["replaced_status"] == Status.SUPERSEDED.value)
    closed = [row for row in report.withdrawn if row["status"] == Status.SUPERSEDED.value]
    possibly_out = sum(1 for row in closed if row["event"] == "withdrawn_after_release")
    checks.append(Check("every superseded statement is replaced by a newer version or withdrawn",
                        report.superseded_unexplained == 0,
                        f"{report.superseded} superseded: {replaced} replaced by a reissue, {len(closed)} "
                        f"withdrawn (no lines in the corrected extract; {possibly_out} possibly out "
                        f"already), {report.superseded_unexplained} neither"))
    waiting = report.count(Status.RENDERED)
    checks.append(Check("every rendered statement routed to email or paper", waiting == 0,
                        f"{waiting} rendered but not routed"))
    stranded = sum(row["n"] for row in report.bounce_categories
                   if row["status"] in (Status.BOUNCED.value, Status.VERIFICATION_FAILED.value))
    checks.append(Check("every bounced statement is in exactly one queue or resolved",
                        stranded == 0, f"{stranded} bounced statements in no queue"))
    moved = report.events.get("pool_unavailable", 0)
    checks.append(Check("every IP pool could deliver (TLS, connection, relay login, relaying)",
                        moved == 0, f"{moved} statements were moved off a pool that could not deliver; "
                        "see the failed send task"))
    overdue = [b["batch_name"] for b in report.paper_batches
               if b["state"] == "delivered" and b["ack_due_at"] < report.as_of]
    checks.append(Check("every print batch acknowledged by the vendor in time", not overdue,
                        f"{len(report.paper_batches)} batches; no acknowledgement past due: "
                        f"{', '.join(overdue) or 'none'}", attention=True))
    flagged = set(report.overruns)
    unflagged = [row["statement_id"] for row in report.held if row["statement_id"] not in flagged]
    open_held = [row["statement_id"] for row in report.held
                 if row["status"] not in (Status.FAILED.value, Status.SUPERSEDED.value)]
    checks.append(Check("every held statement was flagged for an accumulator overrun and is failed or "
                        "superseded",
                        not unflagged and not open_held,
                        f"{len(report.overruns)} flagged, {len(report.held)} held: {len(unflagged)} held "
                        f"without a flag, {len(open_held)} held but neither failed nor superseded"))
    exceptions = report.count(Status.PAPER_EXCEPTION)
    checks.append(Check("every paper statement has a printable address", exceptions == 0,
                        f"{exceptions} statements wait for support to correct the mailing address "
                        "(eob paper list; their timelines say why)", attention=True))
    return checks


def write_report(report: RunReport, folder: Path) -> dict[str, Path]:
    """HTML for people, CSV for spreadsheets; both from the same figures."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path = folder / f"{report.run_id}.html"
    csv_path = folder / f"{report.run_id}-summary.csv"
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "reports"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    html_path.write_text(env.get_template("run_report.html.j2").render(
        r=report, summary=report.summary(), bars=_bars(report.statuses)), encoding="utf-8")
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["run_id", "metric", "value"])
        for key, value in report.summary().items():
            writer.writerow([report.run_id, key, value])
        for status, n in sorted(report.statuses.items()):
            writer.writerow([report.run_id, f"status_{status}", n])
        for key, amount in report.money().items():
            writer.writerow([report.run_id, key, amount])
    notices_path = folder / f"{report.run_id}-prompt-notices.csv"
    with notices_path.open("w", newline="", encoding="utf-8") as handle:
        notices = csv.DictWriter(handle, fieldnames=NOTICE_COLUMNS, extrasaction="ignore")
        notices.writeheader()
        notices.writerows(report.prompt_notice_claims)
    overruns_path = folder / f"{report.run_id}-accumulator-overruns.csv"
    with overruns_path.open("w", newline="", encoding="utf-8") as handle:
        overruns = csv.DictWriter(handle, fieldnames=["statement_id", "held", "status"])
        overruns.writeheader()
        overruns.writerows(report.overrun_rows())
    return {"html": html_path, "csv": csv_path, "prompt_notices": notices_path,
            "accumulator_overruns": overruns_path}


NOTICE_COLUMNS = ["statement_id", "claim_id", "channel", "notice_due", "statement_leaves", "days_late",
                  "statement_status", "notice_id", "status", "left", "late"]
"""The prompt-notices CSV: each flagged claim, its statement, and its notice (status, the day it
left or leaves on paper, whether that is after it was due)."""


def _notice_rows(ledger: Ledger, run_id: str) -> list[dict[str, Any]]:
    """Each flagged claim with its statement's facts and its notice's."""
    rows = []
    for row in ledger.fetch("ingest_prompt_notices_for_run", run_id=run_id):
        late = row["late"]
        rows.append({**_with_days_late(row), "statement_status": row["status"],
                     "notice_id": row["notice_id"] or "", "status": row["notice_status"] or "due",
                     "left": str(row["left_on"] or ""),
                     "late": "" if late is None else ("yes" if int(late) else "no")})
    return rows


def _overruns(ledger: Ledger, run_id: str) -> list[str]:
    """The statement ids compose flagged for an accumulator above its limit in this run (every
    compose of the period: a re-compose flags its own versions)."""
    flagged: set[str] = set()
    for row in ledger.fetch("accumulator_overrun_flags"):
        detail = json.loads(row["detail"]) if isinstance(row["detail"], str) else row["detail"]
        if detail.get("run_id") == run_id:
            flagged.update(detail.get("statement_ids", ()))
    return sorted(flagged)


def _with_days_late(row: dict[str, Any]) -> dict[str, Any]:
    """A prompt-notice claim with how many days after its due date its statement leaves."""
    leaves = row.get("statement_leaves")
    if not leaves:
        return {**row, "days_late": None}
    due = date.fromisoformat(str(row["notice_due"])[:10])
    return {**row, "days_late": (date.fromisoformat(str(leaves)[:10]) - due).days}


def _bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Horizontal bar geometry for an inline SVG chart (no JavaScript, prints anywhere)."""
    biggest = max(counts.values(), default=0) or 1
    return [{"label": label, "n": n, "width": round(360 * n / biggest, 1), "y": 28 * index}
            for index, (label, n) in enumerate(sorted(counts.items(), key=lambda kv: -kv[1]))]
