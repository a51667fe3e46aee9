"""One print-ready PDF per batch, written as the pieces stream in.

A batch holds thousands of print variants, each a small PDF from our own writer (classic xref
table, no object streams). Opening each with a general PDF library and saving the whole batch
holds every page in memory and runs at about 1,300 pieces/s; here each piece's objects are
copied straight to the output file with their numbers shifted, so memory does not grow with
the batch and identical objects (the fonts, the legal pages' form) are written once.

What is kept of a piece: its pages and everything they reference. Its catalog, its own page
tree root and its document information are dropped; every page's /Parent becomes the batch's
page tree. An overlay (the address block stamped at batching, `pipeline.paper.window_block`) is
written as one more object of the piece, never shared, and appended to its first page's
/Contents; its font names must be resources of that page, or the piece is refused. A piece
this reader does not understand (another producer, object or xref streams, a reference cycle)
raises ``PieceUnreadable`` naming the piece; the caller sets it aside.
Checked against qpdf and poppler by the tests (tests/paper/test_merge.py).
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

_XREF = re.compile(rb"startxref\s+(\d+)\s+%%EOF\s*$")
_TRAILER = re.compile(rb"trailer\s*(<<.*?>>)\s*startxref", re.S)
_REF_IN_TRAILER = re.compile(rb"/(Root|Info)\s+(\d+)\s+0\s+R")
_OBJ_HEAD = re.compile(rb"(\d+)\s+0\s+obj\s*")
_REF = re.compile(rb"(\d+)\s+0\s+R\b")
_STREAM = re.compile(rb"\bstream\r?\n")
_LENGTH = re.compile(rb"/Length\s+(\d+)(\s+0\s+R)?")
_PAGE = re.compile(rb"/Type\s*/Page(?!s)\b")
_PARENT = re.compile(rb"/Parent\s+\d+\s+0\s+R")
_PARENT_SLOT = b"/Parent \x00"  # a page's parent, filled with the batch's page tree on output
_CONTENTS = re.compile(rb"/Contents\s+(\d+)\s+0\s+R")
_RESOURCES = re.compile(rb"/Resources\s+(\d+)\s+0\s+R")
_FONTS = re.compile(rb"/Font\s+(\d+)\s+0\s+R")
_FONT_USED = re.compile(rb"/([A-Za-z0-9_.-]+)\s+[\d.]+\s+Tf\b")

PAGES_ROOT = 1  # the batch's page tree; written last, once every page is known
CATALOG = 2
PARSE_CACHE_BYTES = 4096
PARSE_CACHE_LIMIT = 256
"""Parses remembered, of objects up to this size: a piece's own pages fall out, the objects
every piece repeats are hit again and stay (memory: at most about 2 MiB)."""
SHARED_LIMIT = 4096
"""Objects remembered for sharing. Those every piece repeats (fonts, the legal pages' form)
are hit again with each piece and stay; a piece's own pages fall out, so the memory of the
writer does not grow with the batch."""


class PieceUnreadable(ValueError):
    """A piece is not a PDF this merger can copy; the message names the piece, not its content."""


@dataclass(frozen=True, slots=True)
class _Object:
    head: bytes        # the dictionary or value, references still the piece's own numbers
    stream: bytes      # raw stream data (still encoded), empty for a non-stream object
    refs: tuple[int, ...]
    unique: bool       # a page or an overlay: never shared with another piece


@dataclass(slots=True)
class MergeTotals:
    pieces: int = 0
    pages: int = 0
    objects_written: int = 0
    objects_shared: int = 0


def _xref_offsets(data: bytes, piece: str) -> tuple[dict[int, int], int, set[int]]:
    """Object number → byte offset, the root page tree's number, and objects to drop."""
    tail = data[-2048:]
    if not _XREF.search(tail):
        raise PieceUnreadable(f"{piece}: no startxref at the end (not a complete PDF)")
    start = int(_XREF.search(tail).group(1))  # type: ignore[union-attr]
    if data[start:start + 4] != b"xref":
        raise PieceUnreadable(f"{piece}: cross-reference stream, not a table: not our writer's PDF")
    trailer = _TRAILER.search(data, start)
    if trailer is None:
        raise PieceUnreadable(f"{piece}: no trailer")
    refs = {name: int(number) for name, number in _REF_IN_TRAILER.findall(trailer.group(1))}
    if b"Root" not in refs:
        raise PieceUnreadable(f"{piece}: the trailer names no catalog")
    lines = data[start:trailer.start()].split(b"\n")
    offsets: dict[int, int] = {}
    first = count = 0
    for raw in lines[1:]:
        parts = raw.split()
        if len(parts) == 2:
            first, count = int(parts[0]), 0
        elif len(parts) == 3 and parts[2] == b"n":
            offsets[first + count] = int(parts[0])
            count += 1
        elif len(parts) == 3:
            count += 1
    return offsets, refs[b"Root"], {refs[b"Root"], refs.get(b"Info", -1)}


def _split_strings(head: bytes) -> Iterator[tuple[bool, bytes]]:
    """(is_literal_string, bytes) runs of a dictionary: references are never rewritten inside
    a literal string such as a title."""
    opening = head.find(b"(")
    if opening < 0:  # the common case: no string at all
        yield False, head
        return
    start, n = 0, len(head)
    while opening >= 0:
        if opening > start:
            yield False, head[start:opening]
        depth, j = 0, opening
        while j < n:
            c = head[j]
            if c == 0x5C:  # backslash: the next byte is escaped
                j += 2
                continue
            depth += (c == 0x28) - (c == 0x29)
            j += 1
            if depth == 0:
                break
        yield True, head[opening:j]
        start = j
        opening = head.find(b"(", start)
    if start < n:
        yield False, head[start:]


def _read_object(data: bytes, offset: int, number: int, piece: str) -> _Object:
    head_match = _OBJ_HEAD.match(data, offset)
    if head_match is None or int(head_match.group(1)) != number:
        raise PieceUnreadable(f"{piece}: object {number} is not where the xref says")
    body_start = head_match.end()
    end = data.find(b"endobj", body_start)
    if end < 0:
        raise PieceUnreadable(f"{piece}: object {number} has no endobj")
    stream_at = _STREAM.search(data, body_start, end)
    if stream_at is None:
        head, stream = data[body_start:end].rstrip(), b""
    else:
        head = data[body_start:stream_at.start()].rstrip()
        length = _LENGTH.search(head)
        if length is None or length.group(2):
            raise PieceUnreadable(f"{piece}: object {number}: stream length is not a direct number")
        stream = data[stream_at.end():stream_at.end() + int(length.group(1))]
    page = _PAGE.search(head) is not None
    if page:
        head = _PARENT.sub(lambda _: _PARENT_SLOT, head)
    refs = () if _REF.search(head) is None else tuple(  # most objects (fonts, streams) have none
        int(r) for literal, run in _split_strings(head) if not literal for r in _REF.findall(run))
    return _Object(head, stream, refs, page)


class BatchPdfWriter:
    """Write pieces into one PDF file as they come; ``close`` writes the page tree and xref."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._offsets = array("q", [0] * (CATALOG + 1))  # by object number; 8 bytes each
        self._next = CATALOG + 1
        self._pages = array("q")
        self._shared: dict[bytes, int] = {}
        self._parsed: dict[bytes, _Object] = {}  # an object's bytes → its parse (fonts, forms)
        self.totals = MergeTotals()
        self._write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")

    def _write(self, chunk: bytes) -> None:
        self._out.write(chunk)

    def _emit(self, number: int, head: bytes, stream: bytes) -> None:
        while len(self._offsets) <= number:
            self._offsets.append(0)
        self._offsets[number] = self._out.tell()
        body = head + (b"\nstream\n" + stream + b"\nendstream" if stream or b"/Length" in head else b"")
        self._write(b"%d 0 obj\n%s\nendobj\n" % (number, body))

    def add(self, data: bytes, piece: str, overlay: bytes | None = None) -> int:
        """Append one piece's pages; returns its page count. Raises ``PieceUnreadable``.

        ``overlay``: uncompressed content-stream operators drawn over the piece's first page
        (after its own content, which must leave the graphics state as it found it, as our
        writer's pages do), using only font resources that page has.
        """
        offsets, root, dropped = _xref_offsets(data, piece)
        objects = {n: self._read(data, off, n, piece) for n, off in offsets.items()
                   if n not in dropped or n == root}
        catalog = objects.get(root)
        if catalog is None:
            raise PieceUnreadable(f"{piece}: the catalog is missing")
        pages = _page_order(objects, root, piece)
        if overlay is not None:
            if not pages:
                raise PieceUnreadable(f"{piece}: no page to draw the overlay on")
            _add_overlay(objects, pages[0], overlay, max(offsets) + 1, piece)
        _check_closure(pages, objects, dropped, piece)  # so that a bad piece writes nothing
        mapped: dict[int, int] = {}
        for number in pages:
            self._place(number, objects, mapped)
        self._pages.extend(mapped[n] for n in pages)
        self.totals.pieces += 1
        self.totals.pages += len(pages)
        return len(pages)

    def _read(self, data: bytes, offset: int, number: int, piece: str) -> _Object:
        """`_read_object`, remembered for small objects: the ones every piece repeats byte for byte
        (fonts, resources, the legal pages' form) are parsed once, not once per piece."""
        end = data.find(b"endobj", offset)
        raw = data[offset:end] if 0 < end - offset <= PARSE_CACHE_BYTES else None
        if raw is not None and (known := self._parsed.pop(raw, None)) is not None:
            self._parsed[raw] = known  # most recently used: kept
            return known
        parsed = _read_object(data, offset, number, piece)
        if raw is not None:
            self._parsed[raw] = parsed
            if len(self._parsed) > PARSE_CACHE_LIMIT:
                del self._parsed[next(iter(self._parsed))]
        return parsed

    def _place(self, number: int, objects: dict[int, _Object], mapped: dict[int, int]) -> int:
        if number in mapped:
            return mapped[number]
        obj = objects[number]  # checked by _check_closure: present, acyclic
        for ref in obj.refs:
            self._place(ref, objects, mapped)
        head = obj.head if not obj.refs else b"".join(
            run if literal else _REF.sub(lambda m: b"%d 0 R" % mapped[int(m.group(1))], run)
            for literal, run in _split_strings(obj.head))
        if obj.unique:
            head = head.replace(_PARENT_SLOT, b"/Parent %d 0 R" % PAGES_ROOT)
        else:
            key = hashlib.sha256(head + b"\x00" + obj.stream).digest()
            existing = self._shared.pop(key, None)
            if existing is not None:
                self._shared[key] = existing  # most recently used: kept
                mapped[number] = existing
                self.totals.objects_shared += 1
                return existing
        new = self._next
        self._next += 1
        self._emit(new, head, obj.stream)
        if not obj.unique:
            self._shared[key] = new
            if len(self._shared) > SHARED_LIMIT:
                del self._shared[next(iter(self._shared))]  # the least recently used
        mapped[number] = new
        self.totals.objects_written += 1
        return new

    def close(self, *, title: str = "") -> MergeTotals:
        """Write the page tree, catalog, xref and trailer. ``title``: the batch name, no PHI."""
        kids = b" ".join(b"%d 0 R" % n for n in self._pages)
        self._emit(PAGES_ROOT, b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(self._pages)), b"")
        self._emit(CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % PAGES_ROOT, b"")
        info = self._next
        self._emit(info, b"<< /Title (%s) /Producer (eob-pipeline paper batch) >>" % _pdf_text(title), b"")
        size = info + 1
        start = self._out.tell()
        rows = [b"xref\n0 %d\n" % size, b"0000000000 65535 f\r\n"]
        rows += [b"%010d 00000 n\r\n" % self._offsets[n] for n in range(1, size)]
        self._write(b"".join(rows))
        ident = hashlib.md5(kids + title.encode(), usedforsecurity=False).hexdigest().encode()
        self._write(b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R /ID [<%s> <%s>] >>\n"
                    b"startxref\n%d\n%%%%EOF\n" % (size, CATALOG, info, ident, ident, start))
        return self.totals


def _add_overlay(objects: dict[int, _Object], first: int, overlay: bytes, number: int,
                 piece: str) -> None:
    """The overlay as object `number` of the piece (one it does not use), appended to its first
    page's /Contents."""
    page = objects[first]
    contents = _CONTENTS.search(page.head)
    if contents is None:
        raise PieceUnreadable(f"{piece}: page 1 has no single content stream to add the overlay to")
    fonts = _page_fonts(objects, page)
    missing = {name for name in _FONT_USED.findall(overlay)
               if not re.search(rb"/%s\s" % re.escape(name), fonts)}
    if missing:
        names = ", ".join(sorted(name.decode("ascii") for name in missing))
        raise PieceUnreadable(f"{piece}: page 1 has no font resource {names} for the overlay")
    objects[number] = _Object(b"<< /Length %d >>" % len(overlay), overlay, (), True)
    head = (page.head[:contents.start()] + b"/Contents [%s 0 R %d 0 R]" % (contents.group(1), number)
            + page.head[contents.end():])
    objects[first] = _Object(head, page.stream, (*page.refs, number), True)


def _page_fonts(objects: dict[int, _Object], page: _Object) -> bytes:
    """The page's font dictionary (our writer's shape: /Resources and /Font by reference)."""
    resources = _RESOURCES.search(page.head)
    holder = objects.get(int(resources.group(1))) if resources else None
    fonts = _FONTS.search(holder.head) if holder else None
    font_dictionary = objects.get(int(fonts.group(1))) if fonts else None
    return font_dictionary.head + b" " if font_dictionary else b""


def _check_closure(pages: list[int], objects: dict[int, _Object], dropped: set[int],
                   piece: str) -> None:
    """Every object the pages reach exists, is not dropped, and no reference cycle exists."""
    done: set[int] = set()

    def visit(number: int, path: set[int]) -> None:
        if number in done:
            return
        if number in path or number in dropped or number not in objects:
            raise PieceUnreadable(f"{piece}: object {number} is referenced but cannot be copied")
        path.add(number)
        for ref in objects[number].refs:
            visit(ref, path)
        path.discard(number)
        done.add(number)

    for page in pages:
        visit(page, set())


def _page_order(objects: dict[int, _Object], root: int, piece: str) -> list[int]:
    """The piece's pages in reading order, walking its page tree from the catalog."""
    pages_ref = re.search(rb"/Pages\s+(\d+)\s+0\s+R", objects[root].head)
    if pages_ref is None:
        raise PieceUnreadable(f"{piece}: the catalog names no page tree")
    out: list[int] = []

    def walk(number: int, depth: int) -> None:
        node = objects.get(number)
        if node is None or depth > 32:
            raise PieceUnreadable(f"{piece}: the page tree is broken")
        kids = re.search(rb"/Kids\s*\[([^\]]*)\]", node.head)
        if kids is None:
            out.append(number)
            return
        for kid in _REF.findall(kids.group(1)):
            walk(int(kid), depth + 1)

    walk(int(pages_ref.group(1)), 0)  # leaves only: the piece's page tree nodes are not copied
    return out


def _pdf_text(value: str) -> bytes:
    raw = value.encode("ascii", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
