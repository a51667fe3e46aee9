"""Password-protect a rendered statement: AES-256, security handler revision 6 (PDF 2.0).

Everything happens in memory; the passwords are never written anywhere. Printing and
accessibility extraction stay allowed (screen readers must work, EOB_CONTENT row 33);
changing the document is not. The encrypted bytes differ on every call because R6 uses
fresh random salts and IVs: hash the unencrypted PDF to detect "already rendered".
"""

from __future__ import annotations

import io

import pikepdf

PERMISSIONS = pikepdf.Permissions(
    accessibility=True,
    extract=False,
    modify_annotation=False,
    modify_assembly=False,
    modify_form=False,
    modify_other=False,
    print_lowres=True,
    print_highres=True,
)


class EncryptionError(ValueError):
    """The PDF could not be encrypted (message carries no password or content)."""


def encrypt_pdf(pdf: bytes, *, user_password: str, owner_password: str) -> bytes:
    """The same document, openable only with `user_password` (AES-256, R=6)."""
    if not user_password:
        raise EncryptionError("an empty user password would leave the statement readable")
    if not owner_password or owner_password == user_password:
        raise EncryptionError("the owner password must be set and differ from the user password")
    encryption = pikepdf.Encryption(
        owner=owner_password, user=user_password, R=6, allow=PERMISSIONS, aes=True, metadata=True
    )
    out = io.BytesIO()
    try:
        with pikepdf.open(io.BytesIO(pdf)) as document:
            document.save(out, encryption=encryption, min_version=("2.0", 0))
    except pikepdf.PdfError as exc:
        raise EncryptionError(f"cannot encrypt PDF ({type(exc).__name__})") from None
    return out.getvalue()
