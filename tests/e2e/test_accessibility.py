"""Every page type, on a phone (390x844) and a desktop (1280x800), with the longest data the
database takes: axe-core finds no serious or critical violation, and no page is wider
than the viewport (document scrollWidth equals the viewport width).

The long names are single unbroken words (the hardest case for a layout): a 255-character
file name, a 254-character contact email and staff email, and titles, client and project
names at their column's limit of 200 characters. Screenshots of every page go to
test-artifacts/e2e/test_every_page_*.png, the per-page counts to
test-artifacts/e2e/axe-sweep-<viewport>.txt.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass

import pytest
from sqlalchemy import select

import jobs.certificates
from portal import workflow
from portal.extensions import db
from portal.files.filetypes import clean_filename
from portal.models import (
    Certificate,
    Client,
    Contact,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    Policy,
    Project,
    Role,
)
from portal.notifications import background
from portal.workflow import links
from portal.workflow.comments import post_comment
from portal.workflow.invitations import revoke_link
from tests.conftest import future, on_screen, run_out_link
from tests.e2e.browser_api import expect
from tests.e2e.conftest import ARTIFACTS, Journey, off_the_browser_thread, reading
from tests.test_compare import three_page_pdf

pytestmark = pytest.mark.e2e


def _word(stem: str, length: int, end: str = "") -> str:
    return ((stem + "_") * length)[: length - len(end)] + end


FILE = _word("Brand_guidelines_final_approved", 255, ".pdf")
TITLE = _word("Homepage_relaunch_with_the_new_navigation", 200)
CLIENT = _word("Acme_International_Holdings", 200)
PROJECT = _word("Website_relaunch_programme", 200)
CONTACT = _word("Jane_Alexandra_Doe_Montgomery", 120)
STAFF = _word("Samantha_Staff_Member", 120)
WHAT_CHANGED = _word("Brighter_colours_everywhere", 300)


def _email(local: str) -> str:
    """254 characters, the longest address there is: a 64-character local part, labels of 63."""
    domain = ".".join(["b" * 63, "c" * 63, "d" * 53, "example"])
    return f"{_word(local, 64)}@{domain}"


EMAIL, STAFF_EMAIL = _email("jane.alexandra.doe"), _email("samantha.staff")
SHOWN_FILE = clean_filename(FILE)  # the store keeps 200 characters of a name, extension kept
assert (len(FILE), len(SHOWN_FILE), len(EMAIL), len(STAFF_EMAIL)) == (255, 200, 254, 254)


@dataclass(frozen=True)
class Story:
    client_id: int
    project_id: int
    deliverable_id: int
    approved_id: int
    certificate: str
    review: str  # the long-named contact's link to version 2
    replaced: str  # their link to version 1, since replaced
    approved: str  # their link to the approved deliverable
    expired: str
    revoked: str


def _send(actor, colleague, d, content: bytes, contacts) -> None:
    workflow.upload_version(actor, d, io.BytesIO(content), FILE, WHAT_CHANGED)
    db.session.commit()  # the render job runs after the commit
    workflow.submit_for_review(actor, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(actor, d, contacts, Policy.PARALLEL, future(7))
    db.session.commit()


def _story(app, make_user) -> Story:
    """Long names everywhere, through the real workflow: a deliverable with two versions
    (the first rejected), one approved with its certificate, a failed email."""
    admin = make_user(Role.ADMIN, email=STAFF_EMAIL, name=STAFF)
    colleague = make_user(Role.STAFF, email="cora@agency.example", name="Cora Colleague")
    client = Client(name=CLIENT)
    people = [Contact(client=client, name=CONTACT, email=EMAIL),
              Contact(client=client, name="Ben Bright", email="ben@acme.example"),
              Contact(client=client, name="Cleo Cole", email="cleo@acme.example")]
    project = Project(client=client, name=PROJECT, owner=admin)
    db.session.add_all([client, *people, project])
    db.session.commit()

    d = workflow.create_deliverable(admin, project, TITLE, _word("Description", 400), future(14))
    _send(admin, colleague, d, three_page_pdf("Pricing"), people[:1])
    first = d.open_request.approvers[0]
    post_comment(people[0], first.request, _word("Could_the_hero_be_brighter", 500),
                 seen_sha256=on_screen(first))
    workflow.record_decision(first, Outcome.REJECTED, _word("Wrong_colours", 600),
                             seen_sha256=on_screen(first))
    db.session.commit()
    _send(admin, colleague, d, three_page_pdf("Rates"), people)
    jane, ben, cleo = d.open_request.approvers
    review, replaced = links.review_link(jane), links.review_link(first)
    run_out_link(ben)
    expired = links.review_link(ben)
    revoked = links.review_link(cleo)
    revoke_link(admin, cleo)

    done = workflow.create_deliverable(admin, project, _word("Brochure_for_the_spring", 200), "A",
                                       future(14))
    _send(admin, colleague, done, three_page_pdf("Spring"), people[:1])
    approver = done.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.APPROVED, seen_sha256=on_screen(approver))
    db.session.add(OutboxMessage(
        idempotency_key="a11y-failed", to_addr=EMAIL, to_name=CONTACT, subject=f"Please review: "
        f"{TITLE}", body_text="", body_html="", deliverable_id=d.id, status=OutboxStatus.FAILED,
        attempts=5, last_error=_word("550_mailbox_unavailable", 250)))
    db.session.commit()
    ids = (client.id, project.id, d.id, done.id)
    request_id, approved = approver.request_id, links.review_link(approver)
    assert background.wait_until_idle(app, timeout=120), "renders and the certificate hang"
    with reading():
        public_id = db.session.scalar(select(Certificate.public_id).where(
            Certificate.request_id == request_id))
    public_id = public_id or off_the_browser_thread(app, jobs.certificates.issue, request_id)
    db.session.commit()  # let go of SQLite's write lock before the browser comes
    return Story(*ids, public_id, review, replaced, approved, expired, revoked)


def _pages(s: Story) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(name, URL) of every page type: the signed-in admin's, then anyone's."""
    staff = [("dashboard", "/"), ("deliverables", "/deliverables"),
             ("deliverable", f"/deliverables/{s.deliverable_id}"),
             ("deliverable-approved", f"/deliverables/{s.approved_id}"),
             ("staff-compare", f"/deliverables/{s.deliverable_id}/compare"),
             ("clients", "/clients"), ("client", f"/clients/{s.client_id}"),
             ("client-new", "/clients/new"),
             ("deliverable-new", f"/projects/{s.project_id}/deliverables/new"),
             ("metrics", "/metrics"), ("finance", "/finance"),
             ("delivery-problems", "/delivery-problems"), ("admin-users", "/admin/users"),
             ("admin-webhooks", "/admin/webhooks"),
             ("admin-agency", "/admin/agency"), ("account", "/account"),
             ("staff-not-found", "/no-such-page")]
    anyone = [("client-review", s.review), ("client-compare", "COMPARE"),
              ("client-approved", s.approved), ("client-replaced", s.replaced),
              ("client-expired", s.expired), ("client-revoked", s.revoked),
              ("client-no-access", "/r/not-a-real-token"), ("verify", "/verify"),
              ("verify-record", f"/verify/{s.certificate}"), ("api-reference", "/api/v1/docs"),
              ("not-found", "/no-such-page")]
    return staff, anyone


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
@pytest.mark.parametrize("phone", [True, False], ids=["phone", "desktop"])
def test_every_page_passes_axe_and_fits_the_viewport_with_long_names(
        app, browser_page: Journey, make_user, phone: bool):
    j = browser_page
    story = _story(app, make_user)
    staff_pages, public_pages = _pages(story)
    rows: list[str] = []
    too_wide: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def visit(page, name: str, url: str) -> None:
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        page.goto(url)
        page.wait_for_load_state("load")
        scroll, inner = page.evaluate(
            "() => [document.documentElement.scrollWidth, window.innerWidth]")
        width = page.viewport_size["width"]
        result = j.auditor.check(page, force=True)
        blocking = [v for v in result["violations"] if v["impact"] in ("serious", "critical")]
        rows.append(f"{name:22} serious/critical={len(blocking):2} scrollWidth={scroll} "
                    f"{' '.join(sorted({v['id'] for v in blocking}))}  {page.url}")
        if not scroll == inner == width:
            too_wide.append(f"{name}: scrollWidth {scroll}, innerWidth {inner}, viewport {width}")
        shot = ARTIFACTS / f"{j.test_name}-{'phone' if phone else 'desktop'}-{name}.png"
        try:  # long data makes tall pages: a minute for the full-page shot
            page.screenshot(path=str(shot), full_page=True, caret="initial", timeout=60_000)
        except PlaywrightTimeout:
            too_wide.append(f"{name}: no screenshot in a minute ({scroll} px wide)")

    page = j.actor(phone=phone)
    visit(page, "login", "/login")
    j.sign_in(page, STAFF_EMAIL)
    for name, url in staff_pages:
        visit(page, name, url)
        if name in ("deliverable", "deliverable-approved"):
            expect(page.locator("main")).to_contain_text(SHOWN_FILE)

    client = j.actor(phone=phone)
    for name, url in public_pages:
        if url == "COMPARE":
            url = client.url.split("?")[0] + "/compare"
        visit(client, name, url)
        if name == "client-review":
            expect(client.locator("main")).to_contain_text(SHOWN_FILE)
            expect(client.locator("main")).to_contain_text(TITLE)
            width = client.viewport_size["width"]
            for button in client.locator("#decision-panel button").all():
                box = button.bounding_box() if button.is_visible() else None
                if box and not 0 <= box["x"] <= box["x"] + box["width"] <= width:
                    too_wide.append(f"decision button {button.inner_text()!r} off screen: {box}")

    (ARTIFACTS / f"axe-sweep-{'phone' if phone else 'desktop'}.txt").write_text(
        "\n".join(rows) + "\n", encoding="utf-8")
    assert not too_wide, "pages wider than the viewport:\n" + "\n".join(too_wide)
    # Serious or critical axe findings fail the test when the journey ends (conftest).


