"""Who may do what: finance looks but does not touch, the dev outbox is for admins only,
staff build the directory over HTTP, and the app will not start without a real key."""
from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal import create_app
from portal.config import ConfigError
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    Client,
    Contact,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    Project,
    ReviewRequest,
    Role,
)
from tests.conftest import SECRET, future


def _snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, so any change at all shows up."""
    db.session.commit()
    return {
        table.name: sorted((tuple(row) for row in db.session.execute(sa.select(table))), key=repr)
        for table in db.metadata.sorted_tables
    }


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _location_id(response, pattern: str) -> int:
    assert response.status_code == 302, response.get_data(as_text=True)
    match = re.search(pattern, response.headers["Location"])
    assert match, response.headers["Location"]
    return int(match.group(1))


# --- finance can look but not change --------------------------------------------------

@pytest.fixture
def world(make_deliverable, make_client, staff) -> dict[str, int]:
    """One of everything a staff action can act on, each in the state the action needs."""
    draft = make_deliverable(DeliverableState.DRAFT)
    in_review = make_deliverable(DeliverableState.IN_REVIEW)
    ready = make_deliverable(DeliverableState.READY)
    delivered = make_deliverable(DeliverableState.DELIVERED)
    request = db.session.scalar(select(ReviewRequest))
    client = draft.project.client
    return {
        "staff": staff.id,
        "client": client.id,
        "contact": client.contacts[0].id,
        "project": draft.project.id,
        "draft": draft.id,
        "in_review": in_review.id,
        "ready": ready.id,
        "ready_contact": ready.project.client.contacts[0].id,
        "delivered": delivered.id,
        "request": request.id,
        "approver": request.approvers[0].id,
    }


def _pdf_upload(_w: dict[str, int]) -> dict[str, Any]:
    return {"file": (io.BytesIO(sample_pdf("Second cut")), "second.pdf"),
            "what_changed": "Second cut"}


# (what, method, url, form data, whether it changes the database when staff do it)
STAFF_ACTIONS: list[tuple[str, str, str, Callable[[dict[str, int]], Any], bool]] = [
    ("new client form", "GET", "/clients/new", lambda w: None, False),
    ("new client", "POST", "/clients/new", lambda w: MultiDict([
        ("name", "Globex"), ("contact_name", "Hank Scorpio"),
        ("contact_email", "hank@globex.example")]), True),
    ("add contact", "POST", "/clients/{client}/contacts", lambda w: {
        "contact_name": "Nina New", "contact_email": "nina@client.example"}, True),
    ("edit contact", "POST", "/contacts/{contact}", lambda w: {
        "contact_name": "Renamed Person", "contact_email": "renamed@client.example"}, True),
    ("new project", "POST", "/clients/{client}/projects", lambda w: {
        "project_name": "Rebrand", "owner_id": w["staff"]}, True),
    ("new deliverable form", "GET", "/projects/{project}/deliverables/new", lambda w: None,
     False),
    ("new deliverable", "POST", "/projects/{project}/deliverables/new", lambda w: {
        "title": "Brochure", "description": "Print run", "due_date": future(9).isoformat()},
     True),
    ("upload version", "POST", "/deliverables/{draft}/versions", _pdf_upload, True),
    ("submit", "POST", "/deliverables/{draft}/submit", lambda w: {}, True),
    ("review", "POST", "/deliverables/{in_review}/review", lambda w: {
        "outcome": "approve", "note": "Looks right"}, True),
    ("deliver", "POST", "/deliverables/{ready}/deliver", lambda w: {
        "contact_id": w["ready_contact"], "policy": "parallel",
        "due_date": future(7).isoformat()}, True),
    ("cancel request", "POST", "/requests/{request}/cancel", lambda w: {}, True),
    ("comment", "POST", "/requests/{request}/comments", lambda w: {"body": "Any news?"}, True),
    ("resend link", "POST", "/approvers/{approver}/resend", lambda w: {}, True),
    ("revoke link", "POST", "/approvers/{approver}/revoke", lambda w: {}, True),
]
ACTION_IDS = [a[0] for a in STAFF_ACTIONS]


def _send(browser, world: dict[str, int], method: str, url: str, data: Callable):
    url = url.format(**world)
    if method == "GET":
        return browser.get(url)
    return browser.post(url, data(world), content_type="multipart/form-data")


@pytest.mark.parametrize(("what", "method", "url", "data", "changes"), STAFF_ACTIONS,
                         ids=ACTION_IDS)
def test_finance_gets_403_on_every_staff_action_and_nothing_changes(
        browser, make_user, world, what, method, url, data, changes):
    finance = make_user(Role.FINANCE)
    browser.login(finance.email)
    before = _snapshot()

    response = _send(browser, world, method, url, data)

    assert response.status_code == 403, what
    assert "can look but cannot change work" in response.get_data(as_text=True)
    assert _snapshot() == before


@pytest.mark.parametrize(("what", "method", "url", "data", "changes"), STAFF_ACTIONS,
                         ids=ACTION_IDS)
def test_staff_can_do_each_of_those_actions(browser, colleague, world, what, method, url,
                                            data, changes):
    """The same requests succeed for staff: the 403s above come from the role alone."""
    browser.login(colleague.email)  # not the uploader, so the internal review is allowed
    before = _snapshot()

    response = _send(browser, world, method, url, data)

    assert response.status_code == (302 if method == "POST" else 200), \
        response.get_data(as_text=True)
    assert (_snapshot() != before) is changes


def test_finance_can_read_but_is_offered_no_actions(browser, make_user, world):
    finance = make_user(Role.FINANCE)
    browser.login(finance.email)

    assert browser.get("/").status_code == 302  # finance lands on approved work
    dashboard = browser.get("/deliverables")
    html = dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200
    assert html.count("Homepage v3") == 4  # all four deliverables are listed
    assert "New deliverable" not in html

    clients = browser.get("/clients")
    assert clients.status_code == 200 and "New client" not in clients.get_data(as_text=True)

    client_page = browser.get(f"/clients/{world['client']}")
    html = client_page.get_data(as_text=True)
    assert client_page.status_code == 200
    assert "Add contact" not in html and "Add project" not in html

    for key in ("draft", "in_review", "ready", "delivered"):
        page = browser.get(f"/deliverables/{world[key]}")
        html = page.get_data(as_text=True)
        assert page.status_code == 200 and "Homepage v3" in html
        for button in ("Upload version", "Submit for review", "Mark reviewed", "Deliver</button>",
                       "Cancel request", "Resend link", "Revoke link"):
            assert button not in html


# --- the dev outbox -------------------------------------------------------------------

def test_outbox_is_for_admins_only_and_lists_messages(make_browser, make_user, staff,
                                                      make_deliverable):
    make_deliverable(DeliverableState.DELIVERED)
    subjects = [m.subject for m in db.session.scalars(select(OutboxMessage))]
    assert any(s.startswith("Signoff: please review Homepage v3 v1 by ") for s in subjects)

    for role in (Role.STAFF, Role.FINANCE):
        someone = make_browser()
        someone.login(make_user(role).email)
        response = someone.get("/admin/outbox")
        assert response.status_code == 403, role
        assert "Only admins can open this page." in response.get_data(as_text=True)
        assert "/admin/outbox" not in someone.get("/").get_data(as_text=True)

    admin = make_browser()
    admin.login(make_user(Role.ADMIN).email)
    response = admin.get("/admin/outbox")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    for subject in subjects:
        assert subject in html
    assert "contact1@client1.example" in html
    assert 'href="/admin/outbox"' in admin.get("/").get_data(as_text=True)  # in the nav

    message = db.session.scalar(select(OutboxMessage).order_by(OutboxMessage.id))
    assert admin.get(f"/admin/outbox/{message.id}").status_code == 200


def test_outbox_needs_sign_in(browser):
    response = browser.get("/admin/outbox")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.fixture
def outbox_off(app_config):
    app_config["DEV_OUTBOX"] = False


def test_outbox_is_404_when_switched_off(outbox_off, browser, make_user, make_deliverable):
    make_deliverable(DeliverableState.DELIVERED)
    message = db.session.scalar(select(OutboxMessage))
    browser.login(make_user(Role.ADMIN).email)
    assert browser.get("/admin/outbox").status_code == 404
    assert browser.get(f"/admin/outbox/{message.id}").status_code == 404
    assert browser.get(f"/admin/outbox/{message.id}/html").status_code == 404
    assert "/admin/outbox" not in browser.get("/").get_data(as_text=True)


# --- staff build the directory --------------------------------------------------------

def test_staff_create_client_project_and_deliverable(browser, staff):
    browser.login(staff.email)

    response = browser.post("/clients/new", MultiDict([
        ("name", "  Acme Corp "),
        ("contact_name", "Jane Doe"), ("contact_email", "Jane.Doe@ACME.example"),
        ("contact_name", "John Roe"), ("contact_email", "john@acme.example"),
        ("contact_name", ""), ("contact_email", ""),
    ]))
    client_id = _location_id(response, r"/clients/(\d+)$")
    client = db.session.get(Client, client_id)
    assert client.name == "Acme Corp"
    assert [(c.name, c.email) for c in client.contacts] == [
        ("Jane Doe", "jane.doe@acme.example"), ("John Roe", "john@acme.example")]
    assert _count(Contact) == 2

    page = browser.get(f"/clients/{client_id}").get_data(as_text=True)
    assert "Client Acme Corp created." in page
    assert "<h1>Acme Corp</h1>" in page
    assert "jane.doe@acme.example" in page and "john@acme.example" in page
    assert "No projects yet." in page

    response = browser.post(f"/clients/{client_id}/projects",
                            {"project_name": "Website relaunch", "owner_id": staff.id})
    assert response.status_code == 302
    project = db.session.scalar(select(Project))
    assert (project.client_id, project.name, project.owner_id) == (
        client_id, "Website relaunch", staff.id)
    page = browser.get(f"/clients/{client_id}").get_data(as_text=True)
    assert "Project Website relaunch created." in page
    assert "Website relaunch" in page and "owner Sam Staff" in page

    form = browser.get(f"/projects/{project.id}/deliverables/new")
    assert form.status_code == 200
    assert "Acme Corp \u203a Website relaunch" in form.get_data(as_text=True)

    due = future(20)
    response = browser.post(f"/projects/{project.id}/deliverables/new", {
        "title": "Homepage design", "description": "The new homepage",
        "due_date": due.isoformat()})
    deliverable_id = _location_id(response, r"/deliverables/(\d+)$")
    deliverable = db.session.get(Deliverable, deliverable_id)
    assert (deliverable.project_id, deliverable.title, deliverable.description,
            deliverable.due_date, deliverable.state) == (
        project.id, "Homepage design", "The new homepage", due, DeliverableState.DRAFT)

    page = browser.get(f"/deliverables/{deliverable_id}").get_data(as_text=True)
    assert "Deliverable created. Upload its first version next." in page
    assert "Homepage design" in page

    dashboard = browser.get("/deliverables").get_data(as_text=True)
    assert "Homepage design" in dashboard and "Acme Corp" in dashboard
    assert "Website relaunch" in dashboard and due.isoformat() in dashboard

    clients = browser.get("/clients").get_data(as_text=True)
    assert re.search(r"Acme Corp</a></td>\s*<td>2</td><td>Website relaunch</td>", clients)


def test_an_invalid_contact_email_keeps_what_was_typed(browser, staff):
    browser.login(staff.email)
    before = _snapshot()

    response = browser.post("/clients/new", MultiDict([
        ("name", "Acme Corp"),
        ("contact_name", "Jane Doe"), ("contact_email", "jane@acme.example"),
        ("contact_name", "John Roe"), ("contact_email", "john-at-acme"),
    ]))
    html = response.get_data(as_text=True)

    assert response.status_code == 422
    assert "“john-at-acme” is not a valid email address" in html
    assert 'role="alert"' in html
    assert 'name="name" required maxlength="200" value="Acme Corp"' in html
    for typed in ("Jane Doe", "jane@acme.example", "John Roe", "john-at-acme"):
        assert f'value="{typed}"' in html
    assert _snapshot() == before  # not even the client or its valid contact


def test_a_duplicate_client_name_is_refused(browser, staff, make_client):
    make_client("Acme Corp", contacts=1)
    browser.login(staff.email)
    before = _snapshot()

    response = browser.post("/clients/new", MultiDict([
        ("name", "ACME corp"), ("contact_name", "Jane Doe"),
        ("contact_email", "jane@acme.example")]))

    assert response.status_code == 422
    assert "A client called “ACME corp” already exists." in response.get_data(as_text=True)
    assert _snapshot() == before
    assert [c.name for c in db.session.scalars(select(Client))] == ["Acme Corp"]


def test_the_same_email_twice_on_a_new_client_is_refused(browser, staff):
    browser.login(staff.email)
    response = browser.post("/clients/new", MultiDict([
        ("name", "Acme Corp"),
        ("contact_name", "Jane Doe"), ("contact_email", "jane@acme.example"),
        ("contact_name", "Jane Again"), ("contact_email", "JANE@acme.example"),
    ]))
    assert response.status_code == 422
    assert "already has a contact with the email jane@acme.example" in \
        response.get_data(as_text=True)
    assert _count(Client) == 0 and _count(Contact) == 0


def test_a_project_needs_an_account_manager_as_owner(browser, staff, make_user, make_client):
    client = make_client()
    finance = make_user(Role.FINANCE)
    browser.login(staff.email)
    response = browser.post(f"/clients/{client.id}/projects",
                            {"project_name": "Audit", "owner_id": finance.id})
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert "The project owner must be an active account manager" in html
    assert 'value="Audit"' in html
    assert _count(Project) == 0


# --- the app refuses to start without a real secret key -------------------------------

@pytest.fixture
def production_env(monkeypatch, tmp_path):
    """Neither debug nor testing, and nothing written into the project's instance/."""
    monkeypatch.delenv("FLASK_DEBUG", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path / "instance"))
    return tmp_path / "instance"


