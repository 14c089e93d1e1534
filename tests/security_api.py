"""The API's cases of the security catalogue (tests/test_security_catalogue.py lists them):
tokens, scopes, roles, ids, uploads and idempotency, attacked over /api/v1."""
from __future__ import annotations

import io
from datetime import timedelta
from typing import Any

from sqlalchemy import update

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import ApiToken, User, WebhookEndpoint, utcnow
from portal.people.api_tokens import create_token, revoke_token
from tests.conftest import ApiClient

API = "/api/v1"
MB = 1024 * 1024


def api_as(w: Any, user: User, scopes: tuple[str, ...] = ("read", "write")) -> ApiClient:
    _token, secret = create_token(user, "catalogue", list(scopes), None, utcnow())
    db.session.commit()
    return ApiClient(w.app.test_client(), secret, user)


def _refusal(response: Any) -> tuple[int, str]:
    """The status and media type: every refusal is problem+json."""
    return response.status_code, response.mimetype


def no_token(w: Any) -> dict[str, Any]:
    """No token, a malformed one, and a signed-in browser's cookie without a token."""
    anonymous = w.app.test_client()
    return {
        "none": _refusal(anonymous.get(f"{API}/deliverables")),
        "malformed": _refusal(anonymous.get(f"{API}/deliverables",
                                            headers={"Authorization": "Bearer so_x_y"})),
        "session cookie only": _refusal(w.sam.get(f"{API}/deliverables")),
        "contract stays public": anonymous.get(f"{API}/openapi.json").status_code,
    }


def dead_tokens(w: Any) -> dict[str, Any]:
    """A revoked token, an expired one, and one whose owner was deactivated."""
    revoked, expired, orphaned = (api_as(w, u) for u in (w.staff, w.colleague, w.finance))
    revoke_token(w.staff, db.session.get(ApiToken, _token_id(revoked)), utcnow())
    db.session.execute(update(ApiToken).where(ApiToken.id == _token_id(expired))
                       .values(expires_at=utcnow() - timedelta(seconds=1)))
    w.finance.active = False
    db.session.commit()
    answers = {name: _refusal(client.get(f"{API}/me"))
               for name, client in (("revoked", revoked), ("expired", expired),
                                    ("owner deactivated", orphaned))}
    w.finance.active = True
    db.session.commit()
    return answers


def _token_id(client: ApiClient) -> int:
    prefix = client.secret.split("_")[1]
    return db.session.scalars(db.select(ApiToken.id).where(ApiToken.prefix == prefix)).one()


def read_token_writes(w: Any) -> dict[str, Any]:
    reader, before = api_as(w, w.staff, ("read",)), w.snapshot()
    return {
        "create client": _refusal(reader.post(f"{API}/clients", json={"name": "Initech"})),
        "cancel request": _refusal(reader.post(
            f"{API}/requests/{w.a.open_request.id}/cancel")),
        "reads": reader.get(f"{API}/deliverables").status_code,
        "changed": [t for t in w.changed(before) if t != "api_tokens"],  # its last use
    }


def staff_on_admin_resources(w: Any) -> dict[str, Any]:
    """Webhook endpoints are admins' own: a staff token neither lists, reads nor adds."""
    endpoint = WebhookEndpoint(url="https://hooks.example/signoff", secret="s" * 32,
                               description="billing")
    db.session.add(endpoint)
    db.session.commit()
    sam, before = api_as(w, w.staff), w.snapshot()
    return {
        "list": _refusal(sam.get(f"{API}/webhook-endpoints")),
        "read by id": _refusal(sam.get(f"{API}/webhook-endpoints/{endpoint.id}")),
        "add": _refusal(sam.post(f"{API}/webhook-endpoints", json={
            "url": "https://evil.example/hook", "description": "x"})),
        "switch off": _refusal(sam.patch(f"{API}/webhook-endpoints/{endpoint.id}",
                                         json={"active": False})),
        "changed": [t for t in w.changed(before) if t != "api_tokens"],
    }


