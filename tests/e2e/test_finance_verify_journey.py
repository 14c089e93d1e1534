"""Browser journey: finance reads approved work with its conditions and opens the
deliverable, on a phone (390x844) and a desktop (1280x800), with long names and no
sideways scroll; anyone looks a certificate up by its id (what it records, never
"Genuine") and uploads the PDF (now "Genuine"). Screenshots in test-artifacts/e2e/."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import workflow
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import (
    Certificate,
    ConditionStatus,
    Deliverable,
    DeliverableState,
    Outcome,
    User,
)
from portal.workflow.conditions import resolve_condition
from tests.conftest import on_screen
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, Person, reading

pytestmark = pytest.mark.e2e

DESKTOP = {"width": 1280, "height": 800}
CLIENT = "Aktiengesellschaft für Markenentwicklung und Kommunikationsdesign Nordrhein-Westfalen"
PROJECT = "Relaunch of the corporate website with the investor-relations microsite"
TITLE = "Homepage hero, navigation and footer for the Nordrhein-Westfalen-Kommunikationsportal"
NAMES = ["Alexandrina Maximiliana von Hohenzollern-Sigmaringen-Württemberg",
         "Bartholomew Fitzgerald-Montgomery-Worthington"]
EMAILS = ["alexandrina.maximiliana.von-hohenzollern@subsidiary-of-acme-holdings.example",
          "bartholomew@acme.example"]
LOGO = ("Use the 2025 logo on the cover, the one with the wordmark-without-tagline-variant, "
        "at https://brand.example/assets/logos/2025/wordmark-without-tagline-variant.svg")
PANTONE = "Print the blue as Pantone 2945."
REASON = "The printer cannot match Pantone on this paper; CMYK it is."
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1")


def _approved(make_client, make_project, make_deliverable, staff_id: int) -> tuple[int, int]:
    """Both approvers decide (the first with two conditions, from an iPhone); staff mark one
    condition won't do. Returns (deliverable id, request id)."""
    client = make_client(CLIENT, contacts=2)
    for contact, name, email in zip(client.contacts, NAMES, EMAILS, strict=True):
        contact.name, contact.email = name, email
    project = make_project(client)
    project.name = PROJECT
    db.session.commit()
    d = make_deliverable(DeliverableState.DELIVERED, project=project, approvers=2)
    d.title = TITLE  # the factory's title is short; the point here is a long one
    request = d.open_request
    first, second = request.approvers
    workflow.record_decision(first, Outcome.APPROVED_WITH_CONDITIONS, "", ip="203.0.113.7",
                             user_agent=IPHONE, conditions=[LOGO, PANTONE],
                             seen_sha256=on_screen(first))
    workflow.record_decision(second, Outcome.APPROVED, "", ip="198.51.100.4",
                             user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
                             "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
                             "Safari/537.36", seen_sha256=on_screen(second))
    pantone = first.decision.conditions[1]
    resolve_condition(db.session.get(User, staff_id), pantone,
                      ConditionStatus.WONT_DO, note=REASON)
    db.session.commit()  # the certificate job runs on the background worker
    return d.id, request.id


def _certificate(request_id: int) -> tuple[str, bytes]:
    deadline = time.monotonic() + 30
    while True:
        with reading():
            certificate = db.session.scalar(
                select(Certificate).where(Certificate.request_id == request_id))
            if certificate is not None:
                return certificate.public_id, file_store().read_bytes(certificate.storage_key)
        assert time.monotonic() < deadline, "the certificate was not issued"
        time.sleep(0.1)


def _no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth,"
                           " ...[...document.querySelectorAll('.table-wrap')].map("
                           "  w => w.scrollWidth - w.clientWidth)]")
    assert widths[0] == widths[1], f"page {widths[0]} px wide in a {widths[1]} px window"
    assert all(extra <= 1 for extra in widths[2:]), f"a table scrolls sideways: {widths}"


def _finance(j: Journey, email: str, *, phone: bool) -> Page:
    page = j.actor(phone=phone)
    if not phone:
        page.set_viewport_size(DESKTOP)
    j.sign_in(page, email)
    page.goto("/finance")
    return page


