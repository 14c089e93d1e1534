"""The security catalogue: every attack we defend against, next to the answer we expect.

One table (`CASES`), one test. Each `Case` runs its attack against a fresh `World` — two
clients, A and B, each with a request out for review; client A's every typed field carries
a script payload — and compares what happened with the expected answer. Like every test,
it runs on SQLite and on PostgreSQL. The World's app is the embedded default (no Redis:
jobs run on the in-process background worker) and is made afresh for every case, so a
case may change one of its settings; misbehaving servers (an SMTP server that holds its
mail, slow webhook receivers) listen on loopback (tests/servers.py).
"""
from __future__ import annotations

import contextvars
import csv
import io
import logging
import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import sqlalchemy as sa
from markupsafe import escape
from pypdf import PdfReader
from sqlalchemy import func, select, update
from werkzeug.serving import make_server

from portal import create_app, workflow
from portal.certificates import create_development_key
from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.files.filetypes import clean_filename
from portal.models import (
    Comment,
    Decision,
    DecisionCode,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    Policy,
    ReviewRequest,
    Role,
    User,
    WebhookDelivery,
    WebhookEndpoint,
    utcnow,
)
from portal.notifications import background, conversation, outbox, webhooks
from portal.notifications.queue import enqueue_unless_waiting
from portal.workflow.links import issue_token
from tests.conftest import (
    PASSWORD,
    SpyServer,
    forge_token,
    future,
    run_out_link,
    stored_path,
    token_payload,
)
from tests.hostile_pdfs import text_bomb_pdf
from tests.security_api import (
    dead_tokens,
    finance_changes_work,
    half_characters,
    idempotency_key_reused,
    ids_out_of_reach,
    no_token,
    oversized_upload,
    read_token_writes,
    staff_on_admin_resources,
)
from tests.security_ops import (
    forwarded_for_does_not_reset_rate_limits,
    forwarded_host_and_prefix_are_not_believed,
    metrics_need_the_token_or_loopback,
    probes_show_no_personal_data,
)
from tests.security_storage import BAD_KEYS as BAD_STORAGE_KEYS
from tests.security_storage import (
    range_requests_after_the_access_check,
    s3_object_names_stay_under_the_prefix,
    storage_keys_other_than_hashes,
)
from tests.servers import HoldingSmtpSink, StallingReceiver, Trickler
from tests.test_load_faults import Visitor, served

S = DeliverableState
MB = 1024 * 1024


def _payload(field: str) -> str:
    return f"<script>alert('{field}')</script><img src=x onerror=alert('{field}')>"


# Everything a person can type, each with its own payload so a failure names the field.
TYPED = ["client", "contact", "project", "title", "description", "what_changed", "note",
         "file", "comment", "conditions", "reason", "classification"]
X = {field: _payload(field) for field in TYPED}
X["file"] = "Q&A <img src=x onerror=alert('file')>.pdf"
STORED = {**X, "file": clean_filename(X["file"])}  # what the database keeps


# --- the module's settings: one app configuration that serves every case ----------------

@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff catalogue seal")


@pytest.fixture
def app_config(app_config: dict[str, Any], seal: tuple[Path, Path]) -> dict[str, Any]:
    key, cert = seal
    app_config.update(
        LOGIN_RATE_LIMIT="5 per minute", CLIENT_RATE_LIMIT="1000 per minute",
        MAX_UPLOAD_MB=1, MAX_CONTENT_LENGTH=MB + 64 * 1024,
        SIGNING_KEY=str(key), SIGNING_CERT=str(cert), SIGNING_PKCS12="",
        PROPAGATE_EXCEPTIONS=False,  # a crash is a 500 page, as an attacker would see it
        REDIS_URL="",  # the embedded default: jobs run on the in-process background worker
    )
    return app_config


# --- the world ----------------------------------------------------------------------------

class World:
    """Client A (every field typed with a payload, two approvers A1 and A2) and client B
    (one approver), each with a delivered request; staff, a colleague, finance and an
    admin; a browser per actor, signed in or holding its link, made on first use."""

    def __init__(self, app, make_browser, make_user, make_client, make_project,
                 make_deliverable, staff, colleague, report) -> None:
        self.app, self._browser, self._make_deliverable = app, make_browser, make_deliverable
        self.report = report  # a figure a case measured, listed at the end (never asserted)
        self.staff, self.colleague = staff, colleague
        self.finance = make_user(Role.FINANCE, email="fiona@agency.example")
        self.admin = make_user(Role.ADMIN, email="ada@agency.example")

        client_a = make_client(name=X["client"])
        client_a.contacts[0].name = X["contact"]
        project_a = make_project(client_a)
        project_a.name = X["project"]
        a = workflow.create_deliverable(staff, project_a, X["title"], X["description"],
                                        future(14))
        workflow.upload_version(staff, a, io.BytesIO(sample_pdf("A")), X["file"],
                                X["what_changed"])
        workflow.submit_for_review(staff, a, colleague)
        workflow.review_internally(colleague, a, approve=True, note=X["note"])
        workflow.deliver(staff, a, client_a.contacts[:2], Policy.PARALLEL, future(7))
        db.session.commit()
        self.client_a_id, self.a = client_a.id, a
        self.b = make_deliverable(S.DELIVERED)
        self.a1, self.a2 = a.open_request.approvers
        self.b1 = self.b.open_request.approvers[0]
        self.token_a, self.token_a2, self.token_b = (issue_token(x)
                                                     for x in (self.a1, self.a2, self.b1))
        self.label = {self.a1.id: "A1", self.a2.id: "A2", self.b1.id: "B"}

    def new_browser(self):
        return self._browser()

    def _signed_in(self, user):
        browser = self._browser()
        assert browser.login(user.email).status_code == 302
        return browser

    def _holding(self, token: str):
        """A browser that opened this link and so shows its review page."""
        browser = self._browser()
        assert browser.get(f"/r/{token}").status_code == 303
        assert browser.get(browser.review).status_code == 200
        return browser

    @cached_property
    def sam(self):
        return self._signed_in(self.staff)

    @cached_property
    def fiona(self):
        return self._signed_in(self.finance)

    @cached_property
    def ada(self):
        return self._signed_in(self.admin)

    @cached_property
    def client_a(self):
        return self._holding(self.token_a)

    @cached_property
    def client_a2(self):
        return self._holding(self.token_a2)

    @cached_property
    def client_b(self):
        return self._holding(self.token_b)

    @cached_property
    def draft(self):
        return self._make_deliverable(S.DRAFT)

    @cached_property
    def in_review(self):
        return self._make_deliverable(S.IN_REVIEW)

    # -- what the database and the file store hold --

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        db.session.commit()
        tables = {t.name: sorted((tuple(r) for r in db.session.execute(sa.select(t))), key=repr)
                  for t in db.metadata.sorted_tables}
        root = Path(self.app.config["FILE_STORE"])
        tables["FILE_STORE"] = sorted(p.as_posix() for p in root.rglob("*") if p.is_file())
        return tables

    def changed(self, before: dict[str, list[tuple[Any, ...]]]) -> list[str]:
        after = self.snapshot()
        return sorted(name for name in after if after[name] != before.get(name))

    def a_speaks(self) -> None:
        """A1 comments and approves with conditions, both typed with payloads, over HTTP."""
        assert self.client_a.post(f"{self.client_a.review}/comments",
                                  {"body": X["comment"]}).status_code == 303
        assert decide(self.client_a, "approve_with_conditions",
                      text=X["conditions"]).status_code == 303

    def certificate_pdf(self, request_id: int) -> bytes:
        db.session.expire_all()
        issued = db.session.get(ReviewRequest, request_id).certificate
        assert issued is not None, "no certificate was issued"
        return stored_path(self.app, issued.storage_key).read_bytes()


@pytest.fixture
def world(app, make_browser, make_user, make_client, make_project, make_deliverable, staff,
          colleague, report) -> World:
    return World(app, make_browser, make_user, make_client, make_project, make_deliverable,
                 staff, colleague, report)


# --- helpers --------------------------------------------------------------------------

def raw(browser, method: str, url: str, **kwargs: Any):
    """A request as an attacker sends it: no CSRF token added, in a fresh context."""
    db.session.commit()
    response = contextvars.Context().run(browser.client.open, url, method=method, **kwargs)
    db.session.expire_all()
    return response


def decide(browser, choice: str = "approve", **form: str):
    return browser.post(f"{browser.review}/decision", {"choice": choice, **form})


def count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def where(response) -> tuple[int, str]:
    """Status, and for a redirect the path it leads to."""
    return response.status_code, urlsplit(response.headers.get("Location", "")).path


def text(response) -> str:
    return response.get_data(as_text=True)


def link_then_review(browser, token: str, approver) -> dict[str, int]:
    """Open a link, then the review page of the approver it claims to be for."""
    return {"link": browser.get(f"/r/{token}").status_code,
            "review": browser.get(f"/review/{approver.public_id}").status_code}


def xss(html: str, fields: list[str]) -> dict[str, list[str]]:
    """Which payloads reached the page raw (any at all), and which of `fields` escaped."""
    return {"raw": sorted(f for f in TYPED if STORED[f] in html),
            "escaped": sorted(f for f in fields if str(escape(STORED[f])) in html)}


def squash(value: str) -> str:
    return re.sub(r"\s+", "", value)


def pdf_text(pdf: bytes) -> str:
    return squash("\n".join(p.extract_text() or "" for p in PdfReader(io.BytesIO(pdf)).pages))


def upload(browser, deliverable_id: int, content: bytes, name: str):
    return browser.post(f"/deliverables/{deliverable_id}/versions",
                        {"file": (io.BytesIO(content), name), "what_changed": "attack"},
                        content_type="multipart/form-data")


def versions(deliverable) -> int:
    db.session.refresh(deliverable)
    return len(deliverable.versions)


def csp(response) -> dict[str, str]:
    parts = (p.strip() for p in response.headers.get("Content-Security-Policy", "").split(";"))
    return {p.split(" ", 1)[0]: p.partition(" ")[2] for p in parts if p}


# --- tokens -------------------------------------------------------------------------------

def tampered_token(w: World):
    body, stamp, signature = w.token_a.rsplit(".", 2)
    flipped = ("B" if signature[0] == "A" else "A") + signature[1:]
    return link_then_review(w.new_browser(), f"{body}.{stamp}.{flipped}", w.a1)


def expired_token(w: World):
    run_out_link(w.a1)
    browser, before = w.new_browser(), w.snapshot()
    seen = link_then_review(browser, w.token_a, w.a1)
    return {**seen, "decision": decide(browser).status_code,
            "file": browser.get(f"{browser.review}/files/{w.a.current_version.id}").status_code,
            "changed": w.changed(before)}


def revoked_token(w: World):
    already_open = w.client_a
    revoke = w.sam.post(f"/approvers/{w.a1.id}/revoke").status_code
    fresh = w.new_browser()
    return {"revoke": revoke, "link": fresh.get(f"/r/{w.token_a}").status_code,
            "review": fresh.get(f"/review/{w.a1.public_id}").status_code,
            "open session, decision": decide(already_open).status_code,
            "open session, page": already_open.get(already_open.review).status_code,
            "decisions": count(Decision)}


def converse(w: World) -> None:
    """The every-minute sweep, late enough that every burst of comments is due."""
    conversation.send_notices(utcnow() + timedelta(minutes=15))
    db.session.commit()


def conversation_keeps_notes_and_dead_links(w: World):
    """Staff's internal note never reaches a client, and a reply on a cancelled request
    tells its client without bringing the request's dead links back to life."""
    a_request, b_request = w.a1.request_id, w.b1.request_id
    gone_before = w.client_b  # holds B's link from before the cancellation
    for request_id, body, internal in ((a_request, "NOTE-FOR-STAFF-ONLY", "1"),
                                       (a_request, "REPLY-FOR-A", ""),
                                       (b_request, "REPLY-AFTER-CANCEL", "")):
        w.sam.post(f"/requests/{request_id}/comments", {"body": body, "internal": internal})
    cancelled = w.sam.post(f"/requests/{b_request}/cancel").status_code
    converse(w)
    to_clients = {m.to_addr: m.body_text for m in db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.like("comments:approver:%")))}
    b_mail = to_clients.get(w.b1.contact.email, "")
    return {"cancel": cancelled, "clients told": len(to_clients),
            "note in a client's email": any("NOTE-FOR" in t for t in to_clients.values()),
            "B told": "REPLY-AFTER-CANCEL" in b_mail, "B's email has a link": "/r/" in b_mail,
            "B's old page": gone_before.get(gone_before.review).status_code,
            "B's old link": w.new_browser().get(f"/r/{w.token_b}").status_code}


