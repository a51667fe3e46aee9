"""Helpers for the prompt-notice tests: a month whose extract arrived late (composed on Christmas
Eve), with two canary members who each have a denied or reduced claim of their own received
early in the month, one emailed and one on paper. (No tests in this module.)"""

from __future__ import annotations

import csv
import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pipeline.compose import iter_composed
from pipeline.demo.generate import generate_extract
from pipeline.reason_codes import is_adverse
from pipeline.stages import compose_stage, ingest_stage, run_dir
from pipeline.stages.context import Context
from tests.support.canary import (
    CANARY_DOB,
    CANARY_FIRST,
    CANARY_LAST,
    CANARY_STREET,
    PAPER_CANARY_LAST,
    PAPER_CANARY_STREET,
)
from tests.support.send import RUN_ID, WallClock, make_context, pool_file

PERIOD = "2026-11"
LATE = datetime(2026, 12, 24, 18, tzinfo=UTC)
"""The extract arrived three weeks late: composed on Christmas Eve after the paper cut-off."""
STATEMENT_LEAVES = {"email": date(2026, 12, 25), "paper": date(2026, 12, 29)}
"""Ready six hours later, after midnight on the holiday: emailed that day; on paper the next batch
is Monday the 28th, mailed Tuesday the 29th."""
CANARY_EMAIL = "zebedee.canary0@gmail.com"
_EARLY = "2026-11-12"  # received by then: its 30 days run out before either channel's statement leaves


def plant_notice_canaries(folder: Path) -> tuple[str, str]:
    """Two members with a denied or reduced claim of their own received early in the month (so
    their statements reach it late on either channel) get the canary's name, street and date of
    birth; the first is emailed and reads English, the second has no e-delivery consent (paper)
    and reads Spanish. Returns their member ids (emailed, paper)."""
    claims = [(path, list(csv.DictReader(path.open(newline="", encoding="utf-8"))))
              for path in sorted(folder.glob("claims*.csv"))]
    lines = [line for _, rows in claims for line in rows]
    broken = {line["member_id"] for line in lines if not all(_is_date(line[k]) for k in
                                                               ("service_date", "received_date"))}
    chosen: list[str] = []
    for line in lines:
        member = line["member_id"]
        if (line["status"] in ("denied", "partial") and line["reason_code"] and member not in broken
                and line["patient_relationship"] == "self" and line["received_date"] <= _EARLY
                and member not in chosen):
            chosen.append(member)
    assert len(chosen) >= 2, "the generated month has too few early denied claims for the canaries"
    emailed, paper = chosen[:2]
    path = folder / "members.csv"
    members = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    for row in members:
        if row["member_id"] == emailed:
            row.update(first_name=CANARY_FIRST, last_name=CANARY_LAST, address_line1=CANARY_STREET,
                       date_of_birth=CANARY_DOB, email=CANARY_EMAIL, edelivery_consent="Y", language="en")
        elif row["member_id"] == paper:
            row.update(last_name=PAPER_CANARY_LAST, address_line1=PAPER_CANARY_STREET,
                       edelivery_consent="N", language="es")
    _write(path, members)
    for claims_path, rows in claims:
        for row in rows:
            if row["member_id"] == emailed and row["patient_relationship"] == "self":
                row["patient_name"] = f"{CANARY_FIRST} {CANARY_LAST}"
        _write(claims_path, rows)
    return emailed, paper


def correct_a_line(folder: Path, member: str, *, not_claims: frozenset[str] = frozenset()) -> str:
    """A corrected extract: one of the member's lines describes its service otherwise (the
    statement's content changes, no claim's decision does: a description is not part of one).
    The line is chosen by what the test needs, not by a fixed id: in a claim outside
    `not_claims` when the member has one, a paid line rather than another when there is a
    choice. Returns the claim changed."""
    claims = [(path, list(csv.DictReader(path.open(newline="", encoding="utf-8"))))
              for path in sorted(folder.glob("claims*.csv"))]
    candidates = sorted((row["claim_id"] in not_claims, row["status"] != "paid", row["claim_id"],
                         int(row["line_no"])) for _, rows in claims
                        for row in rows if row["member_id"] == member)
    assert candidates, f"member {member} has no line to correct"
    *_, claim, line_no = candidates[0]
    for path, rows in claims:
        for row in rows:
            if (row["claim_id"], int(row["line_no"])) == (claim, line_no):
                row["service_description"] += " (corrected)"
                _write(path, rows)
    return claim


