"""The address block stamped into the recipient window when a piece is batched, read back from
the batch as the vendor's equipment would: poppler's text boxes, poppler's pixels, and the bars
decoded to the barcode's fields by the decoder written from USPS-B-3200 (tests/paper/test_imb.py).
"""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pikepdf
import pytest
from PIL import ImageChops
from reportlab.lib.units import inch

from pipeline.model import Statement
from pipeline.paper.addresses import MailingAddress, prepare_address
from pipeline.paper.batches import BatchLimits, BatchRun, Piece, write_batches
from pipeline.paper.imb import ImbFields, bar_states, tracking_code
from pipeline.paper.window_block import (
    IMB,
    AddressBlockTooLarge,
    address_block,
    block_area,
    ink_extent,
)
from pipeline.render import render_statement
from pipeline.render.canvas import PAGE_HEIGHT
from pipeline.render.eob.furniture import RECIPIENT_WINDOW
from pipeline.render.fonts import REGULAR, face
from tests.paper.test_imb import decode_fields
from tests.render.test_eob import page_pixels, sheet_box, words_with_boxes
from tests.support.canary import CANARY_FIRST, CANARY_LAST, CANARY_STREET
from tests.support.factories import make_member, make_statement

needs_tools = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("qpdf", "pdftotext", "pdftoppm")),
    reason="needs qpdf and poppler-utils (.ci/system-packages.txt)")

DAY = "2026-12-06"
ENDORSEMENT = "ADDRESS SERVICE REQUESTED"
CLEARANCE = 0.125 * inch
DPI = 150


def inner_window() -> tuple[float, float, float, float]:
    """The recipient window shrunk by 1/8 in on every side: (left, bottom, right, top) in points."""
    left, bottom, right, top = sheet_box(RECIPIENT_WINDOW)
    return left + CLEARANCE, bottom + CLEARANCE, right - CLEARANCE, top - CLEARANCE


def mailing_address(statement: Statement) -> MailingAddress:
    member = statement.member
    return prepare_address(f"{member.first_name} {member.last_name}", member.address_line1,
                           member.address_line2, member.city, member.state, member.postal_code)


def imb_fields(address: MailingAddress, serial: str) -> ImbFields:
    return ImbFields(barcode_id="00", service_type="270", mailer_id="123456", serial=serial,
                     routing_zip=address.zip5 + address.zip4)


def stamped_batch(statements: Sequence[Statement], folder: Path, *,
                  endorsement: str = ENDORSEMENT) -> tuple[BatchRun, dict[str, MailingAddress]]:
    """The statements' print variants batched with the address block stamped, as the paper stage
    would: the address checked and standardised today, the barcode with the piece's serial."""
    files = {s.statement_id: render_statement(s, variant="print").pdf for s in statements}
    addresses = {s.statement_id: mailing_address(s) for s in statements}
    pieces = [Piece(sid, "first", a.lines, a.zip5, a.zip4) for sid, a in addresses.items()]

    def stamp(piece: Piece, serial: str) -> bytes:
        address = addresses[piece.statement_id]
        return address_block(address, imb_fields(address, serial), endorsement=endorsement)

    run = write_batches(pieces, lambda p: files[p.statement_id], folder, day=DAY,
                        limits=BatchLimits(), serial=lambda batch, seq: f"{batch:03d}{seq:06d}",
                        stamp=stamp)
    return run, addresses


