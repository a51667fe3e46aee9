"""Our own R6 (AES-256) security handler: files that qpdf, pikepdf and poppler accept.

The handler writes the encryption; these tests read it back with independent
implementations (qpdf through pikepdf and its command line, poppler's pdftotext), with the
user password, the owner password, a wrong password and none.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model import Statement
from pipeline.render import EncryptionError, encrypt_pdf, format_money, member_password, render_statement
from pipeline.render.pdf import PERMISSIONS
from pipeline.render.pdf.security import (
    PasswordEncodingError,
    Permissions,
    SecurityHandler,
    _libcrypto,
    hash_2b,
    password_bytes,
    saslprep,
)
from tests.support.factories import make_line, make_member, make_statement

OWNER = "owner-secret-for-tests"
needs_qpdf = pytest.mark.skipif(shutil.which("qpdf") is None,
                                reason="qpdf command-line tool not installed")
needs_poppler = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                   reason="poppler-utils (pdftotext) not installed")


def _edge_statement() -> Statement:
    member = make_member(first_name="Zoë Ñandú", last_name="O'Brien-Łukasiewicz (Jr.)",
                         address_line1="12 \\ Backslash (Rear) Street")
    lines = [make_line(claim_id="C-ZERO", discount=0, plan_paid=0, copay=0, reason_code=""),
             make_line(claim_id="C-DENIED", status="denied", reason_code="CO-50",
                       discount=48000, plan_paid=0, copay=0)]
    base = make_statement(n_lines=0, member=member)
    return dataclasses.replace(base, lines=lines, has_adverse_determination=True)


STATEMENTS = {
    "typical_en": lambda: make_statement(),
    "typical_es": lambda: make_statement(language="es"),
    "long_120_lines": lambda: make_statement(n_lines=120, denied=8),
    "no_claims": lambda: make_statement(n_lines=0),
    "edge_names": _edge_statement,
}


def _encrypted(statement: Statement, policy: str = "dob_mmddyyyy") -> tuple[bytes, str]:
    password = member_password(statement.member, policy)
    return encrypt_pdf(render_statement(statement), user_password=password,
                       owner_password=OWNER), password


@needs_qpdf
@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_qpdf_checks_every_kind_of_statement_without_warnings(name: str, tmp_path: Path) -> None:
    statement = STATEMENTS[name]()
    data, password = _encrypted(statement)
    target = tmp_path / f"{name}.pdf"
    target.write_bytes(data)
    for supplied in (password, OWNER):
        result = subprocess.run(["qpdf", f"--password={supplied}", "--check", str(target)],
                                capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "No syntax or stream encoding errors found" in result.stdout
        assert "WARNING" not in result.stdout + result.stderr
    shown = subprocess.run(["qpdf", f"--password={password}", "--show-encryption", str(target)],
                           capture_output=True, text=True, check=True).stdout
    assert "R = 6" in shown and "AESv3" in shown
    assert "Supplied password is user password" in shown


@pytest.mark.parametrize("name", sorted(STATEMENTS))
def test_pikepdf_decrypts_to_the_same_document_as_the_plain_render(name: str) -> None:
    statement = STATEMENTS[name]()
    rendered = render_statement(statement)
    data, password = _encrypted(statement)
    with pikepdf.open(io.BytesIO(rendered.pdf)) as plain, \
            pikepdf.open(io.BytesIO(data), password=password) as opened:
        assert len(opened.pages) == len(plain.pages) == rendered.pages
        for ours, theirs in zip(opened.pages, plain.pages, strict=True):
            assert ours.Contents.read_bytes() == theirs.Contents.read_bytes()
        assert str(opened.docinfo["/Title"]) == str(plain.docinfo["/Title"])
        assert str(opened.docinfo["/Subject"]) == str(plain.docinfo["/Subject"])
        assert str(opened.Root.Lang) == str(plain.Root.Lang)


def test_only_the_member_or_owner_password_opens_the_file() -> None:
    statement = make_statement()
    data, password = _encrypted(statement)
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        assert pdf.user_password_matched and not pdf.owner_password_matched
    with pikepdf.open(io.BytesIO(data), password=OWNER) as pdf:
        assert pdf.owner_password_matched
    for wrong in ("", "01011970", password[:-1], password + "0", OWNER.upper()):
        with pytest.raises(pikepdf.PasswordError):
            pikepdf.open(io.BytesIO(data), password=wrong)


def test_nothing_readable_is_left_in_the_encrypted_bytes() -> None:
    statement = make_statement()
    data, password = _encrypted(statement)
    member = statement.member
    for secret in ("THIS IS NOT A BILL", "Explanation of Benefits", member.first_name,
                   member.last_name, member.address_line1, statement.statement_id,
                   format_money(statement.total_member_owes), password, OWNER, "en-US"):
        assert secret.encode() not in data, secret
    assert b"/Encrypt" in data and b"/AESV3" in data


def test_permissions_allow_printing_and_accessibility_only() -> None:
    data, password = _encrypted(make_statement(n_lines=2), "last4_member_zip")
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        info, allow = pdf.encryption, pdf.allow
        assert (info.R, info.bits) == (6, 256)
        assert info.stream_method.name == info.string_method.name == "aesv3"
        assert pdf.pdf_version == "2.0"
        assert allow.print_highres and allow.print_lowres and allow.accessibility
        assert not (allow.extract or allow.modify_other or allow.modify_annotation
                    or allow.modify_form or allow.modify_assembly)
        assert info.P == PERMISSIONS.p_value == -1340


def test_perms_entry_seals_the_permissions_with_the_file_key() -> None:
    """/Perms (Algorithm 10) is what stops a reader from trusting an edited /P."""
    data, password = _encrypted(make_statement(n_lines=1))
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        key = pdf.encryption.encryption_key
        perms = bytes(pdf.trailer.Encrypt.Perms)
        p_value = int(pdf.trailer.Encrypt.P)
    decryptor = Cipher(algorithms.AES256(key), modes.ECB()).decryptor()  # noqa: S305
    plain = decryptor.update(perms) + decryptor.finalize()
    assert plain[9:12] == b"adb"
    assert plain[8:9] == b"T"  # metadata encrypted too
    assert int.from_bytes(plain[:4], "little", signed=True) == p_value


def test_each_encryption_uses_fresh_keys_but_the_plain_render_is_stable() -> None:
    statement = make_statement()
    rendered = render_statement(statement)
    assert render_statement(statement).pdf == rendered.pdf
    password = member_password(statement.member, "dob_mmddyyyy")
    first = encrypt_pdf(rendered, user_password=password, owner_password=OWNER)
    second = encrypt_pdf(rendered, user_password=password, owner_password=OWNER)
    assert first != second
    keys = set()
    for data in (first, second):
        with pikepdf.open(io.BytesIO(data), password=password) as pdf:
            keys.add(bytes(pdf.encryption.encryption_key))
    assert len(keys) == 2


@needs_poppler
@pytest.mark.parametrize("language", ["en", "es"])
def test_poppler_extracts_the_amounts_with_the_password_only(language: str,
                                                             tmp_path: Path) -> None:
    statement = make_statement(language=language)
    data, password = _encrypted(statement)
    target = tmp_path / "statement.pdf"
    target.write_bytes(data)
    text = subprocess.run(["pdftotext", "-upw", password, str(target), "-"],
                          capture_output=True, text=True, check=True).stdout
    for cents in (statement.total_member_owes, statement.total("billed"),
                  statement.total("plan_paid"), *(line.member_owes for line in statement.lines)):
        assert format_money(cents) in text
    assert ("THIS IS NOT A BILL" if language == "en" else "ESTO NO ES UNA FACTURA") in text
    assert ("right to appeal" if language == "en" else "derecho a apelar") in text  # form text
    denied = subprocess.run(["pdftotext", str(target), "-"], capture_output=True, text=True,
                            check=False)
    assert denied.returncode != 0 and format_money(statement.total_member_owes) not in (
        denied.stdout)
    wrong = subprocess.run(["pdftotext", "-upw", "12311999", str(target), "-"],
                           capture_output=True, text=True, check=False)
    assert wrong.returncode != 0


def test_non_ascii_passwords_are_saslprepped_the_way_readers_expect() -> None:
    assert saslprep("03071984") == "03071984"
    assert saslprep("pa\u00a0ss") == "pa ss"  # no-break space maps to space
    assert saslprep("pa\u00adss") == "pass"  # soft hyphen maps to nothing
    assert saslprep("\uff50\uff41\uff53\uff53") == "pass"  # NFKC: full-width letters
    assert password_bytes("é" * 100) == ("é" * 100).encode()[:127]  # cut at 127 bytes
    with pytest.raises(PasswordEncodingError) as caught:
        saslprep("secret\u0007bell")
    assert "secret" not in str(caught.value)
    with pytest.raises(EncryptionError) as caught:
        encrypt_pdf(render_statement(make_statement(n_lines=1)), user_password="x\u0007y",
                    owner_password=OWNER)
    assert "x\u0007y" not in str(caught.value)

    statement = make_statement(n_lines=1)
    password = "Pässwörd-Ünïcode"
    data = encrypt_pdf(render_statement(statement), user_password=password,
                       owner_password=OWNER)
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        assert pdf.user_password_matched


@settings(max_examples=60, deadline=None)
@given(password=st.binary(max_size=127), salt=st.binary(min_size=8, max_size=8),
       udata=st.sampled_from([b"", bytes(range(48))]))
def test_algorithm_2b_through_libcrypto_equals_the_cryptography_reference(
    password: bytes, salt: bytes, udata: bytes
) -> None:
    """The rounds go to libcrypto through cffi; `cryptography` is the reference (and fallback)."""
    assert hash_2b(password, salt, udata) == hash_2b(password, salt, udata, reference=True)


def test_this_machine_derives_keys_through_libcrypto() -> None:
    """CI's Debian has the system libcrypto: the fast path is the one the tests above check."""
    assert _libcrypto() is not None


