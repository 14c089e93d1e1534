"""/api/v1 deliverables, versions and internal review: each call does what the staff page
does (the same rows, audit events and emails, the same refusals in the same words)."""
from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func, select

from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Deliverable,
    DeliverableState,
    InternalReview,
    OutboxMessage,
    Project,
    ReviewOutcome,
    Role,
    Version,
    today_utc,
)
from tests.conftest import future

S = DeliverableState
MB = 1024 * 1024


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    return response.get_json()


def _count(model: Any, *where: Any) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _trail(deliverable_id: int) -> list[tuple[str, str, list[str]]]:
    """The deliverable's audit events: verb, actor and which details were recorded."""
    events = db.session.scalars(select(AuditEvent).where(
        AuditEvent.deliverable_id == deliverable_id).order_by(AuditEvent.seq))
    return [(e.verb, e.actor, sorted(json.loads(e.detail))) for e in events]


def _pdf_upload(title: str = "Homepage v3", name: str = "homepage.pdf",
                what_changed: str = "First cut") -> dict[str, Any]:
    return {"file": (io.BytesIO(sample_pdf(title)), name), "what_changed": what_changed}


def _stored_files(app: Flask) -> list[Path]:
    """What the file store holds (its scratch folder aside)."""
    root = Path(app.config["FILE_STORE"])
    return [p for p in root.rglob("*") if p.is_file() and "incoming" not in p.parts]


@pytest.fixture
def cora_api(make_api, colleague):
    """Cora Colleague's own token: the second person of the four-eyes review."""
    return make_api(colleague)


# --- the lifecycle -------------------------------------------------------------------------

def test_draft_upload_submit_review_through_the_api_is_what_the_pages_do(
        api, cora_api, make_project, make_browser, staff, colleague):
    project = make_project()
    due = future(10)

    # Through the API: Sam creates, uploads and submits; Cora reviews with her token.
    created = api.post("/api/v1/deliverables", json={
        "project_id": project.id, "title": "Homepage v3", "description": "The new homepage.",
        "due_date": due.isoformat()})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    d = db.session.get(Deliverable, body["id"])
    assert created.headers["Location"].endswith(f"/api/v1/deliverables/{d.id}")
    assert (d.title, d.description, d.due_date, d.state, d.owner_id) == (
        "Homepage v3", "The new homepage.", due, S.DRAFT, staff.id)
    assert body["turn"] == {"side": "us", "label": "Sam Staff: upload and submit for review"}
    assert (body["project"], body["client"]) == (
        {"id": project.id, "name": project.name},
        {"id": project.client.id, "name": project.client.name})
    assert (body["current_version"], body["latest_request_id"]) == (None, None)

    uploaded = api.post(f"/api/v1/deliverables/{d.id}/versions", data=_pdf_upload())
    assert uploaded.status_code == 201, uploaded.get_json()
    version = db.session.get(Version, uploaded.get_json()["id"])
    assert uploaded.headers["Location"].endswith(f"/api/v1/versions/{version.id}")
    assert (version.number, version.file_name, version.what_changed, version.uploaded_by_id) \
        == (1, "homepage.pdf", "First cut", staff.id)

    submitted = api.post(f"/api/v1/deliverables/{d.id}/submit",
                         json={"reviewer_id": colleague.id})
    assert submitted.status_code == 200, submitted.get_json()
    assert submitted.get_json()["state"] == "in_review"
    assert submitted.get_json()["turn"]["label"] == "Internal review by Cora Colleague"
    assert submitted.get_json()["reviewer"] == {"id": colleague.id, "name": "Cora Colleague"}
    [asked] = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.to_addr == colleague.email))
    assert asked.deliverable_id == d.id and asked.reply_to == staff.email

    reviewed = cora_api.post(f"/api/v1/deliverables/{d.id}/review", json={"approve": True})
    assert reviewed.status_code == 200, reviewed.get_json()
    db.session.refresh(d)
    assert d.state == S.READY
    [review] = db.session.scalars(select(InternalReview))
    assert (review.version_id, review.reviewer_id, review.outcome) == (
        version.id, colleague.id, ReviewOutcome.APPROVED)
    shown = api.get(f"/api/v1/deliverables/{d.id}").get_json()
    assert shown == reviewed.get_json()
    assert (shown["state"], shown["state_label"]) == ("ready", "ready")
    assert shown["turn"] == {"side": "us", "label": "Sam Staff: deliver to the client"}
    assert shown["current_version"]["id"] == version.id

    # The same steps on the staff pages record the same events, by the same people.
    sam, cora = make_browser(), make_browser()
    sam.login(staff.email)
    cora.login(colleague.email)
    sam.post(f"/projects/{project.id}/deliverables/new", data={
        "title": "Homepage v3", "description": "The new homepage.",
        "due_date": due.isoformat()})
    on_page = db.session.scalar(select(Deliverable).where(Deliverable.id != d.id))
    sam.post(f"/deliverables/{on_page.id}/versions", data=_pdf_upload())
    sam.post(f"/deliverables/{on_page.id}/submit", data={"reviewer_id": colleague.id})
    cora.post(f"/deliverables/{on_page.id}/review", data={"outcome": "approve", "note": ""})
    db.session.refresh(on_page)
    assert on_page.state == S.READY
    assert _trail(d.id) == _trail(on_page.id) == [
        ("deliverable.created", f"user:{staff.id}", ["project", "title"]),
        ("version.uploaded", f"user:{staff.id}",
         ["file_name", "media_type", "number", "sha256", "size"]),
        ("deliverable.submitted", f"user:{staff.id}", ["reviewer", "version"]),
        ("version.review_approved", f"user:{colleague.id}", ["note", "version"]),
    ]
    # Sam's page for the API's deliverable says whose move it is now.
    assert "Sam Staff: deliver to the client" in sam.get(f"/deliverables/{d.id}").get_data(
        as_text=True)


