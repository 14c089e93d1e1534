"""The certificate id an uploaded PDF claims, read from its document information alone.

An upload is untrusted, so nothing here interprets a page: no content stream, font, image
or cross-reference stream is decoded. The newest trailer's /Info reference is found near
the end of the file, the object it names is read as plain text, and only its /Keywords
and /Title strings are decoded. Every step is a byte search over the file or a loop over
a few kilobytes, so the work grows with the file's size (at most VERIFY_MAX_MB) and with
nothing an attacker draws on a page.

Our certificates keep their document information in a plain object (pyHanko's sealing
revision writes it so). A file whose /Info sits in a compressed object stream, or is
encrypted, claims nothing and is judged by its SHA-256 alone.
"""
from __future__ import annotations

import re

ID_PATTERN = re.compile(r"SO-[A-Z2-9]{4}-[A-Z2-9]{4}-[A-Z2-9]{4}")

_INFO_REF = re.compile(rb"/Info\s*(\d{1,10})\s+(\d{1,5})\s+R")
_STRING_KEY = re.compile(rb"/(Keywords|Title)\s*(\(|<(?!<))")
_TAIL = 64 * 1024  # the newest trailer or xref stream dictionary lies within this of the end
_OBJECT = 8 * 1024  # an information dictionary is a few hundred bytes
_TRIES = 8  # "12 0 obj" inside "112 0 obj": how many near misses we step over
_MAX_STRING = 1024
_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}


def claimed_id(pdf: bytes) -> str | None:
    """The certificate id in the document information's /Keywords or /Title, if any."""
    info = _info_object(pdf)
    if info is None:
        return None
    for match in _STRING_KEY.finditer(info):
        raw = _literal(info, match.end()) if match.group(2) == b"(" \
            else _hex(info, match.end())
        found = ID_PATTERN.search(_text(raw)) if raw is not None else None
        if found:
            return found.group(0)
    return None


def _info_object(pdf: bytes) -> bytes | None:
    """The bytes of the newest revision's information dictionary, up to its `endobj`."""
    refs = list(_INFO_REF.finditer(pdf, max(0, len(pdf) - _TAIL)))
    if not refs:
        return None
    header = b"%d %d obj" % (int(refs[-1].group(1)), int(refs[-1].group(2)))
    end = len(pdf)
    for _ in range(_TRIES):  # the last definition wins, as in an incremental update
        at = pdf.rfind(header, 0, end)
        if at < 0:
            return None
        if at == 0 or not pdf[at - 1:at].isdigit():
            body = pdf[at + len(header):at + len(header) + _OBJECT]
            return body.split(b"endobj", 1)[0]
        end = at
    return None


def _literal(data: bytes, start: int) -> bytes | None:
    """A literal string's bytes, from just after its `(`; None if unterminated or long."""
    out, depth, i = bytearray(), 1, start
    while i < len(data) and len(out) <= _MAX_STRING:
        byte = data[i]
        if byte == 0x5C and i + 1 < len(data):  # backslash
            i += 1
            escaped = data[i]
            if 0x30 <= escaped <= 0x37:  # up to three octal digits
                digits = re.match(rb"[0-7]{1,3}", data[i:i + 3]).group(0)
                out.append(int(digits, 8) & 0xFF)
                i += len(digits) - 1
            elif escaped in (0x0D, 0x0A):  # a line continuation
                if escaped == 0x0D and data[i + 1:i + 2] == b"\n":
                    i += 1
            else:
                out.append(_ESCAPES.get(escaped, escaped))
        elif byte == 0x28:
            depth += 1
            out.append(byte)
        elif byte == 0x29:
            depth -= 1
            if depth == 0:
                return bytes(out)
            out.append(byte)
        else:
            out.append(byte)
        i += 1
    return None


def _hex(data: bytes, start: int) -> bytes | None:
    end = data.find(b">", start, start + 4 * _MAX_STRING)
    if end < 0:
        return None
    digits = re.sub(rb"\s", b"", data[start:end])
    if not re.fullmatch(rb"[0-9A-Fa-f]*", digits):
        return None
    return bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())


def _text(raw: bytes) -> str:
    """A PDF text string: UTF-16BE or UTF-8 with their marks, else PDFDocEncoding (which
    agrees with Latin-1 on every character an id uses)."""
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", "replace")
    if raw.startswith(b"\xef\xbb\xbf"):
        return raw[3:].decode("utf-8", "replace")
    return raw.decode("latin-1")
