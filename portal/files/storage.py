"""A content-addressed file store: files live under their SHA-256, never their name.

Two backends share one layout (`ab/cd/<key>`): a local folder (FILE_STORE, the default)
and an S3 bucket (FILE_STORAGE_URL=s3://bucket/prefix, see storage_s3). Callers never ask
where a file is: they `open` it to stream, take a `local_copy` for code that needs a path
(renders, compare), and `put_file`/`put_bytes`/`ingest` to keep one. Scratch work always
happens in a local folder (FILE_STORE/incoming) whichever backend keeps the files.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import BinaryIO

from flask import current_app

from portal.errors import InvalidInput, UnsupportedFile
from portal.files.filetypes import accepted_kinds, clean_filename, sniff

_KEY = re.compile(r"^[0-9a-f]{64}$")
CHUNK = 1024 * 1024


class TooLarge(InvalidInput):
    status = 413


class StorageUnreachable(OSError):
    """The store cannot be used right now (for /readyz); the message says why."""


@dataclass(frozen=True)
class StoredFile:
    key: str
    sha256: str
    size: int
    file_name: str
    media_type: str


@dataclass(frozen=True)
class Part:
    """Bytes [first, first + length) of a stored file of `total` bytes, being read."""
    reader: BinaryIO
    first: int
    length: int
    total: int


def checked_key(key: str) -> str:
    """A storage key is a SHA-256 in hex and nothing else: no path can hide in one."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):  # `$` would let "\n" in
        raise ValueError("not a storage key")
    return key


def layout(key: str) -> str:
    """Where a key lives below the store's root or prefix: ab/cd/<key>."""
    checked_key(key)
    return f"{key[:2]}/{key[2:4]}/{key}"


class Store:
    """What every backend offers; subclasses keep the bytes somewhere."""

    def __init__(self, scratch_root: Path) -> None:
        self.scratch_root = scratch_root

    # --- what a backend implements -----------------------------------------------------
    def exists(self, key: str) -> bool:
        raise NotImplementedError

    def size(self, key: str) -> int | None:
        """The stored file's length, or None when it is not there."""
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        """A seekable reader of the stored file (FileNotFoundError when missing)."""
        raise NotImplementedError

    def open_part(self, key: str, byte_range: str | None = None) -> Part | None:
        """The whole file, or the bytes a Range header asks (`bytes=0-99`), fetched as one
        read of exactly those bytes; None when the range starts past the end;
        FileNotFoundError when missing. Backends without a local_path implement it."""
        raise NotImplementedError

    def local_path(self, key: str) -> Path | None:
        """The file's own path when the backend is a local folder, else None."""
        return None

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """A path to the file's bytes for code that needs one; the copy (if any) is gone
        afterwards. FileNotFoundError when the file is not stored."""
        fd, tmp_name = tempfile.mkstemp(dir=self.scratch(), prefix="copy-")
        try:
            with os.fdopen(fd, "wb") as out, self.open(key) as source:
                while chunk := source.read(CHUNK):
                    out.write(chunk)
            yield Path(tmp_name)
        finally:
            Path(tmp_name).unlink(missing_ok=True)

    def _keep(self, path: Path, key: str) -> None:
        """Take the finished local file `path` (whose SHA-256 is `key`) into the store;
        `path` is consumed."""
        raise NotImplementedError

    def check_reachable(self) -> None:
        """Raise StorageUnreachable with the reason when files cannot be kept or read."""
        raise NotImplementedError

    # --- shared -------------------------------------------------------------------------
    def scratch(self) -> Path:
        """A local folder for work in progress (temp files, renders being made)."""
        incoming = self.scratch_root / "incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        return incoming

    def forget_stale_scratch(self, now: datetime,
                             older_than: timedelta = timedelta(hours=6)) -> int:
        """Remove scratch entries (temp copies, uploads, render folders) untouched for
        `older_than`: what a killed worker or web process left behind, since its
        `finally` never ran. Returns how many entries went."""
        cutoff = (now - older_than).timestamp()
        removed = 0
        for entry in self.scratch().iterdir():
            try:
                if _newest_change(entry) >= cutoff:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except FileNotFoundError:  # finished (and cleaned up) while we looked
                continue
            removed += 1
        return removed

    def read_bytes(self, key: str) -> bytes:
        """The whole file (small ones only: certificates for an email)."""
        with self.open(key) as fh:
            return fh.read()

    def sha256_of(self, key: str) -> str | None:
        """The stored bytes' SHA-256, read in chunks; None when the file is missing."""
        digest = hashlib.sha256()
        try:
            with self.open(key) as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        return digest.hexdigest()

    def ingest(
        self, stream: BinaryIO, original_name: str, accepted: str, max_bytes: int
    ) -> StoredFile:
        """Hash while copying to a temp file, check the content's type, then keep it."""
        digest, size = hashlib.sha256(), 0
        fd, tmp_name = tempfile.mkstemp(dir=self.scratch())
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
            self._keep(tmp, key)
            return StoredFile(key, key, size, name, kind.media_type)
        finally:
            tmp.unlink(missing_ok=True)

    def put_bytes(self, data: bytes) -> str:
        """Store bytes we made ourselves (certificates, overlays); returns the key. `_keep`
        looks once whether the key is already there."""
        key = hashlib.sha256(data).hexdigest()
        fd, tmp_name = tempfile.mkstemp(dir=self.scratch())
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            self._keep(Path(tmp_name), key)
        finally:
            Path(tmp_name).unlink(missing_ok=True)
        return key

    def put_file(self, path: Path) -> str:
        """Take a local file we made (a render, checked evidence) into the store under its
        hash; returns the key. `path` is consumed; it should be in `scratch()`, so a local
        store moves it in place without copying."""
        digest = hashlib.sha256()
        with path.open("rb") as fh:
            while chunk := fh.read(CHUNK):
                digest.update(chunk)
        key = digest.hexdigest()
        try:
            self._keep(path, key)
        finally:
            path.unlink(missing_ok=True)
        return key

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