def test_a_version_sent_back_goes_to_draft_with_the_note(api, cora_api, make_deliverable,
                                                         colleague):
    d = make_deliverable(S.IN_REVIEW)

    no_note = _problem(cora_api.post(f"/api/v1/deliverables/{d.id}/review",
                                     json={"approve": False}), 422)
    assert no_note["detail"] == "Say what needs to change when you send a version back."
    assert _count(InternalReview) == 0

    sent_back = cora_api.post(f"/api/v1/deliverables/{d.id}/review",
                              json={"approve": False, "note": "The logo is blurry."})
    assert sent_back.status_code == 200
    assert sent_back.get_json()["state"] == "draft"
    [review] = db.session.scalars(select(InternalReview))
    assert (review.outcome, review.note, review.reviewer_id) == (
        ReviewOutcome.SENT_BACK, "The logo is blurry.", colleague.id)
    assert _trail(d.id)[-1] == ("version.review_sent_back", f"user:{colleague.id}",
                                ["note", "version"])
    # The version's own answer lists its internal reviews.
    version = api.get(f"/api/v1/versions/{d.current_version.id}").get_json()
    assert [(r["outcome"], r["note"], r["reviewer"]["id"]) for r in
            version["internal_reviews"]] == [("sent_back", "The logo is blurry.", colleague.id)]


# --- the domain's refusals, in its words ---------------------------------------------------

def test_the_domain_refuses_in_its_own_words_and_nothing_changes(
        api, cora_api, make_deliverable, staff, colleague):
    empty = make_deliverable(S.DRAFT, with_version=False)
    no_version = _problem(api.post(f"/api/v1/deliverables/{empty.id}/submit", json={}), 409)
    assert no_version["detail"] == "Upload a version before submitting it for internal review."

    d = make_deliverable(S.DRAFT)  # Sam uploaded its version
    self_review = _problem(api.post(f"/api/v1/deliverables/{d.id}/submit",
                                    json={"reviewer_id": staff.id}), 422)
    assert self_review["detail"] == ("The reviewer must be someone other than the person who "
                                     "uploaded the version.")
    nobody = _problem(api.post(f"/api/v1/deliverables/{d.id}/submit",
                               json={"reviewer_id": 999999}), 422)
    assert nobody["errors"] == {"json": {"reviewer_id": ["There is no colleague with this id."]}}
    not_yet = _problem(cora_api.post(f"/api/v1/deliverables/{d.id}/review",
                                     json={"approve": True}), 409)
    assert not_yet["detail"] == "“Homepage v3” is draft, not waiting for an internal review."
    db.session.refresh(d)
    assert d.state == S.DRAFT and d.reviewer_id is None

    # Submitted to anyone: Sam still may not review the version he uploaded.
    assert api.post(f"/api/v1/deliverables/{d.id}/submit", json={}).status_code == 200
    own = _problem(api.post(f"/api/v1/deliverables/{d.id}/review", json={"approve": True}),
                   403)
    assert own["detail"] == "You uploaded this version, so a colleague has to review it."
    twice = _problem(api.post(f"/api/v1/deliverables/{d.id}/submit", json={}), 409)
    assert twice["detail"] == "You cannot submit “Homepage v3” while it is in review."
    db.session.refresh(d)
    assert d.state == S.IN_REVIEW and _count(InternalReview) == 0
    assert [verb for verb, _actor, _detail in _trail(d.id)].count("deliverable.submitted") == 1

    _problem(api.post("/api/v1/deliverables/999999/submit", json={}), 404)
    _problem(api.get("/api/v1/deliverables/999999"), 404)
    _problem(api.get("/api/v1/versions/999999"), 404)


