"""Conditions as a checklist: a client approves with several conditions, each a tracked item
that staff mark met in a later version or won't do (with a reason the client sees); the
client page, the finance list and CSV, the certificates and the dashboard show each."""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from portal import audit, workflow
from portal.certificates import create_development_key
from portal.demo.samples import sample_pdf
from portal.errors import IllegalTransition, InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Condition,
    ConditionStatus,
    Decision,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    ReviewRequest,
    Role,
    Version,
)
from portal.workflow.conditions import resolve_condition
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen, stored_path

S = DeliverableState
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "conditions"
LOGO = "Swap the logo for the 2025 one before print."
TYPO = "Fix the typo in the footer on page 2."
REASON = "The printer cannot match the spot colour; we keep the CMYK logo."


@pytest.fixture(scope="module")
def seal(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff conditions seal")


@pytest.fixture
def app_config(app_config: dict[str, Any], seal: tuple[Path, Path]) -> dict[str, Any]:
    key, cert = seal
    app_config.update(SIGNING_KEY=str(key), SIGNING_CERT=str(cert), SIGNING_PKCS12="")
    return app_config


# --- helpers --------------------------------------------------------------------------

def _new_round(staff, colleague, d: Deliverable, n: int, *, deliver: bool = True
               ) -> ReviewRequest | None:
    """Version n of the deliverable: uploaded, reviewed, and (unless asked not to) sent."""
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf(f"Homepage v{n}")),
                            f"homepage-v{n}.pdf", f"Round {n}")
    request = None
    if deliver:
        workflow.submit_for_review(staff, d, colleague)
        workflow.review_internally(colleague, d, approve=True)
        request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                                   future(7))
    db.session.commit()
    return request


def _client(make_browser, request: ReviewRequest):
    browser = make_browser()
    assert browser.get(f"/r/{issue_token(request.approvers[0])}").status_code == 303
    assert browser.get(browser.review).status_code == 200
    return browser


def _decide_with(browser, conditions: list[str], **form: str):
    data = MultiDict([("choice", "approve_with_conditions"), ("confirm", "1"),
                      *(("condition", c) for c in conditions), *form.items()])
    return browser.post(f"{browser.review}/decision", data)


def _signed_in(make_browser, user):
    browser = make_browser()
    browser.login(user.email)
    return browser


