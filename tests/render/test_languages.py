"""Every language a statement owes (issue 17 item 5): taglines per state, the tagline sentence
on page 1, phone numbers never split, Spanish statements wholly in Spanish with month names,
and a Chinese (traditional) statement end to end. Read back with poppler."""

from __future__ import annotations

import dataclasses
import io
import re
import shutil
import subprocess
import tomllib
import unicodedata
from datetime import date
from typing import Any

import pikepdf
import pytest

from pipeline.render import render_statement
from pipeline.render.eob.words import dates
from pipeline.templates import DEFAULT_TEMPLATES_DIR, legal_config, password_hints, statement_text
from tests.support.factories import PLAN_GOLD, make_member, make_statement

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="needs poppler-utils (.ci/system-packages.txt)")

LANGUAGES = ("en", "es", "zh-Hant")
PHONE = "1-800-555-0142"


def raw_lines(pdf: bytes, *, first: int = 0, last: int = 0) -> list[str]:
    """poppler's lines as drawn; NFKC folds the CJK compatibility forms some extractors
    report, and the phone numbers' non-breaking hyphens read as hyphens."""
    pages = [*(["-f", str(first)] if first else []), *(["-l", str(last)] if last else [])]
    out = subprocess.run(["pdftotext", "-raw", *pages, "-", "-"], input=pdf,
                         capture_output=True, check=True).stdout.decode()
    return [unicodedata.normalize("NFKC", line.replace("\u2011", "-")) for line in
            out.splitlines()]


def folded(text: str) -> str:
    """An expected string as raw_lines reads text (NFKC: "：" is ":")."""
    return unicodedata.normalize("NFKC", text)


def text_of(pdf: bytes, **pages: int) -> str:
    return " ".join(" ".join(raw_lines(pdf, **pages)).split())


def statement_in(state: str, language: str = "en", **fields: Any) -> bytes:
    member = make_member(state=state, language=language, **fields)
    return render_statement(make_statement(n_lines=3, denied=1, member=member)).pdf


# ------------------------------------------------------------------ taglines by state


@pytest.mark.parametrize(("state", "expected"), [
    ("AZ", ["Diné Bizaad", "CHÚ Ý: Nếu bạn nói Tiếng Việt", "注意事項：日本語を話される場合"]),
    ("NM", ["Diné Bizaad", "ACHTUNG: Wenn Sie Deutsch sprechen", "ATTENZIONE"]),
    ("UT", ["Diné Bizaad", "FAKATOKANGA'I", "MO LOU SILAFIA"]),
    ("NY", ["ВНИМАНИЕ", "ΠΡΟΣΟΧΗ", "KUJDES: Nëse flitni shqip", "UWAGA"]),
    ("FL", ["ATANSYON: Si w pale Kreyòl Ayisyen", "ATENÇÃO: Se fala português"]),
    ("CA", ["LUS CEEV: Yog tias koj hais lus Hmoob", "ВНИМАНИЕ", "주의: 한국어를"]),
    ("TX", ["CHÚ Ý", "ACHTUNG", "PAUNAWA"]),
])
def test_taglines_are_the_states_own_languages(state: str, expected: list[str]) -> None:
    """Before: the same 8 taglines for every state, no Navajo."""
    text = text_of(statement_in(state))
    assert "ATENCIÓN: Si habla español" in text
    for tagline in expected:
        assert folded(tagline) in text, (state, tagline)
    if state not in ("AZ", "NM", "UT"):
        assert "Diné Bizaad" not in text


def test_a_state_without_a_list_gets_the_default_fifteen() -> None:
    config = legal_config()
    assert config.state("WY") is config.default_state
    text = text_of(statement_in("WY"))
    for tagline in ("ATTENTION : Si vous parlez français", "ATENÇÃO", "ACHTUNG", "UWAGA",
                    "ATTENZIONE", "ВНИМАНИЕ", "注意：如果您使用繁體中文"):
        assert folded(tagline) in text


def test_every_tagline_language_of_every_state_has_its_sentence() -> None:
    config = legal_config()
    for code in ("", *config.states):
        for language in config.state(code).taglines:
            tagline = config.taglines[language]
            assert "{{ phone }}" in tagline.text and tagline.name