def test_bad_input_is_a_422_naming_the_field_and_nothing_is_saved(api, make_project):
    project = make_project()
    good = {"project_id": project.id, "title": "Homepage", "description": "",
            "due_date": future(5).isoformat()}

    missing = _problem(api.post("/api/v1/deliverables", json={"project_id": project.id}), 422)
    assert "title" in missing["errors"]["json"]
    wrong_date = _problem(api.post("/api/v1/deliverables",
                                   json=good | {"due_date": "next week"}), 422)
    assert "due_date" in wrong_date["errors"]["json"]
    no_project = _problem(api.post("/api/v1/deliverables", json=good | {"project_id": 99999}),
                          422)
    assert no_project["detail"] == "Choose the project the deliverable belongs to."
    assert no_project["errors"] == {"json": {"project_id": [no_project["detail"]]}}
    two_lines = _problem(api.post("/api/v1/deliverables",
                                  json=good | {"title": "Home\npage"}), 422)
    assert two_lines["detail"] == ("The title contains a line break or an invisible control "
                                   "character; type it on one line, without them.")
    nul = _problem(api.post("/api/v1/deliverables", json=good | {"description": "a\x00b"}),
                   422)
    assert nul["errors"] == {"json": {"description": [
        "The text contains a NUL character; remove it."]}}
    nul_title = _problem(api.post("/api/v1/deliverables", json=good | {"title": "a\x00b"}), 422)
    assert nul_title["detail"] == two_lines["detail"]  # the domain's words for a title
    half = _problem(api.post("/api/v1/deliverables", data='{"title": "\\ud800", "project_id": '
                             f'{project.id}}}', content_type="application/json"), 422)
    assert half["errors"] == {"json": {"title": ["The text is not valid Unicode."]}}
    extra = _problem(api.post("/api/v1/deliverables", json=good | {"owner_id": 1}), 422)
    assert "owner_id" in extra["errors"]["json"]
    not_boolean = _problem(api.post("/api/v1/deliverables/1/review", json={"approve": "yes"}),
                           422)
    assert "approve" in not_boolean["errors"]["json"]

    assert _count(Deliverable) == 0
    assert _count(AuditEvent, AuditEvent.deliverable_id.is_not(None)) == 0


# --- editing -------------------------------------------------------------------------------

def test_edit_changes_only_what_is_sent_and_records_it(api, make_deliverable, staff):
    d = make_deliverable(S.DRAFT)

    renamed = api.patch(f"/api/v1/deliverables/{d.id}", json={"title": "Homepage v4"})
    assert renamed.status_code == 200, renamed.get_json()
    assert (renamed.get_json()["title"], renamed.get_json()["due_date"]) == (
        "Homepage v4", future(14).isoformat())
    db.session.refresh(d)
    assert (d.title, d.description, d.due_date) == ("Homepage v4", "The new homepage.",
                                                    future(14))
    [edited] = db.session.scalars(select(AuditEvent).where(
        AuditEvent.verb == "deliverable.edited"))
    assert edited.actor == f"user:{staff.id}"
    assert json.loads(edited.detail)["changes"] == {"title": ["Homepage v3", "Homepage v4"]}

    cleared = api.patch(f"/api/v1/deliverables/{d.id}", json={"due_date": None})
    assert cleared.get_json()["due_date"] is None
    assert api.patch(f"/api/v1/deliverables/{d.id}", json={}).status_code == 200  # no change
    assert _count(AuditEvent, AuditEvent.verb == "deliverable.edited") == 2

    past = _problem(api.patch(f"/api/v1/deliverables/{d.id}", json={
        "due_date": (today_utc() - timedelta(days=1)).isoformat()}), 422)
    assert past["detail"].startswith("The due date ")
    assert past["detail"].endswith(" is in the past; choose today or a later day.")
    _problem(api.patch(f"/api/v1/deliverables/{d.id}", json={"title": 7}), 422)
    _problem(api.patch("/api/v1/deliverables/999999", json={"title": "X"}), 404)
    db.session.refresh(d)
    assert (d.title, d.due_date) == ("Homepage v4", None)


