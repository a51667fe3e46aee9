"""Tagged PDF: the structure tree a screen reader follows, built from marked content.

Why it is built this way: a statement's pages are written as operator strings (see
`pipeline.render.canvas`), so tagging follows the same habit. While drawing, a page records
a mark for every marked-content sequence it opens: the sequence's MCID (numbered per content
stream, 0, 1, 2 ...) and its `TagPath`, the chain of structure elements it belongs to from the
top of the document down (e.g. Table > TR). Elements are identified by key objects (a `Tag`,
a block, a grid row), so the two parts of a paragraph or a table split over two pages, or
over the two columns of the legal pages, land in one element. A table row is one mark for
all its cells (`Cells`: consecutive MCIDs, one TH or TD each), since the cells are most of a
statement's elements. `add_structure` turns the pages' marks into the tree once the pages
are written: elements in the order their content was first drawn, which is the order the
flow fills pages and columns, i.e. reading order; the /ParentTree that maps every MCID back
to its element; the /StructTreeRoot.

Content drawn once and reused by many documents (the legal pages' Form XObject) has MCIDs
of its own stream: the form keeps its marks, each document that places it refers to them
with marked-content references naming the form (/Stm), and the form gets a /StructParents
key of its own. So no cached operators embed a page's MCIDs.

What is not content is drawn in /Artifact sequences (rules, fills, running headers, footers,
table headers repeated on a later page), which readers skip. A top-level H2 opens a Sect
holding what follows it up to the next H2 or H1.

Speed and size: elements are preformatted bytes (no strings inside, so nothing to encrypt),
except a Figure's /Alt and an element's /Lang (a tagline's language), which go through
the writer like every string; cells are written as soon as their row is seen. About 300
elements for a typical two-page statement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.render.pdf.writer import Name, PdfDocument, Raw, Ref

__all__ = ["Cells", "Mark", "TagPath", "Placed", "Tag", "add_structure"]


class Tag:
    """A structure element (its role; a Figure's alternative text; a TH's scope; the
    language of its text when it is not the document's, e.g. a tagline's /Lang).

    Identity is what matters: every mark whose path holds the same Tag belongs to the same
    element, whichever page or column it is drawn on. Tags held by cached blocks are shared
    by many documents; each document makes its own element for them.
    """

    __slots__ = ("role", "alt", "scope", "lang")

    def __init__(self, role: str, alt: str | None = None, scope: str | None = None,
                 lang: str | None = None) -> None:
        self.role, self.alt, self.scope = role, alt, scope  # scope: "Row" or "Column"
        self.lang = lang  # BCP 47, written as the element's /Lang

    def __repr__(self) -> str:
        return f"Tag({self.role!r})"


TagPath = tuple[tuple[object, str], ...]
"""(key, role) pairs from the document's top level down to the element holding the content."""


class Cells:
    """A table row's cells: one element of `role` each, under the element `path` ends with.

    `cells` has one (has_text, empty_before, span) per cell: a cell with text gets the next
    MCID; `empty_before` empty cells are put before it and `span` > 1 is its /ColSpan, so
    every cell stays under its column's header. An empty `path` makes each cell an element
    of the top level (a heading drawn as a grid row).
    """

    __slots__ = ("path", "role", "cells", "simple")

    def __init__(self, path: TagPath, role: str,
                 cells: tuple[tuple[bool, int, int], ...]) -> None:
        self.path, self.role, self.cells = path, role, cells
        self.simple = cells.count((True, 0, 1)) == len(cells)  # the fast path


Mark = tuple[int, "TagPath | Cells"]
"""A marked-content sequence of one content stream (its MCID; for Cells the first one)."""


@dataclass(frozen=True, slots=True)
class Placed:
    """A Form XObject placed on a page, with the marks of its own content stream."""

    name: str
    marks: tuple[Mark, ...]


_SCOPES = {"Column": b"/A<</O/Table/Scope/Column>>", "Row": b"/A<</O/Table/Scope/Row>>"}


class _Element:
    __slots__ = ("role", "key", "parent", "kids", "ref")

    def __init__(self, role: str, key: object, parent: _Element | None, ref: int) -> None:
        self.role, self.key, self.parent, self.ref = role, key, parent, ref
        # elements, content (page, mcid, form ref or 0), or cells already written (numbers)
        self.kids: list[_Element | tuple[int, int, int] | int] = []


