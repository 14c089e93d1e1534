"""Personal API tokens: made and revoked on the account page, shown once, kept only as a
hash; a token acts as its user, within its scopes, until revoked or expired; no session
cookie opens the API; each token has its own rate limit."""
from __future__ import annotations

import contextvars
import hashlib
import html
import re
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select

from portal.extensions import db
from portal.models import ApiToken, AuditEvent, Client, IdempotentRequest, Role
from portal.models.base import utcnow
from tests.conftest import future

SECRET_SHOWN = re.compile(r'<textarea id="new-token-secret"[^>]*>(so_[0-9a-f]{8}_[^<]+)</textarea>')
PROBLEM = "application/problem+json"


def _call(app: Flask, method: str, url: str, headers: dict[str, str] | None = None,
          client: Any = None, **kwargs: Any):
    """An API call with exactly these headers (no token unless given), in a fresh context."""
    db.session.commit()
    client = client or app.test_client()
    response = contextvars.Context().run(client.open, url, method=method,
                                         headers=headers or {}, **kwargs)
    db.session.expire_all()
    return response


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _assert_refused(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == PROBLEM
    body = response.get_json()
    assert body["status"] == status and body["title"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return body


def _create_on_page(browser: Any, name: str = "Billing sync", scopes: str = "read",
                    expires_on: str = "") -> Any:
    return browser.post("/account/api-tokens",
                        {"name": name, "scopes": scopes, "expires_on": expires_on})


def _shown_secret(page: str) -> str | None:
    match = SECRET_SHOWN.search(page)
    return html.unescape(match.group(1)) if match else None


def _token_named(name: str) -> ApiToken:
    return db.session.scalars(select(ApiToken).where(ApiToken.name == name)).one()


# --- the account page ------------------------------------------------------------------

def test_the_page_shows_a_new_token_once_and_the_database_keeps_only_its_hash(
        app, browser, staff):
    browser.login(staff.email)
    created = _create_on_page(browser, "Billing sync", "write", future(30).isoformat())
    assert created.status_code == 201
    assert "no-store" in created.headers["Cache-Control"]
    # The secret is in this answer only: never in the session cookie (signed, not secret).
    cookies = " ".join(created.headers.getlist("Set-Cookie"))
    page = created.get_data(as_text=True)
    secret = _shown_secret(page)
    assert secret is not None and secret not in cookies
    assert secret.split("_", 2)[2] not in str(browser.client.get_cookie("session").value)
    assert secret is not None
    assert "you will not see it again" in page
    assert 'readonly' in page.split('id="new-token-secret"')[1].split(">")[0]

    token = _token_named("Billing sync")
    assert token.user_id == staff.id and token.scope_list == ["read", "write"]
    assert token.expires_at is not None and token.expires_at.date() == future(30)
    assert secret.startswith(f"so_{token.prefix}_")
    assert token.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    stored = [str(getattr(token, column.key)) for column in ApiToken.__table__.columns]
    assert not any(secret in value or secret.split("_", 2)[2] in value for value in stored)

    again = browser.get("/account").get_data(as_text=True)
    assert _shown_secret(again) is None and secret not in again
    assert "not see it again" not in again
    assert f"so_{token.prefix}_…" in again  # listed by its prefix only
    assert "Billing sync" in again


def test_the_token_acts_as_its_user_and_notes_its_last_use(app, browser, staff):
    browser.login(staff.email)
    secret = _shown_secret(_create_on_page(browser, "Reports", "read").get_data(as_text=True))
    assert secret is not None
    assert _token_named("Reports").last_used_at is None

    me = _call(app, "GET", "/api/v1/me", _bearer(secret))
    assert me.status_code == 200
    assert me.get_json() == {"id": staff.id, "name": "Sam Staff", "email": staff.email,
                             "role": "staff", "token_name": "Reports", "scopes": ["read"],
                             "token_expires_at": None}
    used = _token_named("Reports").last_used_at
    assert used is not None and utcnow() - used < timedelta(minutes=1)
    page = browser.get("/account").get_data(as_text=True)
    assert "not yet" not in page  # the list shows the last use


def test_revoking_on_the_page_ends_the_token(app, browser, staff):
    browser.login(staff.email)
    secret = _shown_secret(_create_on_page(browser, "Old laptop", "write").get_data(as_text=True))
    assert _call(app, "GET", "/api/v1/me", _bearer(secret)).status_code == 200
    token = _token_named("Old laptop")

    revoked = browser.post(f"/account/api-tokens/{token.id}/revoke")
    assert revoked.status_code == 302
    assert revoked.headers["Location"].endswith(f"/account#token-{token.id}")
    page = browser.get("/account").get_data(as_text=True)
    assert "The token Old laptop is revoked" in page
    assert f'action="/account/api-tokens/{token.id}/revoke"' not in page  # no button left
    assert _token_named("Old laptop").revoked_at is not None

    body = _assert_refused(_call(app, "GET", "/api/v1/me", _bearer(secret)), 401)
    assert "revoked or expired one is refused" in body["detail"]
    # The trail says who made the token and who ended it (never its secret).
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb.like("api_token.%")).order_by(AuditEvent.seq)).all()
    assert [(e.verb, e.actor_label) for e in events] == [
        ("api_token.created", f"{staff.name} <{staff.email}>"),
        ("api_token.revoked", f"{staff.name} <{staff.email}>")]
    assert all(secret not in str(e.detail) for e in events)


