"""A small monthly run through Airflow against real loopback SMTP servers: everything reconciles.

One run of the DAGs (eob_monthly, eob_notices, eob_reconcile, eob_paper, via dag.test) feeds every
assertion here.
A canary member with a planted name, address and date of birth checks that no PHI escapes
into logs, task logs, email text or the ledger.
"""

from __future__ import annotations

import csv
import email
import email.policy
import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pikepdf
import pytest

from pipeline.storage import read_shard_lines
from tests.support.canary import (
    CANARY_STRINGS,
    HIDDEN_AMOUNT,
    HIDDEN_CLAIM,
    HIDDEN_CODE,
    HIDDEN_EMAIL,
    HIDDEN_PROVIDER,
    PLANTED_LINES,
    canary_member,
    paper_canary_member,
)
from tests.support.factories import extract_member_password, extract_recipients

MEMBERS = 150

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Run the demo in a child process so every byte it prints (Airflow task logs included) is kept."""
    folder = tmp_path_factory.mktemp("e2e")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EOB_")}
    env["EOB_AIRFLOW_LOG_LEVEL"] = "INFO"
    # relays on loopback addresses of this test process alone, so a demo or another test run
    # on the same machine does not collide with them
    subnet = f"127.{20 + os.getpid() % 200}.{os.getpid() // 200 % 250}"
    env["EOB_POOLS"] = json.dumps([
        {"name": "pool_a", "source_ip": "127.0.0.2", "relay_host": f"{subnet}.32"},
        {"name": "pool_b", "source_ip": "127.0.0.3", "relay_host": f"{subnet}.33"},
    ])
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent / "support" / "e2e_child.py"), str(folder),
         str(MEMBERS)], capture_output=True, text=True, env=env, timeout=600)
    console = child.stdout + child.stderr
    assert child.returncode == 0, console[-4000:]
    with (folder / "result.pickle").open("rb") as handle:
        result = pickle.load(handle)
    return result, console


def _ledger(result) -> sqlite3.Connection:  # type: ignore[no-untyped-def]
    conn = sqlite3.connect(result.settings.ledger_dsn.removeprefix("sqlite:///"))
    conn.row_factory = sqlite3.Row
    return conn


def test_claim_lines_read_equal_accepted_plus_quarantined(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    s = result.summary
    assert s["lines_read"] == result.extract.claim_lines + PLANTED_LINES
    assert s["lines_read"] == s["lines_accepted"] + s["lines_quarantined"]
    assert s["lines_quarantined"] >= 1
    assert s["failed_checks"] == []


def test_one_statement_per_member_with_accepted_lines(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    run_dir = result.settings.work_dir / "eob-2026-11"
    with_lines = set()
    for shard in range(2):
        with_lines |= set(read_shard_lines(run_dir, shard)["member_id"])
    rows = _ledger(result).execute("SELECT member_id FROM statements").fetchall()
    members = [row["member_id"] for row in rows]
    assert len(members) == len(set(members)) == len(with_lines)
    assert set(members) == with_lines


def test_every_statement_is_emailed_or_in_a_queue(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    statuses = Counter(row[0] for row in _ledger(result).execute("SELECT status FROM statements"))
    assert set(statuses) <= {"sent", "retry_scheduled", "verification_pending", "mailed", "paper_exception"}
    assert statuses["sent"] > 0 and statuses["mailed"] > 0


def test_messages_received_equal_statements_the_relays_accepted(run) -> None:  # type: ignore[no-untyped-def]
    """Statements and prompt notices alike: each accepted once, each received once."""
    result, _ = run
    conn = _ledger(result)
    accepted = conn.execute(
        "SELECT COUNT(DISTINCT statement_id) FROM statement_events WHERE event = 'sent'").fetchone()[0]
    notices = {json.loads(row[0])["notice_id"] for row in conn.execute(
        "SELECT detail FROM statement_events WHERE event = 'notice_sent'")}
    headers = [email.message_from_bytes(m.data) for m in result.messages]
    statements = Counter(h["X-EOB-Statement"] for h in headers if h["X-EOB-Statement"])
    received_notices = Counter(h["X-EOB-Notice"] for h in headers if h["X-EOB-Notice"])
    assert sum(statements.values()) == accepted == result.summary["accepted_by_relay"]
    assert set(received_notices) == notices and notices, "the flagged claims' notices were emailed"
    assert result.received == sum(statements.values()) + sum(received_notices.values())
    assert max(statements.values()) == 1, "a statement was delivered twice"
    assert max(received_notices.values()) == 1, "a notice was delivered twice"


def test_every_bounced_statement_sits_in_exactly_one_queue(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    rows = _ledger(result).execute(
        "SELECT status FROM statements WHERE bounce_category IS NOT NULL").fetchall()
    assert rows, "the demo's simulated Internet produced no bounce at all"
    assert {row[0] for row in rows} <= {"retry_scheduled", "verification_pending", "mailed",
                                        "paper_exception"}
    s = result.summary
    assert s["bounced"] == len(rows)
    outcomes = result.reconcile
    assert sum(n for k, n in outcomes.items() if k.startswith("routed_")) >= 1, outcomes


def test_every_paper_statement_is_mailed_returned_or_a_named_exception(run) -> None:  # type: ignore[no-untyped-def]
    """The paper run batched the paper queue for the simulated print vendor, which printed and
    mailed it and returned some: nothing is left at paper_queued, batched or printed."""
    result, _ = run
    conn = _ledger(result)
    rows = conn.execute(
        "SELECT s.statement_id, s.status, s.last_reason FROM statements s WHERE EXISTS (SELECT 1 FROM "
        "statement_events e WHERE e.statement_id = s.statement_id AND e.event = 'paper_queued')").fetchall()
    assert rows, "no statement went to paper"
    for row in rows:
        timeline = {e[0] for e in conn.execute(
            "SELECT event FROM statement_events WHERE statement_id = ?", (row["statement_id"],))}
        if row["status"] == "verification_pending":
            assert "returned_to_sender" in timeline or "bounced" in timeline
        elif row["status"] == "paper_exception":
            assert row["last_reason"].startswith("mailing address: ")
        else:
            assert row["status"] == "mailed" and {"batched", "printed", "mailed"} <= timeline
    paper = result.paper
    assert paper["batches"] >= 1 and paper["vendor_accepted"] == paper["vendor_pieces"] >= 1
    # a prompt notice on paper is a piece too: mailed (a returned one stays mailed; the statement's
    # own verification of the address applies)
    notices = conn.execute("SELECT COUNT(*) FROM batch_pieces WHERE statement_id LIKE 'nt-%'").fetchone()[0]
    mailed_notices = conn.execute("SELECT COUNT(*) FROM prompt_notices WHERE status = 'mailed'").fetchone()[0]
    returned_notices = conn.execute(
        "SELECT COUNT(*) FROM statement_events WHERE event = 'notice_returned_to_sender'").fetchone()[0]
    assert notices >= 1 and mailed_notices == notices, "every paper notice was mailed"
    assert paper.get("mailed", 0) + paper["vendor_returned"] - returned_notices + mailed_notices == \
        paper["vendor_accepted"]
    sheets = conn.execute("SELECT SUM(sheets) FROM batch_pieces").fetchone()[0]
    assert sheets >= paper["vendor_pieces"], "cost facts: sheets recorded per piece"


def test_every_received_pdf_opens_with_the_members_password_only(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    folder = result.extract.folder
    members = {row["email"]: row for row in extract_recipients(folder).values() if row["email"]}
    assert result.messages
    for received in result.messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        assert received.tls, "a message crossed the network without TLS"
        pdf = next(part for part in message.iter_attachments()
                   if part.get_content_type() == "application/pdf").get_content()
        member = members[received.rcpt_to[0]]
        password = extract_member_password(member, result.settings.password_policy)
        with pikepdf.open(_bytes_io(pdf), password=password) as doc:
            assert doc.is_encrypted and len(doc.pages) >= 1
            assert doc.encryption.R == 6
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(_bytes_io(pdf))
        with pytest.raises(pikepdf.PasswordError):  # the date of birth alone does not open it
            pikepdf.open(_bytes_io(pdf), password=extract_member_password(member, "dob_mmddyyyy"))


def test_no_phi_in_logs_task_logs_email_text_or_ledger(run) -> None:  # type: ignore[no-untyped-def]
    result, console = run
    assert "[DAG TEST] end task" in console, "Airflow task logs were not captured"
    # eob_monthly ran on the LocalExecutor: its task processes' logs are in the console too
    assert "task_id=render" in console and "task_id=send" in console, "executor task logs missing"
    haystacks = {"console and Airflow task logs": console}
    airflow_logs = result.settings.workspace.parent / "airflow" / "logs"
    if airflow_logs.exists():
        haystacks["airflow task logs"] = "\n".join(
            p.read_text(errors="replace") for p in airflow_logs.rglob("*") if p.is_file())
    for received in result.messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        text = [str(message["Subject"])] + [f"{k}: {v}" for k, v in message.items()]
        text += [part.get_content() for part in message.walk()
                 if part.get_content_type() in ("text/plain", "text/html")]
        haystacks[f"email {message['Message-ID']}"] = "\n".join(text)
    conn = _ledger(result)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    haystacks["ledger"] = "\n".join(
        str(tuple(row)) for table in tables for row in conn.execute(f"SELECT * FROM {table}"))
    paper_canary = conn.execute(
        "SELECT COUNT(*) FROM batch_pieces p JOIN statements s ON s.statement_id = p.statement_id "
        "WHERE s.member_id = ?", (paper_canary_member(result.extract.folder)["member_id"],)).fetchone()[0]
    assert paper_canary == 1, "the paper canary was not batched; the check proves nothing for paper"
    drop = result.settings.workspace / "vendor-drop"
    assert "78 CANARYWHARF LN" in "".join(  # as USPS writes it: the vendor must get the address
        p.read_text() for p in drop.glob("*.manifest.csv"))
    canary_sent = any(m.rcpt_to[0] == "zebedee.canary0@gmail.com" for m in result.messages)
    assert canary_sent, "the canary member's statement was not emailed; the check proves nothing"
    # the canary's PDF password under the policy the run used (member ID + date of birth by
    # default) must not appear anywhere either
    password = extract_member_password(canary_member(result.extract.folder),
                                       result.settings.password_policy)
    assert result.settings.password_policy == "member_id_dob" and password.endswith("04031957")
    for where, text in haystacks.items():
        for canary in [*CANARY_STRINGS, password]:
            assert canary not in text, f"PHI canary {canary!r} leaked into {where}"


def test_a_confidential_claim_reaches_the_patient_and_leaves_no_trace_for_the_subscriber(  # type: ignore[no-untyped-def]
        run, tmp_path: Path) -> None:
    """The canary's adult child asked for confidential communications: their psychotherapy claim
    is emailed to them alone, and the canary's own statement, PDF text included, does not show it."""
    result, _ = run
    recipients = {row["email"]: row for row in extract_recipients(result.extract.folder).values()
                  if row["email"]}
    texts = {}
    for received in result.messages:
        address = received.rcpt_to[0]
        if address not in (HIDDEN_EMAIL, "zebedee.canary0@gmail.com"):
            continue
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        if message["X-EOB-Notice"]:
            continue
        pdf = next(part for part in message.iter_attachments()
                   if part.get_content_type() == "application/pdf").get_content()
        password = extract_member_password(recipients[address], result.settings.password_policy)
        with pikepdf.open(_bytes_io(pdf), password=password) as doc:
            doc.save(tmp_path / "plain.pdf")
        texts[address] = subprocess.run(["pdftotext", "-layout", str(tmp_path / "plain.pdf"), "-"],
                                        capture_output=True, text=True, check=True).stdout
    assert set(texts) == {HIDDEN_EMAIL, "zebedee.canary0@gmail.com"}, "a statement was not emailed"
    hidden = texts[HIDDEN_EMAIL]
    assert HIDDEN_PROVIDER in hidden and HIDDEN_AMOUNT in hidden and "Canaryhidden" in hidden
    family = texts["zebedee.canary0@gmail.com"]
    for trace in (HIDDEN_PROVIDER, HIDDEN_AMOUNT, HIDDEN_CODE, "Canaryhidden", "391.17", HIDDEN_CLAIM):
        assert trace not in family, f"the subscriber's statement shows {trace!r}"
    # the denied line's prompt notice went to the child too, and to no one else
    conn = _ledger(result)
    query = ("SELECT s.member_id, n.status FROM prompt_notices n "
             "JOIN statements s ON s.statement_id = n.statement_id WHERE n.claim_id = ?")
    notices = conn.execute(query, (HIDDEN_CLAIM,)).fetchall()
    assert [(row[0].split("~")[1], row[1]) for row in notices] == [
        (f"{canary_member(result.extract.folder)['member_id']}-09", "sent")]
    notice_to = [m.rcpt_to[0] for m in result.messages
                 if email.message_from_bytes(m.data, policy=email.policy.default)["X-EOB-Notice"]]
    assert HIDDEN_EMAIL in notice_to


