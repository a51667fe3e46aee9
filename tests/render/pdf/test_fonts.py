"""Embedded fonts, as a member's reader and an accessibility checker see them: every font
embedded as a subset (pdffonts), the words coming back out (pdftotext), line breaking that
keeps phone numbers whole and wraps CJK without spaces, shaped scripts, same bytes twice."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.render import render_statement
from pipeline.render.canvas import Out
from pipeline.render.document import add_pages
from pipeline.render.fonts import (
    BOLD,
    CJK_TRADITIONAL,
    FACES,
    REGULAR,
    MissingFontFile,
    check_font_files,
    face,
    font_path,
    use_font_dir,
)
from pipeline.render.pdf.writer import Name, PdfDocument
from pipeline.render.shaping import draw_shaped, shaped_width, wrap_shaped
from pipeline.render.text import text_width, wrap_text
from tests.support import REPO
from tests.support.factories import make_member, make_statement

VIETNAMESE_POLISH = ("Nguyễn Thị", "Łucja-Żółć Bảo")
CJK_SENTENCE = "如果您使用繁體中文，您可以免費獲得語言援助服務。"
ARABIC = "ملحوظة: إذا كنت تتحدث العربية، فإن خدمات المساعدة اللغوية تتوافر لك بالمجان."
HINDI = "ध्यान दें: यदि आप हिंदी बोलते हैं तो आपके लिए मुफ्त में भाषा सहायता सेवाएं उपलब्ध हैं।"


def pdffonts(pdf: bytes, tmp_path: Path) -> list[dict[str, str]]:
    path = tmp_path / "fonts.pdf"
    path.write_bytes(pdf)
    lines = subprocess.run(["pdffonts", str(path)], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    header = lines[0]
    columns = {name: header.index(name) for name in ("name", "emb", "sub", "uni")}
    return [{name: line[start:].split()[0] for name, start in columns.items()}
            for line in lines[2:]]


def pdftotext(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                          capture_output=True, text=True).stdout


def _assert_all_embedded_subsets(pdf: bytes, tmp_path: Path) -> list[dict[str, str]]:
    fonts = pdffonts(pdf, tmp_path)
    assert fonts, "no font at all"
    for font in fonts:
        assert (font["emb"], font["sub"], font["uni"]) == ("yes", "yes", "yes"), font
    return fonts


def _multilingual_statement() -> bytes:
    """A statement whose member data is Vietnamese, Polish and Chinese."""
    member = make_member(first_name=VIETNAMESE_POLISH[0], last_name=VIETNAMESE_POLISH[1],
                         address_line2=CJK_SENTENCE[:12])
    return render_statement(make_statement(member=member)).pdf


def _shaped_page() -> bytes:
    """A page of tagline lines drawn as the tagline block draws them (CJK, Arabic, Hindi)."""
    out = Out()
    y = 700.0
    for text, language in ((CJK_SENTENCE, "zh-Hant"), (ARABIC, "ar"), (HINDI, "hi"),
                           ("Llame al 1-800-555-0100 (TTY: 711).", "es")):
        for line in wrap_shaped(text, language, 9, 480):
            draw_shaped(out, 60, y, line, language, 9, "0 0 0")
            y -= 12
    document = PdfDocument()
    tree = add_pages(document, [out])
    pages = tree[0] if isinstance(tree, tuple) else tree
    document.root = document.add({"Type": Name("Catalog"), "Pages": pages})
    return document.write()


@pytest.mark.parametrize("language", ["en", "es"])
def test_every_font_of_a_statement_is_an_embedded_subset(language: str, tmp_path: Path) -> None:
    pdf = render_statement(make_statement(member=make_member(language=language))).pdf
    names = {font["name"].partition("+")[2] for font in _assert_all_embedded_subsets(pdf, tmp_path)}
    assert {"NotoSans-Regular", "NotoSans-Bold"} <= names


def test_cjk_arabic_and_hindi_text_is_embedded_and_extractable(tmp_path: Path) -> None:
    pdf = _multilingual_statement()
    fonts = _assert_all_embedded_subsets(pdf, tmp_path)
    assert any("NotoSansCJKtc" in font["name"] for font in fonts)
    text = pdftotext(pdf, tmp_path)
    for word in (*VIETNAMESE_POLISH, CJK_SENTENCE[:12]):
        assert word in text

    shaped = _shaped_page()
    fonts = _assert_all_embedded_subsets(shaped, tmp_path)
    names = {font["name"].partition("+")[2] for font in fonts}
    assert {"NotoSansArabic-Regular", "NotoSansDevanagari-Regular",
            "NotoSansCJKtc-Regular"} <= names
    text = " ".join(pdftotext(shaped, tmp_path).split())
    assert CJK_SENTENCE in text.replace(" ", "")
    assert HINDI.split("।")[0] in text  # reordered matras and conjuncts read back whole
    assert "1-800-555-0100" in text
    for word in ("ملحوظة", "العربية", "المساعدة", "اللغوية"):  # in logical order
        assert word in text


def test_qpdf_finds_no_fault_in_the_font_objects(tmp_path: Path) -> None:
    for number, pdf in enumerate((_multilingual_statement(), _shaped_page())):
        path = tmp_path / f"{number}.pdf"
        path.write_bytes(pdf)
        checked = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_arabic_is_shaped_into_contextual_forms_not_isolated_letters() -> None:
    from pipeline.render.shaping import shaped_ops

    word = "ملحوظة"
    isolated = {f"<{face('NotoSansArabic-Regular').glyphs[char]:04x}>" for char in word}
    ops, _ = shaped_ops(word, "ar", 10, "0 0 0")
    shown = {part for part in ops.replace("<", " <").replace(">", "> ").split()
             if part.startswith("<") and part.endswith(">") and len(part) == 6}
    assert shown and not shown <= isolated  # initial, medial and final forms were chosen
    assert shaped_width(word, "ar", 10) > 0


def test_a_character_no_font_has_is_folded_and_the_pdf_stays_valid(tmp_path: Path) -> None:
    member = make_member(first_name="Zoë \U00013000", last_name="Đặng")  # a hieroglyph
    pdf = render_statement(make_statement(member=member)).pdf
    _assert_all_embedded_subsets(pdf, tmp_path)
    text = pdftotext(pdf, tmp_path)
    assert "Zoë ?" in text and "Đặng" in text


def test_the_same_statement_gives_the_same_bytes_in_this_and_a_fresh_process() -> None:
    statement = make_statement(member=make_member(first_name=VIETNAMESE_POLISH[0]))
    first = render_statement(statement).pdf
    assert render_statement(statement).pdf == first
    script = ("import hashlib, sys; from tests.support.factories import make_member, "
              "make_statement; from pipeline.render import render_statement; "
              f"s = make_statement(member=make_member(first_name={VIETNAMESE_POLISH[0]!r})); "
              "sys.stdout.write(hashlib.sha256(render_statement(s).pdf).hexdigest())")
    fresh = subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True,
                           capture_output=True, text=True).stdout
    assert fresh == hashlib.sha256(first).hexdigest()


PHONES = ("1-800-555-0100", "(800) 555-0100", "TTY 711", "TTY: 711", "1\u2011800\u2011555\u20110199",
          "800\u00a0555\u00a00123")


@pytest.mark.parametrize("font", [REGULAR, BOLD, CJK_TRADITIONAL])
def test_wrap_text_never_splits_a_phone_number(font: str) -> None:
    text = ("Questions? Call us at 1-800-555-0100 or (800) 555-0100, TTY 711, or TTY: 711, "
            "or 1\u2011800\u2011555\u20110199 or 800\u00a0555\u00a00123. 請致電 1-800-555-0100 "
            "（TTY：711）。")
    for width in range(60, 400, 3):
        lines = wrap_text(text, font, 8, float(width), remember=False)
        for phone in PHONES:
            assert any(phone in line for line in lines), (width, phone, lines)
        for line in lines:
            assert text_width(line, font, 8) <= width + 1e-6


def test_cjk_text_without_spaces_wraps_between_ideographs_and_never_starts_with_closing_marks() -> None:
    text = ("注意：如果您使用繁體中文，您可以免費獲得語言援助服務。「請」致電我們、或者來信。"
            "日本語を話される場合、無料の言語支援をご利用いただけます。한국어를사용하시는경우")
    for width in (40.0, 63.0, 90.0, 150.0):
        lines = wrap_text(text, REGULAR, 9, width, remember=False)
        assert len(lines) > 1
        assert "".join(lines) == text
        for line in lines:
            assert text_width(line, REGULAR, 9) <= width + 1e-6
            assert line[0] not in "、。，）」：", lines
            assert line[-1] not in "「（", lines


def test_korean_wraps_between_words_never_inside_one() -> None:
    """Before: hangul syllables were break opportunities like ideographs, so a tagline split
    "사용하시는" across two lines; Korean breaks at the spaces between its words."""
    text = ("주의: 한국어를 사용하시는 경우, 언어 지원 서비스를 무료로 이용하실 수 있습니다. "
            "1-800-555-0100 (TTY: 711) 번으로 전화해 주십시오.")
    words = set(text.split(" "))
    for width in (70.0, 95.0, 130.0, 200.0):
        lines = wrap_text(text, REGULAR, 9, width, remember=False)
        assert len(lines) > 1 and " ".join(lines) == text
        for line in lines:
            assert set(line.split(" ")) <= words, (width, lines)  # only whole words on each line
            assert text_width(line, REGULAR, 9) <= width + 1e-6


def test_shaped_lines_wrap_at_spaces_and_keep_phone_numbers_whole() -> None:
    text = f"{ARABIC} اتصل برقم 1-800-555-0100 (TTY: 711)."
    for width in (80.0, 120.0, 200.0):
        lines = wrap_shaped(text, "ar", 8, width)
        assert " ".join(lines) == text
        assert any("1-800-555-0100" in line for line in lines)
        assert all(shaped_width(line, "ar", 8) <= width for line in lines if " " in line)


def test_widths_come_from_the_embedded_font() -> None:
    regular = face(REGULAR)
    expected = sum(regular.advance(regular.glyphs[char]) for char in "Explanation") * 10
    assert text_width("Explanation", REGULAR, 10) == pytest.approx(expected)
    assert text_width("W", BOLD, 10) > text_width("W", REGULAR, 10) * 0.99


def test_a_missing_font_file_is_named_with_its_package(tmp_path: Path) -> None:
    with pytest.raises(MissingFontFile) as caught:
        check_font_files(tmp_path)
    assert "NotoSans-Regular.ttf" in str(caught.value) and "fonts-noto-core" in str(caught.value)
    for name, spec in FACES.items():  # the core fonts are there, the CJK collection is not
        if spec.package == "fonts-noto-core":
            (tmp_path / spec.file).symlink_to(font_path(name))
    with pytest.raises(MissingFontFile) as caught:
        use_font_dir(tmp_path)
    assert caught.value.path == tmp_path / "NotoSansCJK-Regular.ttc"
    assert "fonts-noto-cjk" in str(caught.value)
    # the refused directory was not taken: statements still render with every font
    assert render_statement(make_statement(n_lines=1)).pages >= 1


def test_a_script_face_takes_digits_and_punctuation_from_noto_sans() -> None:
    """Before: the Armenian face has no digits and no "?": setting text in it crashed (the
    fold to "?" found no glyph) and shaped lines needed every character in the script's face."""
    from pipeline.render.shaping import _shape, missing
    from pipeline.render.text import text_ops

    armenian = "NotoSansArmenian-Regular"
    assert "7" not in face(armenian).glyphs and "?" not in face(armenian).glyphs
    used: set[str] = set()
    ops = text_ops("Զանգահարեք 1-800-555-0100?", armenian, 8, used)
    assert "F1" in used and ops  # digits and "?" from Noto Sans (its resource F1)
    assert text_width("Զանգ 711?", armenian, 8) > 0
    line = "Զանգահարեք 1\u2011800\u2011555\u20110100 (TTY (հեռատիպ)՝ 711):"
    runs = _shape(line, "hy", "Armn").runs
    assert {run.face for run in runs} == {armenian, REGULAR}
    assert all(glyph[0] != 0 for run in runs for glyph in run.glyphs), "no .notdef"
    assert missing(line, "hy") == ""
    assert missing("Զանգ \U00013000", "hy") == "\U00013000"  # no face has a hieroglyph


