"""Which accepted type a file really is, judged by its bytes, not its name."""
from __future__ import annotations

import re
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

import filetype

from portal.validation import CONTROL_AND_BIDI


@dataclass(frozen=True)
class FileKind:
    key: str
    media_type: str
    extensions: tuple[str, ...]
    label: str


KINDS: dict[str, FileKind] = {k.key: k for k in (
    FileKind("pdf", "application/pdf", (".pdf",), "PDF"),
    FileKind("png", "image/png", (".png",), "PNG image"),
    FileKind("jpeg", "image/jpeg", (".jpg", ".jpeg"), "JPEG image"),
    FileKind("webp", "image/webp", (".webp",), "WebP image"),
    FileKind("svg", "image/svg+xml", (".svg",), "SVG image"),
    FileKind("mp4", "video/mp4", (".mp4", ".m4v"), "MP4 video"),
    FileKind("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             (".docx",), "Word document"),
    FileKind("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             (".xlsx",), "Excel workbook"),
    FileKind("pptx", "application/vnd.openxmlformats-officedocument.presentationml.presentation",
             (".pptx",), "PowerPoint presentation"),
    FileKind("zip", "application/zip", (".zip",), "ZIP archive"),
)}

_BY_LIBRARY_MIME = {
    "application/pdf": "pdf", "image/png": "png", "image/jpeg": "jpeg", "image/webp": "webp",
    "video/mp4": "mp4", "video/x-m4v": "mp4", "application/zip": "zip",
}
# The part that only each Office format has inside its ZIP container.
_OOXML_MARKERS = {"word/document.xml": "docx", "xl/workbook.xml": "xlsx",
                  "ppt/presentation.xml": "pptx"}
_SVG_ROOT = re.compile(
    rb"^\s*(<\?xml[^>]*\?>\s*)?((<!--.*?-->|<!DOCTYPE[^>\[]*(\[.*?\]\s*)?>)\s*)*<svg[\s>/]",
    re.S | re.I,
)


def _zip_kind(path: Path) -> str | None:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return None
    if "[Content_Types].xml" in names:
        for marker, key in _OOXML_MARKERS.items():
            if marker in names:
                return key
    return "zip"


def sniff(path: Path) -> str | None:
    """The key of the accepted kind the content matches, or None."""
    with path.open("rb") as fh:
        head = fh.read(65536)  # SVGs may open with long comments or entity declarations
    guess = filetype.guess(head)
    if guess is not None:
        key = _BY_LIBRARY_MIME.get(guess.mime)
        if key is None and guess.extension in {"docx", "xlsx", "pptx"}:
            key = "zip"
        if key == "zip":
            return _zip_kind(path)
        return key
    if head.startswith(b"PK\x05\x06"):  # an empty ZIP has only the end record
        return "zip"
    if _SVG_ROOT.match(head.removeprefix(b"\xef\xbb\xbf")):
        return "svg"
    return None


def accepted_kinds(setting: str) -> list[FileKind]:
    return [KINDS[k.strip().lower()] for k in setting.split(",") if k.strip().lower() in KINDS]


# Control characters (C0, C1) and the bidi marks that can make "evil.exe.pdf" look otherwise.
_UNSAFE = re.compile(f'[{CONTROL_AND_BIDI}<>:"|?*]')


def clean_filename(raw: str, fallback: str = "file") -> str:
    """A display name with no directories, control characters or leading dots."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = _UNSAFE.sub("_", name).strip().lstrip(".").strip()
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 200 - len(ext) - 1] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name or fallback
