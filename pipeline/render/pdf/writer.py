"""A small PDF file writer: numbered objects, Flate streams, object streams, an xref.

Why not reportlab's or qpdf's writer: a statement is a few hundred objects whose shape we
control, so writing them directly costs microseconds, and the same object list can be
written twice: plain (deterministic bytes, hashed to detect "already rendered") and
encrypted with a `security.SecurityHandler`, which encrypts each string and stream as it
is written instead of parsing and rewriting a finished file.

Two layouts (`PdfDocument.object_streams`):

- Object streams (PDF 1.5, ISO 32000 §7.5.7-7.5.8), the default: every object that is not a
  stream (structure elements, pages, font dictionaries, the catalog) goes into compressed
  /ObjStm streams, and a cross-reference stream (/Type /XRef, carrying the trailer's keys)
  ends the file. A tagged statement has some 350 such objects: a classic file spends about
  35 KB on them and on its xref table, an object stream about 5 KB. Strings inside an object
  stream are not encrypted separately (§7.6.1): the object stream is encrypted as a whole,
  so its compressed bytes are the same in the plain and the encrypted file and are made once
  (`_packed`). Never in an object stream: streams, the /Encrypt dictionary (written as a
  plain object) and the xref stream itself (never encrypted either).
- A classic xref table, every object at the top level: for readers of our own files that
  parse them without a PDF library (`pipeline.paper.merge` copies print pieces object by
  object and shares the identical ones between pieces).

Values: dict (keys are names), list/tuple, `Name`, `Ref`, `Raw` (preformatted bytes that hold
no strings), `str` (a text string), `bytes` (a byte string), int, float, bool, None.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
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


OBJECTS_PER_STREAM = 1000
"""At most this many objects in one object stream (a reader inflates a whole stream to reach
one of its objects); a typical statement's ~350 fit in one, which compresses best."""
OBJECT_STREAM_LEVEL = 2
"""zlib level of object streams (compressed once per document, for its plain and encrypted
files). A typical statement's 30 KB of objects: level 1 7.7 KB in 0.07 ms, level 2 7.5 KB in
0.07 ms, level 6 6.3 KB in 0.37 ms."""
_XREF_ENTRY = struct.Struct(">BIH")  # /W [1 4 2]: type, offset or object stream, generation or index


@dataclass(slots=True)
class _Packed:
    """A document's object streams: written once, shared by its plain and encrypted files."""

    count: int  # len(objects) when packed: the objects must not change once written
    streams: list[bytes]  # each object stream's complete dictionary-less data (compressed)
    headers: list[tuple[int, int]]  # each stream's /N and /First
    where: dict[int, tuple[int, int]]  # object number -> (object stream index, index in it)


