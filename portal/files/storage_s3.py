"""The store on S3 (or any S3-protocol server): FILE_STORAGE_URL=s3://bucket/prefix.

Objects keep the local layout under the prefix (prefix/ab/cd/<key>). The client comes
from S3_ENDPOINT_URL and S3_REGION; credentials from boto3's usual chain (the
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment, a profile, an instance role).
One client per app and process, shared by its threads (boto3 clients are thread-safe).
"""
from __future__ import annotations

import io
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from flask import Flask

from portal.files.storage import Part, StorageUnreachable, Store, layout

_MISSING = {"404", "NoSuchKey", "NotFound"}
_FORBIDDEN = {"403", "AccessDenied", "Forbidden"}
_lock = threading.Lock()


def parse_storage_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix → ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"FILE_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
    return parts.netloc, parts.path.strip("/")


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code"))


def _missing(exc: ClientError) -> bool:
    return _code(exc) in _MISSING


def _forbidden(exc: ClientError) -> bool:
    # Without s3:ListBucket, S3 answers a HEAD on a missing key with 403, not 404.
    return _code(exc) in _FORBIDDEN


class S3Store(Store):
    def __init__(self, client: Any, bucket: str, prefix: str, scratch_root: Path,
                 probe_client: Any = None) -> None:
        super().__init__(scratch_root)
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.probe_client = probe_client or client

    def object_name(self, key: str) -> str:
        """The object's name in the bucket; the key is checked, so it cannot leave the
        prefix."""
        return f"{self.prefix}/{layout(key)}" if self.prefix else layout(key)

    def size(self, key: str) -> int | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.object_name(key))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def open(self, key: str) -> BinaryIO:
        return self.open_part(key).reader  # type: ignore[return-value]

    def open_part(self, key: str, byte_range: str | None = None) -> Part | None:
        """One GET, streamed, whose answer gives the length (no HEAD first). With a
        byte_range (`bytes=0-99`, `bytes=100-`, `bytes=-100`) the GET is bounded to it, so
        S3 sends those bytes only; None when the range starts past the end."""
        try:
            answer = self._get(key, **({"Range": byte_range} if byte_range else {}))
        except ClientError as exc:
            if byte_range and _code(exc) == "InvalidRange":
                return None
            raise
        length = int(answer["ContentLength"])
        first, total = 0, length  # the whole object (or a server that ignored the range)
        if byte_range and answer.get("ContentRange"):
            span, _, whole = answer["ContentRange"].removeprefix("bytes ").partition("/")
            first, total = int(span.partition("-")[0]), int(whole)
        reader = ObjectReader(self.client, self.bucket, self.object_name(key),
                              first=first, length=length, body=answer["Body"])
        return Part(reader, first, length, total)  # type: ignore[arg-type]

    def _get(self, key: str, **extra: str) -> dict[str, Any]:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self.object_name(key),
                                          **extra)
        except ClientError as exc:
            if _missing(exc):
                raise FileNotFoundError(
                    f"stored file {key} is missing from s3://{self.bucket}") from exc
            raise

    def _keep(self, path: Path, key: str) -> None:
        # Content-addressed: an object under this key already holds these bytes, so the
        # upload is skipped when S3 says it is there. A 403 (no s3:ListBucket) means
        # "unknown": the upload of the same bytes is harmless.
        try:
            present = self.exists(key)
        except ClientError as exc:
            if not _forbidden(exc):
                raise
            present = False
        if not present:
            self.client.upload_file(str(path), self.bucket, self.object_name(key))
        path.unlink(missing_ok=True)

    def check_reachable(self) -> None:
        # Its own client: 1 s timeouts, one attempt, so a probe never outlives /readyz.
        try:
            self.probe_client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnreachable(f"bucket {self.bucket} is not reachable: {exc}") from exc


class ObjectReader(io.RawIOBase):
    """A seekable reader of bytes [first, first + length) of one object (the whole object,
    or the range a request asked for). It streams the body of the GET that opened it; a
    seek elsewhere opens one GET bounded to the rest of the window, so nothing outside
    the window is ever fetched and the file is never held whole."""

    def __init__(self, client: Any, bucket: str, name: str, *, first: int, length: int,
                 body: Any = None) -> None:
        super().__init__()
        self.client, self.bucket, self.name = client, bucket, name
        self.first, self.length = first, length
        self.position = 0  # within the window
        self._body: Any = body

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.length}[whence]
        target = max(0, base + offset)
        if target != self.position:
            self._drop_body()
            self.position = target
        return self.position

    def read(self, size: int | None = -1) -> bytes:
        left = self.length - self.position
        if left <= 0:
            return b""
        if self._body is None:
            start = self.first + self.position
            answer = self.client.get_object(
                Bucket=self.bucket, Key=self.name,
                Range=f"bytes={start}-{self.first + self.length - 1}")
            self._body = answer["Body"]
        want = left if size is None or size < 0 else min(size, left)
        data = self._body.read(want)
        self.position += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def readall(self) -> bytes:
        return self.read(-1)

    def _drop_body(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None

    def close(self) -> None:
        self._drop_body()
        super().close()


# Data: a short connect timeout (a page waits seconds, not minutes, for a bucket that
# is gone), a long read timeout and retries for big files.
DATA_CLIENT = Config(connect_timeout=3, read_timeout=60, retries={"max_attempts": 3})
# Readiness: one attempt, 1 s each way, so a blackholed endpoint never leaves /readyz
# threads waiting (total_max_attempts counts the first try).
PROBE_CLIENT = Config(connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 1})


def make_client(config: dict[str, Any], settings: Config = DATA_CLIENT) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=config.get("S3_ENDPOINT_URL") or None,
        region_name=config.get("S3_REGION") or None, config=settings)


def s3_store_for(app: Flask) -> S3Store:
    """The app's S3 store, made once per app and process (a forked worker or web process
    makes its own: connections are not shared across a fork)."""
    config = app.config
    settings = (config["FILE_STORAGE_URL"], config.get("S3_ENDPOINT_URL"),
                config.get("S3_REGION"), config["FILE_STORE"], os.getpid())
    cached = app.extensions.get("s3_store")
    if cached is None or cached[0] != settings:
        with _lock:
            cached = app.extensions.get("s3_store")
            if cached is None or cached[0] != settings:
                bucket, prefix = parse_storage_url(settings[0])
                store = S3Store(make_client(config), bucket, prefix, Path(settings[3]),
                                probe_client=make_client(config, PROBE_CLIENT))
                cached = app.extensions["s3_store"] = (settings, store)
    return cached[1]