def drop_member(folder: Path, member: str) -> None:
    """A corrected extract without the member's claim lines (withdrawn, or re-keyed to another)."""
    for path in sorted(folder.glob("claims*.csv")):
        rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
        kept = [row for row in rows if row["member_id"] != member]
        if len(kept) < len(rows):
            _write(path, kept)


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def late_month(workspace: Path, relay: tuple[str, int], ca_file: Path, clock: WallClock, *,
               members: int = 40, seed: int = 4) -> tuple[Context, str, str]:
    """A generated month with the canaries, ingested and composed at `clock`'s time (LATE unless
    the clock says otherwise), sending through one pool to `relay`. Returns the context and the
    canaries' member ids (emailed, paper)."""
    ctx = make_context(workspace, pool_file(relay[0], relay[1], source=None), ca_file, clock, shards=2)
    extract = generate_extract(ctx.settings.extracts_dir / PERIOD, members=members, period=PERIOD, seed=seed)
    emailed, paper = plant_notice_canaries(extract.folder)
    ingest_stage(ctx, PERIOD)
    compose_stage(ctx, PERIOD)
    return ctx, emailed, paper


def claims_missing_their_deadline(ctx: Context, leaves: dict[str, date]) -> dict[str, str]:
    """claim → its statement's channel, for every adverse claim (denied, partly paid, or paid with
    a reduction code: `pipeline.reason_codes.is_adverse`) whose earliest adverse
    line's 30 days run out before its statement leaves on that channel: worked out from the
    canonical lines, independently of compose's flags."""
    adverse: dict[str, tuple[date, str]] = {}
    for shard in range(ctx.settings.shards):
        for composed in iter_composed(run_dir(ctx.settings, RUN_ID), shard, PERIOD,
                                      notices=ctx.notice_rule(RUN_ID),
                                      statement_ids=ctx.statement_ids(RUN_ID)):
            channel = ctx.ledger.statement(composed.statement.statement_id)["channel"]  # type: ignore[index]
            for line in composed.statement.lines:
                if is_adverse(line):  # the one definition compose and the notice use
                    known = adverse.get(line.claim_id, (line.received_date, channel))
                    adverse[line.claim_id] = (min(known[0], line.received_date), channel)
    return {claim: channel for claim, (received, channel) in adverse.items()
            if received + timedelta(days=30) < leaves[channel]}


def notices(ctx: Context) -> dict[str, dict[str, Any]]:
    """claim_id → its prompt notice as the ledger has it, with its statement's member and channel."""
    from sqlalchemy import text

    with ctx.ledger.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT p.*, s.member_id, s.channel AS statement_channel FROM prompt_notices p "
            "JOIN statements s ON s.statement_id = p.statement_id"))
        return {row.claim_id: dict(row._mapping) for row in rows}


def notice_messages(messages: list[Any]) -> dict[str, email.message.EmailMessage]:
    """notice_id → the message a relay received for it (the statements' messages left out)."""
    found = {}
    for received in messages:
        message = email.message_from_bytes(received.data, policy=email.policy.default)
        if message["X-EOB-Notice"]:
            found[str(message["X-EOB-Notice"])] = message
    return found


def attachment(message: email.message.EmailMessage) -> bytes:
    return next(part for part in message.iter_attachments()  # type: ignore[no-any-return]
                if part.get_content_type() == "application/pdf").get_content()


def pdf_words(path: Path, password: str = "") -> str:
    """What poppler reads of a PDF, whitespace collapsed so wrapped sentences are whole."""
    import subprocess

    command = ["pdftotext", "-raw", *(["-upw", password] if password else []), str(path), "-"]
    return " ".join(subprocess.run(command, capture_output=True, text=True, check=True).stdout.split())


_DAY = r"(.+?)"  # a date as the statement spells it (December 7, 2026; 7 de diciembre de 2026)
SENTENCE = {
    "en": re.compile(r"A separate notice about claim (\S+) was sent \(or is being sent\) to you on "
                     + _DAY + r"\. It explains"),
    "es": re.compile(r"Se le envió \(o se le está enviando\) el " + _DAY + r" un aviso por separado "
                     r"sobre la reclamación (\S+)\."),
}
"""What a statement says about each claim's separate notice (templates/statement/<language>.toml)."""


def told(words: str, language: str) -> dict[str, str]:
    """claim → the day (as printed) the statement says its separate notice was sent."""
    found = SENTENCE[language].findall(words)
    return {claim: day for claim, day in found} if language == "en" else {claim: day for day, claim in found}


def local_date(day: date, language: str) -> str:
    """A date as the statement prints it: the language file's own formatter
    (templates/statement/<language>.toml meta.date_format, month names spelled out)."""
    from pipeline.render.eob.words import dates
    from pipeline.templates import statement_text

    return dates(statement_text(language))(day)
