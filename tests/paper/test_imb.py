"""The Intelligent Mail barcode a print vendor puts on each envelope scans back to its fields.

The decoder below is written from USPS-B-3200 (sections 2.2 and 2.3, Appendix D), not from
reportlab: the n-of-13 tables by the specification's enumeration, the bar-to-character table as
the specification prints it, and the frame check sequence as its CRC-11. The four published
examples (tracking 01234567094987654321 with each routing length) pin the table down: a wrong
entry would change at least one of their 260 bars.
"""

from __future__ import annotations

import io
import re

import pytest
from reportlab.lib.units import inch
from reportlab.pdfgen.canvas import Canvas

from pipeline.paper.imb import ImbError, ImbFields, bar_states, draw_imb, serial_for, tracking_code

# USPS-B-3200, the bar-to-character mapping: for each bar, left to right, the descender comes
# from character X bit n and the ascender from character Y bit m ("H2E3": descender H bit 2,
# ascender E bit 3). Characters A-J, bits 0-12.
BAR_TABLE = """
H2E3 B10A0 J12C8 F5G11 I9D1 A1F12 C5B8 E4J11 G3I10 D9H6 F11B4 I5C12 J10A2 H1G7 D6E9 A3I6 G4C7
B1J9 H10F2 E0D8 G2A4 I11B0 J8D12 C6H7 F1E10 B12G9 H3I0 F8J7 E6C10 D4A5 I4F7 H11B9 G0J6 A6E8
C1D2 F9I12 E11G1 J5H4 D3B2 A7C0 B3E1 G10D5 I7J4 C11F6 A8H12 E2I1 F10D0 J3A9 G5C4 H8B7 F0E5
C3A10 G12J2 D11B6 I8H9 F4A11 B5C2 J1E12 I3G6 H0D7 E7H5 A12B11 C9J0 G8F3 D10I2
"""

# USPS-B-3200's published examples: tracking code 01234567094987654321 with each routing length.
PUBLISHED = {
    "": "ATTFATTDTTADTAATTDTDTATTDAFDDFADFDFTFFFFFTATFAAAATDFFTDAADFTFDTDT",
    "01234": "DTTAFADDTTFTDTFTFDTDDADADAFADFATDDFTAAAFDTTADFAAATDFDTDFADDDTDFFT",
    "012345678": "ADFTTAFDTTTTFATTADTAAATFTFTATDAAAFDDADATATDTDTTDFDTDATADADTDFFTFA",
    "01234567891": "AADTFFDFTDADTAADAATFDTDDAAADDTDTTDAFADADDDTFFFDDTTTADFAAADFTDAADA",
}


def _bar_map() -> list[tuple[int, int, int, int]]:
    entries = re.findall(r"([A-J])(\d+)([A-J])(\d+)", BAR_TABLE)
    return [(ord(d) - 65, int(db), ord(a) - 65, int(ab)) for d, db, a, ab in entries]


def _reverse13(value: int) -> int:
    return int(f"{value:013b}"[::-1], 2)


def _n_of_13(n: int) -> list[int]:
    """USPS-B-3200's table: counting up, each n-bit value not yet seen goes at the bottom with its
    bit-reversal after it; a value that is its own reversal goes at the top, filling downward."""
    pairs: list[int] = []
    palindromes: list[int] = []
    for value in range(1 << 13):
        if bin(value).count("1") != n or _reverse13(value) < value:
            continue
        if _reverse13(value) == value:
            palindromes.append(value)
        else:
            pairs += [value, _reverse13(value)]
    return pairs + palindromes[::-1]


TABLE_5 = _n_of_13(5)
TABLE_2 = _n_of_13(2)


def _crc11(value: int) -> int:
    """The frame check sequence over the 102-bit binary value, most significant bit first:
    generator 0xF35, initial 0x7FF (USPS-B-3200 2.2.2)."""
    fcs = 0x7FF
    for position in range(101, -1, -1):
        bit = (value >> position) & 1
        fcs = ((fcs << 1) ^ 0xF35 if (fcs >> 10) ^ bit else fcs << 1) & 0x7FF
    return fcs


