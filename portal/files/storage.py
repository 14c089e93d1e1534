"""A content-addressed file store: files live under their SHA-256, never their name."""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from portal.errors import InvalidInput, UnsupportedFile
from portal.files.filetypes import accepted_kinds, clean_filename, sniff

_KEY = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class TooLarge(InvalidInput):
    status = 413


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int
    file_name: str
    media_type: str


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError("not a storage key")
        return self.root / key[:2] / key[2:4] / key

    def ingest(
        self, stream: BinaryIO, original_name: str, accepted: str, max_bytes: int
    ) -> StoredFile:
        """Hash while copying to a temp file, check the content's type, then move in place."""
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=incoming)
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(
                            f"The file is larger than the {max_bytes // (1024 * 1024)} MB limit."
                        )
                    digest.update(chunk)
                    out.write(chunk)
            if size == 0:
                raise InvalidInput("The file is empty.")
            name = clean_filename(original_name)
            kind = self._check_kind(tmp, name, accepted)
            key = digest.hexdigest()
            final = self.path_for(key)
            if final.exists():
                tmp.unlink()
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp, final)
            return StoredFile(key, key, size, name, kind.media_type)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        """Store bytes we made ourselves (certificates); returns the key."""
        key = hashlib.sha256(data).hexdigest()
        final = self.path_for(key)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(dir=final.parent)
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp_name, final)
        return key

    def put_file(self, path: Path) -> str:
        """Move a file we made (a render) into the store under its hash; returns the key.
        `path` must be on the store's file system (a temporary folder inside it)."""
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        key = digest.hexdigest()
        final = self.path_for(key)
        if final.exists():
            path.unlink()
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)
        return key

    def scratch(self) -> Path:
        """A folder for work in progress, on the store's file system."""
        incoming = self.root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        return incoming

    def read_bytes(self, key: str) -> bytes:
        return self.path_for(key).read_bytes()

    @staticmethod
    def _check_kind(path: Path, name: str, accepted: str):
        kinds = accepted_kinds(accepted)
        allowed = ", ".join(k.label for k in kinds)
        detected = sniff(path)
        kind = next((k for k in kinds if k.key == detected), None)
        if kind is None:
            raise UnsupportedFile(
                f"“{name}” is not a file type we accept. Accepted: {allowed}."
            )
        if not name.lower().endswith(kind.extensions):
            raise UnsupportedFile(
                f"“{name}” contains a {kind.label}, but its name does not end in "
                f"{' or '.join(kind.extensions)}. Rename it and upload it again."
            )
        return kind


def file_store() -> FileStore:
    return FileStore(Path(current_app.config["FILE_STORE"]))