def _bytes_io(data: bytes):  # type: ignore[no-untyped-def]
    import io

    return io.BytesIO(data)


def test_report_reconciles_and_lists_every_prompt_notice_claim(run) -> None:  # type: ignore[no-untyped-def]
    result, _ = run
    summary = result.summary
    claims = _ledger(result).execute("SELECT COUNT(*) FROM prompt_notices").fetchone()[0]
    assert summary["prompt_notice_claims"] == claims > 0
    html_path = Path(summary["html"])
    notices = html_path.with_name("eob-2026-11-prompt-notices.csv").read_text().splitlines()
    assert len(notices) == claims + 1
    # each listed claim's statement leaves after its notice was due, and the report says by how much
    rows = list(csv.DictReader(notices))
    assert all(row["statement_leaves"] > row["notice_due"] and int(row["days_late"]) >= 1
               and row["channel"] in ("email", "paper") for row in rows), rows[:3]
    assert summary["prompt_notice_most_days_late"] == max(int(row["days_late"]) for row in rows)
    # eob_notices sent every one: by email, or on paper (mailed by the vendor by now)
    assert summary["notices_due"] == claims and summary["notices_waiting"] == 0
    assert summary["notices_sent"] == sum(row["status"] in ("sent", "mailed") for row in rows) > 0
    assert {row["status"] for row in rows} <= {"sent", "mailed", "paper_queued"}
    assert summary["notices_late"] == sum(row["late"] == "yes" for row in rows)
    html = html_path.read_text()
    assert "✘" not in html, "a reconciliation check failed in the report"
    assert html.count("✔") >= 5
    assert "<svg" in html
    paper = html.split("<h2>Paper</h2>", 1)[1].split("</table>", 1)[0]
    assert f"<td>mailed</td><td>{summary['paper_mailed']}</td>" in paper and summary["paper_mailed"] > 0


