"""The agency's identity and the client's own time, end to end: an admin sets the name,
sender name, a too-light accent colour and a PNG logo; staff put the client in Paris; the
client reads the invitation (from the real SMTP sink) and decides on a phone, and a
second approver looks on a desktop. Screenshots at 390x844 and 1280x800."""
from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import pytest
from PIL import Image, ImageDraw

from portal import workflow
from portal.extensions import db
from portal.local_time import format_day, format_when
from portal.models import Approver, Decision, Deliverable, Policy, User
from portal.people.colours import palette
from portal.workflow.links import issue_token
from tests.conftest import future
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, Person, reading, text_of, wait_for_mail

pytestmark = pytest.mark.e2e
DESKTOP = {"width": 1280, "height": 800}
PARIS = ZoneInfo("Europe/Paris")


def _logo(path) -> None:
    image = Image.new("RGBA", (240, 80), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, 239, 79), radius=16, fill=(29, 36, 51, 255))
    draw.rectangle((24, 20, 64, 60), fill=(255, 221, 0, 255))
    draw.rectangle((84, 30, 214, 50), fill=(255, 255, 255, 255))
    image.save(path, format="PNG")


def _deliver(staff_id: int, colleague_id: int, deliverable_id: int) -> None:
    staff, colleague = db.session.get(User, staff_id), db.session.get(User, colleague_id)
    d = db.session.get(Deliverable, deliverable_id)
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.SEQUENTIAL, future(7))
    db.session.commit()


def test_the_client_sees_the_agency_and_their_own_time_on_phone_and_desktop(
        browser_page: Journey, staff_a: Person, staff, colleague, make_user,
        make_deliverable, smtp_sink, tmp_path):
    from portal.models import Role
    j = browser_page
    admin = make_user(Role.ADMIN, email="ada@agency.example", name="Ada Admin")
    d = make_deliverable()
    with reading():
        ids = (staff.id, colleague.id, d.id)
        client_id, admin_email = d.project.client.id, admin.email

    # The admin: name, sender name, a yellow too light for text, and a logo.
    desk = j.actor()
    desk.set_viewport_size(DESKTOP)
    j.sign_in(desk, admin_email)
    desk.get_by_role("link", name="Agency").click()
    desk.get_by_label("Agency name").fill("Acme Agency")
    desk.get_by_label("Sender name").fill("Acme Reviews")
    desk.get_by_label("Accent colour").fill("#ffdd00")
    desk.get_by_role("button", name="Save").click()
    ink = palette("#ffdd00").ink
    expect(desk.get_by_text("#ffdd00 is too light for text on white").first).to_be_visible()
    logo = tmp_path / "acme.png"
    _logo(logo)
    desk.get_by_label("Upload a logo").set_input_files(str(logo))
    desk.get_by_role("button", name="Upload", exact=True).click()
    expect(desk.get_by_text("Logo saved.")).to_be_visible()
    expect(desk.locator(".swatch-band")).to_have_css("background-color", "rgb(255, 221, 0)")
    expect(desk.locator(".swatch-ink")).to_have_css("color", "rgb(255, 255, 255)")
    j.shot(desk, "01-admin-agency-desktop")
    pocket = j.actor(phone=True)  # the same page fits a phone
    j.sign_in(pocket, admin_email)
    pocket.get_by_role("link", name="Agency").click()
    expect(pocket.get_by_role("img", name="The current logo")).to_be_visible()
    j.shot(pocket, "01b-admin-agency-phone")

    # Staff put the client in Paris, on the client page.
    desk.goto(f"/clients/{client_id}")
    desk.get_by_label("Their time zone").select_option("Europe/Paris")
    desk.get_by_role("button", name="Save time zone").click()
    expect(desk.get_by_text("now shown in Europe/Paris")).to_be_visible()

    _deliver(*ids)
    with reading():
        request = db.session.get(Deliverable, d.id).open_request
        first, second = request.approvers
        jane, john = first.contact.name, second.contact.name
        jane_email, expires, due = first.contact.email, first.link_expires_at, request.due_date
        links = [f"/r/{issue_token(a)}" for a in (first, second)]

    [invite] = wait_for_mail(smtp_sink, jane_email)
    assert invite["From"].addresses[0].display_name == "Acme Reviews"
    assert invite["Subject"] == f"Acme Agency: please review Homepage v3 v1 by {format_day(due)}"
    until = format_when(expires, PARIS)
    assert re.search(r"CES?T$", until)
    assert f"It works until {until}" in text_of(invite)
    html = invite.get_body(preferencelist=("html",)).get_content()
    assert ink in html and "/agency/logo?v=" in html  # the darker ink on the button
    # The HTML part as a phone's mail app shows it: on a blank page (no CSP of ours: an
    # email carries its own inline styles), the logo fetched from its absolute URL.
    inbox = j.actor(phone=True)
    inbox.set_content(html)
    expect(inbox.get_by_role("img", name="Acme Agency")).to_be_visible()
    j.shot(inbox, "01c-invitation-email-phone")

    # Jane on her phone: the agency's header, plain words, and her time.
    phone = j.actor(phone=True)
    phone.goto(links[0])
    header = phone.locator("header.brand-bar")
    expect(header.get_by_role("img", name="Acme Agency")).to_be_visible()
    expect(header).to_have_css("background-color", "rgb(255, 221, 0)")
    expect(header.get_by_text("Review for")).to_have_css("color", "rgb(0, 0, 0)")
    approvers = phone.locator(".approver-list")
    expect(approvers).to_contain_text(f"{jane} (you) — Waiting for you")
    expect(approvers).to_contain_text(f"{john} — After you")
    j.shot(phone, "02-client-before-deciding-phone")
    phone.get_by_role("button", name="Approve", exact=True).click()
    phone.get_by_role("button", name=re.compile(r"^Approve version 1")).click()
    expect(approvers).to_contain_text(f"{jane} (you) — Approved")
    with reading():
        decided = db.session.query(Decision).one().at
    expect(phone.locator("#decision-panel time")).to_have_text(format_when(decided, PARIS))
    fingerprint = phone.locator("details.fingerprint")
    expect(fingerprint.locator(".mono")).to_be_hidden()
    fingerprint.locator("summary").click()
    expect(fingerprint.locator(".mono")).to_be_visible()
    assert "sha256" not in phone.locator("#decision-panel").inner_text()
    j.shot(phone, "03-client-decided-phone")

    # John on a desktop: his turn now, the same header and the same zone.
    other = j.actor()
    other.set_viewport_size(DESKTOP)
    other.goto(links[1])
    expect(other.locator(".approver-list")).to_contain_text(f"{jane} — Approved")
    expect(other.locator(".approver-list")).to_contain_text(f"{john} (you) — Waiting for you")
    expect(other.locator("header.brand-bar img")).to_be_visible()
    j.shot(other, "04-second-approver-desktop")
    with reading():
        assert db.session.get(Approver, second.id).decision is None