def token_for_another_purpose(w: World):
    other = forge_token(token_payload(w.a1), salt="signoff.password-reset.v1")
    return link_then_review(w.new_browser(), other, w.a1)


def session_cookie_as_token(w: World):
    session_cookie = w.sam.client.get_cookie("session").value
    return {"session cookie": link_then_review(w.new_browser(), session_cookie, w.a1),
            "CSRF token": link_then_review(w.new_browser(), w.sam.csrf_token(), w.a1)}


def replayed_after_decision(w: World):
    first = decide(w.client_a).status_code
    replay = w.new_browser()
    link = replay.get(f"/r/{w.token_a}").status_code
    page = replay.get(replay.review)
    return {"first decision": first, "link": link, "page": page.status_code,
            "page offers a choice": 'class="choices"' in text(page),
            "page shows the decision": "It cannot be changed." in text(page),
            "second decision": decide(replay, "request_changes",
                                      text="Changed my mind").status_code,
            "decisions": count(Decision)}


def scanner(method: str) -> Callable[[World], Any]:
    def attack(w: World):
        before = w.snapshot()
        browser = w.new_browser()
        link = raw(browser, method, f"/r/{w.token_a}")
        page = raw(browser, method, link.headers["Location"])  # scanners follow redirects
        db.session.refresh(w.a1)
        return {"link": link.status_code, "page": page.status_code,
                "changed": w.changed(before), "last_viewed_at": w.a1.last_viewed_at}
    return attack


# --- other people's data --------------------------------------------------------------------

def a_fetches_b_files(w: World):
    get, mine, theirs = w.client_a.get, w.client_a.review, f"/review/{w.b1.public_id}"
    return {"B's version": get(f"{mine}/files/{w.b.current_version.id}").status_code,
            "an unshared draft": get(f"{mine}/files/{w.draft.current_version.id}").status_code,
            "own version": get(f"{mine}/files/{w.a.current_version.id}").status_code,
            "B's URL": get(f"{theirs}/files/{w.b.current_version.id}").status_code}


def a_reads_b_comments(w: World):
    assert w.client_b.post(f"{w.client_b.review}/comments",
                           {"body": "B-only: budget 40k"}).status_code == 303
    a_page = text(w.client_a.get(w.client_a.review))
    b_page = w.client_a.get(f"/review/{w.b1.public_id}")
    on_b_url = w.client_a.post(f"/review/{w.b1.public_id}/comments",
                               {"body": "From A", "sha256": w.b.current_version.sha256})
    posted = w.client_a.post(f"{w.client_a.review}/comments",
                             {"body": "From A", "approver_id": str(w.b1.id),
                              "request_id": str(w.b1.request_id)})
    filed = db.session.scalars(select(Comment.request_id).where(Comment.body == "From A")).all()
    return {"B's comment on A's page": "B-only" in a_page, "B's page": b_page.status_code,
            "B's comment on B's page": "B-only" in text(b_page),
            "post to B's URL": on_b_url.status_code, "A's post": posted.status_code,
            "A's comment filed under": ["A" if r == w.a1.request_id else "B" for r in filed]}


def internal_note_reaches_client(w: World):
    note = w.sam.post(f"/requests/{w.a1.request_id}/comments",
                      {"body": "Internal: client is difficult", "internal": "1"})
    return {"note": note.status_code,
            "on client page": "client is difficult" in text(w.client_a.get(w.client_a.review))}


def internal_note_on_the_certificate(w: World):
    """Every party downloads the certificate: the team's internal notes are not on it."""
    assert w.sam.post(f"/requests/{w.b1.request_id}/comments",
                      {"body": "Internal: B is slow to pay", "internal": "1"}).status_code == 302
    assert w.client_b.post(f"{w.client_b.review}/comments",
                           {"body": "Looks right"}).status_code == 303
    assert decide(w.client_b).status_code == 303
    flat = pdf_text(w.certificate_pdf(w.b1.request_id))
    return {"internal note event": squash("comment.internal") in flat,
            "note text": squash("slow to pay") in flat,
            "client's comment event": squash("comment.posted") in flat}


def a_reaches_b_certificate(w: World):
    assert decide(w.client_b).status_code == 303  # B approves: its certificate is issued
    public_id = db.session.get(ReviewRequest, w.b1.request_id).certificate.public_id
    return {"B's own": w.client_b.get(f"{w.client_b.review}/certificate").status_code,
            "A's own URL": w.client_a.get(f"{w.client_a.review}/certificate").status_code,
            "B's URL": w.client_a.get(f"/review/{w.b1.public_id}/certificate").status_code,
            "A on /certificates/<B>.pdf": where(w.client_a.get(f"/certificates/{public_id}.pdf")),
            "anonymous": where(w.new_browser().get(f"/certificates/{public_id}.pdf"))}


def guessed_download_ids(w: World):
    url = f"/versions/{w.b.current_version.id}/file"
    return {"anonymous": where(w.new_browser().get(url)),
            "client A's session": where(w.client_a.get(url)),
            "staff, id that does not exist": w.sam.get("/versions/999999/file").status_code}


def decision_with_b_ids(w: World):
    form = {"approver_id": str(w.b1.id), "request_id": str(w.b1.request_id),
            "version_id": str(w.b.current_version.id), "deliverable_id": str(w.b.id),
            "a": w.b1.public_id, "g": str(w.b1.link_generation)}
    status = decide(w.client_a, **form).status_code
    db.session.refresh(w.b1)
    return {"status": status,
            "decided": sorted(w.label[d.approver_id] for d in db.session.scalars(select(Decision))),
            "B's request": w.b1.request.status.value}


def client_session_on_staff_pages(w: World):
    before = w.snapshot()
    return {"deliverable page": where(w.client_a.get(f"/deliverables/{w.a.id}")),
            "revoke B's link": where(w.client_a.post(f"/approvers/{w.b1.id}/revoke")),
            "changed": w.changed(before)}


# --- sessions and permissions ---------------------------------------------------------------

def _csrf_attempts(w: World, token: dict[str, str]):
    sam, client_a = w.sam, w.client_a
    before = w.snapshot()
    return {
        "staff comment": raw(sam, "POST", f"/requests/{w.a1.request_id}/comments",
                             data={"body": "forged", **token}).status_code,
        "staff revoke": raw(sam, "POST", f"/approvers/{w.b1.id}/revoke", data=token).status_code,
        "client decision": raw(client_a, "POST", f"{client_a.review}/decision",
                               data={"choice": "approve", **token}).status_code,
        "sign-in": raw(w.new_browser(), "POST", "/login",
                       data={"email": w.staff.email, "password": PASSWORD, **token}).status_code,
        "changed": w.changed(before),
    }


def another_sessions_token(w: World):
    return _csrf_attempts(w, {"csrf_token": w.fiona.csrf_token()})


def login_brute_force(w: World):
    browser = w.new_browser()
    tries = [browser.login(w.staff.email, f"guess number {i}").status_code for i in range(6)]
    return [*tries, browser.login(w.staff.email).status_code]  # the right one, too late


def user_enumeration(w: World):
    wrong = w.new_browser().login(w.staff.email, "not the password")
    unknown = w.new_browser().login("nobody@agency.example", PASSWORD)
    return {"wrong password": wrong.status_code, "unknown email": unknown.status_code,
            "same page": _without_token(text(wrong), w.staff.email)
            == _without_token(text(unknown), "nobody@agency.example")}