class _Tree:
    """Elements keyed by their path keys, numbered as they are made (in drawing order)."""

    __slots__ = ("objects", "root", "elements", "container", "pages")

    def __init__(self, document: PdfDocument, pages: Sequence[Ref]) -> None:
        self.objects, self.pages = document.objects, pages
        self.objects.append(None)
        self.root = _Element("Document", None, None, len(self.objects))
        self.elements: dict[object, _Element] = {}
        self.container = self.root

    def leaf(self, path: TagPath) -> _Element:
        elements, objects, parent = self.elements, self.objects, None
        for key, role in path:
            element = elements.get(key)
            if element is None:
                if parent is None:  # top level: under the open Sect, or the document
                    if role == "H2":
                        objects.append(None)
                        self.container = _Element("Sect", None, self.root, len(objects))
                        self.root.kids.append(self.container)
                    elif role == "H1":
                        self.container = self.root
                    parent = self.container
                objects.append(None)  # a number now, the value once the tree is complete
                element = _Element(role, key, parent, len(objects))
                parent.kids.append(element)
                elements[key] = element
            parent = element
        assert parent is not None, "a mark needs a path"
        return parent

    def cells(self, page: int, mcid: int, row: Cells, owners: list[int], form: int) -> None:
        """A row's cells (their MCIDs from `mcid` on): the elements written at once."""
        if not row.path:  # headings: each cell its own top-level element
            for index, (text, _, _) in enumerate(row.cells):
                if text:
                    leaf = self.leaf((((row, index), row.role),))
                    leaf.kids.append((page, mcid, form))
                    owners.append(leaf.ref)
                    mcid += 1
            return
        parent = self.leaf(row.path)
        objects, kids = self.objects, parent.kids  # appended to directly: the hot loop
        head = b"<</S/%s/P %d 0 R" % (row.role.encode("ascii"), parent.ref)
        scope = _SCOPES["Column"] if row.role == "TH" else b""
        content = (b"%s/K<</Type/MCR/Pg %d 0 R/Stm %d 0 R/MCID %%d>>" % (
            head, self.pages[page], form) if form
            else b"%s/Pg %d 0 R/K %%d" % (head, self.pages[page]))
        simple = content + scope + b">>"
        if row.simple:  # one cell a column, each with text: most rows
            first = len(objects) + 1
            objects.extend([Raw(simple % number)
                            for number in range(mcid, mcid + len(row.cells))])
            numbers = range(first, len(objects) + 1)
            kids.extend(numbers)
            owners.extend(numbers)
            return
        for text, before, span in row.cells:
            for _ in range(before):
                objects.append(Raw(b"<</S/TD/P %d 0 R>>" % parent.ref))
                kids.append(len(objects))
            if span == 1 and text:
                objects.append(Raw(simple % mcid))
                kids.append(len(objects))
                owners.append(len(objects))
                mcid += 1
                continue
            attributes = scope if span == 1 else (
                b"/A<</O/Table/ColSpan %d%s>>" % (span, b"/Scope/Column" if scope else b""))
            if not text:
                objects.append(Raw(head + attributes + b">>"))
                kids.append(len(objects))
                continue
            objects.append(Raw((content % mcid) + attributes + b">>"))
            kids.append(len(objects))
            owners.append(len(objects))
            mcid += 1


def add_structure(document: PdfDocument, pages: Sequence[Ref],
                  marks: Sequence[Sequence[Mark | Placed]],
                  forms: Mapping[str, tuple[Ref, int]]) -> Ref:
    """The structure tree of the pages' marks; returns the /StructTreeRoot for the catalog.

    `pages[i]` has /StructParents i; `forms` maps a placed form's name to its object and its
    /StructParents key. A form is expected on one page only (as the legal pages are).
    """
    root_ref = document.reserve()
    tree = _Tree(document, pages)
    parents: dict[int, list[int]] = {}  # per key: the element number of each MCID
    for index, page_marks in enumerate(marks):
        owners: list[int] = []
        parents[index] = owners
        for entry in page_marks:
            if isinstance(entry, Placed):
                form_ref, key = forms[entry.name]
                form_owners: list[int] = []
                parents[key] = form_owners
                for mark in entry.marks:
                    _add(tree, index, mark, form_owners, form_ref)
            else:
                _add(tree, index, entry, owners, 0)
    objects, stack = document.objects, [tree.root]
    while stack:
        element = stack.pop()
        objects[element.ref - 1] = _element_value(element, root_ref, pages)
        stack.extend([kid for kid in element.kids if type(kid) is _Element])
    parent_tree = document.add(Raw(b"<< /Nums [" + b" ".join([
        b"%d [%b]" % (key, _references(owners)) for key, owners in sorted(parents.items())])
        + b"] >>"))
    document.set(root_ref, Raw(
        b"<< /Type /StructTreeRoot /K %d 0 R /ParentTree %d 0 R /ParentTreeNextKey %d >>"
        % (tree.root.ref, parent_tree, max(parents, default=-1) + 1)))
    return root_ref


