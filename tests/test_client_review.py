"""The client's side over HTTP: magic links, the review page, decisions and comments."""
from __future__ import annotations

import contextvars
import http.cookiejar
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from datetime import timedelta

import pytest
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select
from werkzeug.serving import make_server

from portal.extensions import db
from portal.local_time import format_long_day
from portal.models import (
    ApproverStatus,
    AuditEvent,
    Comment,
    Decision,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    RequestStatus,
    utcnow,
)
from portal.workflow import links, reminders
from portal.workflow.links import SALT, LinkState, issue_token
from tests.conftest import SECRET, SHOWN_VERSION, forge_token, run_out_link, token_payload

S = DeliverableState
LINK = re.compile(r"http://portal\.test/r/([A-Za-z0-9_\-.]+)")
OLD_KEY = "an-older-secret-key-rotated-out-of-service-0001"
XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"


# --- helpers ----------------------------------------------------------------------------

def _raw(browser, method: str, url: str, **kwargs):
    """A request without the CSRF token, in a fresh context like Browser's own."""
    db.session.commit()
    response = contextvars.Context().run(browser.client.open, url, method=method, **kwargs)
    db.session.expire_all()
    return response


def _open(browser, token: str):
    """Open a magic link; return the /review page it leads to."""
    response = browser.get(f"/r/{token}")
    assert response.status_code == 303, response.get_data(as_text=True)
    return browser.get(browser.review)


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


def _newest_link_to(address: str) -> str:
    message = db.session.scalar(
        select(OutboxMessage).where(OutboxMessage.to_addr == address)
        .order_by(OutboxMessage.id.desc()).limit(1))
    assert message is not None, f"no email to {address}"
    match = LINK.search(message.body_text)
    assert match, message.body_text
    return match.group(1)


def _decide(browser, choice: str = "approve", **form):
    return browser.post(f"{browser.review}/decision", {"choice": choice, **form})


def _staff_browser(make_browser, staff):
    sam = make_browser()
    sam.login(staff.email)
    return sam


# --- 1. opening a link ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_opening_a_link_redirects_without_the_token_and_writes_nothing(
        make_deliverable, browser, method):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    events, emails = _count(AuditEvent), _count(OutboxMessage)
    generation = approver.link_generation

    response = _raw(browser, method, f"/r/{token}")

    assert response.status_code == 303
    location = response.headers["Location"]
    assert urllib.parse.urlsplit(location).path == f"/review/{approver.public_id}"
    assert token not in location and "/r/" not in location
    assert _count(AuditEvent) == events and _count(OutboxMessage) == emails
    db.session.refresh(approver)
    assert approver.last_viewed_at is None
    assert approver.link_generation == generation
    assert approver.status == ApproverStatus.INVITED
    # The grant it added is real: the page opens without the token.
    assert browser.get(f"/review/{approver.public_id}").status_code == 200