def test_while_with_the_client_only_the_due_date_can_change(api, make_deliverable):
    d = make_deliverable(S.DELIVERED)

    locked = _problem(api.patch(f"/api/v1/deliverables/{d.id}", json={"title": "Renamed"}),
                      409)
    assert locked["detail"].startswith("Version 1 is with the client, so its title and "
                                       "description stay as they were sent.")
    moved = api.patch(f"/api/v1/deliverables/{d.id}", json={"due_date": future(30).isoformat()})
    assert moved.status_code == 200
    db.session.refresh(d)
    assert (d.title, d.due_date) == ("Homepage v3", future(30))
    body = moved.get_json()
    assert body["latest_request_id"] == d.open_request.id
    assert body["turn"]["side"] == "client"


# --- the list: the staff list's filters and cursor -----------------------------------------

def test_the_list_filters_as_the_staff_list_does_and_pages_by_cursor(
        api, make_client, make_project, make_deliverable, make_user, browser, staff):
    acme = make_client("Acme")
    other_owner = make_user(Role.STAFF, name="Olga Owner")
    acme_site = make_project(acme)
    acme_print = Project(client=acme, name="Print", owner=other_owner)
    db.session.add(acme_print)
    elsewhere = make_project(make_client("Zeta"))
    drafts = [make_deliverable(S.DRAFT, project=acme_site) for _ in range(3)]
    ready = make_deliverable(S.READY, project=acme_print)
    late = make_deliverable(S.DELIVERED, project=elsewhere)
    late.open_request.due_date = today_utc() - timedelta(days=2)
    on_time = make_deliverable(S.DELIVERED, project=elsewhere)
    db.session.commit()

    def ids(query: str) -> list[int]:
        response = api.get(f"/api/v1/deliverables{query}")
        assert response.status_code == 200, response.get_json()
        return [row["id"] for row in response.get_json()["items"]]

    newest_first = [d.id for d in reversed([*drafts, ready, late, on_time])]
    assert ids("") == newest_first
    assert ids(f"?client={acme.id}") == [ready.id, *[d.id for d in reversed(drafts)]]
    assert ids(f"?project={acme_print.id}") == [ready.id]
    assert ids("?state=draft") == [d.id for d in reversed(drafts)]
    assert ids(f"?owner={other_owner.id}") == [ready.id]
    assert ids("?overdue=1") == [late.id]
    assert ids("?overdue=0") == newest_first
    assert ids(f"?client={acme.id}&state=ready") == [ready.id]

    # The staff list shows the same rows for the same filter.
    browser.login(staff.email)
    page = browser.get(f"/deliverables?client={acme.id}&state=draft").get_data(as_text=True)
    assert all(f"/deliverables/{d.id}\"" in page for d in drafts)
    assert f"/deliverables/{ready.id}\"" not in page

    # Two pages of two, then the last one.
    first = api.get("/api/v1/deliverables?limit=2").get_json()
    second = api.get(f"/api/v1/deliverables?limit=2&cursor={first['next_cursor']}").get_json()
    third = api.get(f"/api/v1/deliverables?limit=2&cursor={second['next_cursor']}").get_json()
    assert [r["id"] for r in first["items"] + second["items"] + third["items"]] == newest_first
    assert first["next_cursor"] and second["next_cursor"] and third["next_cursor"] is None
    filtered = api.get(f"/api/v1/deliverables?client={acme.id}&limit=3").get_json()
    rest = api.get(f"/api/v1/deliverables?client={acme.id}&limit=3"
                   f"&cursor={filtered['next_cursor']}").get_json()
    assert [r["id"] for r in rest["items"]] == [drafts[0].id] and rest["next_cursor"] is None

    row = first["items"][0]
    assert row["turn"]["side"] == "client" and row["latest_request_id"] == \
        on_time.open_request.id
    assert "state" in _problem(api.get("/api/v1/deliverables?state=lost"), 422)["errors"]["query"]
    assert "overdue" in _problem(api.get("/api/v1/deliverables?overdue=yes"),
                                 422)["errors"]["query"]
    assert _problem(api.get("/api/v1/deliverables?cursor=nonsense"), 422)["detail"] == (
        "This cursor is not one we gave out. Start again without it.")
    # The page's own cursor parameter is not the API's: it changes nothing here.
    assert ids(f"?before={newest_first[2]}") == newest_first