def test_nobody_revokes_someone_elses_token_from_their_page(app, make_browser, staff,
                                                            colleague, make_api):
    coras = make_api(colleague)
    token = db.session.scalars(select(ApiToken).where(ApiToken.user_id == colleague.id)).one()
    sam = make_browser()
    sam.login(staff.email)
    assert "tests" not in sam.get("/account").get_data(as_text=True)  # not listed either

    refused = sam.post(f"/account/api-tokens/{token.id}/revoke")
    assert refused.status_code in (403, 404)
    assert _token_named("tests").revoked_at is None
    assert coras.get("/api/v1/me").status_code == 200
    assert sam.post("/account/api-tokens/999999/revoke").status_code == 404


@pytest.mark.parametrize("form, message", [
    ({"name": "", "scopes": "read"}, "Give the token a name"),
    ({"name": "x" * 81, "scopes": "read"}, "Give the token a name"),
    ({"name": "Sync", "scopes": "admin"}, "Choose what the token may do"),
    ({"name": "Sync", "scopes": "read", "expires_on": "tomorrow"}, "must be a date"),
    ({"name": "Sync", "scopes": "read", "expires_on": "2020-01-01"}, "must be in the future"),
])
def test_the_page_refuses_a_token_it_cannot_make(app, browser, staff, form, message):
    browser.login(staff.email)
    refused = browser.post("/account/api-tokens", form)
    assert refused.status_code == 422
    page = refused.get_data(as_text=True)
    assert message in html.unescape(page)
    assert 'role="alert"' in page and _shown_secret(page) is None
    assert db.session.scalars(select(ApiToken)).all() == []


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STAFF, Role.FINANCE])
def test_every_role_makes_tokens_that_act_with_that_role(app, make_browser, make_user, role):
    """Finance may make a write token; what finance may not do, its token may not either."""
    person = make_user(role)
    page = make_browser()
    page.login(person.email)
    assert "API tokens" in page.get("/account").get_data(as_text=True)
    secret = _shown_secret(_create_on_page(page, "Mine", "write").get_data(as_text=True))
    me = _call(app, "GET", "/api/v1/me", _bearer(secret))
    assert me.status_code == 200 and me.get_json()["role"] == role.value
    assert me.get_json()["scopes"] == ["read", "write"]


def test_the_forms_need_a_signed_in_person_and_their_csrf_token(app, browser, staff):
    anonymous = browser.client.post("/account/api-tokens", data={"name": "x", "scopes": "read"})
    assert anonymous.status_code in (302, 400)
    browser.login(staff.email)
    forged = browser.client.post("/account/api-tokens", data={"name": "x", "scopes": "read"})
    assert forged.status_code == 400
    assert db.session.scalars(select(ApiToken)).all() == []


# --- what the API refuses --------------------------------------------------------------