def test_review_page_shows_the_request_and_only_the_page_records_the_view(
        make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    version, request = d.current_version, d.open_request
    events = _count(AuditEvent)

    page = _open(browser, issue_token(approver))

    assert page.status_code == 200
    assert page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    for text in (d.project.client.name, d.project.name, d.title, d.description,
                 f"version {version.number}", "First cut",
                 format_long_day(request.due_date), "Waiting for your decision"):
        assert text in html, text
    assert f'hx-post="/review/{approver.public_id}/viewed"' in html and 'hx-trigger="load"' in html
    # Rendering the page is not a view yet: scanners and previews render pages too.
    db.session.refresh(approver)
    assert approver.last_viewed_at is None and _count(AuditEvent) == events

    assert browser.post(f"{browser.review}/viewed").status_code == 204
    db.session.refresh(approver)
    first_seen = approver.last_viewed_at
    assert first_seen is not None
    viewed = select(AuditEvent).where(AuditEvent.verb == "request.viewed")
    [event] = db.session.scalars(viewed).all()
    assert event.actor == f"contact:{approver.contact_id}"
    assert event.deliverable_id == d.id

    assert browser.post(f"{browser.review}/viewed").status_code == 204
    assert len(db.session.scalars(viewed).all()) == 1
    db.session.refresh(approver)
    assert approver.last_viewed_at >= first_seen


# --- 2. tokens --------------------------------------------------------------------------

def _tampered(token: str) -> str:
    payload, timestamp, signature = token.rsplit(".", 2)
    first = "B" if signature[0] == "A" else "A"  # the first character always carries 6 bits
    return f"{payload}.{timestamp}.{first}{signature[1:]}"


def test_tampered_foreign_and_unknown_tokens_are_404(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    good = issue_token(approver)
    assert links.check_token(good) is not None
    bad = {
        "tampered": _tampered(good),
        "other purpose": forge_token(token_payload(approver), salt="signoff.password-reset.v1"),
        "other key": forge_token(token_payload(approver),
                                 key="a-completely-different-secret-key-123"),
        "unknown approver": forge_token({"a": "no-such-public-id", "g": 1}),
        "garbage": "not-a-token",
    }
    for what, token in bad.items():
        assert links.check_token(token) is None, what
        response = browser.get(f"/r/{token}")
        assert response.status_code == 404, what
        # No access was granted: the approver's page asks for the emailed link instead.
        page = browser.get(f"/review/{approver.public_id}")
        assert page.status_code == 403, what
        assert "Open the link from your email" in page.get_data(as_text=True), what
    assert browser.get(f"/r/{good}").status_code == 303


def test_link_expiry_boundary_is_the_column_staff_and_the_sweep_see(make_deliverable):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    check = links.check_token(token)
    assert check is not None and check.approver.id == approver.id
    assert check.state == LinkState.VALID
    end = approver.link_expires_at
    assert end - approver.invited_at == timedelta(days=d.open_request.link_ttl_days)
    assert links.check_token(token, now=end - timedelta(seconds=1)).state == LinkState.VALID
    assert links.check_token(token, now=end + timedelta(seconds=1)).state == LinkState.EXPIRED


def test_a_link_lives_as_long_as_its_newest_email_says(make_deliverable):
    """A token's own age decides nothing: a reminder renews every link of its generation,
    and a run-out link is expired however young its token."""
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    ttl = timedelta(days=d.open_request.link_ttl_days)
    token = issue_token(approver)
    reminders.remind(approver, utcnow() + ttl - timedelta(days=1))
    db.session.commit()
    later = utcnow() + ttl + timedelta(days=1)
    assert links.check_token(token, now=later).state == LinkState.VALID
    run_out_link(approver)
    assert links.check_token(issue_token(approver)).state == LinkState.EXPIRED


def test_expired_link_offers_a_fresh_one_sent_to_the_address_on_file(
        make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    contact = approver.contact
    old = issue_token(approver)
    run_out_link(approver)
    assert links.check_token(old).state == LinkState.EXPIRED

    client = make_browser()
    page = _open(client, old)
    html = page.get_data(as_text=True)
    assert page.status_code == 410
    assert "This link has expired" in html and "Send me a new link" in html
    assert f'action="/review/{approver.public_id}/renew"' in html
    # An expired link decides nothing.
    assert _decide(client).status_code == 403
    assert _count(Decision) == 0

    to_contact = _count(OutboxMessage, OutboxMessage.to_addr == contact.email)
    to_owner = _count(OutboxMessage, OutboxMessage.to_addr == staff.email)
    response = client.post(f"{client.review}/renew", {"email": "attacker@evil.example"})
    assert response.status_code == 200
    assert "Check your email" in response.get_data(as_text=True)
    assert _count(OutboxMessage, OutboxMessage.to_addr == contact.email) == to_contact + 1
    assert _count(OutboxMessage, OutboxMessage.to_addr == staff.email) == to_owner + 1
    assert _count(OutboxMessage, OutboxMessage.to_addr == "attacker@evil.example") == 0

    fresh = _newest_link_to(contact.email)
    assert links.check_token(fresh).state == LinkState.VALID
    # The lifetime belongs to the approver's link, not to one token: the old one lives again.
    assert links.check_token(old).state == LinkState.VALID
    db.session.refresh(approver)
    assert approver.link_expires_at > utcnow() + timedelta(days=13)
    page = _open(make_browser(), fresh)
    assert page.status_code == 200
    assert "Waiting for your decision" in page.get_data(as_text=True)


# --- 3. revocation ----------------------------------------------------------------------

def _assert_gone(browser, token: str, approver) -> None:
    response = browser.get(f"/r/{token}")
    assert response.status_code == 410
    assert "no longer works" in response.get_data(as_text=True)
    assert response.headers["Cache-Control"] == "no-store"
    # and no grant was added: the page asks for the emailed link
    assert browser.get(f"/review/{approver.public_id}").status_code == 403


def test_resend_kills_the_old_link_and_the_new_one_works(
        make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    old = issue_token(approver)
    assert _open(make_browser(), old).status_code == 200

    response = _staff_browser(make_browser, staff).post(f"/approvers/{approver.id}/resend")
    assert response.status_code == 302

    _assert_gone(make_browser(), old, approver)
    new = _newest_link_to(approver.contact.email)
    assert new != old
    page = _open(make_browser(), new)
    assert page.status_code == 200
    assert "Waiting for your decision" in page.get_data(as_text=True)


def test_revoke_kills_the_link_and_an_open_session(make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    already_open = make_browser()
    assert _open(already_open, token).status_code == 200

    response = _staff_browser(make_browser, staff).post(f"/approvers/{approver.id}/revoke")
    assert response.status_code == 302

    _assert_gone(make_browser(), token, approver)
    assert _decide(already_open).status_code in (403, 410)
    assert already_open.post(f"{already_open.review}/comments",
                             {"body": "still here?"}).status_code in (403, 410)
    response = already_open.get(already_open.review)
    assert response.status_code == 410
    assert "no longer works" in response.get_data(as_text=True)
    assert _count(Decision) == 0 and _count(Comment) == 0


def test_cancelling_the_request_kills_the_link(make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    request = d.open_request
    token = issue_token(request.approvers[0])
    assert _open(make_browser(), token).status_code == 200

    response = _staff_browser(make_browser, staff).post(f"/requests/{request.id}/cancel")
    assert response.status_code == 302
    db.session.refresh(request)
    assert request.status == RequestStatus.CANCELLED

    _assert_gone(make_browser(), token, request.approvers[0])


def test_changing_the_contacts_email_kills_the_link(make_deliverable, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    contact = approver.contact
    token = issue_token(approver)
    sam = _staff_browser(make_browser, staff)

    # A new name alone changes nobody's access.
    response = sam.post(f"/contacts/{contact.id}",
                        {"contact_name": "Renamed Person", "contact_email": contact.email})
    assert response.status_code == 302
    assert _open(make_browser(), token).status_code == 200

    response = sam.post(f"/contacts/{contact.id}", {"contact_name": "Renamed Person",
                                                    "contact_email": "new@elsewhere.example"})
    assert response.status_code == 302
    db.session.refresh(contact)
    assert contact.email == "new@elsewhere.example"

    _assert_gone(make_browser(), token, approver)


# --- 4. key rotation --------------------------------------------------------------------

@pytest.fixture
def old_key_still_accepted(app_config):
    app_config["SECRET_KEY_FALLBACKS"] = [OLD_KEY]


def test_link_signed_with_a_rotated_key_works_while_it_is_a_fallback(
        old_key_still_accepted, app, make_deliverable, browser):
    assert app.config["SECRET_KEY_FALLBACKS"] == [OLD_KEY]
    approver = make_deliverable(S.DELIVERED).open_request.approvers[0]
    page = _open(browser, forge_token(token_payload(approver), key=OLD_KEY))
    assert page.status_code == 200
    assert "Waiting for your decision" in page.get_data(as_text=True)
    # New links are signed with the current key, not the fallback.
    URLSafeTimedSerializer(SECRET, salt=SALT).loads(issue_token(approver))


def test_link_signed_with_a_retired_key_is_404(app, make_deliverable, browser):
    assert not app.config.get("SECRET_KEY_FALLBACKS")
    approver = make_deliverable(S.DELIVERED).open_request.approvers[0]
    assert browser.get(f"/r/{forge_token(token_payload(approver), key=OLD_KEY)}").status_code == 404
    assert browser.get(f"/review/{approver.public_id}").status_code == 403


# --- 5. scope ---------------------------------------------------------------------------

def test_a_link_reaches_only_its_own_approver(make_deliverable, make_browser):
    a = make_deliverable(S.DELIVERED)
    b = make_deliverable(S.DELIVERED)
    assert a.project.client_id != b.project.client_id
    mine, theirs = a.open_request.approvers[0], b.open_request.approvers[0]
    a_request_id, b_request_id = mine.request_id, theirs.request_id
    b_version = b.current_version

    client_a = make_browser()
    page = _open(client_a, issue_token(mine))
    assert page.status_code == 200
    assert b.project.client.name not in page.get_data(as_text=True)
    assert client_a.get(f"{client_a.review}/files/{a.current_version.id}").status_code == 200
    assert client_a.get(f"{client_a.review}/files/{b_version.id}").status_code == 404
    assert client_a.get(f"{client_a.review}/files/{b_version.id}?inline=1").status_code == 404

    # Extra fields naming B's rows are ignored: only A's approver is touched.
    sneaky = {"approver_id": theirs.id, "request_id": b_request_id,
              "a": theirs.public_id}
    assert client_a.post(f"{client_a.review}/comments",
                         {"body": "From A", **sneaky}).status_code == 303
    assert client_a.post(f"{client_a.review}/viewed", sneaky).status_code == 204
    assert _decide(client_a, **sneaky).status_code == 303

    db.session.refresh(theirs)
    assert theirs.status == ApproverStatus.INVITED and theirs.decision is None
    assert theirs.last_viewed_at is None
    assert _count(Comment, Comment.request_id == b_request_id) == 0
    db.session.refresh(b)
    assert b.state == S.DELIVERED and a.state == S.APPROVED
    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.approver_id == mine.id
    [comment] = db.session.scalars(select(Comment)).all()
    assert comment.request_id == a_request_id
    assert comment.author_contact_id == mine.contact_id

    # A client session is not a staff sign-in.
    for url in ("/", "/clients", f"/deliverables/{a.id}"):
        response = client_a.get(url)
        assert response.status_code == 302, url
        assert "/login" in response.headers["Location"], url


# --- 6. decisions -----------------------------------------------------------------------

def test_approve_records_who_what_and_which_file(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    version = d.current_version
    _open(browser, issue_token(approver))

    response = browser.post(f"{browser.review}/decision", {"choice": "approve"},
                            headers={"User-Agent": "TestBrowser/1.0 (client review)"})
    assert response.status_code == 303
    assert urllib.parse.urlsplit(response.headers["Location"]).path == browser.review

    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.approver_id == approver.id
    assert decision.outcome == Outcome.APPROVED
    assert decision.version_id == version.id
    assert decision.version_sha256 == version.sha256 and len(decision.version_sha256) == 64
    assert decision.ip == "127.0.0.1"
    assert decision.user_agent == "TestBrowser/1.0 (client review)"
    assert _count(AuditEvent, AuditEvent.verb == "decision.approved") == 1
    db.session.refresh(d)
    assert d.state == S.APPROVED and version.locked_at is not None

    page = browser.get(browser.review).get_data(as_text=True)
    assert "Approved by everyone" in page and "Approve version" not in page

    again = _decide(browser, "request_changes", text="Changed my mind")
    assert again.status_code == 409
    assert _count(Decision) == 1
    db.session.refresh(approver)
    assert approver.status == ApproverStatus.APPROVED


@pytest.mark.parametrize(("form", "message"), [
    ({"choice": "approve_with_conditions", "text": "  "},
     "Write the conditions of your approval."),
    ({"choice": "request_changes", "text": "  "}, "Write what should change"),
    ({"choice": "reject", "text": "Wrong colours"}, "Choose approve"),
    ({"choice": "approve_forever"}, "Choose approve"),
], ids=["conditions-without-text", "changes-without-what", "old-reject-choice",
        "unknown-choice"])
def test_incomplete_decisions_are_422_with_an_inline_error(make_deliverable, browser,
                                                           form, message):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    _open(browser, issue_token(approver))
    events = _count(AuditEvent)

    response = browser.post(f"{browser.review}/decision", form)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<p class="error" role="alert">[^<]*' + re.escape(message), html), html
    assert response.headers["Cache-Control"] == "no-store"

    fragment = browser.htmx_post(f"{browser.review}/decision", form)
    assert fragment.status_code == 422
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="decision-panel"')
    assert message in fragment.get_data(as_text=True)

    assert _count(Decision) == 0 and _count(AuditEvent) == events
    db.session.refresh(approver)
    assert approver.status == ApproverStatus.INVITED
    db.session.refresh(d)
    assert d.state == S.DELIVERED


def test_a_decision_refused_part_way_leaves_no_decision_behind(make_deliverable, browser):
    """All or nothing: when a later step of recording a decision is refused, the Decision
    row goes too. Here the last step (locking the approved version) is refused because the
    version was locked behind the workflow's back."""
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    _open(browser, issue_token(approver))
    d.current_version.locked_at = utcnow()
    db.session.commit()

    response = _decide(browser)
    assert response.status_code == 409
    assert "locked" in response.get_data(as_text=True)
    db.session.refresh(approver)
    assert approver.status == ApproverStatus.INVITED
    assert _count(AuditEvent, AuditEvent.verb == "decision.approved") == 0
    assert _count(Decision) == 0  # not a decision without its audit event and status


def test_sequential_second_approver_waits_for_the_first(make_deliverable, make_browser):
    d = make_deliverable(S.DELIVERED, policy=Policy.SEQUENTIAL, approvers=2)
    first, second = d.open_request.approvers
    assert second.status == ApproverStatus.QUEUED
    assert _count(OutboxMessage, OutboxMessage.to_addr == second.contact.email) == 0

    second_client = make_browser()
    page = _open(second_client, issue_token(second))
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f"Waiting for {first.contact.name} to decide first" in html
    assert "Approve version 1 of" not in second_client.get(
        f"{second_client.review}?choice=approve").get_data(as_text=True)
    assert _decide(second_client).status_code == 409
    assert _count(Decision) == 0

    first_client = make_browser()
    _open(first_client, issue_token(first))
    assert _decide(first_client).status_code == 303
    db.session.refresh(second)
    assert second.status == ApproverStatus.INVITED
    db.session.refresh(d)
    assert d.state == S.DELIVERED and d.current_version.locked_at is None

    invited = make_browser()
    page = _open(invited, _newest_link_to(second.contact.email))
    assert "Waiting for your decision" in page.get_data(as_text=True)
    assert _decide(invited).status_code == 303

    db.session.refresh(d)
    assert d.state == S.APPROVED
    assert d.current_version.locked_at is not None
    assert sorted(x.approver_id for x in db.session.scalars(select(Decision))) == \
        sorted([first.id, second.id])


def test_parallel_rejection_ends_the_request_for_everyone(make_deliverable, make_browser):
    d = make_deliverable(S.DELIVERED, approvers=2)
    first, second = d.open_request.approvers
    first_client, second_client = make_browser(), make_browser()
    _open(first_client, issue_token(first))
    _open(second_client, issue_token(second))

    response = _decide(first_client, "request_changes", text="Off brand")
    assert response.status_code == 303

    db.session.refresh(d)
    assert d.state == S.CHANGES_REQUESTED
    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.outcome == Outcome.REJECTED and decision.text == "Off brand"
    assert decision.scope is None and decision.classified_at is None  # staff's call, later

    page = second_client.get(second_client.review)
    assert page.status_code == 200
    assert "Changes requested" in page.get_data(as_text=True)
    assert _decide(second_client).status_code == 409
    assert _count(Decision) == 1
    db.session.refresh(second)
    assert second.status == ApproverStatus.WITHDRAWN
    assert d.current_version.locked_at is None


# --- 7. concurrency ---------------------------------------------------------------------

class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


@pytest.fixture
def generous_client_limit(app_config):
    app_config["CLIENT_RATE_LIMIT"] = "1000 per minute"


def test_twenty_concurrent_approvals_record_exactly_one(generous_client_limit, app,
                                                        make_deliverable):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    token = issue_token(approver)
    db.session.commit()

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar),
                                             _NoRedirect())
        with pytest.raises(urllib.error.HTTPError) as redirect:
            opener.open(f"{base}/r/{token}", timeout=10)
        assert redirect.value.code == 303
        page_path = urllib.parse.urlsplit(redirect.value.headers["Location"]).path
        with opener.open(f"{base}{page_path}", timeout=10) as page:
            html = page.read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
        shown = SHOWN_VERSION.search(html).group(1)
        cookie = "; ".join(f"{c.name}={c.value}" for c in jar)
        assert "session=" in cookie

        body = urllib.parse.urlencode(
            {"choice": "approve", "csrf_token": csrf, "sha256": shown}).encode()
        barrier = threading.Barrier(20)
        statuses: list[int | str] = []
        lock = threading.Lock()

        def approve() -> None:
            request = urllib.request.Request(
                f"{base}{page_path}/decision", data=body, method="POST",
                headers={"Cookie": cookie,
                         "Content-Type": "application/x-www-form-urlencoded"})
            no_redirects = urllib.request.build_opener(_NoRedirect())
            try:
                barrier.wait(timeout=10)
                with no_redirects.open(request, timeout=30) as response:
                    status: int | str = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except Exception as exc:  # a dropped connection must show up, not hang
                status = repr(exc)
            with lock:
                statuses.append(status)

        workers = [threading.Thread(target=approve) for _ in range(20)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert not any(worker.is_alive() for worker in workers)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)

    assert len(statuses) == 20
    assert 500 not in statuses
    assert statuses.count(303) == 1, statuses
    assert statuses.count(409) == 19, statuses
    db.session.expire_all()
    [decision] = db.session.scalars(select(Decision)).all()
    assert decision.approver_id == approver.id
    assert _count(AuditEvent, AuditEvent.verb == "decision.approved") == 1
    assert _count(AuditEvent, AuditEvent.verb == "request.approved") == 1
    db.session.refresh(d)
    assert d.state == S.APPROVED


# --- 8. CSRF ----------------------------------------------------------------------------

def test_decision_without_csrf_token_is_400_and_records_nothing(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    assert _open(browser, issue_token(approver)).status_code == 200

    response = _raw(browser, "POST", f"{browser.review}/decision",
                    data={"choice": "approve"})
    assert response.status_code == 400
    response = _raw(browser, "POST", f"{browser.review}/decision",
                    data={"choice": "approve", "csrf_token": "forged"})
    assert response.status_code == 400
    assert _count(Decision) == 0
    db.session.refresh(approver)
    assert approver.status == ApproverStatus.INVITED
    db.session.refresh(d)
    assert d.state == S.DELIVERED


# --- 9. XSS -----------------------------------------------------------------------------

def test_comment_markup_is_stored_verbatim_and_shown_escaped(
        make_deliverable, browser, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    _open(browser, issue_token(d.open_request.approvers[0]))
    assert browser.post(f"{browser.review}/comments", {"body": XSS}).status_code == 303
    [comment] = db.session.scalars(select(Comment)).all()
    assert comment.body == XSS

    client_page = browser.get(browser.review).get_data(as_text=True)
    staff_page = _staff_browser(make_browser, staff).get(f"/deliverables/{d.id}")
    assert staff_page.status_code == 200
    for html in (client_page, staff_page.get_data(as_text=True)):
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<script>alert" not in html
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(2)&gt;" in html


# --- 10. htmx ---------------------------------------------------------------------------

def test_htmx_comment_returns_only_the_new_comment(make_deliverable, browser):
    """With htmx the answer is the new comment (added to the end of the thread) and, out of
    band, the count and the newest id the form names; without, the page comes back."""
    d = make_deliverable(S.DELIVERED)
    _open(browser, issue_token(d.open_request.approvers[0]))

    response = browser.htmx_post(f"{browser.review}/comments",
                                 {"body": "Love the new header", "after": "0"})
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    [first] = db.session.scalars(select(Comment)).all()
    assert html.lstrip().startswith(f'<li class="comment from-client" id="comment-{first.id}"')
    assert "Love the new header" in html and "<html" not in html
    assert 'id="comments"' not in html and "decision-panel" not in html
    assert re.search(r'id="comment-count" hx-swap-oob="true">\(1\)<', html)
    assert f'id="comment-after" value="{first.id}" hx-swap-oob="true"' in html
    assert '<li id="thread-empty" hx-swap-oob="delete">' in html  # "No comments yet" goes
    assert "HX-Request" in response.headers["Vary"]

    response = browser.post(f"{browser.review}/comments", {"body": "Second thought on the footer"})
    assert response.status_code == 303
    assert urllib.parse.urlsplit(response.headers["Location"]).path == browser.review
    page = browser.get(browser.review).get_data(as_text=True)
    assert "<html" in page
    assert "Love the new header" in page and "Second thought on the footer" in page
    assert re.search(r'id="comment-count">\(2\)<', page)
    assert [c.body for c in db.session.scalars(select(Comment).order_by(Comment.id))] == \
        ["Love the new header", "Second thought on the footer"]


def test_htmx_choice_returns_the_decision_panel(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    _open(browser, issue_token(d.open_request.approvers[0]))

    fragment = browser.get(f"{browser.review}?choice=approve", headers={"HX-Request": "true"})
    full = browser.get(f"{browser.review}?choice=approve")
    for response in (fragment, full):
        assert response.status_code == 200
        assert "HX-Request" in response.headers["Vary"]
        assert f"Approve version 1 of {d.title}</button>" in response.get_data(as_text=True)
    fragment_html, full_html = fragment.get_data(as_text=True), full.get_data(as_text=True)
    assert fragment_html.lstrip().startswith('<section id="decision-panel"')
    assert "<html" not in fragment_html and 'id="comments"' not in fragment_html
    assert "<html" in full_html and '<section id="decision-panel"' in full_html
    assert 'id="comments"' in full_html


@pytest.mark.parametrize(("body", "message"), [
    ("", "Write a comment first."),
    ("   \n ", "Write a comment first."),
    ("x" * 5001, "at most 5000 characters"),
], ids=["empty", "blank", "too-long"])
def test_invalid_comment_is_422_with_an_inline_error(make_deliverable, browser, body, message):
    d = make_deliverable(S.DELIVERED)
    _open(browser, issue_token(d.open_request.approvers[0]))
    events = _count(AuditEvent)

    response = browser.htmx_post(f"{browser.review}/comments", {"body": body})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    # Only the message, in its place beside the form (which keeps what was typed).
    assert html.lstrip().startswith('<p id="comment-error"') and "<html" not in html
    assert response.headers["HX-Retarget"] == "#comment-error"
    assert response.headers["HX-Reswap"] == "outerHTML"
    assert re.search(r'role="alert">[^<]*' + re.escape(message), html), html
    page = browser.post(f"{browser.review}/comments", {"body": body})
    assert page.status_code == 422
    assert re.search(r'role="alert">[^<]*' + re.escape(message), page.get_data(as_text=True))
    assert _count(Comment) == 0 and _count(AuditEvent) == events


def test_a_comment_of_exactly_5000_characters_is_accepted(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    _open(browser, issue_token(d.open_request.approvers[0]))
    assert browser.htmx_post(f"{browser.review}/comments", {"body": "y" * 5000}).status_code == 200
    assert len(db.session.scalar(select(Comment.body))) == 5000


# --- 11. staff replies and internal notes -----------------------------------------------

def test_staff_replies_reach_the_client_and_internal_notes_do_not(
        make_deliverable, browser, make_browser, staff):
    d = make_deliverable(S.DELIVERED)
    request = d.open_request
    on_screen = _open(browser, issue_token(request.approvers[0])).get_data(as_text=True)
    after = re.search(r'name="after" id="comment-after" value="(\d+)"', on_screen).group(1)
    sam = _staff_browser(make_browser, staff)

    assert sam.post(f"/requests/{request.id}/comments",
                    {"body": "We will fix the logo today"}).status_code == 302
    assert sam.post(f"/requests/{request.id}/comments",
                    {"body": "Client is difficult, budget is tight", "internal": "1"}
                    ).status_code == 302
    internal = db.session.scalar(select(Comment).where(Comment.internal.is_(True)))
    assert internal is not None and internal.body == "Client is difficult, budget is tight"

    client_page = browser.get(browser.review).get_data(as_text=True)
    assert "We will fix the logo today" in client_page and staff.name in client_page
    assert "budget is tight" not in client_page
    # The page that posts was opened before the reply: its answer brings the reply too.
    fragment = browser.htmx_post(f"{browser.review}/comments",
                                 {"body": "Thanks!", "after": after}).get_data(as_text=True)
    assert "We will fix the logo today" in fragment and "budget is tight" not in fragment
    assert fragment.index("We will fix the logo today") < fragment.index("Thanks!")
    assert re.search(r'id="comment-count" hx-swap-oob="true">\(2\)<', fragment)

    staff_page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    for text in ("We will fix the logo today", "Client is difficult, budget is tight",
                 "internal note", "Thanks!"):
        assert text in staff_page, text


# --- 12. headers ------------------------------------------------------------------------

def _csp(response) -> dict[str, str]:
    directives = (d.strip() for d in response.headers["Content-Security-Policy"].split(";"))
    return {d.split(" ", 1)[0]: d.partition(" ")[2] for d in directives if d}


def test_review_page_security_headers(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    page = _open(browser, issue_token(d.open_request.approvers[0]))
    assert page.status_code == 200
    csp = _csp(page)
    assert csp["script-src"] == "'self'"
    assert "'unsafe-inline'" not in page.headers["Content-Security-Policy"]
    assert csp["frame-ancestors"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "same-origin"
    assert page.headers["Cache-Control"] == "no-store"


def test_review_file_inline_and_as_download(make_deliverable, browser):
    d = make_deliverable(S.DELIVERED)
    version = d.current_version
    _open(browser, issue_token(d.open_request.approvers[0]))

    inline = browser.get(f"{browser.review}/files/{version.id}?inline=1")
    assert inline.status_code == 200
    assert inline.headers["Content-Disposition"].startswith("inline")
    assert inline.mimetype == "application/pdf"
    assert _csp(inline)["frame-ancestors"] == "'self'"
    assert inline.headers["X-Content-Type-Options"] == "nosniff"
    assert inline.headers["Cache-Control"] == "no-store"
    assert inline.get_data().startswith(b"%PDF")

    download = browser.get(f"{browser.review}/files/{version.id}")
    assert download.status_code == 200
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment")
    assert f"filename={version.file_name}" in disposition
    assert version.file_name == "homepage.pdf"
    assert download.get_data() == inline.get_data()


def test_no_comments_once_the_request_is_closed(app, browser, make_deliverable):
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    _open(browser, issue_token(approver))  # the page on screen names the version it shows
    response = browser.htmx_post(f"{browser.review}/decision",
                                 {"choice": "approve"})
    html = response.get_data(as_text=True)
    assert 'id="comments" class="card comments" hx-swap-oob="true"' in html
    assert "Post comment" not in html  # the refreshed thread has no form any more
    late = browser.post(f"{browser.review}/comments", {"body": "One more thing"})
    assert late.status_code == 409
    assert db.session.scalar(select(func.count(Comment.id))) == 0