def manifest(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def overlay_bars(pdf: Path, page: int) -> list[tuple[float, float, float, float]]:
    """The filled rectangles of the stamp on a page: the last stream of its /Contents array."""
    with pikepdf.open(pdf) as document:
        contents = document.pages[page - 1].obj.Contents
        assert isinstance(contents, pikepdf.Array) and len(contents) == 2, "[page, overlay]"
        operators = pikepdf.parse_content_stream(contents[1])
        return [tuple(float(v) for v in ins.operands) for ins in operators  # type: ignore[misc]
                if str(ins.operator) == "re"]


def states_of(rects: Sequence[tuple[float, float, float, float]]) -> str:
    """F, A, D or T for each bar, by whether it reaches above and below the tracker."""
    tops = [y + h for _, y, _, h in rects]
    bottoms = [y for _, y, _, _ in rects]
    middle = (max(tops) + min(bottoms)) / 2
    half_tracker = min(h for *_, h in rects) / 2
    return "".join({(True, True): "F", (True, False): "A", (False, True): "D", (False, False): "T"}[
        (top > middle + half_tracker + 0.1, bottom < middle - half_tracker - 0.1)]
        for top, bottom in zip(tops, bottoms, strict=True))


def ink_outside_bars(pdf: Path, page: int, zone: tuple[float, float, float, float],
                     rects: Sequence[tuple[float, float, float, float]]) -> int:
    """Dark pixels of a page inside `zone` (left, bottom, right, top) but off every bar (one
    pixel of anti-aliasing allowed around each)."""
    pixels = page_pixels(pdf, page, DPI)
    left, upper, right, lower = to_pixels(*zone)
    bars = [to_pixels(x, y, x + w, y + h) for x, y, w, h in rects]
    return sum(1 for px in range(left + 1, right - 1) for py in range(upper + 1, lower - 1)
               if pixels.getpixel((px, py)) < 128
               and not any(b[0] - 1 <= px <= b[2] + 1 and b[1] - 1 <= py <= b[3] + 1 for b in bars))


def to_pixels(left: float, bottom: float, right: float, top: float) -> tuple[int, int, int, int]:
    """A box in PDF points as the pixel box (left, upper, right, lower) of a page at DPI."""
    scale = DPI / 72
    return (math.floor(left * scale), math.floor((PAGE_HEIGHT - top) * scale),
            math.ceil(right * scale), math.ceil((PAGE_HEIGHT - bottom) * scale))


@needs_tools
def test_the_address_lines_are_in_the_window_inside_its_clearance_and_nothing_else_is(
        tmp_path: Path) -> None:
    statements = [make_statement(),
                  make_statement(member=make_member(member_id="M000000002", address_line1="1 Main St",
                                                    address_line2="C/O Sam Example Trust Office"))]
    run, addresses = stamped_batch(statements, tmp_path)
    [batch] = run.batches
    assert not run.set_aside
    check = subprocess.run(["qpdf", "--check", str(batch.pdf)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    left, bottom, right, top = inner_window()
    assert block_area() == pytest.approx(inner_window())
    w_left, w_bottom, w_right, w_top = sheet_box(RECIPIENT_WINDOW)
    page = 1
    for row in manifest(batch.manifest):
        address = addresses[row["statement_id"]]
        assert len(address.lines) == (3 if row["address_line_2"] == "" else 4)
        words = words_with_boxes(batch.pdf, page)
        expected = [*ENDORSEMENT.split(), *" ".join(address.lines).split()]
        in_window = [w for w in words
                     if w[1] < w_right + CLEARANCE and w[3] > w_left - CLEARANCE
                     and w[2] < w_top + CLEARANCE and w[4] > w_bottom - CLEARANCE]
        assert [w[0] for w in in_window] == expected, "the block, and only the block, in the window"
        # poppler's word boxes are as tall as the font's line metrics (Noto Sans: 1.36 of
        # the size), taller than the ink: across, they must keep the clearance; up and down,
        # the ink does (the pixels, in the test below)
        for _, x0, _, x1, _ in in_window:
            assert left <= x0 and x1 <= right, "1/8 in clearance"
        page += int(row["pages"])


@needs_tools
def test_poppler_draws_the_bars_in_the_window_and_nothing_of_the_block_outside_it(
        tmp_path: Path) -> None:
    statement = make_statement()
    run, addresses = stamped_batch([statement], tmp_path)
    [batch] = run.batches
    piece = tmp_path / "piece.pdf"
    piece.write_bytes(render_statement(statement, variant="print").pdf)
    stamped, unstamped = page_pixels(batch.pdf, 1, DPI), page_pixels(piece, 1, DPI)

    # What the stamp added, pixel by pixel, lies inside the window shrunk by its clearance
    # (one pixel of anti-aliasing allowed), and there is some of it.
    added = ImageChops.difference(stamped, unstamped).point(lambda v: 255 if v > 32 else 0)
    changed = added.getbbox()
    assert changed is not None, "the stamp drew nothing"
    area = to_pixels(*inner_window())
    assert (changed[0] >= area[0] - 1 and changed[1] >= area[1] - 1
            and changed[2] <= area[2] + 1 and changed[3] <= area[3] + 1), (changed, area)
    # ... and the unstamped page left the whole window and its clearance blank for it
    x, from_top, width, height = RECIPIENT_WINDOW
    zone = to_pixels(*sheet_box((x - CLEARANCE, from_top - CLEARANCE, width + 2 * CLEARANCE,
                                 height + 2 * CLEARANCE)))
    inner_zone = (zone[0] + 1, zone[1] + 1, zone[2] - 1, zone[3] - 1)
    assert unstamped.crop(inner_zone).getextrema() == (255, 255)

    # Along the bars' centre line (every state crosses it) there are 65 dark runs: the bars.
    rects = overlay_bars(batch.pdf, 1)
    middle = (max(y + h for _, y, _, h in rects) + min(y for _, y, _, _ in rects)) / 2
    row_y = round((PAGE_HEIGHT - middle) * DPI / 72)
    row = [stamped.getpixel((px, row_y)) for px in range(area[0], area[2])]
    starts = [i for i, v in enumerate(row) if v < 128 and (i == 0 or row[i - 1] >= 128)]
    assert len(starts) == 65, len(starts)

    # The bars read from the pixels: how far each reaches above and below the centre line
    # (a tracker 0.024 in, a full bar 0.0725 in each way).
    threshold = (IMB.tracker + IMB.full) / 4 * DPI / 72
    pixel_states = []
    for start in starts:
        px = area[0] + start + 1
        up = next(d for d in range(60) if stamped.getpixel((px, row_y - d - 1)) >= 128)
        down = next(d for d in range(60) if stamped.getpixel((px, row_y + d + 1)) >= 128)
        pixel_states.append({(True, True): "F", (True, False): "A", (False, True): "D",
                             (False, False): "T"}[(up > threshold, down > threshold)])
    address = addresses[statement.statement_id]
    [row_of_manifest] = manifest(batch.manifest)
    assert "".join(pixel_states) == bar_states(imb_fields(address, row_of_manifest["imb_serial"]))


def test_the_bars_decode_to_the_pieces_fields_with_usps_dimensions_and_clear_zone(
        tmp_path: Path) -> None:
    statements = [make_statement(member=make_member(member_id=f"M{n:09d}")) for n in range(3)]
    run, addresses = stamped_batch(statements, tmp_path)
    [batch] = run.batches
    page = 1
    serials = set()
    for row in manifest(batch.manifest):
        rects = overlay_bars(batch.pdf, page)
        fields = imb_fields(addresses[row["statement_id"]], row["imb_serial"])
        assert len(rects) == 65
        assert states_of(rects) == bar_states(fields)
        assert decode_fields(states_of(rects)) == fields  # the manifest's serial is the barcode's
        assert tracking_code(fields).endswith(row["imb_serial"])
        serials.add(row["imb_serial"])

        xs = [r[0] for r in rects]
        assert all(abs((b - a) - inch / 22) < 0.002 for a, b in zip(xs, xs[1:], strict=False))
        assert all(abs(r[2] - 0.020 * inch) < 0.002 for r in rects)
        assert abs(max(r[1] + r[3] for r in rects) - min(r[1] for r in rects) - 0.145 * inch) < 0.002
        assert abs(min(r[3] for r in rects) - 0.048 * inch) < 0.002
        # the clear zone (1/8 in left and right, 0.028 in above and below) is inside the
        # window's clearance, and no text enters it
        zone = (min(xs) - 0.125 * inch, min(r[1] for r in rects) - 0.028 * inch,
                max(xs) + 0.020 * inch + 0.125 * inch, max(r[1] + r[3] for r in rects) + 0.028 * inch)
        left, bottom, right, top = inner_window()
        assert left - 0.001 <= zone[0] and zone[2] <= right + 0.001
        assert bottom - 0.001 <= zone[1] and zone[3] <= top + 0.001
        if shutil.which("pdftoppm"):  # no ink of the text in the clear zone: only the bars
            assert ink_outside_bars(batch.pdf, page, zone, rects) == 0
        page += int(row["pages"])
    assert len(serials) == 3, "one serial per piece"


def test_the_stamped_batch_is_the_same_bytes_on_a_rerun(tmp_path: Path) -> None:
    statements = [make_statement(member=make_member(member_id=f"M{n:09d}")) for n in range(3)]
    first, _ = stamped_batch(statements, tmp_path / "a")
    again, _ = stamped_batch(list(reversed(statements)), tmp_path / "b")
    assert first.batches[0].pdf.read_bytes() == again.batches[0].pdf.read_bytes()


def test_the_operators_are_balanced_and_use_the_print_variants_f1_embedded_noto_sans() -> None:
    """Before: literal WinAnsi strings for a Helvetica /F1; now glyph ids of the embedded
    Noto Sans subset, read back as the address (parentheses and backslashes need no escape)."""
    lines = ("PAT O'NEIL (TRUSTEE)", "C/O A\\B", "12 MAIN ST", "SPRINGFIELD IL 62704")
    address = MailingAddress(lines, "SPRINGFIELD", "IL", "62704", "")
    ops = address_block(address, None)
    assert ops.startswith(b"q ") and ops.rstrip().endswith(b"Q")
    assert b" re" not in ops, "no barcode without fields"
    assert set(re.findall(rb"/(\w+) [\d.]+ Tf", ops)) == {b"F1"}
    regular = face(REGULAR)
    shown = [bytes.fromhex(code.decode()) for code in re.findall(rb"<([0-9a-f]+)> Tj", ops)]
    by_gid = {gid: char for char, gid in regular.glyphs.items()}
    read = ["".join(by_gid[int.from_bytes(text[i:i + 2], "big")] for i in range(0, len(text), 2))
            for text in shown]
    assert read == list(lines)
    print_variant = render_statement(make_statement(), variant="print").pdf
    with pikepdf.open(io.BytesIO(print_variant)) as pdf:
        font = pdf.pages[0].Resources.Font.F1
        assert str(font.BaseFont).endswith("+NotoSans-Regular")
        assert str(font.Encoding) == "/Identity-H"
        assert "/FontFile2" in font.DescendantFonts[0].FontDescriptor, "embedded"


def test_the_block_is_laid_out_with_the_embedded_fonts_ink_extent() -> None:
    """Before: Helvetica's ink heights (0.775, 0.225) as constants, so Noto Sans's deeper "|"
    and "," could reach into the barcode's clear zone; now read from the font's outlines."""
    ascent, descent, overhang, _ = ink_extent()
    regular = face(REGULAR)
    assert 0.7 < ascent < 1 and 0.2 < descent < 0.3 and overhang > 0
    assert (ascent, descent) == regular.ink("`|")[:2]  # Noto Sans's highest and deepest ASCII
    assert overhang == regular.ink("J").left  # "J" reaches left of its box
    address = MailingAddress(("JORDAN ALVAREZ", "1428 MAPLE AVE APT 3B", "SPRINGFIELD IL 62704"),
                             "SPRINGFIELD", "IL", "62704", "1185")
    ops = address_block(address, imb_fields(address, "000000001"), endorsement=ENDORSEMENT)
    left, bottom, right, top = block_area()
    placed = [(float(size), float(y)) for size, y in re.findall(
        rb"/F1 ([\d.]+) Tf 1 0 0 1 [\d.]+ ([\d.]+) Tm", ops)]
    bars = [float(y) + float(h) for y, h in re.findall(rb"[\d.]+ ([\d.]+) [\d.]+ ([\d.]+) re", ops)]
    zone_top = max(bars) + IMB.clear_y
    zone_bottom = min(float(y) for y in re.findall(rb"[\d.]+ ([\d.]+) [\d.]+ [\d.]+ re", ops)) - IMB.clear_y
    (end_size, end_y), *address_lines = placed
    assert end_y - descent * end_size >= zone_top - 1e-3  # the endorsement, above the bars
    assert end_y + ascent * end_size <= top + 1e-3
    for size, y in address_lines:
        assert y + ascent * size <= zone_bottom + 1e-3
        assert y - descent * size >= bottom - 1e-3


CANARIES = [CANARY_FIRST.upper(), CANARY_LAST.upper(), CANARY_STREET.upper(), "CANARYWHARF"]


@pytest.mark.parametrize(("lines", "endorsement", "field"), [
    # five lines: more than the window holds at 9 pt with the barcode
    ((f"{CANARY_FIRST} {CANARY_LAST}".upper(), "ATTN CANARYWHARF DESK", "C/O CANARYPHI TRUST",
      CANARY_STREET.upper(), "SPRINGFIELD IL 62704-1185"), "", "address lines"),
    # four lines fit without the endorsement, not with it
    ((f"{CANARY_FIRST} {CANARY_LAST}".upper(), "C/O CANARYPHI TRUST", CANARY_STREET.upper(),
      "SPRINGFIELD IL 62704-1185", "CANARYWHARF"), ENDORSEMENT, "address lines"),
    # a line wider than the window at 9 pt (40 wide capitals)
    ((f"{CANARY_FIRST} {CANARY_LAST}".upper(), "W" * 20 + "CANARYWHARF" + "M" * 9,
      "SPRINGFIELD IL 62704"), "", "address lines"),
    # not standardised: lower case, non-ASCII, a control character
    ((f"{CANARY_FIRST} {CANARY_LAST}", CANARY_STREET.upper(), "SPRINGFIELD IL 62704"), "",
     "address lines"),
    ((f"{CANARY_FIRST} {CANARY_LAST} NUÑEZ".upper(), CANARY_STREET.upper(), "SPRINGFIELD IL 62704"),
     "", "address lines"),
    ((f"{CANARY_FIRST}\t{CANARY_LAST}".upper(), CANARY_STREET.upper(), "SPRINGFIELD IL 62704"),
     "", "address lines"),
    ((), "", "address lines"),
    ((f"{CANARY_FIRST} {CANARY_LAST}".upper(), CANARY_STREET.upper(), "SPRINGFIELD IL 62704"),
     "Address Service Requested", "endorsement"),
])
def test_a_block_that_cannot_be_printed_whole_is_refused_without_the_address_in_the_message(
        lines: tuple[str, ...], endorsement: str, field: str) -> None:
    address = MailingAddress(lines, "SPRINGFIELD", "IL", "62704", "1185")
    with pytest.raises(AddressBlockTooLarge) as caught:
        address_block(address, imb_fields(address, "000000001"), endorsement=endorsement)
    message = str(caught.value)
    assert caught.value.field == field and message.startswith(f"address block refused: {field} ")
    assert "re-queue" in message or "settings" in message, "it says what to do"
    for canary in [*CANARIES, "62704", "1185", "NUÑEZ"]:
        assert canary.lower() not in message.lower(), canary
    assert isinstance(caught.value, ValueError)


def test_the_largest_size_that_fits_is_used_and_nine_points_is_the_floor() -> None:
    four = MailingAddress(("JORDAN ALVAREZ", "C/O SAM EXAMPLE", "1428 MAPLE AVE APT 3B",
                           "SPRINGFIELD IL 62704-1185"), "SPRINGFIELD", "IL", "62704", "1185")
    three = MailingAddress(four.lines[:1] + four.lines[2:], "SPRINGFIELD", "IL", "62704", "1185")
    fields = imb_fields(four, "000000001")

    def sizes(address: MailingAddress, endorsement: str) -> set[bytes]:
        return set(re.findall(rb"/F1 ([\d.]+) Tf", address_block(address, fields,
                                                                 endorsement=endorsement)))

    assert sizes(four, "") == {b"10"}
    assert sizes(three, ENDORSEMENT) == {b"8", b"10"}  # the endorsement is 8 pt
    assert sizes(four, ENDORSEMENT) == {b"8", b"9"}, "four lines, barcode and endorsement: 9 pt"


def test_a_piece_whose_block_is_refused_is_set_aside_and_the_others_are_batched(
        tmp_path: Path) -> None:
    statements = [make_statement(member=make_member(member_id=f"M{n:09d}")) for n in range(3)]
    files = {s.statement_id: render_statement(s, variant="print").pdf for s in statements}
    addresses = {s.statement_id: mailing_address(s) for s in statements}
    refused = statements[1].statement_id
    addresses[refused] = MailingAddress(("W" * 40, *addresses[refused].lines[1:]), "SPRINGFIELD",
                                        "IL", "62704", "1185")
    pieces = [Piece(sid, "first", a.lines, a.zip5, a.zip4) for sid, a in addresses.items()]
    calls: list[tuple[str, str]] = []

    def stamp(piece: Piece, serial: str) -> bytes:
        calls.append((piece.statement_id, serial))
        address = addresses[piece.statement_id]
        return address_block(address, imb_fields(address, serial))

    run = write_batches(pieces, lambda p: files[p.statement_id], tmp_path, day=DAY,
                        limits=BatchLimits(), serial=lambda batch, seq: f"{batch:03d}{seq:06d}",
                        stamp=stamp)
    [batch] = run.batches
    [aside] = run.set_aside
    assert aside.statement_id == refused and "address lines" in aside.reason
    assert "WWW" not in aside.reason and "SPRINGFIELD" not in aside.reason
    rows = manifest(batch.manifest)
    assert [r["statement_id"] for r in rows] == [s for s in batch.statement_ids]
    assert [r["imb_serial"] for r in rows] == ["001000001", "001000002"], "no gap for the refused"
    stamped = {sid: serial for sid, serial in calls if sid != refused}
    assert stamped == {r["statement_id"]: r["imb_serial"] for r in rows}
    with pikepdf.open(batch.pdf) as pdf:
        assert len(pdf.pages) == batch.pages
