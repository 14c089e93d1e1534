"""A real S3-protocol server for the tests: moto's standalone server, started as a
subprocess on loopback for the session, and a fresh bucket per test.

    from tests.s3_server import s3_server, s3_storage_fixture  # noqa: F401

The fixture `s3_storage` (request it before `app`) points the app's FILE_STORAGE_URL at
a new bucket and returns its settings. Without moto the tests skip; under CI=true they fail, since
moto is a dev dependency.
"""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import _free_port, need_server

# moto takes any credentials; boto3 reads these from the environment, as in production.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "signoff-test", "AWS_SECRET_ACCESS_KEY": "signoff-test"}
REGION = "us-east-1"


def _wait_until_up(endpoint: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answered
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"moto server did not answer at {endpoint} in {timeout} s")


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1 (killed at the end of the session);
    the S3 credentials are in os.environ for the app and its subprocesses."""
    if importlib.util.find_spec("moto") is None:
        need_server("moto (S3 server)", "the moto package is not installed")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(endpoint, proc)
        yield endpoint
    finally:
        proc.kill()
        proc.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_client(endpoint: str) -> Any:
    import boto3
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=REGION)


def new_bucket(endpoint: str) -> str:
    """A fresh, empty bucket of its own."""
    name = f"signoff-{uuid.uuid4().hex[:16]}"
    s3_client(endpoint).create_bucket(Bucket=name)
    return name


def bucket_keys(endpoint: str, bucket: str) -> list[str]:
    """Every object name in the bucket."""
    pages = s3_client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def copy_bucket(endpoint: str, source: str, target: str) -> int:
    """Copy every object of `source` into `target` (as a restore copies the storage)."""
    client = s3_client(endpoint)
    names = bucket_keys(endpoint, source)
    for name in names:
        client.copy_object(Bucket=target, Key=name,
                           CopySource={"Bucket": source, "Key": name})
    return len(names)


@pytest.fixture(name="s3_storage")
def s3_storage_fixture(s3_server: str, app_config: dict[str, Any]) -> dict[str, str]:
    """Request before `app`: the app keeps its files in a fresh bucket under a prefix."""
    bucket = new_bucket(s3_server)
    settings = {"FILE_STORAGE_URL": f"s3://{bucket}/signoff", "S3_ENDPOINT_URL": s3_server,
                "S3_REGION": REGION}
    app_config.update(settings)
    return {**settings, "bucket": bucket, "prefix": "signoff", "endpoint": s3_server}
