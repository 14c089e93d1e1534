"""Files on object storage: with FILE_STORAGE_URL=s3://… on a real S3-protocol server
(moto's, started by tests/s3_server.py), the pages upload, render, serve and certify as on
the local folder, and every byte goes out through the portal after its access check."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from gunicorn.http.wsgi import FileWrapper as GunicornFileWrapper
from sqlalchemy import select
from werkzeug.exceptions import RequestedRangeNotSatisfiable

from portal import workflow
from portal.certificates.verify import Verdict, verify_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.files.render import EXTENSIONS
from portal.files.storage import FileStore, StorageUnreachable, file_store
from portal.models import Certificate, DeliverableState, PageRender, Policy, Version
from portal.views.common import stream_stored
from portal.workflow.links import issue_token
from tests.conftest import future
from tests.s3_server import (  # noqa: F401
    bucket_keys,
    policed_s3,
    s3_server,
    s3_storage_fixture,
)

S = DeliverableState


def object_name(key: str) -> str:
    return f"signoff/{key[:2]}/{key[2:4]}/{key}"


def local_files(app) -> list[str]:
    """Files in the local folder outside its scratch space."""
    root = Path(app.config["FILE_STORE"])
    if not root.exists():
        return []
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.relative_to(root).parts[0] != "incoming")


def open_review(browser, approver) -> None:
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303
    assert browser.get(browser.review).status_code == 200


def test_a_version_its_pages_and_its_certificate_live_in_the_bucket_and_stream_after_the_check(
        s3_storage, sealed, app, make_deliverable, make_browser, staff,
        colleague):
    d = make_deliverable(S.DRAFT)
    sam = make_browser()
    sam.login(staff.email)
    content = sample_pdf("Homepage on object storage")
    digest = hashlib.sha256(content).hexdigest()

    uploaded = sam.post(f"/deliverables/{d.id}/versions",
                        data={"file": (io.BytesIO(content), "homepage-s3.pdf"),
                              "what_changed": "Stored in the bucket"},
                        content_type="multipart/form-data")
    assert uploaded.status_code == 302
    version = db.session.scalar(select(Version).where(Version.sha256 == digest))
    assert version is not None and version.storage_key == digest
    in_bucket = bucket_keys(s3_storage["endpoint"], s3_storage["bucket"])
    assert object_name(digest) in in_bucket
    assert local_files(app) == []  # nothing but scratch in the local folder

    # Its page images were rendered from a copy and stored in the bucket too.
    pages = list(db.session.scalars(select(PageRender).where(PageRender.version_id == version.id)))
    assert pages, "the render job made no pages"
    assert {object_name(p.display_key) for p in pages} <= set(in_bucket)
    first = min(pages, key=lambda p: p.number)
    url = f"/versions/{version.id}/pages/1.{EXTENSIONS[first.media_type]}"
    image = sam.get(url)
    assert image.status_code == 200 and image.mimetype == first.media_type
    assert image.headers["ETag"] == f'"{first.display_key}"'
    assert hashlib.sha256(image.get_data()).hexdigest() == first.display_key
    again = sam.get(url,
                    headers={"If-None-Match": image.headers["ETag"]})
    assert again.status_code == 304

    # The staff download streams the same bytes, whole or by range.
    download = sam.get(f"/versions/{version.id}/file")
    assert download.status_code == 200 and download.get_data() == content
    assert "homepage-s3.pdf" in download.headers["Content-Disposition"]
    part = sam.get(f"/versions/{version.id}/file", headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.get_data() == content[100:200]
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(content)}"

    # Nobody signed in gets the file: the sign-in page instead.
    anonymous = make_browser().get(f"/versions/{version.id}/file")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
    assert content not in anonymous.get_data()

    # Reviewed and delivered (the workflow, as make_deliverable drives it): the client's
    # review download is the same bytes; a stranger's link (another client's approver)
    # reaches nothing of it.
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                               future(7))
    db.session.commit()
    client = make_browser()
    open_review(client, request.approvers[0])
    review_copy = client.get(f"{client.review}/files/{version.id}")
    assert review_copy.status_code == 200 and review_copy.get_data() == content

    other = make_deliverable(S.DELIVERED)
    stranger = make_browser()
    open_review(stranger, other.open_request.approvers[0])
    assert stranger.get(f"{stranger.review}/files/{version.id}").status_code == 404

    # The client approves: the certificate is issued into the bucket, downloads, verifies.
    assert client.post(f"{client.review}/decision", {"choice": "approve"}).status_code == 303
    certificate = db.session.scalar(select(Certificate))
    assert certificate is not None
    assert object_name(certificate.storage_key) in bucket_keys(s3_storage["endpoint"],
                                                               s3_storage["bucket"])
    pdf = client.get(f"{client.review}/certificate")
    assert pdf.status_code == 200 and pdf.get_data().startswith(b"%PDF")
    assert hashlib.sha256(pdf.get_data()).hexdigest() == certificate.pdf_sha256
    assert verify_pdf(pdf.get_data()).verdict == Verdict.GENUINE
    assert stranger.get(f"{stranger.review}/certificate").status_code == 404
    by_staff = sam.get(f"/certificates/{certificate.public_id}.pdf")
    assert by_staff.status_code == 200 and by_staff.get_data() == pdf.get_data()
    assert local_files(app) == []


def test_the_store_is_reachable_and_a_missing_bucket_is_said(s3_storage, app):
    file_store().check_reachable()
    app.config["FILE_STORAGE_URL"] = "s3://no-such-bucket-here/signoff"
    with pytest.raises(StorageUnreachable, match="no-such-bucket-here"):
        file_store().check_reachable()


def test_keys_that_are_not_hashes_never_reach_the_bucket(s3_storage, app):
    store = file_store()
    for bad in ("../../etc/passwd", "a" * 63, "A" * 64, "x/../" + "a" * 59, ""):
        with pytest.raises(ValueError):
            store.exists(bad)
    key = store.put_bytes(b"certificate bytes")
    assert store.read_bytes(key) == b"certificate bytes"
    assert object_name(key) in bucket_keys(s3_storage["endpoint"], s3_storage["bucket"])


# --- what reaches S3: bounded GETs, one look before an upload, a short probe ------------

def s3_calls(store, operation: str) -> list[dict]:
    """Each answer S3 gives this store's client for `operation`, as parsed by botocore."""
    answers: list[dict] = []
    store.client.meta.events.register(f"after-call.s3.{operation}",
                                      lambda parsed, **_: answers.append(parsed))
    return answers