def finance_changes_work(w: Any) -> dict[str, Any]:
    """Finance reads everything and changes nothing, whatever its token's scope."""
    fiona, before = api_as(w, w.finance), w.snapshot()
    deliverable_id, request_id = w.a.id, w.a.open_request.id
    return {
        "edit": _refusal(fiona.patch(f"{API}/deliverables/{deliverable_id}",
                                     json={"title": "Renamed"})),
        "upload": _refusal(fiona.post(f"{API}/deliverables/{deliverable_id}/versions", data={
            "file": (io.BytesIO(sample_pdf("F")), "f.pdf")},
            content_type="multipart/form-data")),
        "cancel": _refusal(fiona.post(f"{API}/requests/{request_id}/cancel")),
        "reads": fiona.get(f"{API}/requests/{request_id}").status_code,
        "changed": [t for t in w.changed(before) if t != "api_tokens"],
    }


def ids_out_of_reach(w: Any) -> dict[str, Any]:
    """Ids that name nothing (or more than a row id can be) are a plain 404, never a 500;
    pages and API alike."""
    sam = api_as(w, w.staff)
    return {
        "absent deliverable": _refusal(sam.get(f"{API}/deliverables/999999")),
        "id past a row": _refusal(sam.get(f"{API}/deliverables/99999999999")),
        "write to an id past a row": _refusal(sam.patch(f"{API}/deliverables/99999999999",
                                                        json={"title": "x"})),
        "negative id": _refusal(sam.get(f"{API}/versions/-1")),
        "page, id past a row": w.sam.get("/deliverables/99999999999").status_code,
        "absent request's comments": _refusal(sam.get(f"{API}/requests/999999/comments")),
    }


def oversized_upload(w: Any) -> dict[str, Any]:
    sam, before = api_as(w, w.staff), w.snapshot()
    big = sample_pdf("Big") + b"%" * (2 * MB)
    return {
        "upload": _refusal(sam.post(f"{API}/deliverables/{w.a.id}/versions", data={
            "file": (io.BytesIO(big), "big.pdf")}, content_type="multipart/form-data")),
        "verify": _refusal(sam.post(f"{API}/certificates/verify", data={
            "file": (io.BytesIO(big), "big.pdf")}, content_type="multipart/form-data")),
        "changed": [t for t in w.changed(before) if t != "api_tokens"],
    }


def idempotency_key_reused(w: Any) -> dict[str, Any]:
    """The same key with another body is refused; the first answer is neither replaced
    nor replayed for it."""
    sam = api_as(w, w.staff)
    key = {"Idempotency-Key": "order-42"}
    first = sam.post(f"{API}/clients", json={"name": "Umbrella"}, headers=key)
    other = sam.post(f"{API}/clients", json={"name": "Umbrella Two"}, headers=key)
    again = sam.post(f"{API}/clients", json={"name": "Umbrella"}, headers=key)
    return {"first": first.status_code, "other body": _refusal(other),
            "same again": (again.status_code, again.headers.get("Idempotent-Replayed"),
                           again.get_json() == first.get_json()),
            "clients named Umbrella*": db.session.scalar(
                db.select(db.func.count()).select_from(db.text("clients"))
                .where(db.text("name LIKE 'Umbrella%'")))}


def half_characters(w: Any) -> dict[str, Any]:
    """JSON may spell half a character ("\\ud800"), which no database can keep: refused in
    any field, named by where it stands, and nothing is written."""
    sam, before = api_as(w, w.staff), w.snapshot()
    body = '{"name": "Acme \\ud800", "contacts": [{"name": "Ann \\udc00"}]}'
    answer = sam.post(f"{API}/clients", data=body, content_type="application/json")
    return {"answer": _refusal(answer),
            "fields": sorted(answer.get_json().get("errors", {}).get("json", {})),
            "changed": [t for t in w.changed(before) if t != "api_tokens"]}
