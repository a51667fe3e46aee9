"""The PDF writer's two layouts: object streams with an xref stream, and a classic xref table.

Read back with independent implementations (qpdf's checker and pikepdf), plain and encrypted:
every object that is not a stream sits in a compressed object stream; the /Encrypt
dictionary and the xref stream never do, and a string inside an object stream is encrypted
with its stream only (ISO 32000 §7.5.7, §7.6.1), so readers see it in clear.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zlib
from pathlib import Path

import pikepdf
import pytest

from pipeline.render import encrypt_pdf, member_password, render_statement
from pipeline.render.pdf.security import SecurityHandler
from pipeline.render.pdf.writer import Name, PdfDocument, Raw, Ref, Static, Stream
from tests.support.factories import make_statement

OWNER = "owner-secret-for-writer-tests"
needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None,
                                reason="qpdf command-line tool not installed")


def _document(object_streams: bool = True) -> PdfDocument:
    """A one-page document with strings where they matter: the catalog, the document
    information, a structure-element-like dictionary and a Static value."""
    document = PdfDocument(object_streams=object_streams)
    pages = document.reserve()
    content = document.add(Stream({"Filter": Name("FlateDecode")},
                                  zlib.compress(b"BT /F1 12 Tf 72 700 Td (Hello) Tj ET")))
    font = document.add({"Type": Name("Font"), "Subtype": Name("Type1"),
                         "BaseFont": Name("Helvetica")})
    page = document.add(Raw(b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] "
                            b"/Resources << /Font << /F1 %d 0 R >> >> /Contents %d 0 R >>"
                            % (pages, font, content)))
    document.set(pages, Raw(b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page))
    document.add({"Alt": "Logo (Évergreen) \\ ünïcode", "Extra": Static({"Note": b"(x)"})})
    document.root = document.add({"Type": Name("Catalog"), "Pages": Ref(pages),
                                  "Lang": "en-US"})
    document.info = document.add({"Title": "Explanation of Benefits", "Subject": "st-1 v1"})
    return document


def _check(data: bytes, tmp_path: Path, password: str = "") -> None:
    target = tmp_path / "file.pdf"
    target.write_bytes(data)
    result = subprocess.run(["qpdf", f"--password={password}", "--check", str(target)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No syntax or stream encoding errors found" in result.stdout
    assert "WARNING" not in result.stdout + result.stderr


def _top_level(data: bytes) -> set[int]:
    """Numbers of the objects written at the top level of the file."""
    return {int(number) for number in re.findall(rb"(?m)^(\d+) 0 obj", data)}


@needs_qpdf
def test_objects_go_into_object_streams_behind_an_xref_stream(tmp_path: Path) -> None:
    document = _document()
    data = document.write()
    _check(data, tmp_path)
    assert b"\nxref\n" not in data and b"trailer" not in data
    assert b"/Type /XRef" in data and b"/Type /ObjStm" in data
    count = len(document.objects)
    # streams, the object stream and the xref stream at the top; every other object packed
    assert _top_level(data) == {2, count + 1, count + 2}
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert str(pdf.docinfo.Title) == "Explanation of Benefits"
        assert str(pdf.Root.Lang) == "en-US"
        assert str(pdf.get_object((5, 0)).Alt) == "Logo (Évergreen) \\ ünïcode"
        assert bytes(pdf.get_object((5, 0)).Extra.Note) == b"(x)"
        assert pdf.pages[0].Contents.read_bytes().startswith(b"BT /F1 12 Tf")
    assert document.write() == data  # deterministic: the /ID is a digest of the body


@needs_qpdf
def test_encrypted_object_streams_keep_their_strings_readable_with_the_key(
        tmp_path: Path) -> None:
    document = _document()
    plain = document.write()
    handler = SecurityHandler(user_password="user-pw", owner_password=OWNER)
    data = document.write(version="2.0", security=handler, file_id=bytes(16))
    for password in ("user-pw", OWNER):
        _check(data, tmp_path, password)
        with pikepdf.open(io.BytesIO(data), password=password) as pdf:
            assert pdf.encryption.R == 6
            assert str(pdf.docinfo.Title) == "Explanation of Benefits"
            assert str(pdf.get_object((5, 0)).Alt) == "Logo (Évergreen) \\ ünïcode"
            assert bytes(pdf.get_object((5, 0)).Extra.Note) == b"(x)"
            assert pdf.pages[0].Contents.read_bytes().startswith(b"BT /F1 12 Tf")
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(data))
    count = len(document.objects)
    # object stream, /Encrypt (never packed), xref stream (never encrypted): at the top
    assert _top_level(data) == {2, count + 1, count + 2, count + 3}
    assert re.search(rb"%d 0 obj\n<< /Filter /Standard" % (count + 2), data)
    for secret in (b"Explanation", b"Logo", b"en-US", b"Hello"):
        assert secret not in data
    assert document.write() == plain  # the plain file is unchanged by an encrypted write


@needs_qpdf
def test_classic_layout_writes_every_object_at_the_top(tmp_path: Path) -> None:
    document = _document(object_streams=False)
    data = document.write()
    _check(data, tmp_path)
    assert b"\nxref\n0 " in data and b"/ObjStm" not in data and b"/XRef" not in data
    assert _top_level(data) == set(range(1, len(document.objects) + 1))
    with pikepdf.open(io.BytesIO(data)) as pdf:
        assert str(pdf.get_object((5, 0)).Alt) == "Logo (Évergreen) \\ ünïcode"


def test_email_statements_use_object_streams_and_print_pieces_a_classic_table() -> None:
    statement = make_statement(n_lines=8, denied=1)
    email = render_statement(statement)
    printed = render_statement(statement, variant="print")
    assert b"/Type /ObjStm" in email.pdf and b"\nxref\n" not in email.pdf
    assert b"/ObjStm" not in printed.pdf and b"\nxref\n0 " in printed.pdf  # pipeline.paper.merge
    encrypted = encrypt_pdf(email, owner_password=OWNER,
                            user_password=member_password(statement.member, "dob_mmddyyyy"))
    assert b"/Type /ObjStm" in encrypted and b"/Type /XRef" in encrypted
    with pikepdf.open(io.BytesIO(email.pdf)) as plain:
        elements = sum(1 for obj in plain.objects
                       if isinstance(obj, pikepdf.Dictionary) and "/S" in obj and "/P" in obj)
    assert elements > 100  # the structure elements: packed, not one top-level object each
    assert len(_top_level(email.pdf)) < 40