def decode(bars: str) -> tuple[str, str]:
    """Bars → characters → codewords → binary value → (tracking code, routing ZIP)."""
    assert len(bars) == 65 and set(bars) <= set("FADT")
    characters = [0] * 10
    for bar, (dc, db, ac, ab) in zip(bars, _bar_map(), strict=True):
        characters[dc] |= (bar in "FD") << db
        characters[ac] |= (bar in "FA") << ab
    fcs = 0
    codewords = []
    for i, character in enumerate(characters):
        if bin(character).count("1") in (8, 11):  # inverted: this character carries FCS bit i
            fcs |= 1 << i
            character ^= 0x1FFF
        if character in TABLE_5:
            codewords.append(TABLE_5.index(character))
        else:
            codewords.append(len(TABLE_5) + TABLE_2.index(character))
    assert codewords[9] % 2 == 0, "orientation: codeword J must be even"
    codewords[9] //= 2
    if codewords[0] >= 659:
        fcs |= 1 << 10
        codewords[0] -= 659
    value = codewords[0]
    for codeword in codewords[1:9]:
        value = value * 1365 + codeword
    value = value * 636 + codewords[9]
    assert _crc11(value) == fcs, "frame check sequence does not match"

    digits = []
    for _ in range(18):
        value, digit = divmod(value, 10)
        digits.append(str(digit))
    value, second = divmod(value, 5)
    value, first = divmod(value, 10)
    tracking = f"{first}{second}" + "".join(reversed(digits))
    if value == 0:
        routing = ""
    elif value <= 100_000:
        routing = f"{value - 1:05d}"
    elif value <= 1_000_100_000:
        routing = f"{value - 100_001:09d}"
    else:
        routing = f"{value - 1_000_100_001:011d}"
    return tracking, routing


def decode_fields(bars: str) -> ImbFields:
    tracking, routing = decode(bars)
    mailer_width = 9 if tracking[5] == "9" else 6
    return ImbFields(tracking[:2], tracking[2:5], tracking[5:5 + mailer_width],
                     tracking[5 + mailer_width:], routing)


def test_the_bar_table_uses_each_character_bit_exactly_once() -> None:
    used = [(c, b) for dc, db, ac, ab in _bar_map() for c, b in ((dc, db), (ac, ab))]
    assert len(_bar_map()) == 65
    assert sorted(used) == [(c, b) for c in range(10) for b in range(13)]


def test_the_n_of_13_tables_have_the_specified_sizes() -> None:
    assert (len(TABLE_5), len(TABLE_2)) == (1287, 78)
    assert TABLE_5[:4] == [0x001F, 0x1F00, 0x002F, 0x1E80]


@pytest.mark.parametrize("routing", list(PUBLISHED))
def test_the_specifications_examples_encode_to_the_published_bars(routing: str) -> None:
    fields = ImbFields("01", "234", "567094", "987654321", routing)
    assert bar_states(fields) == PUBLISHED[routing]
    assert decode(PUBLISHED[routing]) == ("01234567094987654321", routing)


@pytest.mark.parametrize("fields", [
    ImbFields("00", "270", "123456", "000000001", ""),
    ImbFields("00", "310", "812345", "123456789", "60601"),
    ImbFields("14", "040", "000001", "999999999", "995011234"),
    ImbFields("53", "700", "901234567", "000042", "00601123456"),
    ImbFields("00", "270", "999999999", "999999", "99999999999"),
    ImbFields("04", "001", "900000000", "000000", "00000"),
], ids=["no-zip", "zip5", "zip9", "zip11-9digit-mid", "all-nines", "zeros"])
def test_a_barcode_scans_back_to_its_fields(fields: ImbFields) -> None:
    bars = bar_states(fields)
    assert len(bars) == 65
    assert decode_fields(bars) == fields
    assert decode(bars)[0] == tracking_code(fields)


def test_the_tracking_code_is_the_fields_in_order() -> None:
    assert tracking_code(ImbFields("01", "234", "567094", "987654321", "")) == "01234567094987654321"
    assert tracking_code(ImbFields("00", "300", "901234567", "000123", "")) == "00300901234567000123"


