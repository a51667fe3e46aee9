"""Laid-out pages as PDF objects: page tree, shared fonts and XObjects, compressed content."""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from typing import NamedTuple

from pipeline.render.canvas import Out
from pipeline.render.fonts import add_font
from pipeline.render.pdf.structure import add_structure
from pipeline.render.pdf.writer import Name, PdfDocument, Raw, Ref, Stream

# Per-page content streams: level 1 is ~4x smaller than raw and twice as fast as the
# default 6 (whose streams are only ~10% smaller). Cached forms are compressed once, at 9.
ZLIB_LEVEL = 1


class PageTree(NamedTuple):
    """What the catalog refers to: the page tree, and the structure tree when tagged."""

    pages: Ref
    structure: Ref | None


def add_pages(document: PdfDocument, pages: Sequence[Out]) -> PageTree:
    """Add the pages and the resources they share, then the structure tree of their marked
    content (when there is any: see `pipeline.render.pdf.structure`).

    Resource names are fixed (fonts F1.., forms and images by name), so operators cached
    across documents stay valid in every one. Page i has /StructParents i; a form with
    marked content gets the next keys.
    """
    tree = document.reserve()
    fonts = sorted(set().union(*(out.fonts for out in pages)))  # resource names: F1, F1g3, ...
    font_refs = [(name, add_font(document, name)) for name in fonts]
    font_dictionary = document.add(Raw(b"<< " + b" ".join(  # names and references only
        b"/%s %d 0 R" % (name.encode(), ref) for name, ref in font_refs) + b" >>"))
    resources = document.add(Raw(b"<< /Font %d 0 R >>" % font_dictionary))
    forms = {name: form for out in pages for name, form in out.forms.items()}
    images = {name: image for out in pages for name, image in out.images.items()}
    tagged = any(out.marks for out in pages)
    form_keys = {name: len(pages) + index for index, name in enumerate(
        sorted(name for name, form in forms.items() if form.marks))}
    if forms or images:  # the cached legal columns use the fonts as their resources
        form_resources = resources
        xobjects = {name: document.add(Stream({
            "Type": Name("XObject"), "Subtype": Name("Form"),
            "BBox": [-2, -4, round(form.width + 2, 2), round(form.height + 2, 2)],
            "Resources": form_resources, "Filter": Name("FlateDecode"),
            **({"StructParents": form_keys[name]} if name in form_keys else {})}, form.data))
            for name, form in sorted(forms.items())}
        xobjects |= {name: document.add(Stream({
            "Type": Name("XObject"), "Subtype": Name("Image"), "Width": image.width,
            "Height": image.height, "ColorSpace": Name(image.color_space),
            "BitsPerComponent": 8, "Filter": Name("DCTDecode")}, image.data))
            for name, image in sorted(images.items())}
        resources = document.add(Raw(b"<< /Font %d 0 R /XObject << %s >> >>" % (
            font_dictionary, b" ".join(b"/%s %d 0 R" % (name.encode(), ref)
                                       for name, ref in xobjects.items()))))
    kids: list[Ref] = []
    for index, out in enumerate(pages):
        content = document.add(Stream({"Filter": Name("FlateDecode")},
                                      zlib.compress(out.finish(), ZLIB_LEVEL)))
        kids.append(document.add(Raw(  # no strings inside: preformatted
            b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources %d 0 R"
            b" /Contents %d 0 R%s >>" % (tree, resources, content,
                                         b" /StructParents %d" % index if tagged else b""))))
    document.set(tree, Raw(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % kid for kid in kids), len(kids))))
    if not tagged:
        return PageTree(tree, None)
    placed = {name: (xobjects[name], key) for name, key in form_keys.items()}
    return PageTree(tree, add_structure(document, kids, [out.marks for out in pages], placed))
