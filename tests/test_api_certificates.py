"""/api/v1 certificates (metadata, sealed PDF, verify by upload) and webhook endpoints
(admins): the same functions, checks and words as the finance, verify and admin pages."""
from __future__ import annotations

import hashlib
import io
import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from markupsafe import escape
from pypdf import PdfReader
from sqlalchemy import func, select

from portal.certificates import create_development_key, verify_pdf
from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Certificate,
    Deliverable,
    DeliverableState,
    OutboxStatus,
    RequestStatus,
    ReviewRequest,
    Role,
    WebhookDelivery,
    WebhookEndpoint,
)
from portal.notifications.safe_http import UnsafeDestination, resolve_safely
from tests.conftest import stored_path

S = DeliverableState
API = "/api/v1"
PROBLEM = "application/problem+json"
PUBLIC_URL = "https://1.1.1.1/hooks/signoff"  # a public address: resolving it needs no DNS


# --- fixtures ----------------------------------------------------------------------------

@pytest.fixture(scope="session")
def dev_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One development seal for the whole session (RSA-3072 takes a moment)."""
    return create_development_key(tmp_path_factory.mktemp("api-seal"), "Signoff API test seal")


@pytest.fixture
def signing(app_config: dict[str, Any], dev_key: tuple[Path, Path]) -> None:
    """Certificates are issued (and sealed) on approval; request this before `app`."""
    app_config.update(SIGNING_KEY=str(dev_key[0]), SIGNING_CERT=str(dev_key[1]),
                      SIGNING_PKCS12="")


@pytest.fixture
def admin(make_user):
    return make_user(Role.ADMIN, email="ada@agency.example", name="Ada Admin")


# --- helpers -----------------------------------------------------------------------------

def _request_of(d: Deliverable) -> ReviewRequest:
    db.session.refresh(d)
    return d.requests[0]


def _certified(make_deliverable, **kwargs: Any) -> Certificate:
    certificate = _request_of(make_deliverable(S.APPROVED, **kwargs)).certificate
    assert certificate is not None
    return certificate


def _upload(api, data: bytes, name: str = "certificate.pdf"):
    return api.post(f"{API}/certificates/verify", data={"file": (io.BytesIO(data), name)},
                    content_type="multipart/form-data")


def _flip_inside(pdf: bytes) -> bytes:
    """One byte changed in the middle of the first page's content stream."""
    reader = PdfReader(io.BytesIO(pdf))
    ref = reader.pages[0].raw_get("/Contents")
    ref = ref[0] if isinstance(ref, list) else ref
    offset = reader.xref[ref.generation][ref.idnum]
    start = pdf.index(b"stream", offset) + len(b"stream")
    length = int(re.search(rb"/Length (\d+)", pdf[offset:start]).group(1))
    start += 2 if pdf[start:start + 2] == b"\r\n" else 1
    at = start + length // 2
    changed = bytearray(pdf)
    changed[at] ^= 0x01
    return bytes(changed)