def test_an_expired_token_is_refused(app, make_api, staff):
    client = make_api(staff, expires_on=future(3))
    assert client.get("/api/v1/me").status_code == 200
    token = db.session.scalars(select(ApiToken)).one()
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    _assert_refused(client.get("/api/v1/me"), 401)


def test_a_deactivated_users_token_is_refused(app, make_api, staff):
    client = make_api(staff)
    assert client.get("/api/v1/me").status_code == 200
    staff.active = False
    db.session.commit()
    _assert_refused(client.get("/api/v1/me"), 401)


def test_switching_an_account_off_ends_its_tokens_for_good(app, make_api, make_browser,
                                                           make_user, staff):
    client = make_api(staff)
    admin = make_browser()
    admin.login(make_user(Role.ADMIN).email)
    assert admin.post(f"/admin/users/{staff.id}", {"role": "staff"}).status_code in (302, 303)
    _assert_refused(client.get("/api/v1/me"), 401)
    assert admin.post(f"/admin/users/{staff.id}",
                      {"role": "staff", "active": "1"}).status_code in (302, 303)
    assert db.session.get(type(staff), staff.id).active
    _assert_refused(client.get("/api/v1/me"), 401)  # switched on again: the token stays dead
    revoked = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "api_token.revoked")).all()
    assert len(revoked) == 1


def test_a_read_token_may_not_write(app, make_api, staff):
    reader = make_api(staff, scopes=("read",))
    body = _assert_refused(reader.post("/api/v1/clients", json={"name": "Acme"}), 403)
    assert "may only read" in body["detail"]
    assert reader.get("/api/v1/me").status_code == 200


@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer"},
    {"Authorization": "Bearer so_12345678"},
    {"Authorization": "Basic c2FtOnNlY3JldA=="},
    {"Authorization": "Bearer so_12345678_" + "x" * 43},  # well formed, unknown
    {"Authorization": "Token so_12345678_" + "x" * 43},
])
def test_no_valid_token_is_a_401_problem(app, staff, headers):
    body = _assert_refused(_call(app, "GET", "/api/v1/me", headers), 401)
    assert "Authorization: Bearer" in body["detail"]


def test_a_signed_in_browser_without_a_token_is_refused(app, browser, staff):
    """The session cookie never opens the API (it would need CSRF protection)."""
    browser.login(staff.email)
    assert browser.get("/account").status_code == 200  # signed in indeed
    _assert_refused(_call(app, "GET", "/api/v1/me", client=browser.client), 401)
    _assert_refused(_call(app, "POST", "/api/v1/clients", client=browser.client,
                          json={"name": "Acme"}), 401)


def test_a_known_prefix_with_a_guessed_secret_is_refused(app, make_api, staff):
    real = make_api(staff)
    prefix = real.secret.split("_")[1]
    forged = f"so_{prefix}_" + "A" * 43  # the public prefix, a guessed secret
    _assert_refused(_call(app, "GET", "/api/v1/me", _bearer(forged)), 401)


def test_a_secret_with_underscores_in_its_random_part_works(app, make_api, staff):
    """The random part is URL-safe base64: about every other secret holds a "_"."""
    for _attempt in range(40):
        client = make_api(staff)
        if "_" in client.secret.split("_", 2)[2]:
            break
    else:
        pytest.fail("no secret with an underscore in 40 tries")
    assert client.get("/api/v1/me").status_code == 200


def test_the_contract_is_public_and_declares_bearer_tokens(app):
    spec = _call(app, "GET", "/api/v1/openapi.json")
    assert spec.status_code == 200
    document = spec.get_json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer",
        "description": "A personal API token (so_…), from your account page."}
    assert {"bearerAuth": []} in document["security"]


# --- rate limit per token --------------------------------------------------------------

@pytest.fixture
def three_per_minute(app_config: dict[str, Any]) -> None:
    app_config["API_RATE_LIMIT"] = "3 per minute"


def test_each_token_has_its_own_rate_limit(three_per_minute, app, make_api, staff):
    busy, other = make_api(staff), make_api(staff)
    for _ in range(3):
        assert busy.get("/api/v1/me").status_code == 200
    body = _assert_refused(busy.get("/api/v1/me"), 429)
    assert body["status"] == 429
    assert other.get("/api/v1/me").status_code == 200  # another token is counted apart