def test_every_template_character_reads_back_as_itself_not_a_radical() -> None:
    """Before: Noto Sans CJK draws 民 and the radical ⺠ (U+2EA0) with one glyph, and the
    ToUnicode map named the radical, so pdftotext gave ⺠事訴訟."""
    from pipeline.render.fonts import CJK_JAPANESE, CJK_KOREAN, CJK_SIMPLIFIED, glyph
    from pipeline.templates import DEFAULT_TEMPLATES_DIR

    chars = set()
    for path in DEFAULT_TEMPLATES_DIR.rglob("*.toml"):
        chars |= set(path.read_text(encoding="utf-8"))
    assert "民" in chars and "日" in chars
    for font in (REGULAR, BOLD, CJK_TRADITIONAL, CJK_SIMPLIFIED, CJK_JAPANESE, CJK_KOREAN):
        wrong = []
        for char in sorted(chars):
            found = glyph(font, char)
            if found is not None and face(found[0]).unicode_of(found[1]) != char:
                wrong.append(char)
        assert wrong == [], (font, wrong)
    tc = face(CJK_TRADITIONAL)
    assert tc.glyphs["\u2ea0"] == tc.glyphs["民"] and tc.unicode_of(tc.glyphs["民"]) == "民"
    assert tc.unicode_of(tc.glyphs["\u2f47"]) == "日"
