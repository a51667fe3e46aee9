"""Statements and notices are tagged PDFs: checked with poppler, qpdf and pikepdf.

The structure tree is walked with pikepdf; each element's text is read from the page (or
form) content between the BDC that carries its MCID and the matching EMC, decoded with the
font's /ToUnicode map (or WinAnsi for a simple font without one), so the test reads the
file the way a screen reader's PDF layer does, independently of the renderer's own code.
"""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pikepdf
import pytest

from pipeline.model import Statement
from pipeline.render import (
    encrypt_pdf,
    format_money,
    member_password,
    render_notice,
    render_statement,
)
from pipeline.render.blocks import Block, Heading, TextBlock
from pipeline.render.canvas import CONTENT_WIDTH, MARGIN, Theme
from pipeline.render.cells import Cell, Row
from pipeline.render.document import add_pages
from pipeline.render.flow import ColumnSection, Region, layout
from pipeline.render.fonts import REGULAR
from pipeline.render.grid import Grid
from pipeline.render.pdf.writer import Name, PdfDocument
from pipeline.templates import DEFAULT_TEMPLATES_DIR, brand, statement_text
from tests.support.factories import make_statement

OWNER = "owner-secret-for-tagging-tests"


# ------------------------------------------------------------------ reading the tags back


@dataclass
class Element:
    """A structure element as read back: role, attributes, text, children, content refs."""

    role: str
    node: pikepdf.Dictionary
    kids: list[Element] = field(default_factory=list)
    content: list[tuple[tuple[int, int], int]] = field(default_factory=list)  # (stream, mcid)
    text: str = ""

    def walk(self) -> Iterator[Element]:
        yield self
        for kid in self.kids:
            yield from kid.walk()

    def all_text(self) -> str:
        return self.text + "".join(kid.all_text() for kid in self.kids)


def _cmap(stream: pikepdf.Stream) -> dict[bytes, str]:
    """A ToUnicode CMap's bfchar and bfrange entries (what our writers and fonts produce)."""
    data = stream.read_bytes().decode("latin-1")
    found: dict[bytes, str] = {}

    def text(hexa: str) -> str:
        return bytes.fromhex(hexa).decode("utf-16-be")

    for block in re.findall(r"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]*)>", block):
            found[bytes.fromhex(src)] = text(dst)
    for block in re.findall(r"beginbfrange(.*?)endbfrange", data, re.S):
        for low, high, rest in re.findall(
                r"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*(\[[^\]]*\]|<[0-9A-Fa-f]*>)", block):
            start, end, size = int(low, 16), int(high, 16), len(low) // 2
            if rest.startswith("["):
                targets = [text(t) for t in re.findall(r"<([0-9A-Fa-f]*)>", rest)]
            else:
                first = bytes.fromhex(rest[1:-1])
                base = int.from_bytes(first, "big")
                targets = [(base + i).to_bytes(len(first), "big").decode("utf-16-be")
                           for i in range(end - start + 1)]
            for offset, target in enumerate(targets):
                found[(start + offset).to_bytes(size, "big")] = target
    return found


def _decoder(font: pikepdf.Dictionary):  # type: ignore[no-untyped-def]
    if "/ToUnicode" in font:
        table = _cmap(font.ToUnicode)
        sizes = sorted({len(key) for key in table}, reverse=True) or [1]

        def decode(raw: bytes) -> str:
            out, index = [], 0
            while index < len(raw):
                for size in sizes:
                    if raw[index:index + size] in table:
                        out.append(table[raw[index:index + size]])
                        index += size
                        break
                else:
                    index += sizes[-1]
            return "".join(out)
        return decode
    if font.get("/Subtype") == "/Type0":  # a CID font without a map: nothing to read
        return lambda raw: ""
    return lambda raw: raw.decode("cp1252", errors="replace")


@dataclass
class Content:
    """What a content stream shows: text per MCID, and text outside any tagged sequence."""

    by_mcid: dict[int, str] = field(default_factory=dict)
    untagged: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)


