"""Evidence beside a decision recorded on a contact's behalf: a PDF, a scan (PNG, JPEG) or
the email itself (.eml, .msg), judged by its bytes, kept content-addressed in the store."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import BinaryIO

from flask_babel import gettext as _

from portal.errors import InvalidInput, UnsupportedFile
from portal.files.filetypes import KINDS, clean_filename, sniff
from portal.files.storage import CHUNK, Store, StoredFile, TooLarge

EML_TYPE = "message/rfc822"
MSG_TYPE = "application/vnd.ms-outlook"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Outlook's .msg is an OLE compound file
# The header lines every saved email carries (RFC 5322): at least two of them up top.
_EMAIL_HEADERS = re.compile(
    rb"^(from|to|subject|date|message-id|received|return-path|mime-version|cc):[ \t]",
    re.I | re.M)
_HEADER_LINE = re.compile(rb"^[!-9;-~]+:[ \t]")
# (media type, extensions) by what the bytes are.
EVIDENCE_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "pdf": (KINDS["pdf"].media_type, KINDS["pdf"].extensions),
    "png": (KINDS["png"].media_type, KINDS["png"].extensions),
    "jpeg": (KINDS["jpeg"].media_type, KINDS["jpeg"].extensions),
    "eml": (EML_TYPE, (".eml",)),
    "msg": (MSG_TYPE, (".msg",)),
}


def _looks_like_email(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    top = head.lstrip(b"\r\n").split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    first = top.split(b"\n", 1)[0]
    return bool(_HEADER_LINE.match(first)) and len(_EMAIL_HEADERS.findall(top)) >= 2


def evidence_kind(path: Path) -> str | None:
    """Which accepted evidence kind the file's bytes are, or None."""
    with path.open("rb") as fh:
        head = fh.read(65536)
    if head.startswith(OLE_MAGIC):
        return "msg"
    kind = sniff(path)
    if kind in ("pdf", "png", "jpeg"):
        return kind
    return "eml" if kind is None and _looks_like_email(head) else None


def ingest_evidence(store: Store, stream: BinaryIO, original_name: str,
                    max_bytes: int) -> StoredFile:
    """Copy while hashing (at most `max_bytes`), check what the bytes are, then keep the
    file under its SHA-256. Refused files leave nothing behind."""
    fd, tmp_name = tempfile.mkstemp(dir=store.scratch())
    tmp = Path(tmp_name)
    digest, size = hashlib.sha256(), 0
    try:
        with os.fdopen(fd, "wb") as out:
            while chunk := stream.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise TooLarge(_("The evidence file is larger than the %(mb)s MB limit.",
                                     mb=max_bytes // (1024 * 1024)))
                digest.update(chunk)
                out.write(chunk)
        if size == 0:
            raise InvalidInput(_("The evidence file is empty."))
        name = clean_filename(original_name, "evidence")
        kind = evidence_kind(tmp)
        if kind is None:
            raise UnsupportedFile(_("“%(name)s” is not a file type we accept as evidence. "
                                    "Accepted: PDF, PNG, JPEG, or an email saved as .eml "
                                    "or .msg.", name=name))
        media_type, extensions = EVIDENCE_KINDS[kind]
        if not name.lower().endswith(extensions):
            raise UnsupportedFile(_("The content of “%(name)s” does not match its name: "
                                    "rename it to end in %(ext)s and upload it again.",
                                    name=name, ext=" / ".join(extensions)))
        key = store.put_file(tmp)  # its SHA-256, as digest says
        return StoredFile(key, digest.hexdigest(), size, name, media_type)
    finally:
        tmp.unlink(missing_ok=True)