def test_the_demos_finance_report_renders_its_charts_in_chromium(run) -> None:  # type: ignore[no-untyped-def]
    """The finance report the demo's last task wrote, opened as finance opens it: every chart
    drawn, no console error, nothing fetched from anywhere. With EOB_SCREENSHOTS=<folder> it is
    also the documentation's screenshot and samples (docs/finance-report.png, docs/samples/)."""
    from tests.support.browser import chromium

    result, _ = run
    html = Path(result.summary["finance_html"])
    errors: list[str] = []
    requests: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1180, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(html.as_uri())
        assert page.locator("figure svg").count() == 6
        assert page.locator("text=statements").count() > 0
        shots = os.environ.get("EOB_SCREENSHOTS")
        if shots:
            folder = Path(shots)
            page.screenshot(path=str(folder / "finance-report.png"), full_page=True)
            (folder / "samples").mkdir(exist_ok=True)
            shutil.copy(html, folder / "samples" / "finance-report.html")
            shutil.copy(Path(result.summary["finance_xlsx"]), folder / "samples" / "finance-report.xlsx")
    assert errors == []
    assert all(url.startswith("file://") for url in requests), requests


def test_render_shards_and_senders_ran_side_by_side(run) -> None:  # type: ignore[no-untyped-def]
    """Airflow's own records of eob_monthly (LocalExecutor): the render shards overlapped, and
    every pool's sender was already running while a shard was still rendering."""
    result, _console = run
    metadata = sqlite3.connect(result.settings.workspace.parent / "airflow" / "airflow.db")
    spans: dict[str, list[tuple[str, str]]] = {}
    for task_id, start, end in metadata.execute(
            "SELECT task_id, start_date, end_date FROM task_instance "
            "WHERE dag_id = 'eob_monthly' AND state = 'success' ORDER BY map_index"):
        spans.setdefault(task_id, []).append((start, end))
    renders, sends = spans["render"], spans["send"]
    assert len(renders) == 2 and len(sends) == 2
    assert max(start for start, _ in renders) < min(end for _, end in renders), "shards ran one by one"
    last_render_end = max(end for _, end in renders)
    assert all(start < last_render_end for start, _ in sends), "a sender waited for every shard"
