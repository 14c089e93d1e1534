"""A real S3-protocol server for the tests: moto's standalone server, started as a
subprocess on loopback for the session, and a fresh bucket per test.

    from tests.s3_server import s3_server, s3_storage_fixture  # noqa: F401

The fixture `s3_storage` (request it before `app`) points the app's FILE_STORAGE_URL at
a new bucket and returns its settings. Without moto the tests skip; under CI=true they fail, since
moto is a dev dependency.
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
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


@contextmanager
def _moto(extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """A moto server on 127.0.0.1 for the block; yields its endpoint URL."""
    if importlib.util.find_spec("moto") is None:
        need_server("moto (S3 server)", "the moto package is not installed")
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                             "-p", str(port)], env={**os.environ, **(extra_env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(endpoint, proc)
        yield endpoint
    finally:
        proc.kill()
        proc.wait(timeout=10)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """The endpoint URL of a moto server on 127.0.0.1 (killed at the end of the session);
    the S3 credentials are in os.environ for the app and its subprocesses."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    try:
        with _moto() as endpoint:
            yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def policed_s3(users: dict[str, list[str]]) -> Iterator[dict[str, Any]]:
    """A moto server of its own that enforces IAM, with a bucket and, for each user, a
    policy allowing only its actions (e.g. ["s3:PutObject"]) on the bucket's objects.
    Yields endpoint, bucket and, per user name, its (access key id, secret)."""
    import boto3
    # The setup calls (bucket; per user: user, policy, key) go unchecked; every call
    # after them is checked against the caller's IAM policy.
    unchecked = 1 + 3 * len(users)
    with _moto({"INITIAL_NO_AUTH_ACTION_COUNT": str(unchecked)}) as endpoint:
        setup = {"endpoint_url": endpoint, "region_name": REGION,
                 "aws_access_key_id": "setup", "aws_secret_access_key": "setup"}
        bucket = f"signoff-{uuid.uuid4().hex[:16]}"
        boto3.client("s3", **setup).create_bucket(Bucket=bucket)
        iam = boto3.client("iam", **setup)
        keys = {}
        for name, actions in users.items():
            iam.create_user(UserName=name)
            iam.put_user_policy(UserName=name, PolicyName="files", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [
                    {"Effect": "Allow", "Action": actions,
                     "Resource": f"arn:aws:s3:::{bucket}/*"}]}))
            key = iam.create_access_key(UserName=name)["AccessKey"]
            keys[name] = (key["AccessKeyId"], key["SecretAccessKey"])
        yield {"endpoint": endpoint, "bucket": bucket, "keys": keys}


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