def test_a_spanish_statement_has_the_english_tagline_and_not_its_own() -> None:
    text = text_of(statement_in("TX", "es"))
    assert "ATTENTION: If you speak English, free language assistance" in text
    assert "ATENCIÓN: Si habla español" not in text


# ------------------------------------------------------------------ page 1 and phone numbers


@pytest.mark.parametrize(("language", "sentence"), [
    ("en", f"Language assistance is available free of charge: call {PHONE} (TTY 711)."),
    ("es", f"Tiene a su disposición asistencia con el idioma sin costo: llame al {PHONE} "
           "(TTY 711)."),
    ("zh-Hant", f"我們免費提供語言協助服務：請致電 {PHONE}（TTY 711）。"),
])
def test_the_tagline_sentence_is_on_page_one_in_the_members_language(
        language: str, sentence: str) -> None:
    """Before: language help was on the last page only."""
    first_page = text_of(statement_in("IL", language), first=1, last=1)
    assert folded(sentence) in first_page


@pytest.mark.parametrize(("code", "sentence"), [
    ("ES", f"llame al {PHONE}"), ("es-US", f"llame al {PHONE}"),
    ("zh-TW", f"請致電 {PHONE}"), ("zh-Hant-TW", f"請致電 {PHONE}"),
])
def test_a_language_code_with_a_region_or_in_capitals_gets_its_language(
        code: str, sentence: str) -> None:
    """Before: "zh-TW" (a region, no script) resolved to English."""
    first_page = text_of(statement_in("IL", code), first=1, last=1)
    assert folded(sentence) in first_page


_BROKEN_PHONE = re.compile(r"(\d-|\d-\d{3})$|^(-|\d{3,4}\b(?![,.]))")


@pytest.mark.parametrize("state", ["CA", "AZ", "WY"])
def test_no_phone_number_is_split_between_lines(state: str) -> None:
    """Before: the Japanese tagline broke the phone number over two lines."""
    lines = raw_lines(statement_in(state))
    broken = [line for line in lines if _BROKEN_PHONE.search(line.strip())
              and "-" in line and not re.search(r"\d{5}(-\d{4})?$", line)]
    assert broken == []
    start = next(n for n, line in enumerate(lines) if "注意事項" in line)
    end = next(n for n, line in enumerate(lines) if n >= start and "ください" in line)
    japanese = lines[start:end + 1]  # the Japanese tagline, as wrapped
    assert any(f"{PHONE}(TTY: 711)" in line for line in japanese), japanese
    assert not any(line.rstrip().endswith(("1-800", "1-800-555")) for line in lines)


# ------------------------------------------------------------------ Spanish, wholly


def test_a_spanish_statement_names_offices_and_agencies_in_spanish_with_the_english_name(
        ) -> None:
    """Before: the appeals office, the external review program and the federal agency stayed
    in English on a Spanish statement."""
    member = make_member(state="CA", language="es")
    plan = dataclasses.replace(PLAN_GOLD, plan_type="erisa_group")
    text = text_of(render_statement(make_statement(n_lines=4, denied=1, member=member,
                                                   plan=plan)).pdf)
    assert ("Administración de Seguridad de los Beneficios del Empleado del Departamento de "
            "Trabajo de EE. UU. (U.S. Department of Labor") in text
    assert "Programa de Revisión Externa Independiente (Independent External Review Program)" in text
    assert "Evergreen Health, Apelaciones y Quejas (Appeals and Grievances)" in text
    assert "Departamento de Seguros de California (California Department of Insurance)" in text
    assert "Ley de Seguridad de los Ingresos de Jubilación de los Empleados" in text
    for english in ("Employee Benefits Security Administration (EBSA):", "How to appeal",
                    "Independent External Review Program at", "your state's consumer"):
        assert english not in text


@pytest.mark.parametrize(("language", "written"), [
    ("en", "December 1, 2026"), ("es", "1 de diciembre de 2026"), ("zh-Hant", "2026年12月1日")])
