"""The whole approval lifecycle through the API alone, as an agency's own tool drives it:
tokens made on the account page, a client with a contact, a project, a deliverable, a PDF
uploaded, reviewed internally by a colleague's token, delivered; the client decides on the
real review page (from the link in the real email); then the certificate is fetched and
verified through the API. The same audit trail, emails and certificate as the pages give."""
from __future__ import annotations

import io
import re
from typing import Any

from sqlalchemy import select

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import AuditEvent, Certificate, Deliverable
from tests.conftest import ApiClient, future

LINK = re.compile(r"http://portal\.test(/r/[A-Za-z0-9._-]+)")
SECRET = re.compile(r'<textarea id="new-token-secret"[^>]*>(so_[0-9a-f]{8}_[^<]+)</textarea>')


def _token_from_the_account_page(browser: Any, email: str, app: Any) -> ApiClient:
    assert browser.login(email).status_code == 302
    made = browser.post("/account/api-tokens", {"name": "Project tool", "scopes": "write"})
    assert made.status_code == 201  # the page, showing the secret this once
    secret = SECRET.search(made.get_data(as_text=True)).group(1)
    return ApiClient(app.test_client(), secret, None)


def _ok(response: Any, status: int = 200) -> Any:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def test_a_pdf_goes_from_upload_to_verified_certificate_through_the_api_alone(
        mail, sealed, app, make_browser, staff, colleague):
    sam = _token_from_the_account_page(make_browser(), staff.email, app)
    cora = _token_from_the_account_page(make_browser(), colleague.email, app)
    assert _ok(sam.get("/api/v1/me"))["email"] == staff.email

    client = _ok(sam.post("/api/v1/clients", json={
        "name": "Northwind Trading",
        "contacts": [{"name": "Nora North", "email": "nora@northwind.example"}]},
        headers={"Idempotency-Key": "client-northwind"}), 201)
    contact_id = client["contacts"][0]["id"]
    project = _ok(sam.post("/api/v1/projects", json={
        "client_id": client["id"], "name": "Spring campaign"}), 201)
    deliverable = _ok(sam.post("/api/v1/deliverables", json={
        "project_id": project["id"], "title": "Spring brochure",
        "description": "Eight pages, print-ready.", "due_date": future(14).isoformat()}), 201)
    d_id = deliverable["id"]
    assert deliverable["state"] == "draft"

    pdf = sample_pdf("Spring brochure")
    version = _ok(sam.post(f"/api/v1/deliverables/{d_id}/versions", data={
        "file": (io.BytesIO(pdf), "spring-brochure.pdf", "application/pdf"),
        "what_changed": "First cut"}, content_type="multipart/form-data"), 201)
    assert _ok(sam.get(f"/api/v1/versions/{version['id']}"))["number"] == 1
    assert sam.get(f"/api/v1/versions/{version['id']}/file").data == pdf

    # Sam cannot review his own upload; Cora, with her own token, can.
    _ok(sam.post(f"/api/v1/deliverables/{d_id}/submit", json={"reviewer_id": colleague.id}))
    refused = sam.post(f"/api/v1/deliverables/{d_id}/review", json={"approve": True})
    assert refused.status_code in (403, 409) and refused.mimetype == "application/problem+json"
    reviewed = _ok(cora.post(f"/api/v1/deliverables/{d_id}/review",
                             json={"approve": True, "note": "Good to go"}))
    assert reviewed["state"] == "ready"

    # Delivery refused until it has what it needs, in the domain's own words.
    missing = sam.post(f"/api/v1/deliverables/{d_id}/deliver", json={"approvers": []})
    assert missing.mimetype == "application/problem+json"
    assert "This cannot go out yet. Missing:" in missing.get_json()["detail"]
    request = _ok(sam.post(f"/api/v1/deliverables/{d_id}/deliver", json={
        "approvers": [contact_id], "policy": "parallel", "due_date": future(7).isoformat()},
        headers={"Idempotency-Key": "deliver-spring-1"}), 201)
    r_id = request["id"]
    status = _ok(sam.get(f"/api/v1/requests/{r_id}"))
    assert status["status"] == "open" and status["approvers"][0]["contact_id"] == contact_id

    # The client: the link from the real email, the real review page, approve.
    mail.wait_for(1)
    invitation = mail.to("nora@northwind.example")[-1]
    link = LINK.search(invitation.get_body(preferencelist=("plain",)).get_content()).group(1)
    nora = make_browser()
    assert nora.get(link).status_code == 303
    assert nora.get(nora.review).status_code == 200
    assert nora.post(f"{nora.review}/decision", {"choice": "approve"}).status_code == 303

    decided = _ok(sam.get(f"/api/v1/requests/{r_id}"))
    assert decided["status"] == "approved"
    decisions = _ok(sam.get(f"/api/v1/requests/{r_id}/decisions"))
    assert [d["outcome"] for d in decisions] == ["approved"]
    assert _ok(sam.get(f"/api/v1/deliverables/{d_id}"))["state"] == "approved"

    # Finance's tool: the certificate, its sealed PDF, and a verification of that PDF.
    certificate = _ok(sam.get(f"/api/v1/requests/{r_id}/certificate"))
    sealed_pdf = sam.get(f"/api/v1/certificates/{certificate['id']}/pdf")
    assert sealed_pdf.status_code == 200 and sealed_pdf.data.startswith(b"%PDF")
    verified = _ok(sam.post("/api/v1/certificates/verify", data={
        "file": (io.BytesIO(sealed_pdf.data), "certificate.pdf", "application/pdf")},
        content_type="multipart/form-data"))
    assert verified["valid"] is True and verified["verdict"] == "genuine"
    assert verified["certifies"]["deliverable"] == "Spring brochure"

    # What the database holds is what the pages would have left.
    stored = db.session.get(Deliverable, d_id)
    assert stored.state.value == "approved"
    assert db.session.scalar(select(Certificate.id).where(Certificate.request_id == r_id))
    verbs = db.session.scalars(select(AuditEvent.verb).order_by(AuditEvent.seq)).all()
    for verb in ("api_token.created", "client.created", "contact.added", "project.created",
                 "deliverable.created", "version.uploaded", "deliverable.submitted",
                 "version.review_approved", "request.delivered", "decision.approved",
                 "request.approved", "certificate.issued"):
        assert verb in verbs, (verb, verbs)
