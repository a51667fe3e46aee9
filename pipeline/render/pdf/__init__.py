"""The PDF layer: writing documents from objects, and protecting them (AES-256, revision 6).

The bottom of the render room: it knows PDF syntax and encryption, nothing of layout. The
member's password is derived here too, right before encryption, and never kept.
"""

from pipeline.render.pdf.encrypt import PERMISSIONS, EncryptionError, encrypt_pdf
from pipeline.render.pdf.passwords import (
    GPU_GUESSES_PER_SECOND,
    POLICIES,
    PasswordPolicy,
    PasswordPolicyError,
    UnknownPasswordPolicy,
    WeakPasswordPolicy,
    check_policy_strength,
    cpu_seconds_per_guess,
    human_duration,
    member_password,
    password_policy,
)
from pipeline.render.pdf.rendered import RenderedPdf
from pipeline.render.pdf.security import hash_2b, password_bytes
from pipeline.render.pdf.writer import PdfDocument

__all__ = [
    "GPU_GUESSES_PER_SECOND",
    "PERMISSIONS",
    "POLICIES",
    "EncryptionError",
    "PasswordPolicy",
    "PasswordPolicyError",
    "PdfDocument",
    "RenderedPdf",
    "UnknownPasswordPolicy",
    "WeakPasswordPolicy",
    "check_policy_strength",
    "cpu_seconds_per_guess",
    "encrypt_pdf",
    "hash_2b",
    "human_duration",
    "member_password",
    "password_bytes",
    "password_policy",
]
