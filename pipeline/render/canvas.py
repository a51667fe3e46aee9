"""The page canvas: one content stream of PDF operators, plus the colours and images it draws.

Operators are built as strings (text batched into BT..ET, font and colour set only when they
change) because that is the cheapest way to produce them in Python; the page size is US
letter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from reportlab.lib import colors
from reportlab.lib.pagesizes import letter
from reportlab.lib.units import inch

from pipeline.render.cells import CELL_PAD, Row
from pipeline.render.fonts import FONT_IDS
from pipeline.render.pdf.structure import Cells, Mark, Placed, Tag, TagPath
from pipeline.render.text import text_ops, text_width

PAGE_WIDTH, PAGE_HEIGHT = letter
MARGIN = 0.5 * inch
CONTENT_WIDTH = PAGE_WIDTH - 2 * MARGIN


def rgb(color: colors.Color) -> str:
    """A colour as the "r g b" operand the rg and RG operators take."""
    return f"{color.red:.3f} {color.green:.3f} {color.blue:.3f}"


WHITE = "1.000 1.000 1.000"


@dataclass(frozen=True, slots=True)
class Theme:
    """Brand colours as PDF colour operands ("r g b")."""

    primary: str
    accent: str
    tint: str
    accent_tint: str
    text: str
    muted: str
    alert: str
    rule: str


class Out:
    """One content stream under construction: operator strings plus the fonts they use.

    Text is batched into BT..ET objects; font and colour operators are written only when
    they change. Graphics go between text objects, wrapped in q..Q so the tracked text
    state stays true.

    Tagging (see `pipeline.render.pdf.structure`): `begin(path)` .. `end()` (or `tagged`)
    puts what is drawn in between into one structure element; graphics are always artifacts
    (an open element is closed around them and reopened, with a new MCID, by the next text);
    `artifact()` holds decoration and page furniture; grids tag their cells in `text_rows`.
    `marks` lists the page's MCIDs with their paths, and the forms placed with theirs.
    """

    __slots__ = ("ops", "fonts", "forms", "images", "_in_text", "_font", "_color", "marks",
                 "mcid", "_path", "_open")

    def __init__(self) -> None:
        self.ops: list[str] = []
        self.fonts: set[str] = set()
        self.forms: dict[str, Form] = {}
        self.images: dict[str, Image] = {}
        self._in_text = False
        self._font: tuple[str, float] | None = None
        self._color: str | None = None
        self.marks: list[Mark | Placed] = []
        self.mcid = 0  # the next marked-content id of this content stream
        self._path: TagPath | None = None  # the element being drawn, between begin and end
        self._open = False  # whether its marked-content sequence is open

    def begin(self, what: str | TagPath) -> None:
        """What is drawn until `end()` belongs to one element: a new one of the role `what`,
        or the one at the end of the path `what`. Its marked-content sequence opens with the
        first text, so an element that shows nothing is not made."""
        self.end()
        self._path = ((Tag(what), what),) if isinstance(what, str) else what

    def _mark(self) -> None:
        path = self._path
        assert path is not None
        self.ops.append(f"/{path[-1][1]} <</MCID {self.mcid}>> BDC")
        self.marks.append((self.mcid, path))
        self.mcid += 1
        self._open = True

    def end(self) -> None:
        """Close the element opened by `begin` (marked content holds whole text objects)."""
        self.end_text()
        if self._open:
            self.ops.append("EMC")
            self._open = False
        self._path = None

    @contextmanager
    def tagged(self, what: str | TagPath) -> Iterator[None]:
        """Draw one structure element: a role (a new element) or a path of (key, role)."""
        self.begin(what)
        try:
            yield
        finally:
            self.end()

    @contextmanager
    def artifact(self) -> Iterator[None]:
        """Draw decoration or furniture (running headers, footers): readers skip it."""
        self.end()
        self.ops.append("/Artifact BMC")
        try:
            yield
        finally:
            self.end_text()
            self.ops.append("EMC")

    def _suspend(self) -> None:
        """End text, and the open element's sequence until its next text (graphics, forms)."""
        self.end_text()
        if self._open:
            self.ops.append("EMC")
            self._open = False

    def show(self, x: float, y: float, text: str, font: str, size: float, color: str) -> None:
        ops = self.ops
        if self._path is not None and not self._open:
            self._mark()
        if not self._in_text:
            ops.append("BT")
            self._in_text = True
        if (font, size) != self._font:
            self._font = (font, size)
            self.fonts.add(FONT_IDS[font])
            ops.append(f"/{FONT_IDS[font]} {size:g} Tf")
        if color != self._color:
            self._color = color
            ops.append(f"{color} rg")
        ops.append(f"1 0 0 1 {x:.2f} {y:.2f} Tm {text_ops(text, font, size, self.fonts)}")

    def text_rows(self, x: float, rows: Sequence[Row], tops: Sequence[float],
                  tags: Sequence[Cells | None] | None = None) -> None:
        """Every cell of grid rows: show() unrolled for the hottest loop of a statement.

        With `tags` (one per row) each cell with text is one element (e.g. a TD of the TR
        the row's `Cells` names); None makes the row an artifact (a table header repeated
        on a later page).
        """
        if self._path is not None:
            self.end()
        ops, marks, mcid = self.ops, self.marks, self.mcid
        if not self._in_text:
            ops.append("BT")
            self._in_text = True
        current_font, current_color = self._font, self._color
        for index, (row, row_top) in enumerate(zip(rows, tops, strict=True)):
            tag = tags[index] if tags is not None else None
            texts = tag.cells if tag is not None else ()
            artifact = tag is None and tags is not None and bool(row.cells)
            if artifact:
                ops.append("/Artifact BMC")
            elif tag is not None:
                marks.append((mcid, tag))
            for column, cell in enumerate(row.cells):
                marked = bool(texts) and texts[column][0]
                if marked:
                    ops.append(f"/{tag.role} <</MCID {mcid}>> BDC")  # type: ignore[union-attr]
                    mcid += 1
                font, size, color = cell.font, cell.size, cell.color
                if (font, size) != current_font:
                    current_font = (font, size)
                    self.fonts.add(FONT_IDS[font])
                    ops.append(f"/{FONT_IDS[font]} {size:g} Tf")
                if color != current_color:
                    current_color = color
                    ops.append(f"{color} rg")
                baseline = row_top - row.pad_top - size * 0.82
                starts = cell.starts  # relative to the grid's left edge
                if starts is None:
                    left = cell.x + CELL_PAD
                    if cell.align == "right":
                        edge = left + cell.width - 2 * CELL_PAD
                        starts = tuple(edge - text_width(line, font, size)
                                       for line in cell.lines)
                    else:
                        starts = (left,) * len(cell.lines)
                for line, start in zip(cell.lines, starts, strict=True):
                    if line:
                        shown = text_ops(line, font, size, self.fonts)
                        ops.append(f"1 0 0 1 {x + start:.2f} {baseline:.2f} Tm {shown}")
                    baseline -= cell.leading
                if marked:
                    ops.append("EMC")
            if artifact:
                ops.append("EMC")
        self._font, self._color = current_font, current_color
        self.mcid = mcid

    def graphics(self, op: str) -> None:
        """Path or colour operators, isolated so they change no tracked state: decoration,
        so an artifact (rules, fills, boxes; the text over them carries the meaning)."""
        self._suspend()
        self.ops.append(f"/Artifact BMC q {op} Q EMC")

    def place(self, x: float, y: float, ops: str, fonts: frozenset[str]) -> None:
        """Operators built for the origin (e.g. cached template text), moved to (x, y).

        Cached operators carry no marked content: the element open here holds them.
        """
        self.end_text()
        if self._path is not None and not self._open:
            self._mark()
        self.ops.append(f"q 1 0 0 1 {x:.2f} {y:.2f} cm\n{ops}\nQ")
        self.fonts |= fonts

    def form(self, form: Form, x: float, y: float) -> None:
        """A Form XObject with its bottom-left corner at (x, y); its marks (MCIDs of its own
        stream) join the page's structure where it is placed."""
        self._suspend()
        self.ops.append(f"q 1 0 0 1 {x:.2f} {y:.2f} cm /{form.name} Do Q")
        self.forms[form.name] = form
        self.fonts |= form.fonts
        if form.marks:
            self.marks.append(Placed(form.name, form.marks))

    def image(self, image: Image, x: float, y: float, width: float, height: float, *,
              alt: str | None = None) -> None:
        """An image XObject scaled into the box with its bottom-left corner at (x, y): a
        Figure with `alt` as its alternative text, else an artifact."""
        self._suspend()
        draw = f"q {width:.2f} 0 0 {height:.2f} {x:.2f} {y:.2f} cm /{image.name} Do Q"
        if alt is None:
            self.ops.append(f"/Artifact BMC {draw} EMC")
        else:
            self.ops.append(f"/Figure <</MCID {self.mcid}>> BDC {draw} EMC")
            self.marks.append((self.mcid, ((Tag("Figure", alt), "Figure"),)))
            self.mcid += 1
        self.images[image.name] = image

    def end_text(self) -> None:
        if self._in_text:
            self.ops.append("ET")
            self._in_text = False
            self._font = self._color = None

    def finish(self) -> bytes:
        self.end()
        return "\n".join(self.ops).encode("latin-1")

    def rule(self, color: str, x1: float, y: float, x2: float, thickness: float) -> None:
        self.graphics(f"{color} RG {thickness:.2f} w {x1:.2f} {y:.2f} m {x2:.2f} {y:.2f} l S")

    def round_rect(self, color: str, x: float, y: float, width: float, height: float,
                   radius: float) -> None:
        """A filled rectangle with rounded corners (Bezier arcs, k = 0.5523)."""
        r = min(radius, width / 2, height / 2)
        c = r * 0.4477  # distance from the corner to the Bezier control points
        x2, y2 = x + width, y + height
        self.graphics(
            f"{color} rg {x + r:.2f} {y:.2f} m {x2 - r:.2f} {y:.2f} l "
            f"{x2 - c:.2f} {y:.2f} {x2:.2f} {y + c:.2f} {x2:.2f} {y + r:.2f} c "
            f"{x2:.2f} {y2 - r:.2f} l {x2:.2f} {y2 - c:.2f} {x2 - c:.2f} {y2:.2f} "
            f"{x2 - r:.2f} {y2:.2f} c {x + r:.2f} {y2:.2f} l {x + c:.2f} {y2:.2f} "
            f"{x:.2f} {y2 - c:.2f} {x:.2f} {y2 - r:.2f} c {x:.2f} {y + r:.2f} l "
            f"{x:.2f} {y + c:.2f} {x + c:.2f} {y:.2f} {x + r:.2f} {y:.2f} c f")


