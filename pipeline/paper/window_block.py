"""The mail-ready address block, stamped into the recipient window of page 1 when a piece is batched.

Why at batching and not at rendering: the address a piece is mailed to is the one checked and
USPS-standardised on the batch day (`prepare_address`), and the Intelligent Mail barcode carries
the serial the piece gets in its batch; neither is known when the statement is rendered. So the
print variant leaves the window empty (`pipeline.render.eob.furniture.RECIPIENT_KEEP_OUT`) and
`address_block` returns the operators that fill it, which the batch writer appends to the
piece's first page as a content stream of its own (`BatchPdfWriter.add(..., overlay=...)`).

What is drawn, top down, inside the window shrunk by `WINDOW_CLEARANCE` (1/8 in) on every side
so that a letter moving in its envelope never hides a part of it: an optional endorsement line
(e.g. ADDRESS SERVICE REQUESTED, 8 pt), the barcode at USPS-B-3200's nominal dimensions with
its clear zone, then the address lines in Noto Sans at the largest of 10, 9.5 or 9 pt that fits.
A block that does not fit at 9 pt is refused with `AddressBlockTooLarge`, never cut or shrunk
further: a cut line can send the statement to the wrong door, and smaller type reads worse on
USPS's address readers.

The operators are built as text for the same reason as the render engine's (it is the cheapest
way in Python); they are uncompressed and wrapped in ``q … Q`` so that nothing leaks out. The
font is the print variant's ``/F1`` resource, the embedded base subset of Noto Sans Regular
(`pipeline.render.fonts`), which holds every printable ASCII glyph: strings are its glyph ids
(Identity-H). The batch writer refuses a piece whose first page does not carry it.

The block is laid out by ink, as the vendor's equipment sees it: a line's ink reaches as far
above and below its baseline as the highest and deepest printable ASCII glyph of the face that
draws it, and as far left and right as the glyph overhanging its box most (`ink_extent`, read
from the font's outlines: Noto Sans "`" 0.766 and "|" 0.241 of the size, "J" 0.078 left), so
no part of a line enters the barcode's clear zone or the clearance. (PDF readers draw a word's
box from the font's line metrics, taller than its ink.)

Messages never carry the address: it is PHI.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache

from reportlab.lib.units import inch

from pipeline.paper.addresses import MailingAddress
from pipeline.paper.imb import ImbFields, bar_states
from pipeline.render import fonts
from pipeline.render.canvas import PAGE_HEIGHT
from pipeline.render.eob.furniture import RECIPIENT_WINDOW, WINDOW_CLEARANCE
from pipeline.render.fonts import FONT_IDS, REGULAR
from pipeline.render.pdf.fontfile import Ink
from pipeline.render.text import pdf_string, text_width

__all__ = ["ADDRESS_SIZES", "AddressBlockTooLarge", "ImbGeometry", "IMB", "address_block",
           "block_area"]

ADDRESS_SIZES = (10.0, 9.5, 9.0)
"""Address line sizes tried, largest first. 9 pt is the floor: a block that would need smaller
type is refused, not shrunk."""
ENDORSEMENT_SIZE = 8.0
LEADING = 1.1  # address line pitch, as a multiple of the size
FONT = FONT_IDS[REGULAR]


PRINTABLE = "".join(chr(code) for code in range(33, 127))
"""What an address line may hold (`_printable`), the space aside."""


@cache
def ink_extent() -> Ink:
    """How far a line's ink reaches beyond its baseline and its advance widths, as multiples
    of the size: the printable ASCII glyphs of the face that draws the address."""
    return fonts.face(REGULAR).ink(PRINTABLE)


fonts.on_change(ink_extent.cache_clear)
_ACTION = ("correct the member's mailing address (it must be prepared with prepare_address and "
           "fit the envelope window: shorter lines or fewer of them), then re-queue the statement "
           "for paper")


class AddressBlockTooLarge(ValueError):
    """The block cannot be printed in the window as it is; `field` names what to correct.

    Raised for a block that does not fit at the smallest size and for text that is not the
    upper-case ASCII of a standardised address. The message names the field and the measure,
    never the text.
    """

    def __init__(self, field: str, problem: str, action: str = _ACTION) -> None:
        super().__init__(f"address block refused: {field} {problem}; {action}")
        self.field = field


@dataclass(frozen=True, slots=True)
class ImbGeometry:
    """USPS-B-3200's nominal bar dimensions, in points, and the clear zone around the bars."""

    bar_width: float = 0.020 * inch
    pitch: float = inch / 22  # 22 bars to the inch
    full: float = 0.145 * inch
    tracker: float = 0.048 * inch
    clear_x: float = 0.125 * inch  # left and right of the bars
    clear_y: float = 0.028 * inch  # above and below
    bars: int = 65

    @property
    def zone(self) -> tuple[float, float]:
        """Width and height of the bars with their clear zone."""
        return ((self.bars - 1) * self.pitch + self.bar_width + 2 * self.clear_x,
                self.full + 2 * self.clear_y)

    def extents(self) -> dict[str, tuple[float, float]]:
        """Per state, (bottom, height) from the bars' centre line: the ascender reaches from the
        tracker's bottom to a full bar's top, the descender from a full bar's bottom to the
        tracker's top."""
        half_full, half_tracker = self.full / 2, self.tracker / 2
        rise = half_full + half_tracker
        return {"F": (-half_full, self.full), "T": (-half_tracker, self.tracker),
                "A": (-half_tracker, rise), "D": (-half_full, rise)}