@pytest.mark.parametrize("key", ["", "change-me", "CHANGE-ME", "changeme", "dev", "secret",
                                 "short-key"])
def test_create_app_refuses_a_missing_or_placeholder_key(production_env, key):
    with pytest.raises(ConfigError, match="SECRET_KEY is missing or too weak"):
        create_app({"SECRET_KEY": key})
    assert not (production_env / "dev-secret-key").exists()


def test_create_app_refuses_when_the_environment_has_no_key(production_env):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_create_app_starts_with_a_long_key(production_env):
    app = create_app({"SECRET_KEY": SECRET})
    assert app.config["SECRET_KEY"] == SECRET
    assert not app.debug and not app.testing
    assert app.config["DEV_OUTBOX"] is False  # the outbox page is off outside dev


def test_create_app_takes_the_key_from_the_environment(production_env, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", SECRET)
    assert create_app().config["SECRET_KEY"] == SECRET


@pytest.mark.parametrize("fallbacks", [
    "change-me", f"{SECRET}-previous,dev", "short-old-key"])
def test_create_app_refuses_a_placeholder_among_the_fallback_keys(production_env, monkeypatch,
                                                                  fallbacks):
    """Fallback keys still verify sessions and review links, so they need the same care."""
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", fallbacks)
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app()


def test_create_app_accepts_long_fallback_keys(production_env, monkeypatch):
    old, older = "an-old-but-long-enough-secret-key-0123", "an-older-long-enough-secret-key-4567"
    monkeypatch.setenv("SECRET_KEY", SECRET)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", f"{old},{older}")
    assert create_app().config["SECRET_KEY_FALLBACKS"] == [old, older]


def test_debug_mode_invents_a_key_and_keeps_it(production_env, monkeypatch):
    monkeypatch.setenv("FLASK_DEBUG", "1")
    first = create_app({"SECRET_KEY": ""}).config["SECRET_KEY"]
    assert len(first) >= 32 and first.lower() != "change-me"
    assert create_app({"SECRET_KEY": "change-me"}).config["SECRET_KEY"] == first
