"""A member whose language is zh-Hant (Chinese, traditional) reads Chinese throughout: the
statement compose builds from the extract (reason text and the plan provision behind a denial,
the remark codes' meaning), and the email around it (subject, body, password hint, the period and
dates spelled the way the statement spells them)."""

from __future__ import annotations

import csv
import subprocess
from datetime import date
from pathlib import Path

from pipeline.compose import iter_composed
from pipeline.delivery.message import (
    NOTICE_TEMPLATES_DIR,
    email_language,
    email_period_label,
    render_email,
)
from pipeline.ingest import ingest
from pipeline.render import render_statement
from pipeline.render.eob.words import dates
from pipeline.stages.passwords import password_hint
from pipeline.templates import statement_text
from tests.compose.test_statements import IDS, NOTICES, PERIOD, _one_member_extract


def _pdf_text(pdf: bytes, folder: Path) -> str:
    path = folder / "statement.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-raw", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return "".join(text.split())  # Chinese has no spaces between words: compare without any


def _chinese_member_extract(folder: Path) -> Path:
    extract = _one_member_extract(folder, [
        {"line_no": "1", "status": "denied", "reason_code": "CO-50", "billed": "90.00", "discount": "90.00",
         "plan_paid": "0.00", "copay": "0.00"},
        {"line_no": "2", "claim_id": "C2"}])
    path = extract / "members.csv"
    rows = list(csv.DictReader(path.open(newline="", encoding="utf-8")))
    rows[0]["language"] = "zh-Hant"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return extract


def test_a_chinese_members_statement_gives_reasons_and_provisions_in_chinese(tmp_path: Path) -> None:
    """Before: compose read only en and es (a zh-Hant member got an English statement), and the
    reason table had no Chinese text nor a provision in any language but English."""
    ingest(_chinese_member_extract(tmp_path / "in"), tmp_path / "out", 1, period=PERIOD)
    (item,) = iter_composed(tmp_path / "out", 0, PERIOD, notices=NOTICES, statement_ids=IDS)
    statement = item.statement
    assert statement.member.language == "zh-Hant"
    denial = next(reason for reason in statement.reasons if reason.code == "CO-50")
    assert denial.text.startswith("我們未予給付，因為我們收到的資料未顯示此項服務為醫療必要。")
    assert denial.plan_provision == "承保證明書（Certificate of Coverage）第 4.2 節（醫療必要性）"
    text = _pdf_text(render_statement(statement).pdf, tmp_path)
    assert "我們未予給付，因為我們收到的資料未顯示此項服務為醫療必要。" in text
    assert "承保證明書（CertificateofCoverage）第4.2節（醫療必要性）" in text
    assert "2026年11月" in text  # the period, as the email names it below
    for english in ("Wedidnotpay", "Medicalnecessity", "Thisisyourcopay", "Whatthecodesmean"):
        assert english not in text


def test_a_spanish_statement_gives_the_plan_provision_in_spanish() -> None:
    from pipeline.compose.reasons import explain_reason

    assert explain_reason("CO-50", "es").plan_provision == (
        "Certificado de Cobertura (Certificate of Coverage), sección 4.2 (Necesidad médica)")
    assert explain_reason("CO-50", "en").plan_provision == (
        "Certificate of Coverage, section 4.2 (Medical necessity)")


def test_a_chinese_members_email_is_chinese_and_spells_dates_as_the_statement_does() -> None:
    language = email_language("zh-Hant")
    assert language == "zh-Hant"
    content = render_email(language=language, context={
        "support_phone": "1-800-555-0100", "brand_name": "Acme Health",
        "password_hint": password_hint("member_id_dob", language),
        "period_label": email_period_label(language, PERIOD)})
    assert content.subject == "Acme Health：您2026年11月的新福利說明（EOB）已可查閱"
    spelled = dates(statement_text("zh-Hant"))(date(1976, 7, 4))
    assert spelled == "1976年7月4日"
    for body in (content.text, content.html):
        assert "親愛的會員您好" in body and "這不是帳單" in body
        assert "您保險卡上所列的會員編號" in body and spelled in body  # the hint, in Chinese
        assert "Dear member" not in body and "password" not in body and "July" not in body
    assert '<html lang="zh-Hant">' in content.html
    notice = render_email(language=language, templates_dir=NOTICE_TEMPLATES_DIR,
                          context={"support_phone": "1-800-555-0100", "brand_name": "Acme Health",
                                   "password_hint": password_hint("member_id_dob", language)})
    assert notice.subject == "Acme Health：關於一項理賠決定的通知" and "上訴" in notice.text
