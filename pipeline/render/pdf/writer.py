"""A small PDF file writer: numbered objects, Flate streams, a classic xref table.

Why not reportlab's or qpdf's writer: a statement is a handful of objects whose shape we
control, so writing them directly costs microseconds, and the same object list can be
written twice: plain (deterministic bytes, hashed to detect "already rendered") and
encrypted with a `security.SecurityHandler`, which encrypts each string and stream as it
is written instead of parsing and rewriting a finished file.

Values: dict (keys are names), list/tuple, `Name`, `Ref`, `Raw` (preformatted bytes that hold
no strings), `str` (a text string), `bytes` (a byte string), int, float, bool, None.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = ["Name", "PdfDocument", "Raw", "Ref", "Static", "Stream", "pdf_text_string"]


class Name(str):
    """A PDF name, written as /Value."""

    __slots__ = ()


class Ref(int):
    """An indirect reference to object number `self`."""

    __slots__ = ()


class Raw(bytes):
    """Bytes written as they are: preformatted values without strings (e.g. width arrays)."""

    __slots__ = ()


@dataclass(slots=True)
class Stream:
    """A stream object: its dictionary (without /Length) and already encoded data."""

    dictionary: dict[str, Any]
    data: bytes


class Encryptor(Protocol):
    def encrypt(self, data: bytes) -> bytes: ...
    def encrypt_dictionary(self) -> bytes: ...


_LITERAL_ESCAPES = {ord("\\"): "\\\\", ord("("): "\\(", ord(")"): "\\)",
                    ord("\r"): "\\r", ord("\n"): "\\n"}


def pdf_text_string(text: str) -> bytes:
    """A text string's bytes: ASCII as is, anything else UTF-16BE with a byte-order mark."""
    if text.isascii():
        return text.encode("ascii")
    return b"\xfe\xff" + text.encode("utf-16-be")


def _literal(raw: bytes) -> bytes:
    return b"(" + raw.decode("latin-1").translate(_LITERAL_ESCAPES).encode("latin-1") + b")"


def _number(value: float) -> bytes:
    if value == int(value):
        return str(int(value)).encode()
    return f"{value:.4f}".rstrip("0").encode()


class Static:
    """A value written the same way into many files (e.g. a font dictionary), formatted once.

    Its strings are kept apart, so a writer with a security handler still encrypts them.
    """

    __slots__ = ("parts",)

    def __init__(self, value: Any) -> None:
        writer = _Writer(_COLLECT)
        writer.value(value)
        parts: list[bytes | tuple[bytes]] = []
        for part in writer.parts:
            if isinstance(part, bytes) and parts and isinstance(parts[-1], bytes):
                parts[-1] += part
            else:
                parts.append(part)
        self.parts = tuple(parts)


class _Collect:
    """Marks a writer that keeps strings unformatted (building a Static)."""

    def encrypt(self, data: bytes) -> bytes:  # pragma: no cover - never called
        raise NotImplementedError

    def encrypt_dictionary(self) -> bytes:  # pragma: no cover - never called
        raise NotImplementedError


_COLLECT = _Collect()


@dataclass(slots=True)
class _Writer:
    security: Encryptor | None
    parts: list[Any] = field(default_factory=list)

    def value(self, value: Any) -> None:
        out = self.parts
        if isinstance(value, Static):
            for part in value.parts:
                if isinstance(part, bytes):
                    out.append(part)
                else:
                    self.string(part[0])
        elif isinstance(value, Name):
            out.append(b"/" + value.encode("ascii"))
        elif isinstance(value, Ref):
            out.append(b"%d 0 R" % value)
        elif isinstance(value, Raw):
            out.append(value)
        elif isinstance(value, str):
            self.string(pdf_text_string(value))
        elif isinstance(value, bytes):
            self.string(value)
        elif isinstance(value, bool):
            out.append(b"true" if value else b"false")
        elif isinstance(value, int | float):
            out.append(_number(value))
        elif isinstance(value, dict):
            out.append(b"<<")
            for key, item in value.items():
                out.append(b" /" + key.encode("ascii") + b" ")
                self.value(item)
            out.append(b" >>")
        elif isinstance(value, list | tuple):
            out.append(b"[")
            for index, item in enumerate(value):
                if index:
                    out.append(b" ")
                self.value(item)
            out.append(b"]")
        elif value is None:
            out.append(b"null")
        else:
            raise TypeError(f"cannot write a {type(value).__name__} into a PDF")

    def string(self, raw: bytes) -> None:
        if self.security is _COLLECT:
            self.parts.append((raw,))
        elif self.security is None:
            self.parts.append(_literal(raw))
        else:
            self.parts.append(b"<" + self.security.encrypt(raw).hex().encode() + b">")


@dataclass(slots=True)
class PdfDocument:
    """Objects numbered from 1 in the order added; `root` and `info` name the trailer's."""

    objects: list[Any] = field(default_factory=list)
    root: Ref | None = None
    info: Ref | None = None

    def add(self, value: Any) -> Ref:
        self.objects.append(value)
        return Ref(len(self.objects))

    def reserve(self) -> Ref:
        """A number for an object whose value is set later (e.g. /Pages before its kids)."""
        return self.add(None)

    def set(self, ref: Ref, value: Any) -> None:
        self.objects[ref - 1] = value

    def write(self, *, version: str = "1.7", security: Encryptor | None = None,
              file_id: bytes | None = None) -> bytes:
        """The file's bytes. Without `file_id` the /ID is a digest of the body, so the same
        objects always give the same bytes."""
        if self.root is None:
            raise ValueError("a PDF needs a document catalog (root)")
        writer = _Writer(security)
        parts = writer.parts
        parts.append(b"%PDF-" + version.encode("ascii") + b"\n%\xe2\xe3\xcf\xd3\n")
        offsets: list[int] = []
        position = len(parts[0])
        for number, value in enumerate(self.objects, start=1):
            start = len(parts)
            parts.append(b"%d 0 obj\n" % number)
            if isinstance(value, Stream):
                data = value.data if security is None else security.encrypt(value.data)
                writer.value({**value.dictionary, "Length": len(data)})
                parts.append(b"\nstream\n")
                parts.append(data)
                parts.append(b"\nendstream\nendobj\n")
            else:
                writer.value(value)
                parts.append(b"\nendobj\n")
            offsets.append(position)
            position += sum(map(len, parts[start:]))
        encrypt_ref = b""
        if security is not None:
            offsets.append(position)
            number = len(self.objects) + 1
            encrypt = b"%d 0 obj\n" % number + security.encrypt_dictionary() + b"\nendobj\n"
            parts.append(encrypt)
            position += len(encrypt)
            encrypt_ref = b" /Encrypt %d 0 R" % number
        if file_id is None:
            file_id = hashlib.md5(b"".join(parts), usedforsecurity=False).digest()
        xref = [b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(offsets) + 1)]
        xref += [b"%010d 00000 n\r\n" % offset for offset in offsets]
        hex_id = file_id.hex().encode()
        trailer = (b"trailer\n<< /Size %d /Root %d 0 R" % (len(offsets) + 1, self.root)
                   + (b" /Info %d 0 R" % self.info if self.info else b"")
                   + encrypt_ref + b" /ID [<" + hex_id + b"> <" + hex_id + b">] >>\n"
                   + b"startxref\n%d\n%%%%EOF\n" % position)
        return b"".join([*parts, *xref, trailer])