def _newest_change(entry: Path) -> float:
    """The latest mtime in a scratch entry (a render folder changes inside as it works)."""
    newest = entry.lstat().st_mtime
    if entry.is_dir() and not entry.is_symlink():
        for inner in entry.rglob("*"):
            newest = max(newest, inner.lstat().st_mtime)
    return newest


class FileStore(Store):
    """Files in a local folder (FILE_STORE): the default, and what `path_for` serves."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root / layout(key)

    def local_path(self, key: str) -> Path:
        return self.path_for(key)

    def exists(self, key: str) -> bool:
        return self.path_for(key).exists()

    def size(self, key: str) -> int | None:
        try:
            return self.path_for(key).stat().st_size
        except FileNotFoundError:
            return None

    def open(self, key: str) -> BinaryIO:
        return self.path_for(key).open("rb")

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        path = self.path_for(key)  # the file itself: no copy on a local store
        if not path.exists():
            raise FileNotFoundError(f"stored file {key} is missing")
        yield path

    def _keep(self, path: Path, key: str) -> None:
        final = self.path_for(key)
        if final.exists():
            path.unlink(missing_ok=True)
        else:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, final)

    def check_reachable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageUnreachable(f"cannot create {self.root}: {exc.strerror}") from exc
        if not os.access(self.root, os.R_OK | os.W_OK | os.X_OK):
            raise StorageUnreachable(f"{self.root} is not readable and writable")


def file_store() -> Store:
    """The app's store: S3 when FILE_STORAGE_URL says s3://…, else the local folder."""
    config = current_app.config
    if config.get("FILE_STORAGE_URL"):
        from portal.files.storage_s3 import s3_store_for
        return s3_store_for(current_app)
    return FileStore(Path(config["FILE_STORE"]))