# --- versions: upload, download, page images -----------------------------------------------

def test_upload_download_and_page_images(api, make_deliverable, staff):
    d = make_deliverable(S.READY)  # uploading sends it back to draft, as on the page
    content = sample_pdf("Homepage v4")

    uploaded = api.post(f"/api/v1/deliverables/{d.id}/versions", data={
        "file": (io.BytesIO(content), "homepage-v4.pdf"), "what_changed": "Bigger logo"})

    assert uploaded.status_code == 201, uploaded.get_json()
    body = uploaded.get_json()
    assert (body["number"], body["file_name"], body["size"], body["sha256"]) == (
        2, "homepage-v4.pdf", len(content), hashlib.sha256(content).hexdigest())
    assert body["uploaded_by"] == {"id": staff.id, "name": "Sam Staff"}
    assert body["media_type"] == "application/pdf" and body["what_changed"] == "Bigger logo"
    db.session.refresh(d)
    assert d.state == S.DRAFT and d.current_version.id == body["id"]

    shown = api.get(f"/api/v1/versions/{body['id']}").get_json()
    assert shown["render_status"] == "ready"  # the render job ran after the commit
    assert {k: v for k, v in shown.items() if k != "render_status"} == \
        {k: v for k, v in body.items() if k != "render_status"}

    download = api.get(shown["file_url"])
    assert download.status_code == 200 and download.mimetype == "application/pdf"
    assert download.data == content
    assert 'filename=homepage-v4.pdf' in download.headers["Content-Disposition"]

    listed = api.get(f"/api/v1/deliverables/{d.id}/versions").get_json()
    assert [v["number"] for v in listed["items"]] == [2, 1] and listed["next_cursor"] is None
    first_page = api.get(f"/api/v1/deliverables/{d.id}/versions?limit=1").get_json()
    assert [v["number"] for v in first_page["items"]] == [2]
    assert [v["number"] for v in api.get(
        f"/api/v1/deliverables/{d.id}/versions?limit=1&cursor={first_page['next_cursor']}")
        .get_json()["items"]] == [1]

    renders = api.get(f"/api/v1/versions/{body['id']}/renders").get_json()
    assert (renders["status"], renders["message"]) == ("ready", "")
    [page] = renders["pages"]
    assert page["number"] == 1 and page["width"] > 0
    image = api.get(page["image_url"])
    thumb = api.get(page["thumb_url"])
    assert image.status_code == thumb.status_code == 200
    assert image.mimetype == thumb.mimetype == page["media_type"]
    assert image.data != thumb.data and len(image.data) > 100
    _problem(api.get(f"/api/v1/versions/{body['id']}/pages/2"), 404)
    _problem(api.get("/api/v1/versions/999999/file"), 404)
    _problem(api.get("/api/v1/deliverables/999999/versions"), 404)


def test_an_upload_retried_with_its_idempotency_key_adds_one_version(api, make_deliverable):
    d = make_deliverable(S.DRAFT, with_version=False)
    headers = {"Idempotency-Key": "upload-homepage-1"}

    first = api.post(f"/api/v1/deliverables/{d.id}/versions", data=_pdf_upload(),
                     headers=headers)
    again = api.post(f"/api/v1/deliverables/{d.id}/versions", data=_pdf_upload(),
                     headers=headers)

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert _count(Version) == 1
    assert _count(AuditEvent, AuditEvent.verb == "version.uploaded") == 1


@pytest.fixture
def small_limit(app_config: dict[str, Any]) -> None:
    app_config["MAX_UPLOAD_MB"] = 1
    app_config["MAX_CONTENT_LENGTH"] = 1 * MB + 64 * 1024


def _nothing_uploaded(app: Flask, d: Deliverable) -> None:
    assert _count(Version) == 0 and _stored_files(app) == []
    assert _count(AuditEvent, AuditEvent.verb == "version.uploaded") == 0
    db.session.refresh(d)
    assert d.state == S.DRAFT