def _without_token(html: str, email: str) -> str:
    """The page minus what is meant to differ: the session's CSRF token and the email typed."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    return html.replace(token, "").replace(email, "")


def copied_cookies_after_sign_out(w: World):
    """Someone copied the session and remember-me cookies; the owner then signs out."""
    owner = w.new_browser()
    owner.csrf_token()
    owner.post("/login", {"email": w.staff.email, "password": PASSWORD, "remember": "1"})
    copied = {name: owner.client.get_cookie(name).value for name in ("session", "remember_token")}
    owner._token = None  # the signed-in session has a token of its own
    signed_out = owner.post("/logout", {})
    thief, remembered_only = w.new_browser(), w.new_browser()
    thief.client.set_cookie("session", copied["session"])
    remembered_only.client.set_cookie("remember_token", copied["remember_token"])
    return {"sign out": where(signed_out), "copied session cookie": where(thief.get("/clients")),
            "copied remember-me cookie": where(remembered_only.get("/clients"))}


def session_fixation(w: World):
    victim = w.new_browser()
    with victim.client.session_transaction() as planted:
        planted["planted"] = "attacker"
    victim.get("/login")
    fixed = victim.client.get_cookie("session").value
    victim.login(w.staff.email)
    with victim.client.session_transaction() as session:
        survived = session.get("planted")
    attacker = w.new_browser()
    attacker.client.set_cookie("session", fixed)
    return {"planted value after sign-in": survived,
            "cookie changed": victim.client.get_cookie("session").value != fixed,
            "victim": victim.get("/clients").status_code,
            "attacker with the fixed cookie": where(attacker.get("/clients"))}


def finance_writes(w: World):
    f, draft = w.fiona, w.draft
    before = w.snapshot()
    return {
        "new client": f.post("/clients/new", {"name": "Globex", "contact_name": "Hank",
                                              "contact_email": "hank@globex.example"}).status_code,
        "upload": upload(f, draft.id, sample_pdf("From finance"), "invoice.pdf").status_code,
        "submit": f.post(f"/deliverables/{draft.id}/submit").status_code,
        "reply": f.post(f"/requests/{w.a1.request_id}/comments", {"body": "Pay up"}).status_code,
        "revoke": f.post(f"/approvers/{w.a1.id}/revoke").status_code,
        "cancel": f.post(f"/requests/{w.b1.request_id}/cancel").status_code,
        "webhook": f.post("/admin/webhooks", {"url": "https://example.com/h"}).status_code,
        "changed": w.changed(before),
    }


def review_own_upload(w: World):
    d, draft, sam = w.in_review, w.draft, w.sam
    before = w.snapshot()
    review = sam.post(f"/deliverables/{d.id}/review", {"outcome": "approve", "note": "LGTM"})
    submit = sam.post(f"/deliverables/{draft.id}/submit", {"reviewer_id": str(w.staff.id)})
    db.session.refresh(d)
    db.session.refresh(draft)
    return {"review own upload": review.status_code, "state": d.state.value,
            "name self as reviewer": submit.status_code, "draft state": draft.state.value,
            "changed": w.changed(before)}


# --- content: markup in typed text ----------------------------------------------------------

ON_STAFF_PAGE = ["client", "comment", "conditions", "contact", "description", "file", "note",
                 "project", "title", "what_changed"]
ON_CLIENT_PAGE = ["client", "comment", "conditions", "contact", "description", "file",
                  "project", "title", "what_changed"]
IN_EMAILS = ["client", "comment", "conditions", "contact", "project", "title", "what_changed"]
ON_CERTIFICATE = ["client", "conditions", "contact", "file", "note", "project", "title",
                  "what_changed"]


def xss_staff_deliverable_page(w: World):
    w.a_speaks()
    return xss(text(w.sam.get(f"/deliverables/{w.a.id}")), ON_STAFF_PAGE)


def xss_client_review_page(w: World):
    w.a_speaks()
    return xss(text(w.client_a2.get(w.client_a2.review)), ON_CLIENT_PAGE)  # A2 sees A1's words


def xss_requested_changes(w: World):
    """What the client asks to change, and staff's note classifying it (never shown to
    the client)."""
    assert decide(w.client_a, "request_changes", text=X["reason"]).status_code == 303
    decision_id = db.session.scalar(select(Decision.id).where(Decision.approver_id == w.a1.id))
    assert w.sam.post(f"/decisions/{decision_id}/classification", {
        "scope": "change_request", "note": X["classification"]}).status_code == 302
    return {"staff page": xss(text(w.sam.get(f"/deliverables/{w.a.id}")),
                              ["classification", "reason"]),
            "client page": xss(text(w.client_a.get(w.client_a.review)),
                               ["classification", "reason"])}


def client_classifies_own_changes(w: World):
    """Whether requested changes are in scope is the agency's billing call: a client's
    post naming a scope is ignored, and the staff route is not open to a client."""
    assert decide(w.client_a, "request_changes", text="Bigger logo",
                  scope="change_request").status_code == 303
    decision = db.session.scalar(select(Decision).where(Decision.approver_id == w.a1.id))
    before = w.snapshot()
    route = where(w.client_a.post(f"/decisions/{decision.id}/classification",
                                  {"scope": "in_scope", "note": "mine"}))
    db.session.refresh(decision)
    return {"scope": decision.scope, "classified": decision.classified_at is not None,
            "staff route": route, "changed": w.changed(before)}


def xss_lists(w: World):
    sam = w.sam
    pages = {"/": ("/", ["client", "project", "title"]),
             "/deliverables": ("/deliverables", ["client", "project", "title"]),
             "/clients": ("/clients", ["client"]),
             "/clients/<A>": (f"/clients/{w.client_a_id}", ["client", "contact", "project"])}
    return {name: xss(text(sam.get(url)), fields) for name, (url, fields) in pages.items()}


def xss_emails(w: World):
    w.a_speaks()
    converse(w)  # the comment reaches its owner's email
    html = "\n".join(db.session.scalars(select(OutboxMessage.body_html)))
    return xss(html, IN_EMAILS)


def xss_certificate(w: World):
    w.a_speaks()
    assert decide(w.client_a2).status_code == 303  # the last approval issues the certificate
    flat = pdf_text(w.certificate_pdf(w.a1.request_id))
    return {"printed literally": sorted(f for f in ON_CERTIFICATE if squash(STORED[f]) in flat),
            "entity-escaped twice": "&lt;" in flat or "&#39;" in flat}


def weasyprint_fetch(w: World):
    with SpyServer() as spy:
        trap = ('<link rel=attachment href="file:///etc/passwd">'
                f'<img src="http://127.0.0.1:{spy.port}/x"><img src="http://127.0.0.1:9/x">')
        assert decide(w.client_a, "approve_with_conditions", text=trap).status_code == 303
        assert decide(w.client_a2).status_code == 303
        pdf = w.certificate_pdf(w.a1.request_id)
    return {"attachments": sorted(PdfReader(io.BytesIO(pdf)).attachments),
            "/etc/passwd inside": b"root:x:0:0" in pdf, "fetched": spy.paths,
            "printed as text": squash(trap) in pdf_text(pdf)}


def csv_formula(w: World):
    w.b.project.client.name = '=HYPERLINK("http://evil.example","open me")'
    db.session.commit()
    assert decide(w.client_b).status_code == 303
    rows = list(csv.reader(io.StringIO(text(w.fiona.get("/finance/export.csv")))))
    return {"client cell": rows[1][1]}


def injection_in_filters(w: World):
    return {"/deliverables?client=": w.sam.get("/deliverables?client=1%20OR%201=1").status_code,
            "/deliverables?state=": w.sam.get("/deliverables?state=x'%20OR%20'1'='1").status_code,
            "/finance?start=": w.fiona.get("/finance?start=2024-01-01'%20OR%20'1'='1").status_code}


def oversized_text(w: World):
    return {"comment": w.client_a.post(f"{w.client_a.review}/comments",
                                       {"body": "x" * 5001}).status_code,
            "conditions": decide(w.client_a, "approve_with_conditions",
                                 text="x" * 5001).status_code,
            "comments": count(Comment), "decisions": count(Decision)}


def control_characters_in_names(w: World):
    """CR/LF (email header injection), NUL and bidi overrides never get into a name."""
    sam, before = w.sam, w.snapshot()
    project_id = w.a.project_id
    return {
        "client name with CR LF": sam.post("/clients/new", {
            "name": "Globex\r\nBcc: everyone@evil.example", "contact_name": "Hank",
            "contact_email": "hank@globex.example"}).status_code,
        "contact name with a bidi override": sam.post(f"/clients/{w.client_a_id}/contacts", {
            "contact_name": "Hank \u202egnp.exe", "contact_email": "hank@a.example"}).status_code,
        "project name with NUL": sam.post(f"/clients/{w.client_a_id}/projects", {
            "project_name": "Relaunch\x00", "owner_id": w.staff.id}).status_code,
        "deliverable title with LF": sam.post(f"/projects/{project_id}/deliverables/new", {
            "title": "Banner\nSubject: hi", "description": "x"}).status_code,
        "changed": w.changed(before)}


def unstorable_text(w: World):
    """A NUL in free text (PostgreSQL cannot keep one) is refused at the door, on staff and
    client pages alike, instead of failing at the write."""
    before = w.snapshot()
    return {
        "description with NUL": w.sam.post(f"/deliverables/{w.b.id}/edit", {
            "title": "Homepage v3", "description": "Fine\x00print",
            "due_date": future(20).isoformat()}).status_code,
        "comment with NUL": w.client_a.post(f"{w.client_a.review}/comments",
                                            {"body": "Looks\x00good"}).status_code,
        "search with NUL": w.sam.get("/deliverables?q=home%00page").status_code,
        "changed": w.changed(before)}


def unbuildable_email(w: World):
    """A row whose header cannot be built fails at once and is shown to staff."""
    message = OutboxMessage(idempotency_key="catalogue:bad-header", to_addr="jane@a.example",
                            to_name="Jane\r\nBcc: x@evil.example", subject="Hello",
                            body_text="x", body_html="x", deliverable_id=w.a.id)
    db.session.add(message)
    db.session.commit()
    outbox.relay()  # as the minute sweep does; the commit hands it to the queue
    db.session.commit()
    db.session.refresh(message)
    return {"status": message.status.value, "retries left": message.attempts < 5,
            "on delivery problems": "Jane" in text(w.sam.get("/delivery-problems"))}


REFLECTED = "\"'><img src=x onerror=alert('reflected')>"


def xss_reflected(w: World):
    def seen(response) -> tuple[int, str]:
        html = text(response)
        shown = ("raw" if REFLECTED in html else
                 "escaped" if str(escape(REFLECTED)) in html else "not shown")
        return response.status_code, shown
    sam, client_a = w.sam, w.client_a
    return {
        "sign-in email": seen(w.new_browser().login(REFLECTED + "@x.example", "nope")),
        "new client name": seen(sam.post("/clients/new", {
            "name": REFLECTED, "contact_name": "Hank", "contact_email": "not-an-email"})),
        "comment too long": seen(client_a.post(f"{client_a.review}/comments",
                                               {"body": REFLECTED + "x" * 5000})),
        "changes too long": seen(decide(client_a, "request_changes",
                                        text=REFLECTED + "x" * 5000)),
        "metrics dates": seen(sam.get("/metrics", query_string={"start": REFLECTED})),
        "verify form": seen(w.new_browser().post("/verify", {"certificate_id": REFLECTED})),
        "verify link": seen(w.new_browser().get(f"/verify/{quote(REFLECTED)}")),
    }


def url_for_injection(w: World):
    """List pages pass the query string on to url_for() for their paging and export links."""
    for n in range(50):  # a second page, so /deliverables shows its "Older" link
        workflow.create_deliverable(w.staff, w.b.project, f"Filler {n}", "", future(3))
    db.session.commit()

    def link(browser, url: str, label: str) -> tuple[int, str, str]:
        response = browser.get(url)
        found = re.search(rf'href="([^"]*)">{label}', text(response))
        parts = urlsplit(found.group(1) if found else "")
        return response.status_code, parts.netloc, parts.path
    queries = ("endpoint=x", "_method=POST", "_external=1", "client=")
    return {**{f"/finance?{q}": link(w.fiona, f"/finance?{q}", "Export CSV") for q in queries},
            **{f"/deliverables?{q}": link(w.sam, f"/deliverables?{q}", "Older deliverables")
               for q in queries}}


def host_header_poisoning(w: World):
    browser = w.new_browser()
    browser.client.environ_base["HTTP_HOST"] = "evil.example"
    browser.login(w.staff.email)
    resend = browser.post(f"/approvers/{w.a1.id}/resend").status_code
    mail = db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.to_addr == w.a1.contact.email).order_by(OutboxMessage.id.desc())).first()
    hosts = re.findall(r"https?://([^/\s\"]+)/r/", mail.body_text + mail.body_html)
    return {"resend": resend, "link hosts": sorted(set(hosts))}


SVG_WITH_SCRIPT = (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                   b'<script>alert(document.cookie)</script><rect width="10" height="10"/></svg>')


def svg_with_script(w: World):
    d, staff = w.draft, w.staff
    workflow.upload_version(staff, d, io.BytesIO(SVG_WITH_SCRIPT), "logo.svg", "Logo")
    workflow.submit_for_review(staff, d, w.colleague)
    workflow.review_internally(w.colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                               future(7))
    db.session.commit()
    version_id = d.current_version.id
    viewer = w._holding(issue_token(request.approvers[0]))
    inline = viewer.get(f"{viewer.review}/files/{version_id}?inline=1")
    policy = csp(inline)
    staff_copy = w.sam.get(f"/versions/{version_id}/file")
    return {"status": inline.status_code, "type": inline.mimetype,
            "sandbox": "sandbox" in policy, "default-src": policy.get("default-src"),
            "nosniff": inline.headers.get("X-Content-Type-Options"),
            "staff download": staff_copy.headers["Content-Disposition"].split(";")[0]}


def cookie_flags(w: World):
    staff = w.new_browser()
    staff.csrf_token()
    staff.post("/login", {"email": w.staff.email, "password": PASSWORD, "remember": "1"})
    client = w._holding(w.token_a)

    def flags(browser, name: str) -> tuple[bool, str | None]:
        cookie = browser.client.get_cookie(name)
        return cookie.http_only, cookie.same_site
    return {"staff session": flags(staff, "session"), "remember me": flags(staff, "remember_token"),
            "client session": flags(client, "session")}


# --- content: uploads ---------------------------------------------------------------------

def _refused_upload(content: Callable[[], bytes], name: str) -> Callable[[World], Any]:
    def attack(w: World):
        draft, sam = w.draft, w.sam
        before = w.snapshot()
        status = upload(sam, draft.id, content(), name).status_code
        return {"status": status, "versions": versions(draft), "changed": w.changed(before)}
    return attack


def svg_logo_with_script(w: World):
    """An admin's SVG logo carrying script, handlers and external loads: stored rebuilt
    from an allowlist, served as an image that runs and loads nothing."""
    svg = (b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" onload="alert(1)">'
           b'<script>alert(2)</script><image href="https://evil.example/p.png"/>'
           b'<path d="M0 0h10v10H0z" style="fill:url(https://evil.example/t)"/></svg>')
    staff_try = w.sam.post("/admin/agency/logo", {"logo": (io.BytesIO(svg), "logo.svg")},
                           content_type="multipart/form-data").status_code
    uploaded = w.ada.post("/admin/agency/logo", {"logo": (io.BytesIO(svg), "logo.svg")},
                          content_type="multipart/form-data").status_code
    served = w.new_browser().get("/agency/logo")
    body = served.get_data()
    return {"staff": staff_try, "admin": uploaded, "type": served.mimetype,
            "nosniff": served.headers.get("X-Content-Type-Options"),
            "sandboxed": "sandbox" in served.headers.get("Content-Security-Policy", ""),
            "script, handlers or external loads left": any(
                bad in body for bad in (b"script", b"onload", b"evil.example", b"<image")),
            "the drawing kept": b'd="M0 0h10v10H0z"' in body}


def _pdf_of(size: int) -> bytes:
    pdf = sample_pdf("Big") + b"%"
    return pdf + b"x" * (size - len(pdf))


def traversal(name: str) -> Callable[[World], Any]:
    def attack(w: World):
        draft, sam = w.draft, w.sam
        store = Path(w.app.config["FILE_STORE"]).resolve()
        outside = store.parent.parent  # what "../../" reaches from the store's subfolders

        def outside_files() -> set[str]:
            return {p.as_posix() for p in outside.rglob("*")
                    if p.is_file() and not p.resolve().is_relative_to(store)}
        before = outside_files()
        status = upload(sam, draft.id, sample_pdf(f"Named {name}"), name).status_code
        db.session.refresh(draft)
        layout = all(re.fullmatch(r"[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}",
                                  p.relative_to(store).as_posix())
                     for p in store.rglob("*") if p.is_file())
        return {"status": status, "stored name": draft.current_version.file_name,
                "new files outside the store": sorted(outside_files() - before),
                "store holds only hashes": layout}
    return attack


def verify_text_bomb(w: World):
    """A few KB whose pages would keep a text extractor busy for minutes (one form, its
    text operator repeated 300,000 times, drawn 4 times on each of 5 pages) uploaded to the
    public /verify: only its SHA-256 and document information are read. That no page is
    interpreted is shown in tests/test_certificates.py; bench/verify.py times it."""
    before, answers = w.snapshot(), {}
    for label, title in (("no claim", None),
                         ("claims an id never issued", "Approval certificate SO-ABCD-EFGH-JKLM")):
        bomb = text_bomb_pdf(title=title)
        page = w.new_browser().post("/verify", {"file": (io.BytesIO(bomb), "statement.pdf")},
                                    content_type="multipart/form-data")
        verdict = re.search(r'class="verdict (\w+)"', text(page))
        answers[label] = (page.status_code, verdict.group(1) if verdict else None,
                          len(bomb) < 20 * 1024)
    return {**answers, "changed": w.changed(before)}


def verify_id_shows_no_private_data(w: World):
    """/verify is public: an id shows who decided what and when (escaped), and never email
    or IP addresses, browsers, or what anyone typed (conditions, notes, comments)."""
    w.a_speaks()
    assert decide(w.client_a2).status_code == 303  # the last approval issues the certificate
    db.session.expire_all()
    request = db.session.get(ReviewRequest, w.a1.request_id)
    decisions = [a.decision for a in request.approvers]
    public_id = request.certificate.public_id
    page = w.new_browser().get(f"/verify/{public_id}")
    html = text(page)
    return {"status": page.status_code, "exists": f"{public_id}</span> exists" in html,
            "Genuine": "Genuine" in html,
            "emails": [a.contact.email for a in request.approvers if a.contact.email in html],
            "IPs": sorted({d.ip for d in decisions if d.ip in html}),
            "browsers": sorted({d.user_agent for d in decisions if d.user_agent in html}),
            "typed text": sorted(f for f in ("comment", "conditions", "note", "what_changed",
                                             "description")
                                 if STORED[f] in html or str(escape(STORED[f])) in html),
            **xss(html, ["client", "contact", "file", "project", "title"])}


# --- redirects, SSRF, audit -------------------------------------------------------------------

def sign_in_with_next(target: str) -> Callable[[World], Any]:
    def attack(w: World):
        browser = w.new_browser()
        browser.csrf_token()
        response = browser.post("/login", {"email": w.staff.email, "password": PASSWORD},
                                query_string={"next": target})
        again = browser.get("/login", query_string={"next": target})  # already signed in
        return {"status": response.status_code, "location": response.headers["Location"],
                "signed in, location": again.headers["Location"]}
    return attack


def webhook_to(url: str) -> Callable[[World], Any]:
    def attack(w: World):
        ada = w.ada
        response = ada.post("/admin/webhooks", {"url": url, "description": "x"})
        return {"status": response.status_code, "endpoints": count(WebhookEndpoint)}
    return attack


def switched_off_webhook(w: World):
    """An endpoint the admin switched off gets no event; staff cannot switch it or its secret."""
    registered = w.ada.post("/admin/webhooks", {"url": "http://127.0.0.1:9/hook",
                                                "description": "billing", "allow_private": "1"})
    endpoint = db.session.scalar(select(WebhookEndpoint))
    secret = endpoint.secret
    off = w.ada.post(f"/admin/webhooks/{endpoint.id}/active", {"active": "0"})
    staff_on = w.sam.post(f"/admin/webhooks/{endpoint.id}/active", {"active": "1"})
    staff_rotates = w.sam.post(f"/admin/webhooks/{endpoint.id}/rotate")
    decided = decide(w.client_b)  # decision.recorded and request.approved happen
    db.session.refresh(endpoint)
    return {"registered": registered.status_code, "switched off": off.status_code,
            "staff switches on": staff_on.status_code, "staff rotates": staff_rotates.status_code,
            "decision": decided.status_code, "deliveries": count(WebhookDelivery),
            "still off, same secret": (endpoint.active, endpoint.secret == secret)}


def audit_tamper(sql: str) -> Callable[[World], Any]:
    def attack(w: World):
        runner = w.app.test_cli_runner()
        db.session.commit()
        intact = runner.invoke(args=["audit", "verify"]).exit_code
        db.session.execute(sa.text(sql))
        db.session.commit()
        result = runner.invoke(args=["audit", "verify"])
        found = re.search(r"Audit chain broken at event (\d+): ([^\n]*)", result.output)
        return {"before": intact, "after": result.exit_code,
                "names": (int(found.group(1)), found.group(2)) if found else result.output}
    return attack


def database_gone(w: World):
    """The same portal with its database unreachable: a signed-in person and a client
    get a clear 503 with Retry-After, never a 500 from the error page asking the database."""
    down = create_app({**{k: w.app.config[k] for k in ("SECRET_KEY", "FILE_STORE")},
                       "TESTING": True, "PROPAGATE_EXCEPTIONS": False,
                       "SQLALCHEMY_DATABASE_URI": "postgresql+psycopg://nobody@127.0.0.1:1/x"})
    answers = {}
    for who, browser, url, headers in (("staff", w.sam, "/", {}),
                                       ("client", w.client_a, w.client_a.review, {}),
                                       ("htmx", w.client_a, f"{w.client_a.review}?choice=approve",
                                        {"HX-Request": "true"})):
        visitor = down.test_client()
        visitor.set_cookie("session", browser.client.get_cookie("session").value)
        response = contextvars.Context().run(visitor.get, url, headers=headers)
        answers[who] = (response.status_code, response.headers.get("Retry-After"),
                        "try again" in response.get_data(as_text=True))
    return answers


# --- the embedded default: reads beside a writer, nothing waits on SMTP or a receiver --------

def _outcome(step: Callable[[], Any]) -> Any:
    """What a step returned (an enum as its value), or the name of what it raised."""
    try:
        result = step()
    except Exception as exc:
        return type(exc).__name__
    return getattr(result, "value", result)


def pages_beside_a_writer(w: World):
    """Another connection is part-way through a write and keeps it open (SQLite's write
    lock; the row's lock on PostgreSQL) while pages are fetched: every page answers, and
    shows the last commit, not the write under way (tests/test_embedded.py: the same over
    real HTTP)."""
    sam, client_a, anonymous = w.sam, w.client_a, w.new_browser()
    a_id = w.a.id
    pages = {"dashboard": (sam, "/"), "deliverable page": (sam, f"/deliverables/{a_id}"),
             "deliverables list": (sam, "/deliverables"),
             "client review page": (client_a, client_a.review),
             "sign-in page": (anonymous, "/login")}
    db.session.commit()  # the test's own session holds nothing from here
    table = Deliverable.__table__
    with db.engine.connect() as writer:  # on SQLite it begins IMMEDIATE: the write lock
        writer.execute(update(table).where(table.c.id == a_id).values(title="Being rewritten"))
        started = time.monotonic()
        answers = {name: browser.get(url) for name, (browser, url) in pages.items()}
        held = time.monotonic() - started
        writer.rollback()
    w.report(f"{len(answers)} pages beside a writer holding its lock: {held:.2f} s in all "
             "(SQLite's busy_timeout is 5 s a page)")
    return {**{name: r.status_code for name, r in answers.items()},
            "the write under way shown": any("Being rewritten" in text(r)
                                             for r in answers.values())}


def write_inside_a_read(w: World):
    """GET and HEAD transactions begin read-only (on SQLite deferred, taking no lock), so
    code that writes inside one (under a link scanner's GET, say) fails at once on every
    backend, not only under contention; the request's end lifts the declaration."""
    staff_id = w.staff.id
    db.session.commit()

    def write() -> str:
        db.session.get(User, staff_id).name = "Written"
        db.session.flush()
        return "written"

    def inside(method: str) -> Any:
        with w.app.test_request_context("/", method=method):
            w.app.preprocess_request()  # the before-request hooks: the read-only declaration
            try:
                return _outcome(write)
            finally:
                db.session.rollback()

    def after_a_get() -> Any:
        inside("GET")
        with w.app.app_context():
            try:
                return _outcome(write)
            finally:
                db.session.rollback()
    return {"GET": contextvars.Context().run(inside, "GET"),
            "HEAD": contextvars.Context().run(inside, "HEAD"),
            "after the GET, same thread": contextvars.Context().run(after_a_get)}


def smtp_holds_the_mail(w: World):
    """The mail server (slow, or a tarpit) keeps each message at DATA until the test lets
    go, which it does only after the decision answered: the receipt is sent after the
    commit on the background worker, not inside the request."""
    sink = HoldingSmtpSink()
    w.app.config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)
    maker = w.a1.contact.email
    try:
        with served(w.app) as base:  # real HTTP: the request runs on a thread of its own
            client = Visitor(base, timeout=10)
            client.open_link(w.token_a)
            sink.hold()
            try:
                decided = client.send("POST", f"{client.page}/decision",
                                      {"choice": "approve"})
                reached = sink.arrived.wait(10)
                held = sink.accepted == []
            finally:
                sink.release()
        idle = background.wait_until_idle(w.app, timeout=30)
    finally:
        sink.controller.stop()
    receipt = db.session.scalar(select(OutboxMessage.status).where(
        OutboxMessage.to_addr == maker, OutboxMessage.idempotency_key.like("receipt:%")))
    return {"decision": decided.status, "an email reached SMTP": reached,
            "SMTP still held it": held, "jobs done after release": idle,
            "receipt": getattr(receipt, "value", receipt), "delivered": maker in sink.accepted}


def _register_webhook(w: World, url: str) -> None:
    assert w.ada.post("/admin/webhooks", {"url": url, "description": "receiver",
                                          "allow_private": "1"}).status_code == 302


def trickling_webhook_receiver(w: World):
    """A receiver answering a byte every 0.2 s (for 5 s) never trips a per-read timeout;
    the delivery's overall deadline (WEBHOOK_TIMEOUT, 1 s here) cuts it off, and the
    delivery waits for its next attempt with the reason."""
    w.app.config["WEBHOOK_TIMEOUT"] = 1
    trickler = Trickler()
    try:
        _register_webhook(w, trickler.url)
        w._make_deliverable(S.DELIVERED)  # request.delivered; the commit waits for the job
        cut = trickler.hung_up.wait(10)
    finally:
        trickler.stop()
    w.report(f"receiver trickling a byte every 0.2 s, WEBHOOK_TIMEOUT=1: cut off after "
             f"{trickler.lasted:.2f} s (it would have taken 5 s)")
    delivery = db.session.scalars(select(WebhookDelivery)).one()
    return {"cut off": cut, "status": delivery.status.value, "attempts": delivery.attempts,
            "error": delivery.last_error, "claim released": delivery.claimed_until is None}


def webhook_post_holds_no_lock(w: World):
    """While a receiver keeps the POST open, another connection locks and updates the
    delivery's row at once (NOWAIT on PostgreSQL; on SQLite the write lock itself), and a
    second attempt leaves the row alone: a committed claim keeps others off, not a lock."""
    receiver = StallingReceiver()
    try:
        _register_webhook(w, receiver.url)
        delivery = WebhookDelivery(endpoint=db.session.scalars(select(WebhookEndpoint)).one(),
                                   event_id="evt_stall", event_type="request.viewed",
                                   payload='{"id":"evt_stall"}')
        db.session.add(delivery)
        db.session.flush()
        delivery_id = delivery.id
        db.session.commit()  # written without a job: handed over below
        enqueue_unless_waiting(webhooks.DELIVER_JOB, delivery_id,
                               job_id=f"webhook-{delivery_id}")
        posted = receiver.arrived.wait(10)
        row = WebhookDelivery.__table__

        def lock_and_update() -> str:
            with db.engine.connect() as other:
                claim = other.execute(select(row.c.claimed_until).where(row.c.id == delivery_id)
                                      .with_for_update(nowait=True)).scalar_one()
                other.execute(update(row).where(row.c.id == delivery_id)
                              .values(last_error="touched while the POST was out"))
                other.commit()
            return "claimed" if claim is not None else "not claimed"
        during = _outcome(lock_and_update)
        second = _outcome(lambda: webhooks.deliver(delivery_id))
    finally:
        receiver.release.set()
        idle = background.wait_until_idle(w.app, timeout=30)
        receiver.stop()
    delivered = db.session.get(WebhookDelivery, delivery_id)
    return {"posted": posted, "row locked and updated during the POST": during,
            "second attempt": second, "jobs done": idle, "posts": receiver.posts,
            "after": (delivered.status.value, delivered.attempts, delivered.last_status_code)}


# --- headers and URLs -------------------------------------------------------------------------

def security_headers(w: World):
    def summary(response) -> dict[str, Any]:
        policy = csp(response)
        return {"status": response.status_code, "script-src": policy.get("script-src"),
                "unsafe-inline": "unsafe-inline" in response.headers["Content-Security-Policy"],
                "frame-ancestors": policy.get("frame-ancestors"),
                "nosniff": response.headers.get("X-Content-Type-Options"),
                "Referrer-Policy": response.headers.get("Referrer-Policy")}
    return {"staff page": summary(w.sam.get(f"/deliverables/{w.a.id}")),
            "client page": summary(w.client_a.get(w.client_a.review)),
            "sign-in page": summary(w.new_browser().get("/login"))}


def review_pages_not_cached(w: World):
    client_a = w.client_a
    pages = {"/review": client_a.get(client_a.review),
             "/review?choice=approve": client_a.get(f"{client_a.review}?choice=approve"),
             "/review/files": client_a.get(f"{client_a.review}/files/{w.a.current_version.id}"),
             "a refused decision (422)": client_a.post(f"{client_a.review}/decision",
                                                       {"choice": "x"}),
             "no grant (403)": client_a.get(f"/review/{w.b1.public_id}")}
    w.sam.post(f"/approvers/{w.a1.id}/revoke")
    pages["/r/ of a revoked link (410)"] = w.new_browser().get(f"/r/{w.token_a}")
    return {name: (r.status_code, r.headers.get("Cache-Control")) for name, r in pages.items()}


def signed_in_pages_not_cached(w: World):
    def cache(response) -> tuple[int, bool]:
        directives = {d.strip() for d in response.headers.get("Cache-Control", "").split(",")}
        return response.status_code, {"private", "no-store"} <= directives

    fiona = w.fiona
    return {"deliverable page": cache(w.sam.get(f"/deliverables/{w.a.id}")),
            "dashboard": cache(w.sam.get("/")),
            "staff download": cache(w.sam.get(f"/versions/{w.a.current_version.id}/file")),
            "finance CSV": cache(fiona.get("/finance/export.csv")),
            "sign-in page, signed out": cache(w.new_browser().get("/login"))}


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def token_in_access_log(w: World):
    """The development server's access log (Gunicorn's: tests/test_access_log.py)."""
    db.session.commit()
    server = make_server("127.0.0.1", 0, w.app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    werkzeug_log, lines = logging.getLogger("werkzeug"), _Lines()
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.INFO)
    werkzeug_log.addHandler(lines)
    thread.start()
    try:
        browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
        link = f"http://127.0.0.1:{server.server_port}/r/{w.token_a}"
        with browser.open(link, timeout=20) as page:  # follows to the review page
            status = page.status
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        werkzeug_log.removeHandler(lines)
        werkzeug_log.setLevel(level)
    logged = "\n".join(lines.lines)
    return {"page": status, "token logged": w.token_a in logged,
            "line logged, redacted": "GET /r/[token] HTTP/1.1" in logged}


def guessing_the_emailed_code(w: World):
    """Step-up on: the code is kept only as a keyed hash, five wrong tries use it up, and
    without a confirmed code there is no decision."""
    db.session.get(ReviewRequest, w.a1.request_id).require_code = True
    db.session.commit()
    client_a = w.client_a
    sent = client_a.post(f"{client_a.review}/code").status_code
    row = db.session.scalars(select(DecisionCode)).one()
    guesses = [client_a.post(f"{client_a.review}/code/confirm", {"code": f"{n:06d}"})
               for n in range(6)]
    db.session.refresh(row)
    return {"sent": sent, "guesses": [g.status_code for g in guesses],
            "last answer": "Too many wrong tries" in text(guesses[-1]),
            "tries counted": row.tries, "stored as": "hash" if len(row.digest) == 64 else "?",
            "decision": decide(client_a).status_code, "decisions": count(Decision)}


def decision_naming_another_version(w: World):
    """A form (or an API call) naming a version the request is not about records nothing."""
    client_a = w.client_a
    answers = {label: decide(client_a, sha256=sha).status_code for label, sha in (
        ("B's version", w.b.current_version.sha256), ("made up", "0" * 64), ("none", ""))}
    db.session.refresh(w.a1)
    return {**answers, "decisions": count(Decision), "A1": w.a1.status.value}


def another_contacts_link_in_the_same_browser(w: World):
    """Another site makes A1's browser open B's link (a top-level GET carries the cookies):
    a grant for B is added beside A1's, and A1's page still acts only for A1."""
    client_a = w.client_a
    assert client_a.get(f"/r/{w.token_b}").status_code == 303
    mine = f"/review/{w.a1.public_id}"
    shown = w.a.current_version.sha256
    comment = client_a.post(f"{mine}/comments", {"body": "Mine", "sha256": shown})
    decision = client_a.post(f"{mine}/decision", {"choice": "approve", "sha256": shown})
    filed = db.session.scalars(select(Comment.request_id).where(Comment.body == "Mine")).all()
    db.session.refresh(w.b1)
    return {"comment": comment.status_code, "decision": decision.status_code,
            "comment filed under": ["A" if r == w.a1.request_id else "B" for r in filed],
            "decided": sorted(w.label[d.approver_id] for d in db.session.scalars(
                select(Decision))), "B1": w.b1.status.value}


def redelivered_while_the_page_is_open(w: World):
    """Staff cancel A's request and send version 2 while A1's page shows version 1."""
    client_a, staff = w.client_a, w.staff
    shown = client_a.on_screen
    workflow.cancel_request(staff, db.session.get(ReviewRequest, w.a1.request_id))
    workflow.upload_version(staff, w.a, io.BytesIO(sample_pdf("A, second cut")), "v2.pdf",
                            "Second cut")
    workflow.submit_for_review(staff, w.a, w.colleague)
    workflow.review_internally(w.colleague, w.a, approve=True)
    workflow.deliver(staff, w.a, [w.a1.contact], Policy.PARALLEL, future(7))
    db.session.commit()
    answer = decide(client_a, sha256=shown)
    comment = client_a.post(f"{client_a.review}/comments", {"body": "late", "sha256": shown})
    return {"decision": answer.status_code, "comment": comment.status_code,
            "says": "version 2 of" in text(answer) and "is waiting for you" in text(answer),
            "decisions": count(Decision), "comments": count(Comment)}


def revoked_link_learns_nothing_new(w: World):
    """Staff revoke A1's link and send A a new version: the old link's pages name nothing
    of it (a cancelled request's would point on; a revoked one must not)."""
    client_a, staff = w.client_a, w.staff
    shown = client_a.on_screen
    assert w.sam.post(f"/approvers/{w.a1.id}/revoke").status_code == 302
    workflow.cancel_request(staff, db.session.get(ReviewRequest, w.a1.request_id))
    workflow.upload_version(staff, w.a, io.BytesIO(sample_pdf("A, v2")), "v2.pdf", "v2")
    workflow.submit_for_review(staff, w.a, w.colleague)
    workflow.review_internally(w.colleague, w.a, approve=True)
    workflow.deliver(staff, w.a, [w.a1.contact], Policy.PARALLEL, future(7))
    db.session.commit()
    pages = {"link": w.new_browser().get(f"/r/{w.token_a}"),
             "open page": client_a.get(client_a.review),
             "decision": decide(client_a, sha256=shown)}
    return {name: (r.status_code, "version 2" in text(r)) for name, r in pages.items()}


def changed_address_learns_nothing_new(w: World):
    """A1's address is changed (the old mailbox was someone else's), then A's request is
    cancelled and version 2 sent to the new address: the link in the old mailbox, and a
    browser that opened it, learn nothing of version 2."""
    client_a, staff = w.client_a, w.staff
    shown = client_a.on_screen
    contact = w.a1.contact
    assert w.sam.post(f"/contacts/{contact.id}", {
        "contact_name": contact.name, "contact_email": "new-a1@elsewhere.example"}
    ).status_code == 302
    workflow.cancel_request(staff, db.session.get(ReviewRequest, w.a1.request_id))
    workflow.upload_version(staff, w.a, io.BytesIO(sample_pdf("A, v2")), "v2.pdf", "v2")
    workflow.submit_for_review(staff, w.a, w.colleague)
    workflow.review_internally(w.colleague, w.a, approve=True)
    workflow.deliver(staff, w.a, [contact], Policy.PARALLEL, future(7))
    db.session.commit()
    pages = {"link": w.new_browser().get(f"/r/{w.token_a}"),
             "open page": client_a.get(client_a.review),
             "decision": decide(client_a, sha256=shown)}
    return {name: (r.status_code, "version 2" in text(r)) for name, r in pages.items()}


def reopening_points_by_guessed_id(w: World):
    """The reopen route answers alike for a point that does not exist and another's."""
    client_a = w.client_a
    assert w.client_b.post(f"{w.client_b.review}/comments", {"body": "B's point"}).status_code \
        == 303
    theirs = db.session.scalars(select(Comment.id).where(Comment.body == "B's point")).one()
    answers = {label: client_a.post(f"{client_a.review}/points/{cid}/reopen")
               for label, cid in (("B's point", theirs), ("no such point", 999999))}
    return {**{label: r.status_code for label, r in answers.items()},
            "the same page": _without_csrf(text(answers["B's point"]))
            == _without_csrf(text(answers["no such point"]))}


def _without_csrf(page: str) -> str:
    """The page with its CSRF token blanked: the token is signed with the second it was
    made, so two pages drawn a second apart differ there and nowhere else."""
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    return page.replace(token.group(1), "CSRF") if token else page


def token_in_url(w: World):
    browser = w.new_browser()
    redirect = browser.get(f"/r/{w.token_a}")
    page = browser.get(redirect.headers["Location"])
    return {"status": redirect.status_code,
            "location": redirect.headers["Location"].replace(w.a1.public_id, "A1"),
            "token in the page": w.token_a in text(page),
            "Referrer-Policy": redirect.headers.get("Referrer-Policy")}


def client_errors_without_a_grant(w: World):
    """Error pages under a review URL, for a browser that never opened its link: they
    name no client, document or file (the URL alone is not a secret) and never send a
    client to the staff sign-in."""
    stranger, review = w.new_browser(), f"/review/{w.a1.public_id}"
    answers = {"no grant": stranger.get(review),
               "unknown page": stranger.get(f"{review}/no-such-page"),
               "a file": stranger.get(f"{review}/files/{w.a.current_version.id}"),
               "stale form": stranger.post(f"{review}/comments",
                                           {"body": "x", "csrf_token": "stale"})}
    secrets = [v for f in ("client", "title", "description", "file")
               for v in (STORED[f], str(escape(STORED[f])))]
    return {label: (r.status_code, any(v in text(r) for v in secrets), "/login" in text(r))
            for label, r in answers.items()}


def renew_to_attacker(w: World):
    run_out_link(w.a1)
    browser = w.new_browser()
    browser.get(f"/r/{w.token_a}")
    mails = count(OutboxMessage, OutboxMessage.to_addr == w.a1.contact.email)
    status = browser.post(f"{browser.review}/renew", {"email": "attacker@evil.example"}).status_code
    return {"status": status,
            "to attacker": count(OutboxMessage, OutboxMessage.to_addr == "attacker@evil.example"),
            "to the contact on file": count(OutboxMessage, OutboxMessage.to_addr
                                            == w.a1.contact.email) - mails}


# --- the catalogue ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[World], Any]
    expected: Any


PROBLEM = "application/problem+json"  # RFC 9457: every API refusal
NOT_FOUND = {"link": 404, "review": 403}  # no grant: the page asks for the emailed link
REFUSED_WEBHOOK = {"status": 422, "endpoints": 0}
TO_LOGIN = (302, "/login")
STRICT_HEADERS = {"status": 200, "script-src": "'self'", "unsafe-inline": False,
                  "frame-ancestors": "'none'", "nosniff": "nosniff",
                  "Referrer-Policy": "same-origin"}
NO_WRITE_CSRF = {"staff comment": 400, "staff revoke": 400, "client decision": 400,
                 "sign-in": 400, "changed": []}

def decision_after_an_early_close(w: World):
    """"Any one of" two: once one approves, the other's link still opens but decides
    nothing, whatever it posts; nothing is written."""
    d = w._make_deliverable(S.READY)
    request = workflow.deliver(w.staff, d, d.project.client.contacts, Policy.ANY_ONE,
                               future(7))
    db.session.commit()
    first, second = (w._holding(issue_token(a)) for a in request.approvers)
    approved = decide(first).status_code
    before = w.snapshot()
    late = decide(second)
    return {"first": approved, "late approval": late.status_code,
            "says why": "no longer needed" in text(late),
            "late changes": decide(second, "request_changes", text="Too late").status_code,
            "changed": w.changed(before)}


CASES = [
    # tokens
    Case("token: tampered signature", tampered_token, NOT_FOUND),
    Case("token: expired (old timestamp)", expired_token,
         {"link": 303, "review": 410, "decision": 403, "file": 403, "changed": []}),
    Case("token: revoked by staff", revoked_token,
         {"revoke": 302, "link": 410, "review": 403, "open session, page": 410,
          "open session, decision": 403, "decisions": 0}),
    Case("token: signed for another purpose", token_for_another_purpose, NOT_FOUND),
    Case("token: a reply on a cancelled request, and an internal note",
         conversation_keeps_notes_and_dead_links,
         {"cancel": 302, "clients told": 3, "note in a client's email": False, "B told": True,
          "B's email has a link": False, "B's old page": 410, "B's old link": 410}),
    Case("token: session cookie and CSRF token used as link", session_cookie_as_token,
         {"session cookie": NOT_FOUND, "CSRF token": NOT_FOUND}),
    Case("token: replayed after a decision", replayed_after_decision,
         {"first decision": 303, "link": 303, "page": 200, "page offers a choice": False,
          "page shows the decision": True, "second decision": 409, "decisions": 1}),
    Case("token: GET by a link scanner leaves no trace", scanner("GET"),
         {"link": 303, "page": 200, "changed": [], "last_viewed_at": None}),
    Case("token: HEAD by a link scanner leaves no trace", scanner("HEAD"),
         {"link": 303, "page": 200, "changed": [], "last_viewed_at": None}),
    Case("token: never in the URL after the redirect", token_in_url,
         {"status": 303, "location": "/review/A1", "token in the page": False,
          "Referrer-Policy": "same-origin"}),
    Case("token: never in the access log", token_in_access_log,
         {"page": 200, "token logged": False, "line logged, redacted": True}),
    Case("integrity: a decision naming another version", decision_naming_another_version,
         {"B's version": 409, "made up": 409, "none": 409, "decisions": 0, "A1": "invited"}),
    Case("integrity: another contact's link opened in the same browser",
         another_contacts_link_in_the_same_browser,
         {"comment": 303, "decision": 303, "comment filed under": ["A"], "decided": ["A1"],
          "B1": "invited"}),
    Case("integrity: re-delivered while the page is open", redelivered_while_the_page_is_open,
         {"decision": 409, "comment": 409, "says": True, "decisions": 0, "comments": 0}),
    Case("token: a revoked link learns nothing of newer versions",
         revoked_link_learns_nothing_new,
         {"link": (410, False), "open page": (410, False), "decision": (403, False)}),
    Case("token: a link to a changed address learns nothing of newer versions",
         changed_address_learns_nothing_new,
         {"link": (410, False), "open page": (410, False), "decision": (403, False)}),
    Case("data: reopening points by guessed id", reopening_points_by_guessed_id,
         {"B's point": 403, "no such point": 403, "the same page": True}),
    Case("step-up: guessing the emailed code", guessing_the_emailed_code,
         {"sent": 200, "guesses": [422] * 6, "last answer": True, "tries counted": 5,
          "stored as": "hash", "decision": 403, "decisions": 0}),
    Case("token: error pages without a grant name nothing and never the sign-in",
         client_errors_without_a_grant,
         {"no grant": (403, False, False), "unknown page": (404, False, False),
          "a file": (403, False, False), "stale form": (400, False, False)}),
    Case("token: expired link renewed to the attacker's address", renew_to_attacker,
         {"status": 200, "to attacker": 0, "to the contact on file": 1}),
    # other people's data
    Case("data: A's session fetches B's files", a_fetches_b_files,
         {"B's version": 404, "an unshared draft": 404, "own version": 200, "B's URL": 403}),
    Case("data: A reads and writes B's comments", a_reads_b_comments,
         {"B's comment on A's page": False, "B's page": 403, "B's comment on B's page": False,
          "post to B's URL": 403, "A's post": 303, "A's comment filed under": ["A"]}),
    Case("data: staff internal note shown to the client", internal_note_reaches_client,
         {"note": 302, "on client page": False}),
    Case("data: staff internal note on the certificate", internal_note_on_the_certificate,
         {"internal note event": False, "note text": False, "client's comment event": True}),
    Case("data: A reaches B's certificate", a_reaches_b_certificate,
         {"B's own": 200, "A's own URL": 404, "B's URL": 403,
          "A on /certificates/<B>.pdf": TO_LOGIN, "anonymous": TO_LOGIN}),
    Case("data: downloads by guessed version id", guessed_download_ids,
         {"anonymous": TO_LOGIN, "client A's session": TO_LOGIN,
          "staff, id that does not exist": 404}),
    Case("data: decision post carrying B's ids", decision_with_b_ids,
         {"status": 303, "decided": ["A1"], "B's request": "open"}),
    Case("data: client session on staff pages", client_session_on_staff_pages,
         {"deliverable page": TO_LOGIN, "revoke B's link": TO_LOGIN, "changed": []}),
    Case("data: a client classifying their own requested changes",
         client_classifies_own_changes,
         {"scope": None, "classified": False, "staff route": TO_LOGIN, "changed": []}),
    # sessions and permissions
    Case("csrf: missing token", lambda w: _csrf_attempts(w, {}), NO_WRITE_CSRF),
    Case("csrf: forged token", lambda w: _csrf_attempts(w, {"csrf_token": "forged"}),
         NO_WRITE_CSRF),
    Case("csrf: another session's token", another_sessions_token, NO_WRITE_CSRF),
    Case("login: brute force is rate limited", login_brute_force,
         [401, 401, 401, 401, 401, 429, 429]),
    Case("login: no user enumeration", user_enumeration,
         {"wrong password": 401, "unknown email": 401, "same page": True}),
    Case("login: copied cookies after sign-out", copied_cookies_after_sign_out,
         {"sign out": TO_LOGIN, "copied session cookie": TO_LOGIN,
          "copied remember-me cookie": TO_LOGIN}),
    Case("login: session fixation", session_fixation,
         {"planted value after sign-in": None, "cookie changed": True, "victim": 200,
          "attacker with the fixed cookie": TO_LOGIN}),
    Case("roles: finance tries to write", finance_writes,
         {"new client": 403, "upload": 403, "submit": 403, "reply": 403, "revoke": 403,
          "cancel": 403, "webhook": 403, "changed": []}),
    Case("roles: staff reviews their own upload", review_own_upload,
         {"review own upload": 403, "state": "in_review", "name self as reviewer": 422,
          "draft state": "draft", "changed": []}),
    # content: markup in typed text
    Case("xss: staff deliverable page", xss_staff_deliverable_page,
         {"raw": [], "escaped": ON_STAFF_PAGE}),
    Case("xss: client review page", xss_client_review_page,
         {"raw": [], "escaped": ON_CLIENT_PAGE}),
    Case("xss: requested changes and their classification", xss_requested_changes,
         {"staff page": {"raw": [], "escaped": ["classification", "reason"]},
          "client page": {"raw": [], "escaped": ["reason"]}}),
    Case("xss: dashboard, lists and client page", xss_lists,
         {"/": {"raw": [], "escaped": ["client", "project", "title"]},
          "/deliverables": {"raw": [], "escaped": ["client", "project", "title"]},
          "/clients": {"raw": [], "escaped": ["client"]},
          "/clients/<A>": {"raw": [], "escaped": ["client", "contact", "project"]}}),
    Case("xss: HTML emails", xss_emails, {"raw": [], "escaped": IN_EMAILS}),
    Case("xss: certificate PDF prints text literally", xss_certificate,
         {"printed literally": ON_CERTIFICATE, "entity-escaped twice": False}),
    Case("pdf: WeasyPrint fetch injection", weasyprint_fetch,
         {"attachments": [], "/etc/passwd inside": False, "fetched": [],
          "printed as text": True}),
    Case("csv: formula in a client name", csv_formula,
         {"client cell": '\'=HYPERLINK("http://evil.example","open me")'}),
    Case("sql: injection in list filters", injection_in_filters,
         {"/deliverables?client=": 200, "/deliverables?state=": 200, "/finance?start=": 422}),
    Case("input: oversized comment and conditions", oversized_text,
         {"comment": 422, "conditions": 422, "comments": 0, "decisions": 0}),
    Case("xss: reflected in re-shown forms and pages", xss_reflected,
         {"sign-in email": (401, "escaped"), "new client name": (422, "escaped"),
          "comment too long": (422, "escaped"), "changes too long": (422, "escaped"),
          "metrics dates": (422, "escaped"), "verify form": (200, "escaped"),
          "verify link": (200, "escaped")}),
    Case("url_for: query keys passed on as url_for() arguments", url_for_injection,
         {**{f"/finance?{q}": (200, "", "/finance/export.csv")
             for q in ("endpoint=x", "_method=POST", "_external=1", "client=")},
          **{f"/deliverables?{q}": (200, "", "/deliverables")
             for q in ("endpoint=x", "_method=POST", "_external=1", "client=")}}),
    Case("host header: emailed links ignore a forged Host", host_header_poisoning,
         {"resend": 302, "link hosts": ["portal.test"]}),
    Case("upload: SVG with a script is served sandboxed", svg_with_script,
         {"status": 200, "type": "image/svg+xml", "sandbox": True, "default-src": "'none'",
          "nosniff": "nosniff", "staff download": "attachment"}),
    Case("cookies: HttpOnly and SameSite=Lax", cookie_flags,
         {"staff session": (True, "Lax"), "remember me": (True, "Lax"),
          "client session": (True, "Lax")}),
    Case("input: control characters in names and titles", control_characters_in_names,
         {"client name with CR LF": 422, "contact name with a bidi override": 422,
          "project name with NUL": 422, "deliverable title with LF": 422, "changed": []}),
    Case("input: a NUL, which no database text can keep", unstorable_text,
         {"description with NUL": 422, "comment with NUL": 422, "search with NUL": 422,
          "changed": []}),
    # the API (tests/security_api.py)
    Case("api: no token, a malformed one, a session cookie instead", no_token,
         {"none": (401, PROBLEM), "malformed": (401, PROBLEM),
          "session cookie only": (401, PROBLEM), "contract stays public": 200}),
    Case("api: revoked, expired, and a deactivated owner's tokens", dead_tokens,
         {"revoked": (401, PROBLEM), "expired": (401, PROBLEM),
          "owner deactivated": (401, PROBLEM)}),
    Case("api: a read token writing", read_token_writes,
         {"create client": (403, PROBLEM), "cancel request": (403, PROBLEM), "reads": 200,
          "changed": []}),
    Case("api: a staff token on admin resources", staff_on_admin_resources,
         {"list": (403, PROBLEM), "read by id": (403, PROBLEM), "add": (403, PROBLEM),
          "switch off": (403, PROBLEM), "changed": []}),
    Case("api: a finance token changing work", finance_changes_work,
         {"edit": (403, PROBLEM), "upload": (403, PROBLEM), "cancel": (403, PROBLEM),
          "reads": 200, "changed": []}),
    Case("api: ids that name nothing, or more than a row id", ids_out_of_reach,
         {"absent deliverable": (404, PROBLEM), "id past a row": (404, PROBLEM),
          "write to an id past a row": (404, PROBLEM),
          "negative id": (404, PROBLEM), "page, id past a row": 404,
          "absent request's comments": (404, PROBLEM)}),
    Case("api: half a character in JSON text", half_characters,
         {"answer": (422, PROBLEM), "fields": ["contacts[0].name", "name"], "changed": []}),
    Case("api: oversized uploads", oversized_upload,
         {"upload": (413, PROBLEM), "verify": (413, PROBLEM), "changed": []}),
    Case("api: an Idempotency-Key replayed with another body", idempotency_key_reused,
         {"first": 201, "other body": (422, PROBLEM), "same again": (201, "true", True),
          "clients named Umbrella*": 1}),
    Case("email: a message that cannot be built fails visibly", unbuildable_email,
         {"status": "failed", "retries left": False, "on delivery problems": True}),
    Case("email: an SMTP server holding the message holds no request", smtp_holds_the_mail,
         {"decision": 303, "an email reached SMTP": True, "SMTP still held it": True,
          "jobs done after release": True, "receipt": "sent", "delivered": True}),
    # content: uploads
    Case("upload: file over MAX_UPLOAD_MB", _refused_upload(lambda: _pdf_of(MB + 1), "big.pdf"),
         {"status": 413, "versions": 1, "changed": []}),
    Case("upload: request body over the limit",
         _refused_upload(lambda: _pdf_of(2 * MB), "huge.pdf"),
         {"status": 413, "versions": 1, "changed": []}),
    Case("upload: PNG named .pdf", _refused_upload(sample_png, "photo.pdf"),
         {"status": 415, "versions": 1, "changed": []}),
    Case("upload: HTML named .pdf",
         _refused_upload(lambda: b"<html><script>alert(1)</script></html>", "page.pdf"),
         {"status": 415, "versions": 1, "changed": []}),
    Case("upload: ../ traversal in the name", traversal("../../etc/passwd.pdf"),
         {"status": 302, "stored name": "passwd.pdf", "new files outside the store": [],
          "store holds only hashes": True}),
    Case("upload: backslash traversal in the name", traversal("..\\..\\..\\evil.pdf"),
         {"status": 302, "stored name": "evil.pdf", "new files outside the store": [],
          "store holds only hashes": True}),
    Case("upload: an SVG logo carrying script", svg_logo_with_script,
         {"staff": 403, "admin": 302, "type": "image/svg+xml", "nosniff": "nosniff",
          "sandboxed": True, "script, handlers or external loads left": False,
          "the drawing kept": True}),
    Case("verify: a small PDF whose text takes minutes to extract", verify_text_bomb,
         {"no claim": (200, "unknown", True), "claims an id never issued": (200, "unknown", True),
          "changed": []}),
    Case("privacy: /verify by id shows no addresses, browsers or typed text",
         verify_id_shows_no_private_data,
         {"status": 200, "exists": True, "Genuine": False, "emails": [], "IPs": [],
          "browsers": [], "typed text": [], "raw": [],
          "escaped": ["client", "contact", "file", "project", "title"]}),
    # open redirects
    *(Case(f"redirect: next={target}", sign_in_with_next(target),
           {"status": 302, "location": "/", "signed in, location": "/"})
      for target in ("//evil.example", "https://evil.example", "/\\evil.example",
                     "/\\/evil.example", "http:evil.example")),
    Case("redirect: next=/clients is honoured (control)", sign_in_with_next("/clients"),
         {"status": 302, "location": "/clients", "signed in, location": "/clients"}),
    # SSRF through webhooks
    *(Case(f"ssrf: webhook to {url}", webhook_to(url), REFUSED_WEBHOOK)
      for url in ("http://127.0.0.1:8080/hook", "http://localhost/hook",
                  "http://169.254.169.254/latest/meta-data", "http://10.1.2.3/hook",
                  "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://0.0.0.0/hook",
                  "http://2130706433/hook", "http://100.64.0.1/hook",
                  "http://[64:ff9b::a9fe:a9fe]/hook", "file:///etc/passwd")),
    Case("webhook: a switched-off endpoint gets nothing", switched_off_webhook,
         {"registered": 302, "switched off": 302, "staff switches on": 403,
          "staff rotates": 403, "decision": 303, "deliveries": 0,
          "still off, same secret": (False, True)}),
    Case("webhook: a receiver trickling its answer is cut off by the deadline",
         trickling_webhook_receiver,
         {"cut off": True, "status": "pending", "attempts": 1,
          "error": "TimeoutError: no complete answer within 1 s in all",
          "claim released": True}),
    Case("webhook: no row lock is held while a receiver keeps the POST open",
         webhook_post_holds_no_lock,
         {"posted": True, "row locked and updated during the POST": "claimed",
          "second attempt": "pending", "jobs done": True, "posts": 1,
          "after": ("sent", 1, 204)}),
    # the audit trail
    Case("audit: an edited row", audit_tamper(
        "UPDATE audit_events SET actor_label = 'someone else' WHERE seq = 3"),
         {"before": 0, "after": 1,
          "names": (3, "was changed after it was written. 2 events before it are intact.")}),
    Case("audit: a deleted row", audit_tamper("DELETE FROM audit_events WHERE seq = 4"),
         {"before": 0, "after": 1,
          "names": (4, "event 4 is missing. 3 events before it are intact.")}),
    Case("database: unreachable, error pages still answer", database_gone,
         {"staff": (503, "5", True), "client": (503, "5", True), "htmx": (503, "5", True)}),
    Case("database: a writer holding its lock, pages still answer", pages_beside_a_writer,
         {"dashboard": 200, "deliverable page": 200, "deliverables list": 200,
          "client review page": 200, "sign-in page": 200, "the write under way shown": False}),
    Case("database: a write inside a GET or HEAD request", write_inside_a_read,
         {"GET": "WriteWhileReading", "HEAD": "WriteWhileReading",
          "after the GET, same thread": "written"}),
    # headers
    Case("headers: CSP, framing, nosniff, referrer", security_headers,
         {"staff page": STRICT_HEADERS, "client page": STRICT_HEADERS,
          "sign-in page": STRICT_HEADERS}),
    Case("headers: signed-in pages are private, no-store", signed_in_pages_not_cached,
         {"deliverable page": (200, True), "dashboard": (200, True),
          "staff download": (200, True), "finance CSV": (200, True),
          "sign-in page, signed out": (200, False)}),
    Case("headers: review pages are not cached", review_pages_not_cached,
         {"/review": (200, "no-store"), "/review?choice=approve": (200, "no-store"),
          "/review/files": (200, "no-store"), "a refused decision (422)": (422, "no-store"),
          "no grant (403)": (403, "no-store"), "/r/ of a revoked link (410)": (410, "no-store")}),
    Case("decision: posted after an 'any one of' request closed early",
         decision_after_an_early_close,
         {"first": 303, "late approval": 409, "says why": True, "late changes": 409,
          "changed": []}),
    # the production shape (tests/security_ops.py)
    Case("ops: /-/metrics needs the token, else loopback", metrics_need_the_token_or_loopback,
         {"no token set, loopback": 200, "no token set, relayed by a local proxy": 404,
          "no token set, remote": 404,
          "signed-in admin, remote": 404, "token set, none given, loopback": 404,
          "token set, wrong token": 404, "token set, as a query string": 404,
          "token set, right token, remote": 200}),
    Case("ops: a forged X-Forwarded-For buys no fresh allowance (hops=0)",
         forwarded_for_does_not_reset_rate_limits,
         {"failed sign-ins": [401, 401, 401, 429, 429], "metrics claiming loopback": 404}),
    Case("ops: a caller's X-Forwarded-Host and -Prefix are never believed",
         forwarded_host_and_prefix_are_not_believed,
         {"redirect": (302, False), "links on the sign-in page name the forged host": False}),
    Case("ops: probes show no personal data and set no cookie", probes_show_no_personal_data,
         {"healthz": (200, {"status": "ok"}), "readyz": (200, ["ok", "ok"]),
          "cookies": [None, None], "leaks": []}),
    # stored files (tests/security_storage.py)
    Case("storage: a key that is not a SHA-256 is refused before any lookup",
         storage_keys_other_than_hashes, {name: ["refused"] for name in BAD_STORAGE_KEYS}),
    Case("storage: S3 object names stay under the prefix", s3_object_names_stay_under_the_prefix,
         {"a hash": "tenant/signoff/b1/b7/"
                    "b1b72a217ce91796317e10f1a76701eeb6db3f95bee02f41258e9abce6456f71",
          **{name: "refused" for name in BAD_STORAGE_KEYS}}),
    Case("storage: a Range request comes after the access check",
         range_requests_after_the_access_check,
         {"A asks a range of B's file": 404, "A's own file, ten bytes": (206, 10),
          "past the end": (416, False), "nobody signed in": (302, True)}),
]


def test_catalogue_names_are_unique():
    assert len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_attack(case: Case, world: World) -> None:
    assert case.attack(world) == case.expected


# --- decisions recorded on a contact's behalf (staff, by phone or in a meeting) -------------

def _on_behalf(browser, approver, **extra: Any):
    """Staff's form for recording `approver`'s decision on their behalf, as the page sends it."""
    form = {"on_behalf_approver": str(approver.id), "sha256": approver.request.version.sha256,
            "choice": "approve", "channel": "phone", "note": "Said yes on the phone.",
            "given_at": utcnow().strftime("%Y-%m-%dT%H:%M"), **extra}
    return browser.post(f"/approvers/{approver.id}/on-behalf", form,
                        content_type="multipart/form-data")


def test_on_behalf_finance_cannot_record_a_decision(world: World) -> None:
    fiona = world.fiona
    before = world.snapshot()
    response = _on_behalf(fiona, world.a1)
    assert response.status_code == 403
    assert world.changed(before) == []


def test_on_behalf_not_for_an_approver_who_decided_or_whose_request_closed(
        world: World) -> None:
    assert decide(world.client_a, "request_changes", text="Wrong colours").status_code == 303
    before = world.snapshot()
    decided = _on_behalf(world.sam, world.a1)  # A1 asked for changes: the request closed
    closed = _on_behalf(world.sam, world.a2)   # and A2 was withdrawn with it
    assert (decided.status_code, "already decided" in text(decided)) == (409, True)
    assert (closed.status_code, "request is closed" in text(closed)) == (409, True)
    assert world.changed(before) == []


def test_on_behalf_evidence_is_not_served_to_a_client_link_or_anyone_signed_out(
        world: World) -> None:
    from portal.models import DecisionOnBehalf

    evidence = sample_pdf("Signed on paper")
    assert _on_behalf(world.sam, world.b1, evidence=(io.BytesIO(evidence), "scan.pdf")
                      ).status_code == 302
    row = db.session.scalars(select(DecisionOnBehalf)).one()
    url = f"/on-behalf/{row.id}/evidence"
    client_b = world.client_b  # holds B's link: the decision is theirs, the evidence is not
    for browser in (client_b, world.new_browser()):
        response = browser.get(url)
        assert where(response) == (302, "/login") and evidence not in response.data
    assert url not in text(client_b.get(client_b.review))
    staff = world.sam.get(url)
    assert (staff.status_code, staff.data) == (200, evidence)


# --- observers (CC): they look, and never decide -------------------------------------------

def _observer_of_a(world: World, may_comment: bool = False):
    """A third contact of client A kept informed of A's request, and a browser that opened
    the link from their email."""
    from portal.models import Contact
    from portal.workflow import observers

    contact = Contact(client_id=world.client_a_id, name="Olga Observer",
                      email="olga@client-a.example")
    db.session.add(contact)
    observer = observers.add_observer(world.a.open_request, contact, may_comment, world.staff,
                                      utcnow())
    db.session.commit()
    token = observers.issue_token(observer)
    browser = world.new_browser()
    opened = browser.get(f"/r/o/{token}")
    assert where(opened) == (303, f"/observe/{observer.public_id}")
    assert browser.get(f"/observe/{observer.public_id}").status_code == 200
    return observer, token, browser


def test_observer_cannot_decide(world: World) -> None:
    """Whatever URL an observer's browser posts a decision to, with their id or token,
    nothing is decided and nothing is written."""
    observer, token, browser = _observer_of_a(world)
    page = text(browser.get(f"/observe/{observer.public_id}"))
    assert 'value="approve"' not in page and "/decision" not in page
    before = world.snapshot()
    sha = world.a.current_version.sha256
    answers = {
        "review URL with the observer's id": browser.post(
            f"/review/{observer.public_id}/decision", {"choice": "approve", "sha256": sha}
        ).status_code,
        "observe URL": browser.post(f"/observe/{observer.public_id}/decision",
                                    {"choice": "approve", "sha256": sha}).status_code,
        "their token as an approver link": browser.get(f"/r/{token}").status_code,
        "an approver's URL with no approver grant": browser.post(
            f"/review/{world.a1.public_id}/decision", {"choice": "approve", "sha256": sha}
        ).status_code,
    }
    assert answers == {"review URL with the observer's id": 404, "observe URL": 404,
                       "their token as an approver link": 404,
                       "an approver's URL with no approver grant": 403}
    assert count(Decision) == 0
    assert world.changed(before) == []


def test_observer_token_does_not_verify_as_an_approver_token(world: World) -> None:
    from portal.models import Approver
    from portal.workflow import links, observers

    observer, token, _browser = _observer_of_a(world)
    approver_token = issue_token(world.a1)
    forged = forge_token({"a": observer.public_id, "g": observer.link_generation})
    assert links.check_token(token) is None
    assert observers.check_token(approver_token, utcnow()) is None
    assert observers.check_token(forged, utcnow()) is None  # the approvers' purpose
    assert db.session.scalar(select(Approver).where(
        Approver.public_id == observer.public_id)) is None
    fresh = world.new_browser()
    assert fresh.get(f"/r/{token}").status_code == 404
    assert fresh.get(f"/r/o/{approver_token}").status_code == 404
    assert fresh.get(f"/observe/{world.a1.public_id}").status_code == 404


def test_observer_without_may_comment_cannot_comment(world: World) -> None:
    observer, _token, browser = _observer_of_a(world, may_comment=False)
    before = world.snapshot()
    refused = browser.post(f"/observe/{observer.public_id}/comments",
                           {"body": "Let me in", "sha256": world.a.current_version.sha256})
    assert refused.status_code == 403
    assert count(Comment, Comment.author_contact_id == observer.contact_id) == 0
    assert world.changed(before) == []


def test_revoked_observer_link_is_dead(world: World) -> None:
    from portal.workflow import observers

    observer, token, browser = _observer_of_a(world, may_comment=True)
    observers.revoke_observer(world.staff, observer, utcnow())
    db.session.commit()
    before = world.snapshot()
    base = f"/observe/{observer.public_id}"
    sha = world.a.current_version.sha256
    answers = {
        "link": world.new_browser().get(f"/r/o/{token}").status_code,
        "page": browser.get(base).status_code,
        "file": browser.get(f"{base}/files/{world.a.current_version.id}").status_code,
        "comment": browser.post(f"{base}/comments", {"body": "Hi", "sha256": sha}).status_code,
        "viewed": browser.post(f"{base}/viewed", {"sha256": sha}).status_code,
    }
    assert answers == {"link": 410, "page": 410, "file": 410, "comment": 410, "viewed": 410}
    assert X["title"] not in text(browser.get(base))
    assert world.changed(before) == []


# --- delegation: handing a request over to a colleague ------------------------------------

def _handed_over_by_a1(world: World, *, confirm: bool = True):
    """A1 asks, over HTTP, to hand request A over to a colleague; staff confirm it unless
    told not to. Returns the delegation (re-read)."""
    from portal.models import Delegation

    asked = world.client_a.post(f"{world.client_a.review}/handover",
                                {"name": "Pat Colleague", "email": "pat@client-a.example",
                                 "note": X["note"]})
    assert asked.status_code == 303
    delegation = db.session.scalars(select(Delegation)).one()
    if confirm:
        assert world.sam.post(f"/delegations/{delegation.id}/confirm").status_code == 302
    db.session.refresh(delegation)
    return delegation


def test_delegator_link_cannot_decide_after_hand_over(world: World) -> None:
    delegation = _handed_over_by_a1(world)
    already_open = world.client_a
    before = world.snapshot()
    sha = world.a.current_version.sha256
    answers = {
        "open session, decision": decide(already_open).status_code,
        "open session, comment": already_open.post(f"{already_open.review}/comments",
                                                   {"body": "Still me"}).status_code,
        "open session, hand over again": already_open.post(
            f"{already_open.review}/handover",
            {"name": "Eve", "email": "eve@evil.example"}).status_code,
        "the old link": world.new_browser().get(f"/r/{world.token_a}").status_code,
        "the colleague's URL with the old grant": already_open.post(
            f"/review/{delegation.to_approver.public_id}/decision",
            {"choice": "approve", "sha256": sha}).status_code,
    }
    assert answers == {"open session, decision": 403, "open session, comment": 403,
                       "open session, hand over again": 403, "the old link": 410,
                       "the colleague's URL with the old grant": 403}
    assert count(Decision) == 0
    assert world.changed(before) == []


def test_delegate_link_cannot_act_for_the_delegator(world: World) -> None:
    delegation = _handed_over_by_a1(world)
    colleague = delegation.to_approver
    browser = world.new_browser()
    assert browser.get(f"/r/{issue_token(colleague)}").status_code == 303
    assert browser.get(browser.review).status_code == 200
    sha = world.a.current_version.sha256
    answers = {
        "the delegator's page": browser.get(f"/review/{world.a1.public_id}").status_code,
        "a decision as the delegator": browser.post(
            f"/review/{world.a1.public_id}/decision",
            {"choice": "approve", "sha256": sha}).status_code,
        "the other approver's page": browser.get(f"/review/{world.a2.public_id}").status_code,
        "client B's file": browser.get(
            f"/review/{world.b1.public_id}/files/{world.b.current_version.id}").status_code,
        "own decision": decide(browser).status_code,
        "a second decision": decide(browser, "request_changes", text="Again").status_code,
    }
    assert answers == {"the delegator's page": 403, "a decision as the delegator": 403,
                       "the other approver's page": 403, "client B's file": 403,
                       "own decision": 303, "a second decision": 409}
    assert [d.approver_id for d in db.session.scalars(select(Decision))] == [colleague.id]


def test_finance_cannot_confirm_a_hand_over(world: World) -> None:
    delegation = _handed_over_by_a1(world, confirm=False)
    before = world.snapshot()
    f = world.fiona
    answers = {
        "confirm": f.post(f"/delegations/{delegation.id}/confirm").status_code,
        "decline": f.post(f"/delegations/{delegation.id}/decline").status_code,
        "client setting": f.post(f"/clients/{world.client_a_id}/direct-handover",
                                 {"direct_handover": "1"}).status_code,
    }
    assert answers == {"confirm": 403, "decline": 403, "client setting": 403}
    assert world.changed(before) == []


def test_client_cannot_confirm_their_own_hand_over_without_the_setting(world: World) -> None:
    from portal.models import Approver

    delegation = _handed_over_by_a1(world, confirm=False)
    assert delegation.to_approver_id is None  # the setting is off: it waits for staff
    before = world.snapshot()
    client = world.client_a
    answers = {
        "confirm": where(client.post(f"/delegations/{delegation.id}/confirm")),
        "client setting": where(client.post(f"/clients/{world.client_a_id}/direct-handover",
                                            {"direct_handover": "1"})),
    }
    assert answers == {"confirm": TO_LOGIN, "client setting": TO_LOGIN}
    assert world.changed(before) == []
    assert count(Approver, Approver.contact.has(email="pat@client-a.example")) == 0
    assert count(OutboxMessage, OutboxMessage.to_addr == "pat@client-a.example") == 0


def test_languages_are_chosen_by_staff_and_each_person_for_themselves(world: World) -> None:
    """Finance and a client's browser cannot set a client's or a contact's language; a
    person's own language is theirs alone (the form names no one else)."""
    from portal.models import Contact, User

    before = world.snapshot()
    contact = world.a1.contact
    f, client = world.fiona, world.client_a
    forms = {
        "client default": (f"/clients/{world.client_a_id}/language", {"language": "de"}),
        "contact": (f"/contacts/{contact.id}", {"contact_name": "Renamed",
                                                "contact_email": contact.email or "",
                                                "language": "ru"}),
        "new contact": (f"/clients/{world.client_a_id}/contacts",
                        {"contact_name": "Extra", "language": "fr"}),
    }
    answers = {f"finance, {k}": f.post(url, data).status_code for k, (url, data) in forms.items()}
    answers |= {f"client, {k}": where(client.post(url, data)) for k, (url, data) in forms.items()}
    answers["client, own account"] = where(client.post("/account", {"language": "de"}))
    assert answers == {"finance, client default": 403, "finance, contact": 403,
                       "finance, new contact": 403, "client, client default": TO_LOGIN,
                       "client, contact": TO_LOGIN, "client, new contact": TO_LOGIN,
                       "client, own account": TO_LOGIN}
    assert world.changed(before) == []

    # Staff choose their own language only, whatever else the form carries.
    assert world.sam.post("/account", {"language": "es", "user_id": str(world.admin.id),
                                       "email": world.admin.email}).status_code == 302
    assert db.session.get(User, world.staff.id).language == "es"
    assert db.session.get(User, world.admin.id).language is None
    assert db.session.get(Contact, contact.id).language is None


def test_the_language_switch_acts_only_for_the_approver_whose_link_this_browser_holds(
        world: World) -> None:
    """A client's browser switches the language of its own approver only: not the other
    approver of the same request, not client B's; not without the CSRF token; and only to a
    shipped language (a payload is refused, shown escaped, and nothing is kept)."""
    from portal.models import Approver

    before = world.snapshot()
    a = world.client_a
    payload = X["note"]
    answers = {
        "A2's language": a.post(f"/review/{world.a2.public_id}/language",
                                {"language": "ru"}).status_code,
        "B's language": a.post(f"/review/{world.b1.public_id}/language",
                               {"language": "ru"}).status_code,
        "no CSRF token": raw(a, "POST", f"{a.review}/language",
                             data={"language": "ru"}).status_code,
        "a payload": a.post(f"{a.review}/language", {"language": payload}).status_code,
        "a stranger": world.new_browser().post(f"/review/{world.a1.public_id}/language",
                                               {"language": "ru"}).status_code,
    }
    assert answers == {"A2's language": 403, "B's language": 403, "no CSRF token": 400,
                       "a payload": 422, "a stranger": 403}
    refused = text(a.post(f"{a.review}/language", {"language": payload}))
    assert payload not in refused and str(escape(payload)) not in refused
    assert world.changed(before) == []
    # Its own choice is kept for its own approver, and nobody else's changes.
    assert a.post(f"{a.review}/language", {"language": "de"}).status_code == 303
    assert [db.session.get(Approver, x.id).language
            for x in (world.a1, world.a2, world.b1)] == ["de", None, None]


def test_translated_page_furniture_cannot_break_out_of_its_css_string() -> None:
    """The certificate's footer words come from the catalogues into a stylesheet
    (certificates/language.margin_css): a translation carrying quotes, braces, a backslash
    or url() stays one CSS string, so no rule and no fetch reaches the renderer."""
    import tinycss2

    from portal.certificates.language import _content

    tail = ' "; } @page { @top-left { content: url(file:///etc/passwd) } } \\'
    value = _content("Seite \x00" + tail, {"\x00": "counter(page)"})
    tokens = [t for t in tinycss2.parse_component_value_list(value)
              if t.type not in ("whitespace", "comment")]
    assert [t.type for t in tokens] == ["string", "function", "string"]
    assert [tokens[0].value, tokens[1].name, tokens[2].value] == ["Seite ", "counter", tail]


@pytest.fixture
def real_mail(app_config: dict[str, Any], smtp_sink) -> Any:
    """Request before `app`: the embedded jobs mail to the real SMTP sink."""
    app_config.update(REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_sink.port)
    return smtp_sink


def test_names_worked_out_in_the_readers_language_are_escaped_in_emails(
        real_mail, app, browser, staff, make_client, make_project, make_deliverable,
        make_browser) -> None:
    """Words an email works out in its reader's language ("approved by <name>") carry names
    people typed (a colleague named in a hand-over becomes a contact): they are escaped like
    any other text, never markup (flask_babel's LazyString would have been printed raw)."""
    from tests.test_policies import LINK, _deliver, _ready, _text

    d = _ready(make_client, make_project, make_deliverable, approvers=2)
    jane, john = d.project.client.contacts
    jane.name = X["contact"]
    db.session.commit()
    browser.login(staff.email)
    assert _deliver(browser, d, "any_one", changes_end_request="1").status_code == 302
    [invitation] = real_mail.to(jane.email)
    client = make_browser()
    assert client.get(LINK.search(_text(invitation)).group(1)).status_code == 303
    client.get(client.review)
    assert client.post(f"{client.review}/decision", {"choice": "approve"}).status_code == 303
    [told] = [m for m in real_mail.to(john.email) if m["Subject"].startswith("No decision")]
    html = told.get_body(preferencelist=("html",)).get_content()
    assert X["contact"] not in html
    assert str(escape(X["contact"])) in html


def test_a_direct_hand_over_cannot_get_round_the_emailed_code(world: World) -> None:
    """With direct hand-over allowed, a leaked link could name an address of its holder's
    choosing and so receive the one-time code itself: on a request that asks for the code
    the hand-over waits for the team instead."""
    from portal.models import Approver, Client, ReviewRequest

    db.session.get(Client, world.client_a_id).direct_handover = True
    db.session.get(ReviewRequest, world.a1.request_id).require_code = True
    db.session.commit()
    delegation = _handed_over_by_a1(world, confirm=False)
    assert delegation.to_approver_id is None and delegation.pending
    assert count(Approver, Approver.contact.has(email="pat@client-a.example")) == 0
    assert count(OutboxMessage, OutboxMessage.to_addr == "pat@client-a.example") == 0
    # Without the code the client's setting lets it through at once (the rule is not "never").
    db.session.get(ReviewRequest, world.a2.request_id).require_code = False
    db.session.commit()
    asked = world.client_a2.post(f"{world.client_a2.review}/handover",
                                 {"name": "Quinn Colleague", "email": "quinn@client-a.example",
                                  "note": ""})
    assert asked.status_code == 303
    assert count(Approver, Approver.contact.has(email="quinn@client-a.example")) == 1