def _bars_on_the_page(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """Filled rectangles (x, y, w, h) in page coordinates, from an uncompressed page stream
    (translations only: `q`, `Q`, `1 0 0 1 tx ty cm`, `x y w h re`)."""
    offset, saved = (0.0, 0.0), []
    rects = []
    for line in pdf.decode("latin-1").splitlines():
        parts = line.split()
        if parts == ["q"]:
            saved.append(offset)
        elif parts == ["Q"]:
            offset = saved.pop()
        elif parts[-1:] == ["cm"]:
            offset = (offset[0] + float(parts[4]), offset[1] + float(parts[5]))
        elif "re" in parts:
            at = parts.index("re")
            x, y, w, h = (float(p) for p in parts[at - 4:at])
            rects.append((x + offset[0], y + offset[1], w, h))
    return rects


def test_the_drawn_barcode_has_usps_dimensions_and_scans_back() -> None:
    fields = ImbFields("00", "310", "812345", "000000042", "606011234")
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pageCompression=0)
    canvas.setFillColorRGB(1, 0, 0)  # the caller's colour must not leak into the bars
    draw_imb(canvas, 72, 100, fields)
    canvas.showPage()
    canvas.save()
    pdf = buffer.getvalue()
    rects = _bars_on_the_page(pdf)

    assert len(rects) == 65
    assert b"0 0 0 rg" in pdf
    xs = [r[0] for r in rects]
    pitches = [b - a for a, b in zip(xs, xs[1:], strict=False)]
    assert all(0.0416 * inch <= p <= 0.050 * inch for p in pitches)  # 20-24 bars per inch
    assert all(0.015 * inch <= r[2] <= 0.025 * inch for r in rects)
    assert 2.667 * inch <= xs[-1] + rects[-1][2] - xs[0] <= 3.225 * inch
    assert xs[0] >= 72 + 0.125 * inch  # the left clear zone is inside the drawing

    tops = [r[1] + r[3] for r in rects]
    bottoms = [r[1] for r in rects]
    mid = (max(tops) + min(bottoms)) / 2
    full = max(tops) - min(bottoms)
    assert 0.125 * inch <= full <= 0.165 * inch
    tracker = min(r[3] for r in rects)
    assert 0.039 * inch <= tracker <= 0.057 * inch
    drawn = "".join(
        {(True, True): "F", (True, False): "A", (False, True): "D", (False, False): "T"}[
            (top > mid + tracker, bottom < mid - tracker)]
        for top, bottom in zip(tops, bottoms, strict=True)
    )
    assert decode_fields(drawn) == fields


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"barcode_id": "05"}, "barcode_id"),
    ({"barcode_id": "1"}, "barcode_id"),
    ({"service_type": "27"}, "service_type"),
    ({"service_type": "27a"}, "service_type"),
    ({"mailer_id": "12345"}, "mailer_id"),
    ({"mailer_id": "912345"}, "mailer_id"),
    ({"mailer_id": "123456789", "serial": "000001"}, "mailer_id"),
    ({"serial": "000001"}, "serial"),
    ({"mailer_id": "912345678", "serial": "000000001"}, "serial"),
    ({"routing_zip": "6060"}, "routing_zip"),
    ({"routing_zip": "6060112345"}, "routing_zip"),
    ({"routing_zip": "60601-1234"}, "routing_zip"),
])
def test_invalid_fields_are_refused_naming_the_field(kwargs: dict[str, str], field: str) -> None:
    good = {"barcode_id": "00", "service_type": "270", "mailer_id": "123456",
            "serial": "000000001", "routing_zip": "60601"}
    with pytest.raises(ImbError) as caught:
        ImbFields(**(good | kwargs))
    assert caught.value.field == field
    assert repr(field) in str(caught.value)


def test_a_bad_routing_zip_is_not_repeated_in_the_message() -> None:
    with pytest.raises(ImbError) as caught:
        ImbFields("00", "270", "123456", "000000001", "8675309")
    assert "8675309" not in str(caught.value)
    assert "ZIP code" in str(caught.value)


def test_serials_are_padded_and_never_wrap() -> None:
    assert serial_for(42, 9) == "000000042"
    assert serial_for(999_999, 6) == "999999"
    with pytest.raises(ImbError, match="does not fit in 6 digits"):
        serial_for(1_000_000, 6)
    with pytest.raises(ImbError):
        serial_for(-1, 9)
    with pytest.raises(ImbError, match="6 or 9"):
        serial_for(1, 7)


def test_the_decoder_notices_a_misprinted_bar() -> None:
    bars = PUBLISHED["01234567891"]
    for position in (0, 31, 64):
        wrong = {"F": "T", "T": "F", "A": "D", "D": "A"}[bars[position]]
        with pytest.raises((AssertionError, ValueError)):
            decode(bars[:position] + wrong + bars[position + 1:])