IMB = ImbGeometry()
_EXTENTS = IMB.extents()


def block_area() -> tuple[float, float, float, float]:
    """Where the block may draw, in PDF points from the bottom-left: (left, bottom, right, top):
    the recipient window shrunk by the clearance on every side."""
    x, top, width, height = RECIPIENT_WINDOW
    return (x + WINDOW_CLEARANCE, PAGE_HEIGHT - top - height + WINDOW_CLEARANCE,
            x + width - WINDOW_CLEARANCE, PAGE_HEIGHT - top - WINDOW_CLEARANCE)


def _printable(field: str, text: str) -> None:
    """Upper-case printable ASCII only: what `prepare_address` gives (every such glyph is in
    /F1's base subset). Anything else is an address that was not standardised."""
    if not text or not text.isascii() or not text.isprintable() or text != text.upper():
        raise AddressBlockTooLarge(
            field, "hold something other than non-empty upper-case ASCII (not a standardised "
            "address)")


def address_block(address: MailingAddress, imb: ImbFields | None, *,
                  endorsement: str = "") -> bytes:
    """The operators that draw the block in the recipient window of page 1 (``q … Q``).

    `imb` None leaves the barcode out; `endorsement` is a line above it (upper case, 8 pt).
    Raises `AddressBlockTooLarge` if the block does not fit the window at 9 pt or its text is
    not standardised upper-case ASCII, `ImbError` never (the fields are checked when built).
    """
    lines = address.lines
    if not lines:
        raise AddressBlockTooLarge("address lines", "are missing")
    for line in lines:
        _printable("address lines", line)
    if endorsement:
        _printable("endorsement", endorsement)
    left, bottom, right, top = block_area()
    width, height = right - left, top - bottom

    ink = ink_extent()
    ascent, descent = ink.top, ink.bottom
    overhang = ink.left + ink.right  # ink beyond the advance widths, left and right
    fixed = 0.0  # the height of what comes above the address lines
    if endorsement:
        if (text_width(endorsement, REGULAR, 1.0) + overhang) * ENDORSEMENT_SIZE > width:
            raise AddressBlockTooLarge(
                "endorsement", f"is wider than the window at {ENDORSEMENT_SIZE:g} pt",
                "use the USPS wording of the endorsement in the paper mail settings")
        fixed += ENDORSEMENT_SIZE * (ascent + descent)
    if imb is not None:
        zone_height = IMB.zone[1]
        fixed += zone_height
    widest = max(text_width(line, REGULAR, 1.0) for line in lines) + overhang
    for size in ADDRESS_SIZES:
        needed = fixed + (len(lines) - 1) * size * LEADING + size * (ascent + descent)
        if needed <= height and widest * size <= width:
            break
    else:
        size = ADDRESS_SIZES[-1]
        if widest * size > width:
            problem = (f"have a line {widest * size:.0f} pt wide at {size:g} pt, wider than the "
                       f"{width:.0f} pt the window holds inside its 1/8 in clearance")
        else:
            problem = (f"are {len(lines)} lines that need {needed:.0f} pt at {size:g} pt, more "
                       f"than the {height:.0f} pt the window holds inside its 1/8 in clearance")
        raise AddressBlockTooLarge("address lines", problem)

    # Centred vertically: the clearance left over is shared above and below.
    y = top - (height - needed) / 2
    ops = ["q 0 g"]
    text: list[str] = []
    if endorsement:
        y -= ENDORSEMENT_SIZE * (ascent + descent)
        text.append(_line(left + ink.left * ENDORSEMENT_SIZE, y + descent * ENDORSEMENT_SIZE,
                          endorsement, ENDORSEMENT_SIZE))
    if imb is not None:
        y -= zone_height
        ops.append(_bars(bar_states(imb), left + IMB.clear_x, y + zone_height / 2))
    baseline = y - ascent * size
    for line in lines:
        text.append(_line(left + ink.left * size, baseline, line, size))
        baseline -= size * LEADING
    ops.append("BT 0 Tc 0 Tw 100 Tz 0 Ts 0 Tr")  # the page's text state may be anything
    ops.extend(text)
    ops.append("ET Q\n")
    return "\n".join(ops).encode("latin-1")


def _line(x: float, baseline: float, text: str, size: float) -> str:
    return f"/{FONT} {size:g} Tf 1 0 0 1 {x:.3f} {baseline:.3f} Tm {pdf_string(text, REGULAR)} Tj"


def _bars(states: Sequence[str], x: float, centre: float) -> str:
    """One filled rectangle per bar, left to right, then a single fill."""
    table = _bar_table(round(x, 3), round(centre, 3))
    return "\n".join([table[index][state] for index, state in enumerate(states)]) + "\nf"


@lru_cache(maxsize=64)
def _bar_table(x: float, centre: float) -> tuple[dict[str, str], ...]:
    """Each bar position's rectangle in each of the four states. The block sits at one of a few
    heights (with or without endorsement, by size and line count), so formatting 65 rectangles
    of four numbers per piece, most of the block's cost, is done once per height."""
    width, pitch = IMB.bar_width, IMB.pitch
    return tuple({state: f"{x + index * pitch:.3f} {centre + bottom:.3f} {width:.3f} {height:.3f} re"
                  for state, (bottom, height) in _EXTENTS.items()} for index in range(IMB.bars))