def _read_content(stream: object, resources: pikepdf.Dictionary) -> Content:
    fonts = {str(name): _decoder(font) for name, font in resources.get("/Font", {}).items()}
    content = Content()
    stack: list[int | None] = []  # MCID, or None for an artifact / other marked content
    decode = None
    for operands, operator in pikepdf.parse_content_stream(stream):
        op = str(operator)
        if op == "BDC":
            props = operands[1]
            mcid = props.get("/MCID") if isinstance(props, pikepdf.Dictionary) else None
            if str(operands[0]) == "/Artifact":
                stack.append(-1)
            else:
                stack.append(None if mcid is None else int(mcid))
        elif op == "BMC":
            stack.append(-1 if str(operands[0]) == "/Artifact" else None)
        elif op == "EMC":
            stack.pop()
        elif op == "Tf":
            decode = fonts[str(operands[0])]
        elif op in ("Tj", "TJ", "'", '"'):
            assert decode is not None
            strings = operands[0] if op == "TJ" else [operands[-1]]
            shown = "".join(decode(bytes(item)) for item in strings
                            if isinstance(item, pikepdf.String))
            owner = next((entry for entry in reversed(stack) if entry is not None), None)
            if owner is None:
                content.untagged.append(shown)
            elif owner == -1:
                content.artifacts.append(shown)
            else:
                content.by_mcid[owner] = content.by_mcid.get(owner, "") + shown
    assert not stack, "marked content is not balanced"
    return content


@dataclass
class Tagged:
    """A tagged PDF read back: catalog, structure tree, and the content of every stream."""

    pdf: pikepdf.Pdf
    root: Element
    streams: dict[tuple[int, int], Content]
    page_ids: list[tuple[int, int]]

    def elements(self, role: str) -> list[Element]:
        return [element for element in self.root.walk() if element.role == role]

    def texts(self) -> list[str]:
        """The text of every element with content, in structure (depth-first) order."""
        return [element.text for element in self.root.walk() if element.text]


def read_tagged(data: bytes, password: str = "") -> Tagged:
    pdf = pikepdf.open(io.BytesIO(data), password=password)
    streams: dict[tuple[int, int], Content] = {}
    page_ids = []
    for page in pdf.pages:
        page_ids.append(page.obj.objgen)
        streams[page.obj.objgen] = _read_content(page, page.Resources)
        for _, xobject in page.Resources.get("/XObject", {}).items():
            if xobject.get("/Subtype") == "/Form":
                streams[xobject.objgen] = _read_content(xobject, xobject.Resources)
    tree = pdf.Root.StructTreeRoot

    def build(node: pikepdf.Dictionary, page: tuple[int, int] | None) -> Element:
        element = Element(str(node.S).lstrip("/"), node)
        if "/Pg" in node:
            page = node.Pg.objgen
        kids = node.get("/K")
        items = list(kids) if isinstance(kids, pikepdf.Array) else ([] if kids is None else [kids])
        for kid in items:
            if isinstance(kid, int):
                assert page is not None, f"{element.role}: MCID without a page"
                element.content.append((page, int(kid)))
                element.text += streams[page].by_mcid.get(int(kid), "")
            elif kid.get("/Type") == "/MCR":
                stream = kid.Stm.objgen if "/Stm" in kid else (kid.Pg.objgen if "/Pg" in kid
                                                               else page)
                assert stream is not None
                element.content.append((stream, int(kid.MCID)))
                element.text += streams[stream].by_mcid.get(int(kid.MCID), "")
            else:
                assert kid.P.objgen == node.objgen, "a kid's /P is its parent"
                element.kids.append(build(kid, page))
        return element

    kids = tree.K
    document = build(kids if isinstance(kids, pikepdf.Dictionary) else kids[0], None)
    return Tagged(pdf, document, streams, page_ids)


def _squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


# ------------------------------------------------------------------ the statements


def _typical(language: str = "en") -> Statement:
    return make_statement(n_lines=8, denied=1, language=language)


def _long() -> Statement:
    return make_statement(n_lines=64, denied=3)


def _denied_claim(statement: Statement) -> str:
    return next(line.claim_id for line in statement.lines if line.status == "denied")