def test_a_wrong_secret_under_someone_elses_prefix_spends_only_the_callers_allowance(
        three_per_minute, app, make_api, staff):
    victim = make_api(staff)
    prefix = victim.secret.split("_")[1]
    forged = {"Authorization": f"Bearer so_{prefix}_{'x' * 43}"}
    for _ in range(4):
        assert _call(app, "GET", "/api/v1/me", forged).status_code in (401, 429)
    assert victim.get("/api/v1/me").status_code == 200



# --- Idempotency-Key on a creating call (POST /api/v1/clients) -------------------------

def _clients_named(name: str) -> list[Client]:
    return list(db.session.scalars(select(Client).where(Client.name == name)))


def _created_events(name: str) -> int:
    return sum(1 for e in db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "client.created")) if name in e.detail)


def test_the_same_key_and_body_creates_once_and_replays_the_answer(app, api):
    body = {"name": "Acme", "contacts": [{"name": "Ana", "email": "ana@acme.example"}]}
    first = api.post("/api/v1/clients", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201, first.get_data(as_text=True)
    assert "Idempotent-Replayed" not in first.headers

    again = api.post("/api/v1/clients", json=body, headers={"Idempotency-Key": "k-1"})
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(_clients_named("Acme")) == 1 and _created_events("Acme") == 1

    # Without a key, the same body is a new request: the domain refuses the duplicate.
    plain = api.post("/api/v1/clients", json=body)
    assert plain.status_code == 422 and "already exists" in plain.get_json()["detail"]


def test_the_same_key_with_another_body_is_refused(app, api):
    assert api.post("/api/v1/clients", json={"name": "Acme"},
                    headers={"Idempotency-Key": "k-2"}).status_code == 201
    reused = api.post("/api/v1/clients", json={"name": "Globex"},
                      headers={"Idempotency-Key": "k-2"})
    body = _assert_refused(reused, 422)
    assert "already used for a different request" in body["detail"]
    assert _clients_named("Globex") == [] and len(_clients_named("Acme")) == 1


def test_two_people_with_the_same_key_are_independent(app, api, make_api, colleague):
    coras = make_api(colleague)
    sams = api.post("/api/v1/clients", json={"name": "Acme"}, headers={"Idempotency-Key": "k"})
    theirs = coras.post("/api/v1/clients", json={"name": "Globex"},
                        headers={"Idempotency-Key": "k"})
    assert sams.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert theirs.get_json()["name"] == "Globex"
    assert len(_clients_named("Acme")) == len(_clients_named("Globex")) == 1


@pytest.mark.parametrize("refused", [
    {"name": 5},  # the schema refuses it
    {"name": "   "},  # the domain refuses it
])
def test_a_refused_request_is_not_kept_so_the_corrected_retry_succeeds(app, api, refused):
    wrong = api.post("/api/v1/clients", json=refused, headers={"Idempotency-Key": "k-3"})
    _assert_refused(wrong, 422)
    assert db.session.scalars(select(IdempotentRequest)).all() == []

    fixed = api.post("/api/v1/clients", json={"name": "Acme"},
                     headers={"Idempotency-Key": "k-3"})
    assert fixed.status_code == 201 and "Idempotent-Replayed" not in fixed.headers
    assert len(_clients_named("Acme")) == 1
    kept = db.session.scalars(select(IdempotentRequest)).one()
    assert kept.key == "k-3" and kept.status == 201 and kept.user_id == api.user.id


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "tab\tin"])
def test_a_malformed_key_is_refused(app, api, key):
    body = _assert_refused(api.post("/api/v1/clients", json={"name": "Acme"},
                                    headers={"Idempotency-Key": key}), 422)
    assert "Idempotency-Key" in body["detail"]
    assert _clients_named("Acme") == []


def test_a_finance_write_token_is_refused_by_the_role(app, make_api, make_user):
    """A token acts as its user: finance may hold a write token, not create clients."""
    finance = make_api(make_user(Role.FINANCE))
    _assert_refused(finance.post("/api/v1/clients", json={"name": "Acme"}), 403)
    assert _clients_named("Acme") == []