def _problem(response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    return response.get_json()


# --- certificates ------------------------------------------------------------------------

def test_an_approved_deliverable_s_certificate_reads_downloads_and_verifies(
        signing, app, make_deliverable, make_api, make_user):
    certificate = _certified(make_deliverable)
    review = certificate.request
    version = review.version
    public_id = certificate.public_id
    stored = stored_path(app, certificate.storage_key).read_bytes()

    finance = make_api(make_user(Role.FINANCE))  # every signed-in role reads, as on the pages
    response = finance.get(f"{API}/certificates/{public_id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    described = response.get_json()
    assert described == {
        "id": public_id,
        "request": {"id": review.id, "status": "approved", "status_label": "approved",
                    "closed_at": review.closed_at.isoformat()},
        "version": {"id": version.id, "number": 1, "file_name": "homepage.pdf",
                    "sha256": version.sha256},
        "deliverable": {"id": version.deliverable.id, "title": "Homepage v3"},
        "project": {"id": version.deliverable.project.id,
                    "name": version.deliverable.project.name},
        "client": {"id": version.deliverable.project.client.id,
                   "name": version.deliverable.project.client.name},
        "issued_at": certificate.issued_at.isoformat(), "language": "en", "sealed": True,
        "pdf_sha256": certificate.pdf_sha256, "size": len(stored),
        "audit_head_hash": certificate.audit_head_hash,
        "verify_url": f"http://portal.test/verify/{public_id}",
        "pdf_url": f"{API}/certificates/{public_id}/pdf",
    }
    assert finance.get(f"{API}/requests/{review.id}/certificate").get_json() == described
    assert finance.get(f"{API}/certificates").get_json() == {"items": [described],
                                                             "next_cursor": None}

    pdf = finance.get(described["pdf_url"])
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Disposition"].startswith("attachment")
    assert public_id in pdf.headers["Content-Disposition"]
    assert pdf.data.startswith(b"%PDF") and pdf.data == stored
    assert hashlib.sha256(pdf.data).hexdigest() == certificate.pdf_sha256

    # Verifying keeps nothing, so finance's read-only token may send the file.
    verified = _upload(make_api(make_user(Role.FINANCE), scopes=("read",)), pdf.data)
    assert verified.status_code == 200, verified.get_data(as_text=True)
    body = verified.get_json()
    assert body["valid"] is True and body["verdict"] == "genuine"
    assert body["summary"] == "Genuine"
    assert body["detail"] == verify_pdf(stored).detail == "sealed by our key, whole file covered"
    assert body["certificate_id"] == public_id
    certifies = body["certifies"]
    assert {k: certifies[k] for k in ("certificate_id", "deliverable", "version", "file_name",
                                      "file_sha256", "pdf_sha256", "outcome")} == {
        "certificate_id": public_id, "deliverable": "Homepage v3", "version": 1,
        "file_name": "homepage.pdf", "file_sha256": version.sha256,
        "pdf_sha256": certificate.pdf_sha256, "outcome": "approved"}
    assert [d["outcome"] for d in certifies["decisions"]] == ["approved"]
    assert "@" not in json.dumps(certifies)  # never an email address, as on the public page


def test_a_tampered_pdf_is_invalid_and_a_stranger_s_unknown(signing, app, make_deliverable,
                                                            api):
    certificate = _certified(make_deliverable)
    altered = _flip_inside(stored_path(app, certificate.storage_key).read_bytes())

    body = _upload(api, altered).get_json()
    assert body["valid"] is False and body["verdict"] == "altered"
    assert body["summary"] == "This file was altered after it was issued"
    assert body["detail"] == "the file differs from the one issued under this id"
    assert body["certificate_id"] == certificate.public_id
    assert body["certifies"]["pdf_sha256"] == certificate.pdf_sha256  # what the original is

    body = _upload(api, sample_pdf("Some other PDF"), "other.pdf").get_json()
    assert body == {"valid": False, "verdict": "unknown", "summary": "No such certificate",
                    "detail": "no certificate of ours matches this file",
                    "certificate_id": None, "certifies": None}


def test_what_is_not_a_pdf_or_too_large_is_refused_clearly(app, api):
    problem = _problem(_upload(api, sample_png(), "certificate.pdf"), 415)
    assert problem["detail"] == ("That file is not a PDF: upload the certificate's PDF to "
                                 "verify it.")
    _problem(_upload(api, b""), 415)

    missing = _problem(api.post(f"{API}/certificates/verify", data={"certificate_id": "x"},
                                content_type="multipart/form-data"), 422)
    assert "file" in missing["errors"]["files"]

    app.config["VERIFY_MAX_MB"] = 1
    just_over = sample_pdf("Big") + b"%" * (1024 * 1024)
    problem = _problem(_upload(api, just_over), 413)
    assert problem["detail"] == "That file is too large to be one of our certificates."
    problem = _problem(_upload(api, just_over + b"%" * (128 * 1024)), 413)
    assert problem["detail"] == ("The file is larger than 1 MB; our certificates are much "
                                 "smaller.")


def test_the_list_takes_the_finance_page_s_filters_and_pages_by_cursor(
        signing, app, make_client, make_project, make_deliverable, api):
    acme, globex = make_client(name="Acme"), make_client(name="Globex")
    globex.language = "de"  # its certificate is issued in German
    acme_web = make_project(acme)
    acme_web.name = "Acme web"
    db.session.commit()
    acme_print = make_project(acme)
    first = _certified(make_deliverable, project=acme_web)
    second = _certified(make_deliverable, project=acme_print)
    third = _certified(make_deliverable, project=make_project(globex))
    for certificate, day in ((first, 3), (second, 10), (third, 20)):
        certificate.request.closed_at = datetime(2026, 3, day, 12, tzinfo=UTC)
    db.session.commit()

    def ids(query: str = "") -> list[str]:
        response = api.get(f"{API}/certificates{query}")
        assert response.status_code == 200, response.get_data(as_text=True)
        return [item["id"] for item in response.get_json()["items"]]

    every = [third.public_id, second.public_id, first.public_id]  # newest first
    listed = api.get(f"{API}/certificates").get_json()["items"]
    assert [(c["id"], c["language"]) for c in listed] == [
        (third.public_id, "de"), (second.public_id, "en"), (first.public_id, "en")]
    assert ids(f"?client={acme.id}") == [second.public_id, first.public_id]
    assert ids(f"?project={acme_print.id}") == [second.public_id]
    assert ids("?start=2026-03-10") == [third.public_id, second.public_id]
    assert ids("?start=2026-03-04&end=2026-03-10") == [second.public_id]
    assert ids("?end=9999-12-31") == every and ids("?start=0001-01-01") == every
    assert ids(f"?client={globex.id}&project={acme_web.id}") == []

    page = api.get(f"{API}/certificates?limit=2").get_json()
    assert [item["id"] for item in page["items"]] == every[:2]
    assert ids(f"?limit=2&cursor={page['next_cursor']}") == every[2:]

    bad = _problem(api.get(f"{API}/certificates?start=31.12.2026&client=acme"), 422)
    assert set(bad["errors"]["query"]) == {"start", "client"}


def test_what_has_no_certificate_is_404_and_says_why(app, make_deliverable, api):
    """No signing key here: an approval completes and its certificate waits to be issued."""
    approved = _request_of(make_deliverable(S.APPROVED))
    assert approved.status == RequestStatus.APPROVED and approved.certificate is None
    problem = _problem(api.get(f"{API}/requests/{approved.id}/certificate"), 404)
    assert problem["detail"] == ("This request was approved; its certificate is being issued. "
                                 "Try again in a moment.")
    still_open = _request_of(make_deliverable(S.DELIVERED))
    problem = _problem(api.get(f"{API}/requests/{still_open.id}/certificate"), 404)
    assert problem["detail"] == ("This request has no certificate: only an approved request "
                                 "gets one.")
    _problem(api.get(f"{API}/requests/2147483647/certificate"), 404)
    _problem(api.get(f"{API}/requests/2147483648/certificate"), 404)
    for unknown in ("SO-ABCD-EFGH-JKLM", "not-an-id"):
        _problem(api.get(f"{API}/certificates/{unknown}"), 404)
        _problem(api.get(f"{API}/certificates/{unknown}/pdf"), 404)
    assert api.get(f"{API}/certificates").get_json() == {"items": [], "next_cursor": None}


# --- webhook endpoints -------------------------------------------------------------------

def _audited(verb: str) -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).where(AuditEvent.verb == verb)))