def test_dates_spell_the_month_out_and_never_print_as_numbers(language: str,
                                                               written: str) -> None:
    """Before: 01/12/2026 on a Spanish statement, which a US reader takes for January 12."""
    text = text_of(statement_in("IL", language))
    assert written in text
    assert re.search(r"\b\d{1,2}/\d{1,2}/\d{4}\b", text) is None


def test_the_password_hint_writes_dates_as_the_statement_does() -> None:
    """The email's example date and the statement's dates agree (month spelled out)."""
    hints = password_hints()
    example = date(1976, 7, 4)
    for language in ("en", "es"):
        assert dates(statement_text(language))(example) in hints.string(
            f"dob_mmddyyyy.{language}")


# ------------------------------------------------------------------ Chinese, end to end


def test_a_chinese_statement_is_in_chinese_with_every_font_embedded() -> None:
    """Before: member language "zh-Hant" fell back to English; CJK fonts were not embedded."""
    pdf = statement_in("CA", "zh-Hant")
    text = text_of(pdf)
    for chinese in ("福利說明", "這不是帳單", "理賠明細", "關於您上訴權利的重要資訊",
                    "自您收到本對帳單之日起，您有 180 天的時間", "語言協助和無障礙格式",
                    "美國勞工部僱員福利安全管理局"):
        assert folded(chinese) in text, chinese
    assert "ATTENTION: If you speak English" in text  # the English tagline, not the Chinese
    assert folded("注意：如果您使用繁體中文") not in text
    with pikepdf.open(io.BytesIO(pdf)) as document:
        assert str(document.Root.Lang) == "zh-Hant"
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True,
                           check=True).stdout.decode().splitlines()[2:]
    assert fonts and all(" yes yes yes " in line for line in fonts), fonts


def _keys(node: dict[str, Any], prefix: str = "") -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for name, value in node.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, dict):
            out |= _keys(value, key)
        else:
            text = " ".join(value) if isinstance(value, list) else str(value)
            out[key] = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", text))
    return out


def test_every_language_file_has_every_key_with_the_same_placeholders() -> None:
    files = {language: _keys(tomllib.loads((DEFAULT_TEMPLATES_DIR / "statement" / f"{language}.toml")
                                          .read_text(encoding="utf-8")))
             for language in LANGUAGES}
    english = files["en"]
    for language in LANGUAGES[1:]:
        assert sorted(set(english) - set(files[language])) == [], language
        assert sorted(set(files[language]) - set(english)) == [], language
        for key, names in english.items():
            if key.startswith("meta."):
                continue
            assert files[language][key] == names, (language, key)


# ------------------------------------------------------------------ every script, shaped


SHAPED = {"ar": "NotoSansArabic", "fa": "NotoSansArabic", "hi": "NotoSansDevanagari",
          "pa": "NotoSansGurmukhi", "km": "NotoSansKhmer", "hy": "NotoSansArmenian",
          "th": "NotoSansThai"}


def _words(text: str) -> list[str]:
    """A tagline's words without the punctuation poppler may move around in a right-to-left
    line, NFKC (a lam-alef ligature reads back as its presentation form)."""
    return [word for word in (re.sub(r"[\W_]+$|^[\W_]+", "", piece)
                              for piece in folded(text.replace("\u2011", "-")).split()) if word]


def _taglines(state: str, language: str = "en") -> list[tuple[str, str]]:
    """(language, sentence) of every tagline a statement of the state carries."""
    config = legal_config()
    phones = {"phone": PHONE.replace("-", "\u2011"), "tty": "711"}
    codes = [code for code in config.state(state).taglines if code != language]
    return [(code, config.tagline_text(code, phones)) for code in codes]