def _references(numbers: list[int]) -> bytes:
    if 0 in numbers:  # a gap in the MCIDs (never expected): null
        return b" ".join([b"%d 0 R" % number if number else b"null" for number in numbers])
    return b" 0 R ".join([b"%d" % number for number in numbers]) + b" 0 R" if numbers else b""


def _add(tree: _Tree, page: int, mark: Mark, owners: list[int], form: int) -> None:
    mcid, what = mark
    if len(owners) != mcid:  # MCIDs are dense and in order; a gap (never expected): null
        owners.extend([0] * (mcid - len(owners)))
    if type(what) is Cells:
        tree.cells(page, mcid, what, owners, form)
        return
    leaf = tree.leaf(what)  # type: ignore[arg-type]
    leaf.kids.append((page, mcid, form))
    owners.append(leaf.ref)


def _element_value(element: _Element, root_ref: Ref, pages: Sequence[Ref]) -> Raw | dict:
    parent = element.parent.ref if element.parent is not None else root_ref
    role, kids = element.role.encode("ascii"), element.kids
    key = element.key  # only a Tag carries /Alt, /Lang or /Scope (a missed getattr is slow)
    alt, lang = (key.alt, key.lang) if isinstance(key, Tag) else (None, None)
    if alt is None and lang is None and role != b"TH" and kids:  # the common shapes first
        first = kids[0]
        if type(first) is tuple and len(kids) == 1:  # one marked-content sequence
            if not first[2]:  # on its page (most P and H)
                return Raw(b"<</S/%s/P %d 0 R/Pg %d 0 R/K %d>>" % (
                    role, parent, pages[first[0]], first[1]))
            return Raw(  # in the legal pages' form
                b"<</S/%s/P %d 0 R/K<</Type/MCR/Pg %d 0 R/Stm %d 0 R/MCID %d>>>>"
                % (role, parent, pages[first[0]], first[2], first[1]))
        if type(first) is int:  # a grid's row: its cells are written already
            return Raw(b"<</S/%s/P %d 0 R/K[%b]>>" % (
                role, parent, _references(kids)))  # type: ignore[arg-type]
        if type(first) is _Element:  # sections, tables, the document
            refs = [kid.ref for kid in kids if type(kid) is _Element]
            if len(refs) == len(kids):
                return Raw(b"<</S/%s/P %d 0 R/K[%b]>>" % (
                    role, parent, _references(refs)))
    page = next((kid[0] for kid in kids if isinstance(kid, tuple)), None)
    items = []
    for kid in kids:
        if isinstance(kid, _Element):
            items.append(b"%d 0 R" % kid.ref)
        elif isinstance(kid, int):
            items.append(b"%d 0 R" % kid)
        elif kid[2]:
            items.append(b"<< /Type /MCR /Pg %d 0 R /Stm %d 0 R /MCID %d >>"
                         % (pages[kid[0]], kid[2], kid[1]))
        elif kid[0] == page:
            items.append(b"%d" % kid[1])
        else:
            items.append(b"<< /Type /MCR /Pg %d 0 R /MCID %d >>" % (pages[kid[0]], kid[1]))
    k = items[0] if len(items) == 1 else b"[" + b" ".join(items) + b"]"  # [] when empty
    if alt is not None or lang is not None:  # strings: written (and encrypted) by the writer
        value: dict[str, Any] = {"S": Name(element.role), "P": Ref(parent), "K": Raw(k)}
        if alt is not None:
            value["Alt"] = alt
        if lang is not None:
            value["Lang"] = lang
        if page is not None:
            value["Pg"] = Ref(pages[page])
        return value
    scope = key.scope if isinstance(key, Tag) else None
    return Raw(b"<< /S /%s /P %d 0 R%s /K %s%s >>" % (
        role, parent, b" /Pg %d 0 R" % pages[page] if page is not None else b"", k,
        _SCOPES[scope or "Column"] if role == b"TH" else b""))