@dataclass(frozen=True, slots=True)
class Form:
    """A Form XObject: operators drawn and compressed once, placed by many statements."""

    name: str
    data: bytes  # Flate-compressed content
    width: float
    height: float
    fonts: frozenset[str]
    marks: tuple[Mark, ...] = ()  # MCIDs of its own stream (pipeline.render.pdf.structure)


@dataclass(frozen=True, slots=True)
class Image:
    """A JPEG placed as an image XObject (DCTDecode: the file's bytes are the stream)."""

    name: str
    data: bytes
    width: int
    height: int
    color_space: str  # DeviceRGB or DeviceGray


_JPEG_FRAMES = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def read_jpeg(path: Path, name: str) -> Image:
    """Size and colour space from the JPEG's frame header; ValueError if it is not usable."""
    data = path.read_bytes()
    if data[:2] != b"\xff\xd8":
        raise ValueError("not a JPEG file")
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            raise ValueError("malformed JPEG marker")
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2:index + 4], "big")
        if marker in _JPEG_FRAMES:
            height = int.from_bytes(data[index + 5:index + 7], "big")
            width = int.from_bytes(data[index + 7:index + 9], "big")
            components = data[index + 9]
            spaces = {1: "DeviceGray", 3: "DeviceRGB"}
            if components not in spaces or not width or not height:
                raise ValueError("JPEG must be RGB or grayscale")
            return Image(name, data, width, height, spaces[components])
        index += 2 + length
    raise ValueError("no JPEG frame header")