@pytest.mark.usefixtures("small_limit")
def test_too_large_is_413_and_nothing_is_saved(app, api, make_deliverable):
    d = make_deliverable(S.DRAFT, with_version=False)
    just_over = sample_pdf() + b"%" + b"0" * MB

    over_limit = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions", data={
        "file": (io.BytesIO(just_over), "big.pdf")}), 413)
    assert over_limit["detail"] == "The file is larger than the 1 MB limit."
    for headers in ({}, {"Idempotency-Key": "huge-1"}):  # the body refused before it is read
        over_body = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions", data={
            "file": (io.BytesIO(b"0" * 2 * MB), "huge.pdf")}, headers=headers), 413)
        assert over_body["detail"] == ("The file is larger than the 1 MB limit. Nothing was "
                                       "saved.")
    _nothing_uploaded(app, d)


def test_a_file_type_we_do_not_take_is_415_and_nothing_is_saved(app, api, make_deliverable):
    d = make_deliverable(S.DRAFT, with_version=False)

    renamed = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions", data={
        "file": (io.BytesIO(sample_png()), "photo.pdf")}), 415)
    assert renamed["detail"] == ("“photo.pdf” contains a PNG image, but its name does not end "
                                 "in .png. Rename it and upload it again.")
    text = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions", data={
        "file": (io.BytesIO(b"Just some notes.\n"), "notes.txt")}), 415)
    assert text["detail"].startswith("“notes.txt” is not a file type we accept. Accepted: PDF")
    no_file = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions",
                                data={"what_changed": "x"}), 422)
    assert "file" in no_file["errors"]["files"]
    as_text = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions",
                                data={"file": "not a file"}), 422)
    assert as_text["errors"] == {"files": {"file": ["Choose a file to upload."]}}
    unnamed = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions",
                                data={"file": (io.BytesIO(sample_pdf()), "")}), 422)
    assert unnamed["detail"] == "Choose a file to upload."
    _nothing_uploaded(app, d)


def test_an_upload_while_with_the_client_is_refused(api, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    refused = _problem(api.post(f"/api/v1/deliverables/{d.id}/versions",
                                data=_pdf_upload()), 409)
    assert refused["detail"] == ("A request is out with the client. Cancel it before uploading "
                                 "a new version.")
    assert _count(Version) == 1


# --- who may write -------------------------------------------------------------------------

def test_read_only_and_finance_tokens_may_read_but_not_write(
        make_api, make_user, make_deliverable, make_project, staff):
    d = make_deliverable(S.IN_REVIEW)
    project = make_project()
    reader = make_api(staff, scopes=("read",))
    events_before = db.session.scalar(select(func.max(AuditEvent.seq))) or 0
    finance = make_api(make_user(Role.FINANCE, name="Fiona Finance"))
    # Each write and its body (made afresh per call: an upload's stream is read once).
    writes = [
        ("post", "/api/v1/deliverables",
         lambda: {"json": {"project_id": project.id, "title": "X"}}),
        ("patch", f"/api/v1/deliverables/{d.id}", lambda: {"json": {"title": "X"}}),
        ("post", f"/api/v1/deliverables/{d.id}/submit", lambda: {"json": {}}),
        ("post", f"/api/v1/deliverables/{d.id}/review", lambda: {"json": {"approve": True}}),
        ("post", f"/api/v1/deliverables/{d.id}/versions", lambda: {"data": _pdf_upload()}),
    ]

    for method, url, body in writes:
        read_only = _problem(getattr(reader, method)(url, **body()), 403)
        assert read_only["detail"].startswith("This token may only read."), url
        by_finance = _problem(getattr(finance, method)(url, **body()), 403)
        assert by_finance["detail"] == "Your role (finance) can look but cannot change work.", url

    for client in (reader, finance):
        assert client.get(f"/api/v1/deliverables/{d.id}").status_code == 200
        assert client.get(f"/api/v1/versions/{d.current_version.id}/file").status_code == 200
        assert client.get("/api/v1/deliverables").status_code == 200
    db.session.refresh(d)
    assert (d.title, d.state, _count(Deliverable), _count(Version)) == (
        "Homepage v3", S.IN_REVIEW, 1, 1)
    assert _count(InternalReview) == 0
    assert _count(AuditEvent, AuditEvent.deliverable_id.is_not(None),
                  AuditEvent.seq > events_before) == 0
