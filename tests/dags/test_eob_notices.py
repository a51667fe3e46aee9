"""`eob_notices` run by Airflow (`dag.test()`, in a child process whose whole output is the task
log) on a month whose extract arrived three weeks late, against a real SMTP server on loopback.

One composed month feeds every assertion: compose flags exactly the claims whose deadline the
late statements miss; the daily DAG sends exactly those notices, by email to a member with email
and to the paper queue for one without; a second run sends nothing; the notice opens only with
the member's password and says the claim was denied and how to appeal; no canary PHI reaches the
email or the task logs; the member's statement says the notice was sent, and when; the run report
counts the notices due, sent and late.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo.smtp_sink import Received, SmtpSink, make_tls_material
from pipeline.stages import render_stage, report_stage, route_stage
from pipeline.stages.context import Context
from tests.support import REPO
from tests.support.canary import CANARY_STRINGS
from tests.support.factories import extract_member_password
from tests.support.notices import (
    CANARY_EMAIL,
    LATE,
    PERIOD,
    STATEMENT_LEAVES,
    attachment,
    claims_missing_their_deadline,
    late_month,
    local_date,
    notice_messages,
    notices,
    pdf_words,
    told,
)
from tests.support.send import VERP_SECRET, WallClock

RELAY = "127.0.0.68"

pytestmark = pytest.mark.e2e


@dataclass
class Run:
    ctx: Context
    folder: Path
    emailed: str  # the canaries' member ids
    paper: str
    expected: dict[str, str]  # claim → channel, worked out from the canonical lines
    flagged: dict[str, dict[str, Any]]  # the ledger's notices before the DAG ran
    after: dict[str, dict[str, Any]]  # and after its first run
    outcomes: list[dict[str, Any]]  # each DAG run's outcome
    consoles: list[str]  # each DAG run's whole output
    first_messages: list[Received]  # what the relay received by the end of the first run
    messages: list[Received]  # and by the end of the second

    def member(self, member_id: str) -> dict[str, str]:
        with (self.ctx.settings.extracts_dir / PERIOD / "members.csv").open(newline="") as handle:
            return next(row for row in csv.DictReader(handle) if row["member_id"] == member_id)

    def notice_of(self, member_id: str) -> dict[str, Any]:
        return next(n for n in self.after.values() if n["member_id"] == member_id)


def _dag_run(folder: Path, env: dict[str, str], home: str) -> tuple[dict[str, Any], str]:
    child = subprocess.run(
        [sys.executable, str(REPO / "tests" / "support" / "dag_child.py"), str(folder / home),
         "eob_notices", json.dumps({"day": LATE.date().isoformat()})],
        capture_output=True, text=True, env=env, timeout=300, cwd=REPO)
    console = child.stdout + child.stderr
    assert child.returncode == 0, console[-4000:]
    last = next(line for line in reversed(console.splitlines()) if line.startswith("OUTCOME "))
    outcome = json.loads(last[8:])
    return outcome, console


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("notices-dag")
    tls = make_tls_material(folder / "tls", [RELAY])
    with SmtpSink(RELAY, 0, tls=tls) as sink:
        ctx, emailed, paper = late_month(folder / "ws", (sink.host, sink.port), tls.ca_file,
                                         WallClock(LATE))
        expected = claims_missing_their_deadline(ctx, STATEMENT_LEAVES)
        flagged = notices(ctx)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EOB_")}
        env.update({"EOB_ENVIRONMENT": "demo", "EOB_AIRFLOW_LOG_LEVEL": "INFO", "EOB_SHARDS": "2",
                    "EOB_WORKSPACE": str(ctx.settings.workspace),
                    "EOB_POOLS_FILE": str(ctx.settings.pools_file),
                    "EOB_SMTP_CA_FILE": str(tls.ca_file), "EOB_VERP_SECRET": VERP_SECRET,
                    "EOB_SMTP_TIMEOUT_SECONDS": "5", "EOB_SMTP_EHLO_HOSTNAME": "mailer.eob.example"})
        first, first_console = _dag_run(folder, env, "airflow-1")
        first_messages = list(sink.received)
        after = notices(ctx)
        second, second_console = _dag_run(folder, env, "airflow-2")
        messages = list(sink.received)
    return Run(ctx, folder, emailed, paper, expected, flagged, after, [first, second],
               [first_console, second_console], first_messages, messages)


def test_a_late_extract_flags_exactly_the_claims_whose_deadline_the_cycle_misses(run: Run) -> None:
    assert set(run.flagged) == set(run.expected)
    assert {n["statement_channel"] for n in run.flagged.values()} == {"email", "paper"}
    assert {run.emailed, run.paper} <= {n["member_id"] for n in run.flagged.values()}
    assert {n["status"] for n in run.flagged.values()} == {"due"}


def test_the_dag_sends_exactly_those_notices_by_email_or_to_paper(run: Run) -> None:
    outcome = run.outcomes[0]
    assert outcome["state"] == "success"
    assert outcome["tasks"] == {"send_notices": {"state": "success", "tries": 1}}
    assert set(run.after) == set(run.expected)
    emailed = {claim for claim, n in run.after.items() if n["status"] == "sent"}
    on_paper = {claim for claim, n in run.after.items() if n["status"] == "paper_queued"}
    assert emailed | on_paper == set(run.expected) and emailed and on_paper
    received = notice_messages(run.first_messages)
    assert set(received) == {run.after[claim]["notice_id"] for claim in emailed}
    assert len(received) == len(run.first_messages), "each emailed notice was received once"
    assert run.notice_of(run.emailed)["status"] == "sent"
    assert received[run.notice_of(run.emailed)["notice_id"]]["To"] == CANARY_EMAIL
    paper = run.notice_of(run.paper)
    assert paper["status"] == "paper_queued" and paper["last_reason"] == "paper: no_consent"
    assert run.ctx.store.get(paper["print_key"]).startswith(b"%PDF-"), "its print variant is stored"
    assert all(message.tls for message in run.first_messages)
    for notice in run.after.values():  # the day each left (or leaves, on paper), and whether late
        assert notice["left_on"] and notice["late"] == int(notice["left_on"] > notice["notice_due"])


def test_a_second_run_sends_nothing_again(run: Run) -> None:
    assert run.outcomes[1]["state"] == "success"
    assert len(run.messages) == len(run.first_messages)
    assert notices(run.ctx) == run.after


@pytest.mark.skipif(not (shutil.which("qpdf") and shutil.which("pdftotext")),
                    reason="needs qpdf and poppler-utils (.ci/system-packages.txt)")
def test_the_notice_opens_only_with_the_members_password_and_explains_the_denial(run: Run) -> None:
    canary = run.notice_of(run.emailed)
    message = notice_messages(run.messages)[canary["notice_id"]]
    encrypted = run.folder / "notice.pdf"
    encrypted.write_bytes(attachment(message))
    plain = run.folder / "notice-opened.pdf"
    refused = subprocess.run(["qpdf", "--decrypt", str(encrypted), str(plain)], capture_output=True,
                             text=True)
    assert refused.returncode != 0 and "password" in refused.stderr.lower()
    birthday = extract_member_password(run.member(run.emailed), "dob_mmddyyyy")
    assert subprocess.run(["qpdf", f"--password={birthday}", "--decrypt", str(encrypted), str(plain)],
                          capture_output=True).returncode != 0, "the date of birth alone opens it"
    password = extract_member_password(run.member(run.emailed), run.ctx.settings.password_policy)
    opened = subprocess.run(["qpdf", f"--password={password}", "--decrypt", str(encrypted), str(plain)],
                            capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr
    words = pdf_words(plain)
    assert "Notice of adverse benefit determination" in words
    assert f"We denied or reduced payment for claim {canary['claim_id']}" in words
    assert "How to appeal" in words and "THIS IS NOT A BILL" in words


def test_no_phi_in_the_email_or_the_task_logs(run: Run) -> None:
    assert all("task_id=send_notices" in console for console in run.consoles), "the task log was not captured"
    password = extract_member_password(run.member(run.emailed), run.ctx.settings.password_policy)
    haystacks = {f"run {n} task log": console for n, console in enumerate(run.consoles, start=1)}
    for notice_id, message in notice_messages(run.messages).items():
        text = [str(message["Subject"]), *(f"{k}: {v}" for k, v in message.items())]
        text += [part.get_content() for part in message.walk()
                 if part.get_content_type() in ("text/plain", "text/html")]
        haystacks[f"email {notice_id}"] = "\n".join(text)
        assert str(message["Subject"]).endswith(("a notice about a claim decision",
                                                 "un aviso sobre una decisión de reclamación"))
    canary = run.notice_of(run.emailed)
    for where, text in haystacks.items():
        for phi in [*CANARY_STRINGS, password]:
            assert phi not in text, f"{phi!r} leaked into {where}"
        if where.startswith("email"):
            assert canary["claim_id"] not in text, "a claim number in an email"


def test_the_statement_says_the_notice_was_sent_and_when(run: Run) -> None:
    ctx = run.ctx
    for shard in range(ctx.settings.shards):
        render_stage(ctx, PERIOD, shard)
    route_stage(ctx, PERIOD)
    for member, language in ((run.emailed, "en"), (run.paper, "es")):
        notice = run.notice_of(member)
        statement = ctx.ledger.statement(notice["statement_id"])
        assert statement is not None
        path = run.folder / f"statement-{member}.pdf"
        path.write_bytes(ctx.store.get(statement["object_key"] or statement["print_key"]))
        password = extract_member_password(run.member(member), ctx.settings.password_policy) \
            if statement["object_key"] else ""
        said = told(pdf_words(path, password), language)
        theirs = {claim: n for claim, n in run.after.items() if n["statement_id"] == notice["statement_id"]}
        assert said == {claim: local_date(date.fromisoformat(n["left_on"]), language)
                        for claim, n in theirs.items()}


def test_the_report_counts_notices_due_sent_and_late(run: Run) -> None:
    summary = report_stage(run.ctx, PERIOD)
    left = [n for n in run.after.values() if n["status"] == "sent"]
    assert summary["notices_due"] == len(run.expected)
    assert summary["notices_sent"] == len(left)
    assert summary["notices_on_paper"] == len(run.after) - len(left)
    assert summary["notices_late"] == sum(n["late"] for n in run.after.values())
    assert summary["notices_waiting"] == 0 and summary["failed_checks"] == []
    listing = Path(summary["html"]).with_name(f"eob-{PERIOD}-prompt-notices.csv")
    rows = list(csv.DictReader(listing.open()))
    assert {row["claim_id"]: (row["status"], row["left"], row["late"]) for row in rows} == {
        claim: (n["status"], n["left_on"], "yes" if n["late"] else "no") for claim, n in run.after.items()}
    html = Path(summary["html"]).read_text()
    assert ("<td>sent (accepted by a relay, or mailed by the print vendor)</td>"
            f"<td class=\"n\">{len(left)}</td>") in html