def serve_under_gunicorn(app, key: str, headers: dict[str, str]):
    """stream_stored as gunicorn runs it: its FileWrapper, which cannot seek."""
    with app.test_request_context("/file", headers=headers,
                                  environ_base={"wsgi.file_wrapper": GunicornFileWrapper}):
        response = stream_stored(key, "application/pdf")
        body = b"".join(response.response)
        response.close()
    return response, body


def test_a_range_fetches_exactly_its_bytes_from_s3_under_gunicorn(s3_storage, app):
    data = os.urandom(3 * 1024 * 1024)
    total = len(data)
    store = file_store()
    key = store.put_bytes(data)
    gets, heads = s3_calls(store, "GetObject"), s3_calls(store, "HeadObject")
    for asked, first, last in (("bytes=3000000-3000009", 3000000, 3000009),
                               ("bytes=-100", total - 100, total - 1),
                               ("bytes=3145000-", 3145000, total - 1)):
        gets.clear()
        response, body = serve_under_gunicorn(app, key, {"Range": asked})
        assert response.status_code == 206 and body == data[first:last + 1], asked
        assert response.headers["Content-Range"] == f"bytes {first}-{last}/{total}"
        assert [g["ContentLength"] for g in gets] == [last - first + 1], asked

    # Past the end: 416 with the real length, and no body fetched.
    gets.clear()
    with pytest.raises(RequestedRangeNotSatisfiable) as refused:
        serve_under_gunicorn(app, key, {"Range": f"bytes={total}-"})
    assert refused.value.get_response().headers["Content-Range"] == f"bytes */{total}"
    assert all("ContentLength" not in g for g in gets)

    # The whole file: one GET whose answer gives the length, no HEAD before it.
    gets.clear()
    heads.clear()
    response, body = serve_under_gunicorn(app, key, {})
    assert response.status_code == 200 and body == data
    assert response.headers["Accept-Ranges"] == "bytes"
    assert [g["ContentLength"] for g in gets] == [total] and heads == []

    # A client holding the hash gets 304 without a call; a stale If-Range gets it all.
    gets.clear()
    response, body = serve_under_gunicorn(app, key, {"If-None-Match": f'"{key}"'})
    assert response.status_code == 304 and body == b"" and gets == []
    response, body = serve_under_gunicorn(app, key, {"Range": "bytes=0-9",
                                                     "If-Range": '"an-older-hash"'})
    assert response.status_code == 200 and body == data


