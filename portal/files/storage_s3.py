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

from portal.files.storage import StorageUnreachable, Store, layout

_MISSING = {"404", "NoSuchKey", "NotFound"}
_lock = threading.Lock()


def parse_storage_url(url: str) -> tuple[str, str]:
    """s3://bucket/some/prefix → ("bucket", "some/prefix")."""
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"FILE_STORAGE_URL must look like s3://bucket/prefix, not {url!r}")
    return parts.netloc, parts.path.strip("/")


def _missing(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) in _MISSING


class S3Store(Store):
    def __init__(self, client: Any, bucket: str, prefix: str, scratch_root: Path) -> None:
        super().__init__(scratch_root)
        self.client, self.bucket, self.prefix = client, bucket, prefix

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
        size = self.size(key)
        if size is None:
            raise FileNotFoundError(f"stored file {key} is missing from s3://{self.bucket}")
        return ObjectReader(self.client, self.bucket, self.object_name(key), size)

    def _keep(self, path: Path, key: str) -> None:
        if not self.exists(key):  # content-addressed: the same key is the same bytes
            self.client.upload_file(str(path), self.bucket, self.object_name(key))
        path.unlink(missing_ok=True)

    def check_reachable(self) -> None:
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise StorageUnreachable(f"bucket {self.bucket} is not reachable: {exc}") from exc


class ObjectReader(io.RawIOBase):
    """A seekable reader of one object: each read streams from a ranged GET opened at the
    current position, so a download (or a Range request) never holds the whole file."""

    def __init__(self, client: Any, bucket: str, name: str, size: int) -> None:
        super().__init__()
        self.client, self.bucket, self.name, self.length = client, bucket, name, size
        self.position = 0
        self._body: Any = None

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

    def read(self, size: int = -1) -> bytes:
        if self.position >= self.length:
            return b""
        if self._body is None:
            extra = {"Range": f"bytes={self.position}-"} if self.position else {}
            answer = self.client.get_object(Bucket=self.bucket, Key=self.name, **extra)
            self._body = answer["Body"]
        data = self._body.read() if size is None or size < 0 else self._body.read(size)
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


def make_client(config: dict[str, Any]) -> Any:
    return boto3.session.Session().client(
        "s3", endpoint_url=config.get("S3_ENDPOINT_URL") or None,
        region_name=config.get("S3_REGION") or None,
        # Short connect timeout: a page or /readyz waits seconds, not minutes, for a
        # bucket that is gone.
        config=Config(connect_timeout=3, read_timeout=60, retries={"max_attempts": 3}))


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
                store = S3Store(make_client(config), bucket, prefix, Path(settings[3]))
                cached = app.extensions["s3_store"] = (settings, store)
    return cached[1]
