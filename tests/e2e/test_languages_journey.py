"""A German and a Russian client open their review links on a phone (390x844): each page is
in their language, fits the screen with long German words, and the German client switches to
English and back with the form on the page (the choice is kept for that approver)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from portal.extensions import db
from portal.models import Approver, DeliverableState
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from tests.conftest import on_screen
from tests.e2e.browser_api import Page, expect
from tests.e2e.conftest import Journey, reading

pytestmark = pytest.mark.e2e
SHOTS = Path("/tmp/helpers/shots")
LONG_TITLE = "Frühjahrskampagnenbroschürenentwurfsüberarbeitung"


def _fits(page: Page) -> None:
    """No sideways scroll: the document is exactly as wide as the viewport."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") == width, page.url


def _keep(j: Journey, page: Page, name: str) -> None:
    path = j.shot(page, name)
    if SHOTS.is_dir():  # the session's folder, to look at
        shutil.copy(path, SHOTS / f"client-languages-{name}.png")


def test_a_german_and_a_russian_client_read_their_pages_on_a_phone(
        browser_page: Journey, make_deliverable):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED, approvers=2)
    d.title = LONG_TITLE
    request = d.open_request
    german, russian = request.approvers
    german.contact.language = "de"
    russian.contact.language = "ru"
    post_comment(german.contact, request, "Bitte das Logo größer.", seen_sha256=on_screen(german))
    db.session.commit()
    german_id, german_link = german.id, f"/r/{issue_token(german)}"
    russian_link = f"/r/{issue_token(russian)}"
    db.session.commit()

    anna = j.actor(phone=True)
    anna.goto(german_link)
    expect(anna.locator("html")).to_have_attribute("lang", "de")
    expect(anna.get_by_role("heading", name="Ihre Entscheidung")).to_be_visible()
    expect(anna.get_by_role("button", name="Unter Bedingungen freigeben")).to_be_visible()
    expect(anna.get_by_text("Bitte entscheiden Sie bis")).to_be_visible()
    expect(anna.get_by_text("Bitte das Logo größer.")).to_be_visible()
    _fits(anna)
    _keep(j, anna, "01-german-phone")

    # Approve, on the German page: the button names the act in German.
    anna.get_by_role("button", name="Freigeben", exact=True).click()
    expect(anna.get_by_role("button", name=f"Version 1 von {LONG_TITLE} freigeben")
           ).to_be_visible()
    _fits(anna)
    _keep(j, anna, "02-german-approve-step")
    anna.get_by_role("link", name="Zurück").click()

    # The switch: English, then back to German; the choice is kept on the approver.
    anna.get_by_label("Sprache").select_option("en")
    anna.get_by_role("button", name="Sprache wechseln").click()
    expect(anna.locator("html")).to_have_attribute("lang", "en")
    expect(anna.get_by_role("heading", name="Your decision")).to_be_visible()
    _fits(anna)
    _keep(j, anna, "03-german-client-switched-to-english")
    with reading():
        assert db.session.get(Approver, german_id).language == "en"
    anna.get_by_label("Language").select_option("de")
    anna.get_by_role("button", name="Change language").click()
    expect(anna.get_by_role("heading", name="Ihre Entscheidung")).to_be_visible()
    with reading():
        assert db.session.get(Approver, german_id).language == "de"

    ivan = j.actor(phone=True)
    ivan.goto(russian_link)
    expect(ivan.locator("html")).to_have_attribute("lang", "ru")
    expect(ivan.get_by_role("heading", name="Ваше решение")).to_be_visible()
    expect(ivan.get_by_role("button", name="Запросить изменения")).to_be_visible()
    expect(ivan.get_by_text("Срок принятия решения:")).to_be_visible()
    _fits(ivan)
    _keep(j, ivan, "04-russian-phone")
    ivan.get_by_role("button", name="Запросить изменения").click()
    expect(ivan.get_by_label("Что нужно изменить?")).to_be_visible()
    _fits(ivan)
    _keep(j, ivan, "05-russian-request-changes-step")