def test_finance_sees_conditions_and_opens_the_deliverable(
        browser_page: Journey, finance_f: Person, staff_a: Person, make_client, make_project,
        make_deliverable):
    j = browser_page
    deliverable_id, request_id = _approved(make_client, make_project, make_deliverable,
                                           staff_a.id)
    public_id, _ = _certificate(request_id)

    for phone, size in ((False, "desktop"), (True, "phone")):
        f = _finance(j, finance_f.email, phone=phone)
        row = f.locator("#finance-results tbody tr").filter(has_text=TITLE)
        expect(row).to_have_count(1)
        expect(row).to_contain_text(CLIENT)
        expect(row).to_contain_text(PROJECT)
        # Each condition with how it stands, and the reason of the one declined.
        items = row.locator(".conditions li")
        expect(items).to_have_count(2)
        expect(items.nth(0)).to_contain_text(f"{LOGO} open", use_inner_text=True)
        expect(items.nth(1)).to_contain_text(f"{PANTONE} won't do", use_inner_text=True)
        expect(items.nth(1)).to_contain_text(f"Reason: {REASON}")
        expect(row.get_by_role("link", name=public_id)).to_be_visible()
        _no_sideways_scroll(f)
        if phone:  # a card: the cells stack, each under its column's name
            top = row.locator("td").first.bounding_box()
            last = row.locator("td").last.bounding_box()
            assert last["y"] > top["y"] + top["height"], (top, last)
            assert last["x"] == pytest.approx(top["x"], abs=1)
            label = row.locator('td[data-label="Conditions"]').evaluate(
                "td => getComputedStyle(td, '::before').content")
            assert label == '"Conditions"'
        j.shot(f, f"01-finance-list-{size}")

        # The deliverable's own page, which finance may read but not change.
        link = row.get_by_role("link", name=TITLE)
        expect(link).to_have_attribute("href", f"/deliverables/{deliverable_id}")
        link.click()
        expect(f).to_have_url(f"{j.base_url}/deliverables/{deliverable_id}")
        expect(f.get_by_role("heading", level=1)).to_contain_text(TITLE)
        expect(f.get_by_role("button", name="Mark met")).to_have_count(0)
        expect(f.locator(f'form[action="/deliverables/{deliverable_id}/versions"]')
               ).to_have_count(0)
        _no_sideways_scroll(f)
        j.shot(f, f"02-finance-opens-deliverable-{size}")


def test_an_id_says_what_is_recorded_and_only_the_file_is_genuine(
        browser_page: Journey, staff_a: Person, make_client, make_project, make_deliverable,
        tmp_path: Path):
    j = browser_page
    _, request_id = _approved(make_client, make_project, make_deliverable, staff_a.id)
    public_id, pdf = _certificate(request_id)
    saved = tmp_path / f"approval-certificate-{public_id}.pdf"
    saved.write_bytes(pdf)

    for phone, size in ((True, "phone"), (False, "desktop")):
        v = j.actor(phone=phone)  # anyone: nobody signs in to verify
        if not phone:
            v.set_viewport_size(DESKTOP)
        v.goto(f"/verify/{public_id}")  # what the certificate's QR code opens
        verdict = v.locator("#verify-result .verdict")
        expect(verdict.get_by_role("heading")).to_have_text(f"Certificate {public_id} exists")
        records = verdict.locator(".record li")
        expect(records).to_have_count(2)
        expect(records.nth(0)).to_contain_text(
            f"{NAMES[0]} approved version 1 of “{TITLE}” with 2 conditions on")
        expect(records.nth(1)).to_contain_text(f"{NAMES[1]} approved version 1 of “{TITLE}” on")
        expect(verdict).to_contain_text(CLIENT)
        expect(verdict).to_contain_text("To check a copy you hold, upload the PDF")
        expect(v.locator("#verify-result")).to_contain_text(
            "never email or IP addresses, browsers, or what anyone wrote")
        html = v.content()
        for private in ("Genuine", *EMAILS, "203.0.113.7", "iPhone", "Mozilla", LOGO, REASON):
            assert private not in html, private
        _no_sideways_scroll(v)
        j.shot(v, f"03-verify-id-{size}")

        v.get_by_role("link", name="upload the PDF").click()
        expect(v.locator("#file")).to_be_focused()
        v.locator("#file").set_input_files(str(saved))
        v.get_by_label("Certificate id").fill("")
        v.get_by_role("button", name="Verify").click()
        expect(verdict.get_by_role("heading")).to_have_text("Genuine")
        expect(verdict).to_contain_text(f"byte for byte, certificate {public_id}")
        expect(verdict.locator(".record li")).to_have_count(2)
        _no_sideways_scroll(v)
        j.shot(v, f"04-verify-upload-genuine-{size}")

    with reading():
        assert db.session.get(Deliverable, _deliverable_of(request_id)).state == \
            DeliverableState.APPROVED_WITH_CONDITIONS


def _deliverable_of(request_id: int) -> int:
    from portal.models import ReviewRequest

    return db.session.get(ReviewRequest, request_id).version.deliverable_id