def test_an_admin_registers_reads_switches_off_and_rotates(app, admin, make_api):
    api = make_api(admin)
    created = api.post(f"{API}/webhook-endpoints", json={"url": PUBLIC_URL,
                                                          "description": "Billing"},
                       headers={"Idempotency-Key": "hook-1"})
    assert created.status_code == 201, created.get_data(as_text=True)
    endpoint = db.session.scalar(select(WebhookEndpoint))
    body = created.get_json()
    assert body == {"id": endpoint.id, "url": PUBLIC_URL, "description": "Billing",
                    "allow_private_network": False, "active": True,
                    "created_at": endpoint.created_at.isoformat(), "secret": endpoint.secret}
    assert len(body["secret"]) == 64
    assert created.headers["Location"] == f"{API}/webhook-endpoints/{endpoint.id}"
    [registered] = _audited("webhook.registered")
    assert registered.actor == f"user:{admin.id}"
    again = api.post(f"{API}/webhook-endpoints", json={"url": PUBLIC_URL,
                                                        "description": "Billing"},
                     headers={"Idempotency-Key": "hook-1"})
    assert again.get_json() == body and again.headers["Idempotent-Replayed"] == "true"
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 1

    listed = api.get(f"{API}/webhook-endpoints").get_json()
    assert listed == {"items": [{k: v for k, v in body.items() if k != "secret"}],
                      "next_cursor": None}
    assert api.get(created.headers["Location"]).get_json() == body

    off = api.patch(f"{API}/webhook-endpoints/{endpoint.id}", json={"active": False})
    assert off.status_code == 200 and off.get_json()["active"] is False
    db.session.refresh(endpoint)
    assert endpoint.active is False and len(_audited("webhook.disabled")) == 1
    for wrong in ({}, {"active": "maybe"}, {"active": True, "url": "https://1.0.0.1/"}):
        _problem(api.patch(f"{API}/webhook-endpoints/{endpoint.id}", json=wrong), 422)
    assert endpoint.active is False and endpoint.url == PUBLIC_URL

    rotated = api.post(f"{API}/webhook-endpoints/{endpoint.id}/rotate-secret")
    assert rotated.status_code == 200
    db.session.refresh(endpoint)
    assert rotated.get_json()["secret"] == endpoint.secret != body["secret"]
    assert len(_audited("webhook.secret_rotated")) == 1
    for beyond in (2147483647, 2147483648):  # past what a row's id holds: still 404, no 405
        _problem(api.get(f"{API}/webhook-endpoints/{beyond}"), 404)
        _problem(api.patch(f"{API}/webhook-endpoints/{beyond}", json={"active": True}), 404)
    for text in ({"url": "http://127.0.0.1/\x00", "allow_private_network": True},
                 {"url": PUBLIC_URL, "description": "Bill\x00ing"}):
        refused = _problem(api.post(f"{API}/webhook-endpoints", json=text), 422)
        assert refused["errors"]["json"]  # the field named, as the database cannot keep it
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 1
    _problem(api.delete(f"{API}/webhook-endpoints/{endpoint.id}"), 405)  # the page cannot