def _ratio(first: str, second: str) -> float:
    """WCAG contrast of two computed colours ("rgb(r, g, b)")."""
    def luminance(css: str) -> float:
        channels = [float(c) / 255 for c in re.findall(r"[\d.]+", css)[:3]]
        r, g, b = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
                   for c in channels]
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(first), luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_keyboard_reaches_content_first_and_sees_where_it_is(browser_page: Journey, staff_a):
    """The first Tab on a staff page shows "Skip to content", Enter moves focus to the main
    content; the focused control wears a ring; grey text and control borders keep their
    contrast on the page background."""
    j = browser_page
    page = j.actor()
    page.goto("/login")
    styles = page.evaluate("""() => {
      const body = getComputedStyle(document.body).backgroundColor;
      const input = getComputedStyle(document.querySelector('input[type=email], input'));
      const muted = document.createElement('span');
      muted.className = 'muted';
      document.querySelector('main').append(muted);
      return {page: getComputedStyle(document.documentElement).backgroundColor, body,
              border: input.borderTopColor, field: input.backgroundColor,
              muted: getComputedStyle(muted).color};
    }""")
    page_bg = styles["page"] if styles["body"] == "rgba(0, 0, 0, 0)" else styles["body"]
    assert _ratio(styles["muted"], page_bg) >= 4.5, styles
    assert _ratio(styles["border"], styles["field"]) >= 3, styles
    assert _ratio(styles["border"], page_bg) >= 3, styles

    j.sign_in(page, staff_a.email)
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    box = skip.bounding_box()
    assert box and box["y"] >= 0 and box["x"] >= 0, box  # on screen while focused
    page.keyboard.press("Enter")
    expect(page.locator("main#main")).to_be_focused()
    page.keyboard.press("Tab")  # the first control inside the content
    ring = page.evaluate("""() => { const e = document.activeElement, s = getComputedStyle(e);
      return [e.closest('main') !== null, s.outlineStyle, s.outlineWidth]; }""")
    assert ring == [True, "solid", "3px"], ring
    j.shot(page, "focus-ring")