def test_algorithm_2b_matches_qpdf_through_a_file_qpdf_must_validate() -> None:
    """hash_2b is checked end to end: qpdf recomputes U and O from the passwords."""
    handler = SecurityHandler(user_password="u", owner_password="o", random=lambda n: b"\x01" * n)
    assert handler.u[:32] == hash_2b(b"u", b"\x01" * 8)
    assert handler.o[:32] == hash_2b(b"o", b"\x01" * 8, handler.u)
    assert len(handler.u) == len(handler.o) == 48 and len(handler.ue) == len(handler.oe) == 32
    rendered = render_statement(make_statement(n_lines=1))
    assert rendered.document is not None
    data = rendered.document.write(version="2.0", security=handler)
    with pikepdf.open(io.BytesIO(data), password="u") as pdf:
        assert len(pdf.pages) == rendered.pages
    with pikepdf.open(io.BytesIO(data), password="o") as pdf:
        assert pdf.owner_password_matched


def test_permission_bits_follow_the_table() -> None:
    everything = Permissions(print_lowres=True, print_highres=True, accessibility=True,
                             extract=True, modify_other=True, modify_annotation=True,
                             modify_form=True, modify_assembly=True)
    assert everything.p_value == -4  # all bits but 1 and 2
    nothing = Permissions(print_lowres=False, print_highres=False, accessibility=False)
    assert nothing.p_value == -4 - (4 + 8 + 16 + 32 + 256 + 512 + 1024 + 2048)


def test_bytes_from_elsewhere_are_encrypted_through_qpdf() -> None:
    statement = make_statement(n_lines=2)
    password = member_password(statement.member, "dob_mmddyyyy")
    data = encrypt_pdf(render_statement(statement).pdf, user_password=password,
                       owner_password=OWNER)
    with pikepdf.open(io.BytesIO(data), password=password) as pdf:
        assert pdf.encryption.R == 6 and pdf.allow.accessibility and not pdf.allow.extract
    with pytest.raises(pikepdf.PasswordError):
        pikepdf.open(io.BytesIO(data))
