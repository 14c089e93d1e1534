"""Staff on a phone choose a client's default language and a contact's, then their own
language for the staff pages: plain forms (no script needed), no sideways scroll, every
page checked by axe (the Journey does it)."""
from __future__ import annotations

from playwright.sync_api import expect

from portal.extensions import db
from portal.models import Client, Contact
from tests.e2e.conftest import reading


def test_staff_choose_languages_on_a_phone(browser_page, staff_a, make_client):
    client = make_client(name="Müller Maschinenbau GmbH & Co. KG", contacts=1)
    client_id, contact_id = client.id, client.contacts[0].id
    db.session.commit()  # reading the ids opened a transaction: SQLite's write lock
    j = browser_page
    phone = j.actor(phone=True)
    j.sign_in(phone, staff_a.email)

    phone.goto(f"/clients/{client_id}")
    phone.get_by_label("Default language").select_option("de")
    phone.get_by_role("button", name="Save language").click()
    expect(phone.get_by_text("Default language saved for")).to_be_visible()
    phone.locator(f"details:has(#language-{contact_id}) summary").click()
    expect(phone.locator(f"#language-{contact_id} option").first).to_have_text(
        "Client's default (Deutsch)")
    phone.locator(f"#language-{contact_id}").select_option("ru")
    phone.locator(f"details:has(#language-{contact_id})").get_by_role(
        "button", name="Save contact").click()
    expect(phone.get_by_text("Contact saved.")).to_be_visible()
    j.shot(phone, "01-client-languages")

    with reading():
        stored = (db.session.get(Client, client_id).language,
                  db.session.get(Contact, contact_id).language)
    assert stored == ("de", "ru")

    phone.get_by_role("link", name=staff_a.name, exact=False).click()
    phone.get_by_label("Language of these pages").select_option("de")
    phone.get_by_role("button", name="Save language").click()
    expect(phone.get_by_text("Ihre Sprache ist gespeichert.")).to_be_visible()
    phone.goto(f"/clients/{client_id}")
    expect(phone.get_by_role("heading", name="Kontakte")).to_be_visible()
    expect(phone.get_by_label("Standardsprache")).to_have_value("de")
    j.shot(phone, "02-client-page-in-german")