def _words(html: str) -> str:
    """Visible text, tags dropped and whitespace folded (enough to read a page)."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start:html.index("</section>", start)]


def _pdf_text(app, request: ReviewRequest, keep_as: str = "") -> str:
    db.session.refresh(request)
    assert request.certificate is not None, "no certificate was issued"
    pdf = stored_path(app, request.certificate.storage_key).read_bytes()
    if keep_as:  # to look at: test-artifacts/conditions/
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / keep_as).write_bytes(pdf)
    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(pdf)).pages)
    return " ".join(text.split())


def _csv(response) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(response.get_data(as_text=True))))
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def _conditions() -> list[Condition]:
    return list(db.session.scalars(select(Condition).order_by(Condition.position)))


def _count(model, *where) -> int:
    return db.session.scalar(select(func.count()).select_from(model).where(*where))


# --- the done-when: two conditions, ticked off in version 3 -------------------------------

def test_two_conditions_are_tracked_through_version_three(
        app, make_browser, make_deliverable, make_user, staff, colleague):
    d = make_deliverable(S.CHANGES_REQUESTED)  # version 1 was sent back by the client
    v2_request = _new_round(staff, colleague, d, 2)
    client = _client(make_browser, v2_request)

    form = client.get(f"{client.review}?choice=approve_with_conditions").get_data(as_text=True)
    assert form.count('name="condition"') == 3 and 'for="condition-1">Condition 1' in form
    assert 'name="add_condition"' in form and 'name="sha256"' in form and "csrf_token" in form

    response = _decide_with(client, [LOGO, f"  {TYPO} ", ""], text="Lovely work otherwise.")
    assert response.status_code == 303
    decision = db.session.scalar(select(Decision).where(Decision.request_id == v2_request.id))
    assert decision.outcome == Outcome.APPROVED_WITH_CONDITIONS
    assert decision.text == "Lovely work otherwise."  # a note beside the items
    assert [(c.position, c.text, c.status) for c in decision.conditions] == [
        (1, LOGO, ConditionStatus.OPEN), (2, TYPO, ConditionStatus.OPEN)]
    event = db.session.scalar(select(AuditEvent).where(
        AuditEvent.verb == "decision.approved_with_conditions"))
    assert json.loads(event.detail)["conditions"] == [LOGO, TYPO]

    page = _words(client.get(client.review).get_data(as_text=True))
    assert f"{LOGO} open" in page and f"{TYPO} open" in page
    told, receipt = (db.session.scalar(select(OutboxMessage.body_text).where(
        OutboxMessage.idempotency_key == key)) for key in (f"decision:{decision.id}",
                                                           f"receipt:{decision.id}"))
    assert f"Conditions:\n1. {LOGO}\n2. {TYPO}\n\nNote: Lovely work otherwise." in told
    assert f"Condition 1: {LOGO}\nCondition 2: {TYPO}\nNote: Lovely work otherwise." in receipt
    # The certificate of version 2 lists both, open when it was issued.
    v2_pdf = _pdf_text(app, v2_request, "certificate-version-2.pdf")
    assert f"Conditions: 1. {LOGO} 2. {TYPO} Note: Lovely work otherwise." in v2_pdf
    assert "Open when this certificate was issued: 2 of 2" in v2_pdf

    sam = _signed_in(make_browser, staff)
    board = sam.get("/").get_data(as_text=True)
    assert d.title in _section(board, "section-open_conditions")
    assert "2 open conditions" in _section(board, "section-open_conditions")
    staff_page = _words(sam.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert "Conditions 2 open" in staff_page
    assert "Upload a new version to mark it met there." in staff_page

    logo, typo = _conditions()
    v2 = d.current_version
    same_version = sam.post(f"/conditions/{logo.id}", {"status": "met", "version_id": v2.id})
    assert same_version.status_code == 422
    assert "is met in a later version" in same_version.get_data(as_text=True)

    _new_round(staff, colleague, d, 3, deliver=False)  # version 3: the fixes
    v3 = d.current_version
    staff_page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert f'<option value="{v3.id}" selected>version 3</option>' in staff_page

    met = sam.post(f"/conditions/{logo.id}", {"status": "met", "version_id": v3.id,
                                              "note": "New logo on the cover and back"})
    assert met.status_code == 302
    no_reason = sam.post(f"/conditions/{typo.id}", {"status": "wont_do", "note": "  "})
    assert no_reason.status_code == 422
    assert "The reason the client will see is required." in no_reason.get_data(as_text=True)
    wont = sam.post(f"/conditions/{typo.id}", {"status": "wont_do", "note": REASON})
    assert wont.status_code == 302

    db.session.expire_all()
    logo, typo = _conditions()
    assert (logo.status, logo.resolved_in_version_id, logo.resolved_by_id) == (
        ConditionStatus.MET, v3.id, staff.id)
    assert logo.note == "New logo on the cover and back" and logo.resolved_at is not None
    assert (typo.status, typo.note, typo.resolved_in_version_id) == (
        ConditionStatus.WONT_DO, REASON, None)
    verbs = list(db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb.like("condition.%")).order_by(AuditEvent.seq)))
    assert verbs == ["condition.met", "condition.wont_do"]
    assert audit.verify_chain().ok

    assert d.title not in _section(sam.get("/").get_data(as_text=True),
                                   "section-open_conditions")

    # The client's page of version 2: each condition with its resolution and the reason.
    page = _words(client.get(client.review).get_data(as_text=True))
    assert f"{LOGO} met in version 3" in page
    assert f"{TYPO} won't do Reason: {REASON}" in page

    # Finance: the list and the CSV.
    fiona = _signed_in(make_browser, make_user(Role.FINANCE))
    listing = _words(fiona.get("/finance").get_data(as_text=True))
    assert f"{LOGO} met in version 3" in listing and f"{TYPO} won't do" in listing
    [row] = _csv(fiona.get("/finance/export.csv"))
    contact = v2_request.approvers[0].contact.name
    assert row["conditions"] == (
        f"{contact}: {LOGO} (met in version 3: New logo on the cover and back) | "
        f"{contact}: {TYPO} (won't do: {REASON}) | {contact} (note): Lovely work otherwise.")
    assert row["open_conditions"] == "0"

    # Version 3 goes out: its page and, once approved, its certificate carry both.
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    v3_request = workflow.deliver(staff, d, d.project.client.contacts[:1], Policy.PARALLEL,
                                  future(7))
    db.session.commit()
    v3_client = _client(make_browser, v3_request)
    page = v3_client.get(v3_client.review).get_data(as_text=True)
    earlier = _words(_section(page, "earlier-conditions"))
    assert f"approving version 2: {LOGO} met in version 3" in earlier
    assert f"{TYPO} won't do Reason: {REASON}" in earlier
    assert v3_client.post(f"{v3_client.review}/decision",
                          {"choice": "approve", "confirm": "1"}).status_code == 303
    v3_pdf = _pdf_text(app, v3_request, "certificate-version-3.pdf")
    flat = "".join(v3_pdf.split())
    assert "Conditions of earlier approvals" in v3_pdf
    for expected in (f"{LOGO}{contact}, approving version 2 Met in version 3",
                     "Note: New logo on the cover and back",
                     f"{TYPO}{contact}, approving version 2 Won't do", f"Reason: {REASON}"):
        assert "".join(expected.split()) in flat, expected


# --- staff moves ------------------------------------------------------------------------

def _approved_with(make_deliverable, conditions: list[str]) -> Deliverable:
    d = make_deliverable(S.DELIVERED)
    approver = d.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.APPROVED_WITH_CONDITIONS,
                             seen_sha256=on_screen(approver), conditions=conditions)
    db.session.commit()
    return d


def test_staff_reopen_a_condition_and_every_move_is_audited(
        make_browser, make_deliverable, staff, colleague):
    d = _approved_with(make_deliverable, [LOGO])
    _new_round(staff, colleague, d, 2, deliver=False)
    [logo] = _conditions()
    sam = _signed_in(make_browser, staff)
    met = sam.post(f"/conditions/{logo.id}", {"status": "met", "version_id": d.current_version.id})
    assert met.status_code == 302
    already = sam.post(f"/conditions/{logo.id}", {"status": "wont_do", "note": "No"})
    assert already.status_code == 409 and "Reopen it first" in already.get_data(as_text=True)
    page = sam.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "Reopen" in _section(page, "conditions")
    assert d.title not in _section(sam.get("/").get_data(as_text=True), "section-open_conditions")

    reopened = sam.post(f"/conditions/{logo.id}", {"status": "open"},
                        headers={"HX-Request": "true"})
    assert reopened.status_code == 200 and "Condition 1 is open again." in reopened.get_data(
        as_text=True)
    db.session.expire_all()
    [logo] = _conditions()
    assert (logo.status, logo.resolved_in_version_id, logo.resolved_by_id, logo.note) == (
        ConditionStatus.OPEN, None, None, "")
    again = sam.post(f"/conditions/{logo.id}", {"status": "open"})
    assert again.status_code == 409 and "already open" in again.get_data(as_text=True)
    assert d.title in _section(sam.get("/").get_data(as_text=True), "section-open_conditions")
    verbs = list(db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb.like("condition.%")).order_by(AuditEvent.seq)))
    assert verbs == ["condition.met", "condition.reopened"]
    assert "Condition reopened" in sam.get(f"/deliverables/{d.id}").get_data(as_text=True)


def test_met_only_in_a_later_version_of_the_same_deliverable(make_deliverable, staff, colleague):
    d = _approved_with(make_deliverable, [LOGO, TYPO])
    other = make_deliverable(S.DRAFT)
    logo, typo = _conditions()
    decided = d.current_version
    with pytest.raises(InvalidInput, match="met in a later version"):
        resolve_condition(staff, logo, ConditionStatus.MET, other.current_version)
    with pytest.raises(InvalidInput, match="met in a later version"):
        resolve_condition(staff, logo, ConditionStatus.MET, decided)
    with pytest.raises(InvalidInput, match="Choose the version"):
        resolve_condition(staff, logo, ConditionStatus.MET, None)
    with pytest.raises(InvalidInput, match="reason the client will see is required"):
        resolve_condition(staff, typo, ConditionStatus.WONT_DO, note="")
    db.session.rollback()
    _new_round(staff, colleague, d, 2, deliver=False)
    logo, typo = _conditions()
    resolve_condition(staff, logo, ConditionStatus.MET, d.current_version, "Done")
    with pytest.raises(IllegalTransition, match="already marked met in version 2"):
        resolve_condition(staff, logo, ConditionStatus.MET, d.current_version)
    db.session.commit()
    assert logo.resolution == "met in version 2: Done" and typo.resolution == "open"


def test_a_client_and_finance_cannot_resolve(app, make_browser, make_deliverable, make_user,
                                             staff, colleague):
    d = _approved_with(make_deliverable, [LOGO])
    _new_round(staff, colleague, d, 2, deliver=False)
    [logo] = _conditions()
    request = d.requests[-1]
    client = _client(make_browser, request)
    by_client = client.post(f"/conditions/{logo.id}", {"status": "wont_do", "note": "Never"})
    assert by_client.status_code == 302 and "/login" in by_client.headers["Location"]
    client_page = client.get(client.review).get_data(as_text=True)
    assert "/conditions/" not in client_page  # no staff form on the client's page

    fiona = _signed_in(make_browser, make_user(Role.FINANCE))
    assert fiona.post(f"/conditions/{logo.id}", {"status": "wont_do",
                                                 "note": "Never"}).status_code == 403
    assert 'action="/conditions/' not in fiona.get(f"/deliverables/{d.id}").get_data(
        as_text=True)
    with pytest.raises(NotAllowed):
        resolve_condition(request.approvers[0].contact, logo, ConditionStatus.WONT_DO,
                          note="Never")
    with pytest.raises(NotAllowed):
        resolve_condition(make_user(Role.FINANCE), logo, ConditionStatus.WONT_DO, note="No")
    db.session.rollback()
    [logo] = _conditions()
    assert logo.status == ConditionStatus.OPEN
    assert _count(AuditEvent, AuditEvent.verb.like("condition.%")) == 0


# --- the client's form ------------------------------------------------------------------

@pytest.mark.parametrize(("conditions", "message"), [
    (["", "  ", ""], "Write the conditions of your approval."),
    ([f"Condition {n}" for n in range(11)], "Please list at most 10 conditions"),
    (["x" * 501], "Condition 1 is longer than 500 characters."),
    (["Fine", "Hidden \u202egnp.exe"], "Condition 2 contains a line break or an invisible "
                                       "control character"),
], ids=["none", "eleven", "too-long", "bidi-override"])
def test_invalid_conditions_are_422_with_the_form_kept(make_browser, make_deliverable,
                                                       conditions, message):
    d = make_deliverable(S.DELIVERED)
    client = _client(make_browser, d.open_request)
    response = _decide_with(client, conditions)
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert re.search(r'<p class="error" role="alert">[^<]*' + re.escape(message), html), html
    assert html.count('name="condition"') == min(max(len(conditions), 3), 10)
    if conditions[0]:
        assert f'value="{conditions[0]}"' in html  # what was typed stays in its box
    assert _count(Decision) == 0 and _count(Condition) == 0


def test_add_another_condition_works_without_javascript(make_browser, make_deliverable):
    d = make_deliverable(S.DELIVERED)
    client = _client(make_browser, d.open_request)
    typed = [LOGO, TYPO, "Third"]
    response = _decide_with(client, typed, add_condition="1")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<html" in html
    assert html.count('name="condition"') == 4
    for n, text in enumerate(typed, start=1):
        assert f'id="condition-{n}" name="condition" maxlength="500" value="{text}"' in html
    assert 'id="condition-4" name="condition" maxlength="500" value="" autofocus' in html
    fragment = client.htmx_post(f"{client.review}/decision", MultiDict(
        [("choice", "approve_with_conditions"), *(("condition", t) for t in [*typed, "4"]),
         ("add_condition", "1")]))
    assert fragment.get_data(as_text=True).lstrip().startswith('<section id="decision-panel"')
    assert fragment.get_data(as_text=True).count('name="condition"') == 5
    assert _count(Decision) == 0  # nothing is recorded by asking for a box

    done = _decide_with(client, [*typed, "Fourth"])
    assert done.status_code == 303
    assert [c.text for c in _conditions()] == [*typed, "Fourth"]


def test_a_single_text_is_still_one_condition(make_browser, make_deliverable):
    """Callers (and forms already open) that send one text get one condition item."""
    d = make_deliverable(S.DELIVERED, approvers=2)
    first, second = d.open_request.approvers
    workflow.record_decision(first, Outcome.APPROVED_WITH_CONDITIONS, "Fix the\nlogo",
                             seen_sha256=on_screen(first))
    db.session.commit()
    assert [(c.text, c.position) for c in first.decision.conditions] == [("Fix the logo", 1)]
    assert first.decision.text == ""

    client = make_browser()
    client.get(f"/r/{issue_token(second)}")
    client.get(client.review)
    posted = client.post(f"{client.review}/decision", {
        "choice": "approve_with_conditions", "confirm": "1", "text": "Keep the blue"})
    assert posted.status_code == 303
    db.session.refresh(second)
    assert [c.text for c in second.decision.conditions] == ["Keep the blue"]
    with pytest.raises(InvalidInput, match="Only an approval with conditions"):
        workflow.record_decision(make_deliverable(S.DELIVERED).open_request.approvers[0],
                                 Outcome.APPROVED, conditions=["Nope"],
                                 seen_sha256=on_screen(first))


def test_dashboard_lists_deliverables_while_a_condition_is_open(
        make_browser, make_deliverable, staff, colleague):
    open_one = _approved_with(make_deliverable, [LOGO, TYPO])
    plain = make_deliverable(S.APPROVED)
    sam = _signed_in(make_browser, staff)
    section = _section(sam.get("/").get_data(as_text=True), "section-open_conditions")
    assert open_one.title in section and "2 open conditions" in section
    assert f"/deliverables/{plain.id}\"" not in section
    assert f"/deliverables/{open_one.id}#conditions" in section

    _new_round(staff, colleague, open_one, 2, deliver=False)
    logo, typo = _conditions()
    resolve_condition(staff, logo, ConditionStatus.MET, open_one.current_version)
    db.session.commit()
    section = _section(sam.get("/").get_data(as_text=True), "section-open_conditions")
    assert "1 open condition<" in section
    resolve_condition(staff, typo, ConditionStatus.WONT_DO, note=REASON)
    db.session.commit()
    section = _section(sam.get("/").get_data(as_text=True), "section-open_conditions")
    assert f"/deliverables/{open_one.id}" not in section and "Nothing here." in section
    assert db.session.scalar(select(func.count(Version.id))) == 3