DOCUMENTS = {
    "english": lambda: render_statement(_typical()).pdf,
    "spanish": lambda: render_statement(_typical("es")).pdf,
    "multi-page": lambda: render_statement(_long()).pdf,
    "print": lambda: render_statement(_typical(), variant="print").pdf,
    "chinese": lambda: render_statement(_typical("zh-Hant")).pdf,
    "notice": lambda: render_notice(_typical(), _denied_claim(_typical())).pdf,
    "notice-print": lambda: render_notice(_typical(), _denied_claim(_typical()),
                                          variant="print").pdf,
}


@pytest.fixture(scope="module")
def rendered() -> dict[str, bytes]:
    return {name: make() for name, make in DOCUMENTS.items()}


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_pdfinfo_reports_tagged_and_qpdf_finds_no_errors(name: str, rendered: dict[str, bytes],
                                                         tmp_path: Path) -> None:
    target = tmp_path / f"{name}.pdf"
    target.write_bytes(rendered[name])
    info = subprocess.run(["pdfinfo", str(target)], capture_output=True, text=True, check=True)
    assert re.search(r"^Tagged:\s+yes$", info.stdout, re.M), info.stdout
    check = subprocess.run(["qpdf", "--check", str(target)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No syntax or stream encoding errors" in check.stdout
    struct = subprocess.run(["pdfinfo", "-struct", str(target)], capture_output=True,
                            text=True, check=True)
    assert struct.stdout.startswith("Document"), struct.stdout[:200]


def test_multi_page_statement_has_several_pages(rendered: dict[str, bytes]) -> None:
    assert len(read_tagged(rendered["multi-page"]).page_ids) >= 3


@pytest.mark.parametrize(("name", "lang", "language"), [
    ("english", "en-US", "en"), ("spanish", "es-US", "es"), ("chinese", "zh-Hant", "zh-Hant"),
    ("notice", "en-US", "en")])
def test_catalog_declares_language_title_and_marked(name: str, lang: str, language: str,
                                                     rendered: dict[str, bytes]) -> None:
    tagged = read_tagged(rendered[name])
    catalog = tagged.pdf.Root
    assert str(catalog.Lang) == lang
    assert bool(catalog.MarkInfo.Marked) is True
    assert bool(catalog.ViewerPreferences.DisplayDocTitle) is True
    assert tagged.root.role == "Document"
    words = statement_text(language, DEFAULT_TEMPLATES_DIR)
    title = str(tagged.pdf.docinfo.Title)
    expected = words.string("notice.title" if name == "notice" else "header.title")
    assert title == expected  # the document's kind, never the member's data
    statement = _typical(language)
    assert statement.member.last_name not in title
    assert [_squash(h.text) for h in tagged.elements("H1")] == [_squash(expected)]


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_every_text_is_tagged_or_an_artifact_and_every_mcid_has_one_element(
        name: str, rendered: dict[str, bytes]) -> None:
    tagged = read_tagged(rendered[name])
    for content in tagged.streams.values():
        assert not [text for text in content.untagged if text.strip()]
    referenced: dict[tuple[tuple[int, int], int], str] = {}
    for element in tagged.root.walk():
        for ref in element.content:
            assert ref not in referenced, f"MCID {ref} in two elements"
            referenced[ref] = element.role
    shown = {(stream, mcid) for stream, content in tagged.streams.items()
             for mcid in content.by_mcid}
    assert shown <= set(referenced), "text in a marked sequence no element refers to"
    # the parent tree maps each page's (and form's) MCIDs back to the element holding them
    nums = list(tagged.pdf.Root.StructTreeRoot.ParentTree.Nums)
    parents = {int(nums[i]): nums[i + 1] for i in range(0, len(nums), 2)}
    for index, page in enumerate(tagged.pdf.pages):
        array = parents[int(page.obj.StructParents)]
        for mcid in tagged.streams[tagged.page_ids[index]].by_mcid:
            owner = array[mcid]
            assert any(ref == mcid or (isinstance(ref, pikepdf.Dictionary) and "/MCID" in ref
                                       and int(ref.MCID) == mcid)
                       for ref in (owner.K if isinstance(owner.K, pikepdf.Array) else [owner.K]))


@pytest.mark.parametrize("name", ["english", "spanish", "print", "multi-page"])
def test_structure_order_is_the_reading_order(name: str, rendered: dict[str, bytes],
                                              tmp_path: Path) -> None:
    """Title, summary, claims, codes, accumulators, appeal rights, contact, in that order;
    and every element's text appears in poppler's reading of the pages in the same order."""
    tagged = read_tagged(rendered[name])
    language = "es" if name == "spanish" else "en"
    words = statement_text(language, DEFAULT_TEMPLATES_DIR)
    texts = [_squash(text) for text in tagged.texts()]
    joined = "\n".join(texts)
    headings = [words.string("header.title"), words.string("claims.heading"),
                words.string("reasons.heading"), words.string("accumulators.heading"),
                words.string("adverse.heading"), words.string("contact.heading")]
    positions = [joined.find(_squash(heading)) for heading in headings]
    assert -1 not in positions, list(zip(headings, positions, strict=True))
    assert positions == sorted(positions)
    h2 = [_squash(element.all_text()) for element in tagged.elements("H2")]
    assert h2.index(_squash(words.string("claims.heading"))) < h2.index(
        _squash(words.string("adverse.heading")))
    # against poppler's text in content order: every Latin element, in the same order
    target = tmp_path / "statement.pdf"
    target.write_bytes(rendered[name])
    raw = _squash(subprocess.run(["pdftotext", "-raw", str(target), "-"], capture_output=True,
                                 text=True, check=True).stdout)
    at, missing = 0, []
    for text in texts:
        if not text or not all(ord(char) < 0x250 for char in text):
            continue  # scripts poppler may not map without its language packs
        found = _find_across_pages(raw, text, at)
        if found < 0:
            missing.append(text)
        else:
            at = found
    assert not missing, missing[:5]


def _find_across_pages(raw: str, text: str, at: int, pieces: int = 3) -> int:
    """Where `text` ends in `raw` read from `at`, -1 if it is not there in order: whole, or (a
    paragraph continued on the next page, the page's footer and running header read between)
    as up to `pieces` consecutive parts, each at least 20 characters."""
    found = raw.find(text, at)
    if found >= 0:
        return found + len(text)
    if pieces <= 1:
        return -1
    for cut in range(len(text) - 20, 19, -1):
        start = raw.find(text[:cut], at)
        if start >= 0:
            return _find_across_pages(raw, text[cut:], start + cut, pieces - 1)
    return -1


@pytest.mark.parametrize("name", ["english", "multi-page"])
def test_claims_table_has_column_headers_and_one_row_per_line(
        name: str, rendered: dict[str, bytes]) -> None:
    statement = _long() if name == "multi-page" else _typical()
    tagged = read_tagged(rendered[name])
    words = statement_text("en", DEFAULT_TEMPLATES_DIR)
    date_header = _squash(words.string("claims.col_date"))
    tables = [table for table in tagged.elements("Table")
              if table.kids and _squash(table.kids[0].all_text()).startswith(date_header)]
    assert len(tables) == 1, "the claims table is one Table, whatever pages it spans"
    table = tables[0]
    rows = [row for row in table.kids if row.role == "TR"]
    header = rows[0]
    columns = len(header.kids)
    assert [cell.role for cell in header.kids] == ["TH"] * columns
    assert columns >= 6
    for cell in header.kids:
        assert str(cell.node.A.Scope) == "/Column"
    assert not [cell for row in rows[1:] for cell in row.kids if cell.role == "TH"], \
        "the header is not repeated in the structure on a later page"
    line_rows, candidates = [], iter(row for row in rows[1:] if len(row.kids) == columns)
    for line in statement.lines:  # each line's row, in order: "Service (code)", its amounts
        row = next(row for row in candidates if f"({line.service_code})" in row.kids[1].text)
        assert format_money(line.billed) in [cell.text for cell in row.kids]
        line_rows.append(row)
    pages = {cell.node.Pg.objgen for row in line_rows for cell in row.kids}
    if name == "multi-page":
        assert len(pages) >= 2  # one table, its rows on several pages


def _columns(row: Element) -> list[tuple[int, Element]]:
    """Each cell of a row with the column it starts in (empty cells and /ColSpan counted)."""
    found, column = [], 0
    for cell in row.kids:
        found.append((column, cell))
        column += int(cell.node.A.get("/ColSpan", 1)) if "/A" in cell.node else 1
    return found


def test_summary_boxes_are_a_table_whose_labels_head_their_amounts(
        rendered: dict[str, bytes]) -> None:
    statement = _typical()
    tagged = read_tagged(rendered["english"])
    words = statement_text("en", DEFAULT_TEMPLATES_DIR)
    owes = _squash(words.string("summary.you_may_owe"))
    table = next(table for table in tagged.elements("Table")
                 if owes in [_squash(cell.text) for cell in table.kids[0].kids])
    labels, amounts = table.kids[0], table.kids[1]
    assert {cell.role for cell in labels.kids} == {"TH"}
    assert {cell.role for cell in amounts.kids} == {"TD"}
    position = [_squash(cell.text) for cell in labels.kids].index(owes)
    assert amounts.kids[position].text == format_money(statement.total_member_owes)


def test_cells_that_span_columns_keep_their_column() -> None:
    """Banners span columns, totals start further right: every amount of the statement
    total stays under its own column header (empty cells and /ColSpan keep the count)."""
    statement = make_statement(n_lines=8, denied=1)
    tagged = read_tagged(render_statement(statement).pdf)
    words = statement_text("en", DEFAULT_TEMPLATES_DIR)
    table = next(table for table in tagged.elements("Table") if table.kids and _squash(
        table.kids[0].all_text()).startswith(_squash(words.string("claims.col_date"))))
    header = [_squash(cell.text) for cell in table.kids[0].kids]
    owes = header.index(_squash(words.string("claims.col_you_may_owe")))
    total = next(row for row in table.kids
                 if _squash(words.string("claims.statement_total")) in _squash(row.all_text()))
    under = {column: cell.text for column, cell in _columns(total)}
    assert under[owes] == format_money(statement.total_member_owes)
    for row in table.kids:
        assert row.kids, "no empty row"
        assert _columns(row)[-1][0] < len(header), "no row is wider than the header"
    banners = [row for row in table.kids if row.kids
               and row.kids[0].text.startswith(words.string("claims.provider").split("{")[0])]
    assert banners and all(int(row.kids[0].node.A.ColSpan) > 1 for row in banners)


@pytest.mark.parametrize("name", ["english", "notice"])
def test_logo_is_a_figure_with_alternative_text(name: str, rendered: dict[str, bytes]) -> None:
    tagged = read_tagged(rendered[name])
    figures = tagged.elements("Figure")
    short_name = brand("default", DEFAULT_TEMPLATES_DIR).string("identity.short_name")
    assert [str(figure.node.Alt) for figure in figures] == [f"{short_name} logo"]
    assert figures[0].content, "the Figure holds the image's marked content"


def test_legal_pages_in_a_shared_form_are_tagged_through_the_form() -> None:
    """A short statement's legal pages fit the page they start on: placed as the cached
    Form XObject, whose own MCIDs the structure refers to (/Stm) and which has a
    /StructParents of its own."""
    for lines in (8, 1, 2, 4, 12):
        tagged = read_tagged(render_statement(make_statement(n_lines=lines, denied=0)).pdf)
        forms = [key for key in tagged.streams if key not in tagged.page_ids]
        if forms:
            break
    assert forms, "some statement places its legal pages as a Form XObject"
    in_form = [element for element in tagged.root.walk()
               if any(stream in forms for stream, _ in element.content)]
    assert {element.role for element in in_form} >= {"H2", "P"}
    for _, xobject in tagged.pdf.pages[-1].Resources.XObject.items():
        if xobject.get("/Subtype") == "/Form":
            assert "/StructParents" in xobject


def _engine_pdf(blocks: list[Block]) -> bytes:
    """Blocks laid out by the engine alone on short pages, as a tagged PDF."""
    first = Region(MARGIN, 300.0, 60.0, CONTENT_WIDTH)
    later = Region(MARGIN, 300.0, 60.0, CONTENT_WIDTH)
    pages = layout(blocks, first, later, lambda out, number: None)
    document = PdfDocument()
    tree = add_pages(document, pages)
    assert tree.structure is not None
    document.root = document.add({"Type": Name("Catalog"), "Pages": tree.pages,
                                  "MarkInfo": {"Marked": True},
                                  "StructTreeRoot": tree.structure})
    return document.write()


def test_a_paragraph_split_over_pages_and_columns_stays_one_element() -> None:
    """A paragraph cut at the foot of a page, or of a column, is one P holding the marked
    content of every part, in reading order; a table split over pages is one Table."""
    long = " ".join(f"word{index:04d}" for index in range(900))
    column = [TextBlock(" ".join(f"col{index:04d}" for index in range(600)), REGULAR, 7,
                        "0 0 0", remember=False)]
    rows = [Row((Cell((f"r{index}",), 0.0, 60.0, REGULAR, 8, "0 0 0"),
                 Cell((f"v{index}",), 60.0, 60.0, REGULAR, 8, "0 0 0"))) for index in range(60)]
    header = Row((Cell(("Name",), 0.0, 60.0, REGULAR, 8, "0 0 0"),
                  Cell(("Value",), 60.0, 60.0, REGULAR, 8, "0 0 0")))
    tagged = read_tagged(_engine_pdf([
        Heading("A heading", Theme(*(["0 0 0"] * 8))),
        TextBlock(long, REGULAR, 9, "0 0 0", remember=False),
        Grid([header, *rows], header_rows=1),
        ColumnSection(column)]))
    paragraphs = tagged.elements("P")
    words = _squash(long)
    first = next(p for p in paragraphs if _squash(p.text).startswith("word0000"))
    assert _squash(first.text) == words
    assert len({stream for stream, _ in first.content}) >= 2  # one element over pages
    split = next(p for p in paragraphs if _squash(p.text).startswith("col0000"))
    assert _squash(split.text) == _squash(column[0].text) and len(split.content) >= 2
    tables = tagged.elements("Table")
    assert len(tables) == 1
    assert [_squash(row.all_text()) for row in tables[0].kids] == [
        "NameValue", *(f"r{index}v{index}" for index in range(60))]
    assert len({cell.node.Pg.objgen for row in tables[0].kids for cell in row.kids}) >= 2
    assert [h.text for h in tagged.elements("H2")] == ["A heading"]


def test_running_headers_footers_and_repeated_table_headers_are_artifacts(
        rendered: dict[str, bytes]) -> None:
    tagged = read_tagged(rendered["multi-page"])
    words = statement_text("en", DEFAULT_TEMPLATES_DIR)
    table = next(table for table in tagged.elements("Table") if table.kids and _squash(
        table.kids[0].all_text()).startswith(_squash(words.string("claims.col_date"))))
    header = _squash(table.kids[0].all_text())
    pages = sorted({stream for row in table.kids[1:] for cell in row.kids
                    for stream, _ in cell.content}, key=tagged.page_ids.index)
    assert len(pages) >= 2
    later = tagged.streams[pages[1]]
    artifacts = "".join(later.artifacts)
    assert header in _squash(artifacts)  # the header repeated over the rows of a later page
    footer = _squash(words.string("footer.page").split("{")[0])
    assert footer in _squash(artifacts)  # "Page 2 of N"
    assert footer not in "".join(_squash(text) for text in tagged.texts())


def test_encrypted_statement_keeps_tags_and_the_accessibility_permission(
        tmp_path: Path) -> None:
    statement = _typical()
    password = member_password(statement.member, "dob_mmddyyyy")
    data = encrypt_pdf(render_statement(statement), user_password=password,
                       owner_password=OWNER)
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        assert pdf.user_password_matched and not pdf.owner_password_matched
        assert pdf.allow.accessibility is True
        assert pdf.allow.extract is False
    tagged = read_tagged(data, password)
    assert [str(f.node.Alt) for f in tagged.elements("Figure")][0].endswith(" logo")
    assert _squash(statement.member.last_name) in "".join(_squash(t) for t in tagged.texts())
    target = tmp_path / "encrypted.pdf"
    target.write_bytes(data)
    info = subprocess.run(["pdfinfo", "-upw", password, str(target)], capture_output=True,
                          text=True, check=True)
    assert re.search(r"^Tagged:\s+yes$", info.stdout, re.M)
    check = subprocess.run(["qpdf", f"--password={password}", "--check", str(target)],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