def test_uploads_go_through_when_the_existence_check_is_forbidden(app, monkeypatch):
    """A policy without s3:ListBucket makes S3 answer 403 to a HEAD on a missing key;
    here the portal may only put objects, so every HEAD answers 403."""
    with policed_s3({"portal": ["s3:PutObject"], "auditor": ["s3:GetObject"]}) as s3:
        key_id, secret = s3["keys"]["portal"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
        app.config.update(FILE_STORAGE_URL=f"s3://{s3['bucket']}/signoff",
                          S3_ENDPOINT_URL=s3["endpoint"], S3_REGION="us-east-1")
        store = file_store()
        heads = s3_calls(store, "HeadObject")
        key = store.put_bytes(b"certificate bytes")
        assert [h["Error"]["Code"] for h in heads] == ["403"]  # looked once, not twice
        made = Path(store.scratch()) / "render.png"
        made.write_bytes(b"a page image")
        image_key = store.put_file(made)

        auditor_id, auditor_secret = s3["keys"]["auditor"]
        auditor = boto3.client("s3", endpoint_url=s3["endpoint"], region_name="us-east-1",
                               aws_access_key_id=auditor_id,
                               aws_secret_access_key=auditor_secret)
        for stored, content in ((key, b"certificate bytes"), (image_key, b"a page image")):
            answer = auditor.get_object(Bucket=s3["bucket"], Key=object_name(stored))
            assert answer["Body"].read() == content


def test_the_readiness_probe_tries_once_on_a_silent_endpoint(s3_storage, app):
    """An endpoint that accepts connections and never answers: the probe gives up after
    one attempt (the data client would try three times, a minute each)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def hold_connections() -> None:
        while not done.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    holder = threading.Thread(target=hold_connections, daemon=True)
    holder.start()
    try:
        app.config["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with pytest.raises(StorageUnreachable, match=s3_storage["bucket"]):
            file_store().check_reachable()
    finally:
        done.set()
        holder.join(timeout=5)
        for connection in [*accepted, listener]:
            connection.close()
    assert len(accepted) == 1


def test_scratch_left_by_a_killed_process_is_forgotten_after_six_hours(tmp_path):
    store = FileStore(tmp_path)
    now = datetime.now(UTC)
    old = (now - timedelta(hours=7)).timestamp()
    scratch = store.scratch()

    def entry(name: str, *, stale: bool, inner: str | None = None) -> None:
        path = scratch / name
        if inner is None:
            path.write_bytes(b"partial")
        else:
            path.mkdir()
            (path / inner).write_bytes(b"page")
            if stale:
                os.utime(path / inner, (old, old))
        if stale:
            os.utime(path, (old, old))

    entry("copy-killed", stale=True)
    entry("tmpupload-killed", stale=True)
    entry("render-killed", stale=True, inner="page-1.png")
    entry("copy-in-use", stale=False)
    entry("render-in-use", stale=False, inner="page-1.png")
    os.utime(scratch / "render-in-use", (old, old))  # its page is fresh: still working

    assert store.forget_stale_scratch(now) == 3
    assert sorted(p.name for p in scratch.iterdir()) == ["copy-in-use", "render-in-use"]
    later = now + timedelta(minutes=1)
    assert store.forget_stale_scratch(later, older_than=timedelta(0)) == 2


def test_the_local_store_serves_by_path_and_says_when_a_file_is_gone(app):
    store = file_store()
    key = store.put_bytes(b"0123456789" * 10)
    with app.test_request_context("/file", headers={"Range": "bytes=10-19"}):
        response = stream_stored(key, "application/pdf")
        assert response.status_code == 206
        assert b"".join(response.response) == b"0123456789"
        response.close()
        store.path_for(key).unlink()
        assert stream_stored(key, "application/pdf") is None
