"""A rendered document: its plain bytes, and the objects they were written from."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pipeline.render.pdf.writer import PdfDocument


@dataclass(frozen=True, slots=True)
class RenderedPdf:
    """A rendered document: the plain PDF bytes, its page count, and its objects.

    `pdf` is deterministic; `content_sha256` is its digest (the "already rendered" key).
    `document` lets `encrypt_pdf` write the encrypted copy without parsing `pdf` again.
    """

    pdf: bytes
    pages: int
    document: PdfDocument | None = field(default=None, repr=False, compare=False)

    @property
    def content_sha256(self) -> str:
        return hashlib.sha256(self.pdf).hexdigest()