@dataclass(slots=True)
class PdfDocument:
    """Objects numbered from 1 in the order added; `root` and `info` name the trailer's.

    `object_streams` picks the file layout (see the module docstring). Once written, a
    document's objects must not change: the object streams are packed at the first write.
    """

    objects: list[Any] = field(default_factory=list)
    root: Ref | None = None
    info: Ref | None = None
    object_streams: bool = True
    _packed: _Packed | None = field(default=None, repr=False, compare=False)

    def add(self, value: Any) -> Ref:
        self.objects.append(value)
        return Ref(len(self.objects))

    def reserve(self) -> Ref:
        """A number for an object whose value is set later (e.g. /Pages before its kids)."""
        return self.add(None)

    def set(self, ref: Ref, value: Any) -> None:
        self.objects[ref - 1] = value
        self._packed = None

    def write(self, *, version: str = "1.7", security: Encryptor | None = None,
              file_id: bytes | None = None) -> bytes:
        """The file's bytes. Without `file_id` the /ID is a digest of the body, so the same
        objects always give the same bytes."""
        if self.root is None:
            raise ValueError("a PDF needs a document catalog (root)")
        if self.object_streams:
            return self._write_compact(version, security, file_id)
        return self._write_classic(version, security, file_id)

    def _pack(self) -> _Packed:
        packed = self._packed
        if packed is not None and packed.count == len(self.objects):
            return packed
        writer = _Writer(None)  # strings in object streams are never encrypted on their own
        parts = writer.parts
        numbers: list[int] = []
        bodies: list[bytes] = []
        for number, value in enumerate(self.objects, start=1):
            if type(value) is Raw:  # most objects (structure elements): preformatted
                bodies.append(value)
            elif isinstance(value, Stream):
                continue
            else:
                writer.value(value)
                bodies.append(b"".join(parts))
                parts.clear()
            numbers.append(number)
        packed = _Packed(len(self.objects), [], [], {})
        for start in range(0, len(numbers), OBJECTS_PER_STREAM):
            chunk, index = numbers[start:start + OBJECTS_PER_STREAM], len(packed.streams)
            body = b"\n".join(bodies[start:start + OBJECTS_PER_STREAM])
            offsets, position = [], 0
            for count, number in enumerate(chunk):
                offsets.append(b"%d %d" % (number, position))
                position += len(bodies[start + count]) + 1
                packed.where[number] = (index, count)
            header = b" ".join(offsets) + b"\n"
            packed.streams.append(zlib.compress(header + body, OBJECT_STREAM_LEVEL))
            packed.headers.append((len(chunk), len(header)))
        self._packed = packed
        return packed

    def _write_compact(self, version: str, security: Encryptor | None,
                       file_id: bytes | None) -> bytes:
        assert self.root is not None
        packed = self._pack()
        writer = _Writer(security)
        parts = writer.parts
        parts.append(b"%PDF-" + version.encode("ascii") + b"\n%\xe2\xe3\xcf\xd3\n")
        count = len(self.objects)
        first_stream = count + 1  # object streams, then /Encrypt, then the xref stream
        entries: list[tuple[int, int, int]] = [(0, 0, 65535)]
        position = len(parts[0])
        for number, value in enumerate(self.objects, start=1):
            found = packed.where.get(number)
            if found is not None:
                entries.append((2, first_stream + found[0], found[1]))
                continue
            start = len(parts)
            data = value.data if security is None else security.encrypt(value.data)
            parts.append(b"%d 0 obj\n" % number)
            writer.value({**value.dictionary, "Length": len(data)})
            parts += (b"\nstream\n", data, b"\nendstream\nendobj\n")
            entries.append((1, position, 0))
            position += sum(map(len, parts[start:]))
        for index, data in enumerate(packed.streams):
            objects, first = packed.headers[index]
            if security is not None:
                data = security.encrypt(data)
            written = (b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode "
                       b"/Length %d >>\nstream\n" % (first_stream + index, objects, first,
                                                     len(data)),
                       data, b"\nendstream\nendobj\n")
            parts += written
            entries.append((1, position, 0))
            position += sum(map(len, written))
        number = first_stream + len(packed.streams)
        encrypt_ref = b""
        if security is not None:
            encrypt = b"%d 0 obj\n" % number + security.encrypt_dictionary() + b"\nendobj\n"
            parts.append(encrypt)
            entries.append((1, position, 0))
            position += len(encrypt)
            encrypt_ref = b" /Encrypt %d 0 R" % number
            number += 1
        if file_id is None:  # SHA-256 (cut to 16 bytes): faster than MD5 on the font streams
            digest = hashlib.sha256()
            for part in parts:
                digest.update(part)
            file_id = digest.digest()[:16]
        entries.append((1, position, 0))  # the xref stream's own entry
        table = zlib.compress(b"".join([_XREF_ENTRY.pack(*entry) for entry in entries]))
        hex_id = file_id.hex().encode()
        parts.append(  # the xref stream: never encrypted; it carries the trailer's keys
            b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root %d 0 R" % (
                number, number + 1, self.root)
            + (b" /Info %d 0 R" % self.info if self.info else b"") + encrypt_ref
            + b" /ID [<" + hex_id + b"> <" + hex_id + b">] /Filter /FlateDecode /Length %d"
            b" >>\nstream\n" % len(table) + table
            + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % position)
        return b"".join(parts)

    def _write_classic(self, version: str, security: Encryptor | None,
                       file_id: bytes | None) -> bytes:
        assert self.root is not None
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
        if file_id is None:  # SHA-256 (cut to 16 bytes): faster than MD5 on the font streams
            file_id = hashlib.sha256(b"".join(parts)).digest()[:16]
        xref = [b"xref\n0 %d\n0000000000 65535 f\r\n" % (len(offsets) + 1)]
        xref += [b"%010d 00000 n\r\n" % offset for offset in offsets]
        hex_id = file_id.hex().encode()
        trailer = (b"trailer\n<< /Size %d /Root %d 0 R" % (len(offsets) + 1, self.root)
                   + (b" /Info %d 0 R" % self.info if self.info else b"")
                   + encrypt_ref + b" /ID [<" + hex_id + b"> <" + hex_id + b">] >>\n"
                   + b"startxref\n%d\n%%%%EOF\n" % position)
        return b"".join([*parts, *xref, trailer])

