"""Files on object storage: with FILE_STORAGE_URL=s3://… on a real S3-protocol server
(moto's, started by tests/s3_server.py), the pages upload, render, serve and certify as on
the local folder, and every byte goes out through the portal after its access check."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import workflow
from portal.certificates.verify import Verdict, verify_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.files.render import EXTENSIONS
from portal.files.storage import StorageUnreachable, file_store
from portal.models import Certificate, DeliverableState, PageRender, Policy, Version
from portal.workflow.links import issue_token
from tests.conftest import future
from tests.s3_server import bucket_keys, s3_server, s3_storage_fixture  # noqa: F401

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