def test_an_admin_reads_the_delivery_log_and_resends(app, admin, make_api):
    api = make_api(admin)
    endpoint_id = api.post(f"{API}/webhook-endpoints", json={"url": PUBLIC_URL}).get_json()["id"]
    # Switched off, so the resent event waits here instead of going out to the internet.
    api.patch(f"{API}/webhook-endpoints/{endpoint_id}", json={"active": False})
    failed = WebhookDelivery(endpoint_id=endpoint_id, event_id="evt_1", event_type="request.viewed",
                             payload="{}", status=OutboxStatus.FAILED, attempts=9,
                             last_status_code=503, last_error="HTTP 503")
    db.session.add(failed)
    db.session.commit()

    log = api.get(f"{API}/webhook-endpoints/{endpoint_id}/deliveries").get_json()
    assert [(d["id"], d["status"], d["attempts"], d["last_status_code"], d["last_error"])
            for d in log["items"]] == [(failed.id, "failed", 9, 503, "HTTP 503")]
    assert log["next_cursor"] is None

    resent = api.post(f"{API}/webhook-deliveries/{failed.id}/resend")
    assert resent.status_code == 200, resent.get_data(as_text=True)
    db.session.refresh(failed)
    assert resent.get_json()["status"] == failed.status.value == "pending"
    assert failed.attempts == 0 and len(_audited("webhook.resent")) == 1
    _problem(api.post(f"{API}/webhook-deliveries/2147483647/resend"), 404)


@pytest.mark.parametrize("role", [Role.STAFF, Role.FINANCE])
def test_others_are_refused_in_the_domain_s_words(app, admin, make_api, make_user, role):
    endpoint = make_api(admin).post(f"{API}/webhook-endpoints",
                                    json={"url": PUBLIC_URL}).get_json()
    delivery = WebhookDelivery(endpoint_id=endpoint["id"], event_id="evt_1",
                               event_type="request.viewed", payload="{}")
    db.session.add(delivery)
    db.session.commit()
    other = make_api(make_user(role))
    manage = "Only admins can manage webhooks."
    for response, words in (
        (other.get(f"{API}/webhook-endpoints"), manage),
        (other.post(f"{API}/webhook-endpoints", json={"url": PUBLIC_URL}),
         "Only admins can register webhooks."),
        (other.get(f"{API}/webhook-endpoints/{endpoint['id']}"), manage),
        (other.get(f"{API}/webhook-endpoints/2147483647"), manage),  # not even whether it is
        (other.patch(f"{API}/webhook-endpoints/{endpoint['id']}", json={"active": False}),
         manage),
        (other.post(f"{API}/webhook-endpoints/{endpoint['id']}/rotate-secret"), manage),
        (other.get(f"{API}/webhook-endpoints/{endpoint['id']}/deliveries"), manage),
        (other.post(f"{API}/webhook-deliveries/{delivery.id}/resend"),
         "Only admins can resend webhooks."),
    ):
        assert _problem(response, 403)["detail"] == words
    stored = db.session.get(WebhookEndpoint, endpoint["id"])
    assert stored.active and stored.secret == endpoint["secret"]
    assert db.session.scalar(select(func.count(WebhookEndpoint.id))) == 1
    assert _audited("webhook.disabled") == _audited("webhook.secret_rotated") == []
    assert _audited("webhook.resent") == []


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:8080/hook", "http://localhost/hook", "http://169.254.169.254/latest",
    "http://10.1.2.3/hook", "http://[::1]/hook", "ftp://example.com/hook", "http:///nohost",
    # Not even a URL: refused in words, never a 500.
    "http://example.com:99999/hook", "http://example.com:port/hook", "http://[zz]/hook",
    "http://a..b/hook", f"http://{'a' * 70}.example/hook",
])
def test_internal_addresses_are_refused_as_the_admin_page_refuses_them(
        app, admin, make_api, browser, url):
    refused = _problem(make_api(admin).post(f"{API}/webhook-endpoints",
                                            json={"url": url, "description": "x"}), 422)
    browser.login(admin.email)
    page = browser.post("/admin/webhooks", {"url": url, "description": "x"})
    assert page.status_code == 422
    assert f"<p>{escape(refused['detail'])}</p>" in page.get_data(as_text=True)
    with pytest.raises(UnsafeDestination) as domain:
        resolve_safely(url, allow_private=False)
    assert refused["detail"] == domain.value.message
    assert db.session.scalar(select(WebhookEndpoint)) is None
    assert _audited("webhook.registered") == []