def test_every_tagline_of_a_california_statement_is_drawn_in_its_script_and_reads_back() -> None:
    """Before: Arabic, Persian, Punjabi, Khmer, Hindi, Armenian and Thai taglines were set in
    the Latin font and printed as "?"."""
    pdf = statement_in("CA")
    fonts = subprocess.run(["pdffonts", "-"], input=pdf, capture_output=True,
                           check=True).stdout.decode().splitlines()[2:]
    assert all(" yes yes yes " in line for line in fonts), fonts
    for face in set(SHAPED.values()):
        assert any(f"+{face}-Regular " in line for line in fonts), face
    text = text_of(pdf)
    assert "??" not in text
    joined = "".join(text.split())  # hangul and ideographs may wrap inside a word
    for language, sentence in _taglines("CA"):
        for word in _words(sentence):
            assert word in joined, (language, word)
    hindi = "ध्यान दें: यदि आप हिंदी बोलते हैं तो आपके लिए मुफ्त में भाषा सहायता सेवाएं उपलब्ध हैं।"
    assert hindi in text  # in logical order: matras and conjuncts read back whole
    # poppler's reading order (not -raw) gives right-to-left runs in logical order; it puts
    # the punctuation between them where it likes, so the Arabic is compared run by run
    logical = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                             check=True).stdout.decode()
    logical = " ".join(re.sub("[\u202a-\u202e]", "", logical).split())
    for run in ("ملحوظة", "إذا كنت تتحدث العربية", "فإن خدمات المساعدة اللغوية تتوافر لك بالمجان",
                "اتصل برقم", "رقم هاتف الصم والبكم"):
        assert run in logical, run
    assert "تسهیلات زبانی بصورت رایگان" in folded(logical)  # Persian, a lam-alef inside


def test_each_tagline_is_a_paragraph_in_its_own_language() -> None:
    """Tagged PDF: one P per tagline with /Lang, so a screen reader switches voice."""
    with pikepdf.open(io.BytesIO(statement_in("CA"))) as pdf:
        languages: list[str] = []
        stack = [pdf.Root.StructTreeRoot]
        while stack:
            node = stack.pop()
            if isinstance(node, pikepdf.Dictionary) and "/Lang" in node and node.get("/S") == "/P":
                languages.append(str(node.Lang))
            kids = node.get("/K") if isinstance(node, pikepdf.Dictionary) else None
            if isinstance(kids, pikepdf.Array):
                stack.extend(kid for kid in kids if isinstance(kid, pikepdf.Dictionary))
            elif isinstance(kids, pikepdf.Dictionary):
                stack.append(kids)
    assert sorted(languages) == sorted(code for code, _ in _taglines("CA"))


def test_a_right_to_left_tagline_is_right_aligned_in_its_column() -> None:
    from pipeline.render.canvas import Out
    from pipeline.render.eob.legal import TaglineBlock
    from pipeline.render.shaping import shaped_width

    config = legal_config()
    tagline = config.taglines["ar"]
    text = config.tagline_text("ar", {"phone": PHONE, "tty": "711"})
    block = TaglineBlock(tagline, text, 8.0, "0 0 0")
    block.wrap(180.0)
    out = Out()
    block.draw(out, 0.0, 0.0)
    lines = block.lines(180.0)
    starts = [float(x) for x in re.findall(r"q 1 0 0 1 (-?[\d.]+) -?[\d.]+ cm BT", out.ops[-1])]
    assert len(lines) > 1 and len(starts) == len(lines)
    for line, start in zip(lines, starts, strict=True):
        assert start + shaped_width(line, "ar", 8.0, script="Arab") == pytest.approx(180.0, abs=0.01)


def test_a_chinese_statement_and_the_japanese_tagline_read_back_exactly() -> None:
    """Before: 民 came back as the radical ⺠ (U+2EA0), 日 could come back as ⽇ (U+2F47): the
    ToUnicode maps named the first code point of a glyph Noto Sans CJK shares."""
    def bare(text: str) -> str:
        return "".join(text.split())

    def extracted(pdf: bytes) -> str:
        return bare(subprocess.run(["pdftotext", "-raw", "-", "-"], input=pdf,
                                   capture_output=True, check=True).stdout.decode())

    chinese = extracted(statement_in("CA", "zh-Hant"))
    text = statement_text("zh-Hant")
    for key in ("adverse.group.erisa", "language_assistance.heading", "adverse.heading"):
        assert bare(text.string(key)) in chinese, key
    assert "民事訴訟" in chinese and "\u2ea0" not in chinese
    assert not re.search("[\u2e80-\u2fdf\u31c0-\u31ef\uf900-\ufaff]", chinese)
    japanese = dict(_taglines("CA"))["ja"]
    assert bare(japanese) in extracted(statement_in("CA"))
