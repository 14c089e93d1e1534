"""Small hostile PDFs for the verify tests and bench/verify.py, built byte by byte."""
from __future__ import annotations

import zlib

from portal.demo.samples import pdf_from_objects

TEXT_OPERATOR = b"BT /F1 1 Tf (x) Tj ET\n"


def _literal(text: str) -> bytes:
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    return b"(" + escaped.encode("latin-1") + b")"


def text_bomb_pdf(*, repeats: int = 300_000, pages: int = 5, draws: int = 4,
                  title: str | None = None) -> bytes:
    """A few KB that cost a text extractor minutes: one form XObject whose compressed
    content stream repeats a text operator `repeats` times, drawn `draws` times on each
    of `pages` pages. `title` puts a /Title into the document information."""
    form = zlib.compress(TEXT_OPERATOR * repeats, 9)
    page_content = b"/X0 Do\n" * draws
    first_page = 6
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /XObject /Subtype /Form /BBox [0 0 595 842] /Resources << /Font "
        b"<< /F1 3 0 R >> >> /Filter /FlateDecode /Length %d >>\nstream\n" % len(form)
        + form + b"\nendstream",
        b"<< /Length %d >>\nstream\n" % len(page_content) + page_content + b"\nendstream",
    ]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 5 0 R "
                b"/Resources << /XObject << /X0 4 0 R >> >> >>"] * pages
    info = b""
    if title is not None:
        objects.append(b"<< /Title " + _literal(title) + b" >>")
        info = b" /Info %d 0 R" % len(objects)
    return pdf_from_objects(objects, trailer=info)


def xref_bomb_pdf(entries: int = 1_000_000) -> bytes:
    """A few KB whose compressed cross-reference stream lists `entries` free objects: a
    full PDF reader loops over each before it reaches the document information."""
    catalog = b"1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    pages = b"2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    out = b"%PDF-1.5\n"
    first, second = len(out), len(out) + len(catalog)
    out += catalog + pages
    rows = b"\x00" + (0).to_bytes(4, "big") + (65535).to_bytes(2, "big")
    rows += b"\x01" + first.to_bytes(4, "big") + b"\x00\x00"
    rows += b"\x01" + second.to_bytes(4, "big") + b"\x00\x00"
    xref, size = len(out), entries + 4  # the stream's own entry comes last
    rows += bytes(7) * entries + b"\x01" + xref.to_bytes(4, "big") + b"\x00\x00"
    data = zlib.compress(rows, 9)
    out += (b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 2] /Root 1 0 R /Filter /FlateDecode "
            b"/Length %d >>\nstream\n" % (size - 1, size, len(data)) + data
            + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref)
    return out
