"""The batch PDF writer, checked against the reference tools: qpdf finds no error in a merged
batch, poppler reads every page's text in presort order, and a piece it cannot copy is refused
before any of it is written."""

from __future__ import annotations

import io
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest

from pipeline.paper.merge import BatchPdfWriter, PieceUnreadable
from pipeline.render import render_statement
from pipeline.render.fonts import REGULAR
from pipeline.render.text import pdf_string
from tests.support.factories import make_member, make_statement

needs_tools = pytest.mark.skipif(not (shutil.which("qpdf") and shutil.which("pdftotext")),
                                 reason="needs qpdf and poppler-utils (.ci/system-packages.txt)")


def print_pdfs(count: int) -> list[tuple[str, bytes]]:
    out = []
    for n in range(count):
        statement = make_statement(n_lines=3 + n % 6, member=make_member(member_id=f"M{n:09d}"))
        out.append((statement.statement_id, render_statement(statement, variant="print").pdf))
    return out


def merged(pieces: list[tuple[str, bytes]], path: Path) -> list[int]:
    with path.open("wb") as out:
        writer = BatchPdfWriter(out)
        counts = [writer.add(data, sid) for sid, data in pieces]
        writer.close(title="EOB-20261206-FIRST-001")
    return counts


@needs_tools
def test_a_merged_batch_passes_qpdf_and_reads_page_for_page_like_its_pieces(tmp_path: Path) -> None:
    pieces = print_pdfs(12)
    counts = merged(pieces, tmp_path / "batch.pdf")
    check = subprocess.run(["qpdf", "--check", str(tmp_path / "batch.pdf")], capture_output=True,
                           text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "No syntax or stream encoding errors" in check.stdout
    with pikepdf.open(tmp_path / "batch.pdf") as pdf:
        assert len(pdf.pages) == sum(counts)
        assert counts == [len(pikepdf.open(io.BytesIO(d)).pages) for _, d in pieces]
    page = 0
    for (_, data), count in zip(pieces, counts, strict=True):
        (tmp_path / "piece.pdf").write_bytes(data)
        for own in range(1, count + 1):
            page += 1
            expected = subprocess.run(["pdftotext", "-f", str(own), "-l", str(own), "-layout",
                                       str(tmp_path / "piece.pdf"), "-"], capture_output=True,
                                      check=True).stdout
            got = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), "-layout",
                                  str(tmp_path / "batch.pdf"), "-"], capture_output=True,
                                 check=True).stdout
            assert got == expected, f"batch page {page}"


def test_shared_objects_are_written_once_and_the_batch_is_smaller(tmp_path: Path) -> None:
    pieces = print_pdfs(20)
    merged(pieces, tmp_path / "batch.pdf")
    size = (tmp_path / "batch.pdf").stat().st_size
    assert size < 0.8 * sum(len(d) for _, d in pieces), "fonts and the legal form are shared"


def test_the_same_pieces_make_the_same_bytes(tmp_path: Path) -> None:
    pieces = print_pdfs(5)
    merged(pieces, tmp_path / "a.pdf")
    merged(pieces, tmp_path / "b.pdf")
    assert (tmp_path / "a.pdf").read_bytes() == (tmp_path / "b.pdf").read_bytes()


def test_a_piece_from_another_producer_is_refused_and_writes_nothing(tmp_path: Path) -> None:
    [(sid, good)] = print_pdfs(1)
    other = io.BytesIO()
    with pikepdf.open(io.BytesIO(good)) as pdf:  # object and xref streams: not our writer's layout
        pdf.save(other, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    broken = good.replace(b"/Resources", b"/Resourcez", 1).replace(b"startxref", b"startxrex")
    out = io.BytesIO()
    writer = BatchPdfWriter(out)
    before = out.tell()
    for bad in (other.getvalue(), broken, b"not a pdf"):
        with pytest.raises(PieceUnreadable, match="^piece-7: ") as caught:
            writer.add(bad, "piece-7")
        assert out.tell() == before, "nothing of a refused piece was written"
        assert "M0" not in str(caught.value)
    assert writer.add(good, sid) >= 1


OVERLAY = (b"q 0 g\n300 40 20 10 re\nf\nBT /F1 9 Tf 1 0 0 1 300 30 Tm "
           + pdf_string("STAMPED", REGULAR).encode("ascii") + b" Tj ET Q\n")
"""A stamp in the page's /F1 (the embedded Noto Sans subset: glyph ids, as the address block)."""


@needs_tools
def test_an_overlay_is_drawn_over_each_pieces_first_page_as_its_own_object(tmp_path: Path) -> None:
    pieces = print_pdfs(3)
    path = tmp_path / "batch.pdf"
    with path.open("wb") as out:
        writer = BatchPdfWriter(out)
        counts = [writer.add(data, sid, OVERLAY) for sid, data in pieces]
        writer.close(title="EOB-20261206-FIRST-001")
    check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    firsts = [sum(counts[:n]) for n in range(len(counts))]
    with pikepdf.open(path) as pdf:
        overlays = []
        for index, page in enumerate(pdf.pages):
            contents = page.obj.Contents
            if index in firsts:
                assert isinstance(contents, pikepdf.Array) and len(contents) == 2
                assert contents[1].read_bytes() == OVERLAY
                overlays.append(contents[1].objgen)
            else:
                assert isinstance(contents, pikepdf.Stream), "only the first page is stamped"
        assert len(set(overlays)) == len(pieces), "the same overlay bytes are never shared"
    for index in range(sum(counts)):
        text = subprocess.run(["pdftotext", "-f", str(index + 1), "-l", str(index + 1), str(path),
                               "-"], capture_output=True, text=True, check=True).stdout
        assert ("STAMPED" in text) == (index in firsts)


def test_an_overlay_naming_a_font_the_page_lacks_is_refused_before_anything_is_written() -> None:
    [(sid, good)] = print_pdfs(1)
    out = io.BytesIO()
    writer = BatchPdfWriter(out)
    before = out.tell()
    for bad in (OVERLAY.replace(b"/F1 ", b"/F9 "), OVERLAY.replace(b"/F1 ", b"/F1x ")):
        with pytest.raises(PieceUnreadable, match=f"^{sid}: page 1 has no font resource F") as caught:
            writer.add(good, sid, bad)
        assert "STAMPED" not in str(caught.value)
        assert out.tell() == before
    assert writer.add(good, sid, OVERLAY) >= 1
