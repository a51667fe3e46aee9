"""Password-protect a statement: AES-256, security handler revision 6 (PDF 2.0).

Everything happens in memory; the passwords are never written anywhere, and no message here
quotes one. Printing and accessibility extraction stay allowed (screen readers must work);
copying and changing the document are not.

A statement from `pipeline.render.render_statement` is written encrypted straight from its objects
by our own R6 handler (`pipeline.render.pdf.security`, OpenSSL through cffi and `cryptography`): about
5 ms, almost all of it the four key-derivation hashes R6 prescribes. Any other PDF given as
bytes goes through pikepdf/qpdf (about 14 ms). Both give files that qpdf, pikepdf and
poppler open with the user or the owner password only.

The encrypted bytes differ on every call (fresh file key, salts and IVs): hash the
unencrypted PDF (`RenderedPdf.content_sha256`) to detect "already rendered".
"""

from __future__ import annotations

import io
import os

from pipeline.render.pdf.rendered import RenderedPdf
from pipeline.render.pdf.security import PasswordEncodingError, Permissions, SecurityHandler

PERMISSIONS = Permissions(
    print_lowres=True,
    print_highres=True,
    accessibility=True,
    extract=False,
    modify_other=False,
    modify_annotation=False,
    modify_form=False,
    modify_assembly=False,
)


class EncryptionError(ValueError):
    """The PDF could not be encrypted (message carries no password or content)."""


def encrypt_pdf(pdf: RenderedPdf | bytes, *, user_password: str, owner_password: str) -> bytes:
    """The same document, openable only with `user_password` or `owner_password` (AES-256, R6)."""
    if not user_password:
        raise EncryptionError("an empty user password would leave the statement readable")
    if not owner_password or owner_password == user_password:
        raise EncryptionError("the owner password must be set and differ from the user password")
    if isinstance(pdf, RenderedPdf):
        if pdf.document is not None:
            return _encrypt_document(pdf, user_password, owner_password)
        pdf = pdf.pdf
    return _encrypt_with_qpdf(pdf, user_password, owner_password)


def _encrypt_document(rendered: RenderedPdf, user_password: str, owner_password: str) -> bytes:
    assert rendered.document is not None
    try:
        handler = SecurityHandler(user_password=user_password, owner_password=owner_password,
                                  permissions=PERMISSIONS)
    except PasswordEncodingError as exc:
        raise EncryptionError(f"cannot encrypt PDF ({exc})") from None
    return rendered.document.write(version="2.0", security=handler, file_id=os.urandom(16))


def _encrypt_with_qpdf(pdf: bytes, user_password: str, owner_password: str) -> bytes:
    import pikepdf

    allow = pikepdf.Permissions(
        accessibility=PERMISSIONS.accessibility, extract=PERMISSIONS.extract,
        modify_annotation=PERMISSIONS.modify_annotation,
        modify_assembly=PERMISSIONS.modify_assembly, modify_form=PERMISSIONS.modify_form,
        modify_other=PERMISSIONS.modify_other, print_lowres=PERMISSIONS.print_lowres,
        print_highres=PERMISSIONS.print_highres,
    )
    encryption = pikepdf.Encryption(
        owner=owner_password, user=user_password, R=6, allow=allow, aes=True, metadata=True
    )
    out = io.BytesIO()
    try:
        with pikepdf.open(io.BytesIO(pdf)) as document:
            document.save(out, encryption=encryption, min_version=("2.0", 0))
    except pikepdf.PdfError as exc:
        raise EncryptionError(f"cannot encrypt PDF ({type(exc).__name__})") from None
    return out.getvalue()
