"""Where staff choose languages: a client's default and each contact's (on the client
pages), and their own for the staff pages (the account page); the sign-in and public
verify pages follow the browser. What a person sees, and what the database holds."""
from __future__ import annotations

import html as entities
import json

import pytest
from sqlalchemy import func, select

from portal.errors import NotAllowed
from portal.extensions import db
from portal.i18n import contact_language
from portal.models import AuditEvent, Client, Contact, Role
from portal.people import clients as people

GERMAN = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
RUSSIAN = {"Accept-Language": "ru-RU,ru;q=0.9"}


def _text(response) -> str:
    return response.get_data(as_text=True)


def _seen(response) -> str:
    """The page's text as read (entities such as &#39; decoded)."""
    return entities.unescape(_text(response))


def _events(verb: str) -> list[dict]:
    return [json.loads(d) for d in db.session.scalars(
        select(AuditEvent.detail).where(AuditEvent.verb == verb).order_by(AuditEvent.seq))]


def _selected(html: str, field_id: str) -> str:
    """The value of the option selected in the <select id=field_id> (the form as shown)."""
    start = html.index(f'<select id="{field_id}"')
    select_html = html[start:html.index("</select>", start)]
    for option in select_html.split("<option")[1:]:
        if " selected" in option.split(">")[0]:
            return option.split('value="')[1].split('"')[0]
    return ""


def test_staff_set_a_client_default_and_contact_languages(app, browser, staff, make_client):
    client = make_client(name="Müller AG", contacts=1)
    first = client.contacts[0]
    browser.login(staff.email)

    page = _seen(browser.get(f"/clients/{client.id}"))
    # Each language named in itself, the default saying what it means.
    for name in ("English", "Deutsch", "Français", "Español", "Русский"):
        assert name in page
    assert "Client's default (English)" in page and "The portal's default (English)" in page

    assert browser.post(f"/clients/{client.id}/language",
                        {"language": "de"}).status_code == 302
    db.session.refresh(client)
    assert client.language == "de"
    assert _events("client.language") == [{"language": "de", "previous": None}]
    assert contact_language(first) == "de"  # no language of their own: the client's

    added = browser.post(f"/clients/{client.id}/contacts", {
        "contact_name": "Élodie Martin", "contact_email": "elodie@muller.example",
        "language": "fr"})
    assert added.status_code == 302
    elodie = db.session.scalar(select(Contact).where(Contact.email == "elodie@muller.example"))
    assert elodie.language == "fr" and contact_language(elodie) == "fr"
    assert _events("contact.added")[-1]["language"] == "fr"

    edited = browser.post(f"/contacts/{first.id}", {
        "contact_name": first.name, "contact_email": first.email, "language": "ru"})
    assert edited.status_code == 302
    db.session.refresh(first)
    assert first.language == "ru" and contact_language(first) == "ru"
    assert _events("contact.updated")[-1] == {
        "name": first.name, "email": first.email, "previous_email": first.email,
        "language": "ru", "previous_language": None}

    page = _seen(browser.get(f"/clients/{client.id}"))
    assert "Client's default (Deutsch)" in page  # the default names the client's language
    assert _selected(page, "client_language") == "de"
    assert _selected(page, f"language-{first.id}") == "ru"
    assert _selected(page, f"language-{elodie.id}") == "fr"
    assert _selected(page, "contact_language") == ""  # a new contact: the client's

    # Back to the defaults: the contact follows the client, the client the portal.
    browser.post(f"/contacts/{first.id}", {"contact_name": first.name,
                                           "contact_email": first.email, "language": ""})
    browser.post(f"/clients/{client.id}/language", {"language": ""})
    db.session.refresh(first)
    db.session.refresh(client)
    assert first.language is None and client.language is None
    assert contact_language(first) == "en"


def test_a_new_client_starts_with_its_language(app, browser, staff):
    browser.login(staff.email)
    page = _text(browser.get("/clients/new"))
    assert _selected(page, "language") == ""
    response = browser.post("/clients/new", {"name": "Habsburg GmbH", "language": "de",
                                             "contact_name": "Lena", "contact_email":
                                             "lena@habsburg.example"})
    assert response.status_code == 302
    client = db.session.scalar(select(Client).where(Client.name == "Habsburg GmbH"))
    assert client.language == "de" and client.contacts[0].language is None
    assert contact_language(client.contacts[0]) == "de"
    assert _events("client.created")[-1]["language"] == "de"


def test_a_bad_language_code_is_refused_and_nothing_is_lost(app, browser, staff, make_client):
    client = make_client(contacts=1)
    contact = client.contacts[0]
    client.language = "es"
    db.session.commit()
    browser.login(staff.email)
    events = db.session.scalar(select(func.count(AuditEvent.seq)))

    refused = browser.post(f"/clients/{client.id}/language", {"language": "klingon"})
    assert refused.status_code == 422
    assert "Choose a language from the list." in _text(refused)

    # An edit with a bad code: nothing saved, and the form still shows what was typed.
    edit = browser.post(f"/contacts/{contact.id}", {
        "contact_name": "Renamed Person", "contact_email": "renamed@client.example",
        "language": "xx"})
    assert edit.status_code == 422
    html = _text(edit)
    assert "Choose a language from the list." in html
    assert 'value="Renamed Person"' in html and 'value="renamed@client.example"' in html
    assert f"<details open><summary>{contact.name}" in html  # the edited contact, opened

    added = browser.post(f"/clients/{client.id}/contacts", {
        "contact_name": "Nora New", "contact_email": "nora@client.example", "language": "de-AT"})
    assert added.status_code == 422
    assert 'value="Nora New"' in _text(added)

    new_client = browser.post("/clients/new", {"name": "Typo Ltd", "language": "english"})
    assert new_client.status_code == 422 and 'value="Typo Ltd"' in _text(new_client)

    db.session.refresh(client)
    db.session.refresh(contact)
    assert client.language == "es"
    assert (contact.name, contact.language) != ("Renamed Person", "xx")
    assert contact.email != "renamed@client.example"
    assert db.session.scalar(select(func.count(Contact.id)).where(
        Contact.client_id == client.id)) == 1
    assert db.session.scalar(select(Client.id).where(Client.name == "Typo Ltd")) is None
    assert db.session.scalar(select(func.count(AuditEvent.seq))) == events


def test_finance_cannot_choose_languages(app, browser, make_user, make_client):
    finance = make_user(Role.FINANCE)
    client = make_client(contacts=1)
    contact = client.contacts[0]
    browser.login(finance.email)
    page = _seen(browser.get(f"/clients/{client.id}"))
    assert 'name="language"' not in page  # no forms, only what is set
    assert "The portal's default (English)" in page
    assert browser.post(f"/clients/{client.id}/language",
                        {"language": "de"}).status_code == 403
    assert browser.post(f"/contacts/{contact.id}", {
        "contact_name": contact.name, "contact_email": contact.email,
        "language": "de"}).status_code == 403
    assert browser.post(f"/clients/{client.id}/contacts", {
        "contact_name": "X", "language": "de"}).status_code == 403
    with pytest.raises(NotAllowed):
        people.set_language(finance, client, "de")
    db.session.rollback()
    db.session.refresh(client)
    db.session.refresh(contact)
    assert client.language is None and contact.language is None
    assert len(client.contacts) == 1


def test_own_language_switches_the_staff_pages(app, browser, staff, make_client):
    make_client(name="Kunde Eins")
    browser.login(staff.email)
    english = _text(browser.get("/clients"))
    assert "<h1>Clients</h1>" in english and '<html lang="en">' in english

    page = _text(browser.get("/account"))
    assert _selected(page, "language") == ""  # the browser's, until chosen
    saved = browser.post("/account", {"language": "de"}, follow_redirects=True)
    assert "Ihre Sprache ist gespeichert." in _text(saved)  # told in the language chosen
    db.session.refresh(staff)
    assert staff.language == "de"
    assert _events("user.language") == [{"language": "de", "previous": None}]

    german = _text(browser.get("/clients", headers=RUSSIAN))  # own choice beats the browser
    assert "<h1>Kunden</h1>" in german and '<html lang="de">' in german
    assert "Neuer Kunde" in german and "Clients</h1>" not in german

    # A domain error reads in German too, as a whole sentence around the field.
    refused = browser.post("/clients/new", {"name": "  "})
    assert refused.status_code == 422 and "Der Name des Kunden fehlt." in _text(refused)

    bad = browser.post("/account", {"language": "tlh"})
    assert bad.status_code == 422 and "Wählen Sie eine Sprache aus der Liste." in _text(bad)
    db.session.refresh(staff)
    assert staff.language == "de"

    browser.post("/account", {"language": ""})  # back to the browser's
    db.session.refresh(staff)
    assert staff.language is None
    assert "<h1>Клиенты</h1>" in _text(browser.get("/clients", headers=RUSSIAN))


def test_one_persons_choice_changes_only_their_pages(app, make_browser, staff, colleague):
    sam, cora = make_browser(), make_browser()
    sam.login(staff.email)
    cora.login(colleague.email)
    sam.post("/account", {"language": "es", "user_id": str(colleague.id)})
    db.session.refresh(staff)
    db.session.refresh(colleague)
    assert (staff.language, colleague.language) == ("es", None)
    assert "<h1>Clientes</h1>" in _text(sam.get("/clients"))
    assert "<h1>Clients</h1>" in _text(cora.get("/clients"))


def test_agency_colours_are_explained_in_the_admins_language(app, browser, make_user):
    admin = make_user(Role.ADMIN)
    admin.language = "de"
    db.session.commit()
    browser.login(admin.email)
    saved = browser.post("/admin/agency", {"name": "Gelb & Co", "sender_name": "",
                                           "accent": "#ffdd00"}, follow_redirects=True)
    html = _text(saved)
    assert "Erscheinungsbild der Agentur gespeichert." in html
    assert "#ffdd00 ist für Text auf Weiß zu hell (1,3:1, mindestens 4,5:1 sind nötig)" in html


def test_login_page_follows_a_german_browser(app, make_browser, staff):
    german = make_browser()
    page = _text(german.get("/login", headers=GERMAN))
    assert '<html lang="de">' in page
    for words in ("Anmelden", "Passwort", "Angemeldet bleiben"):
        assert words in page
    assert "Keep me signed in" not in page
    failed = german.post("/login", {"email": staff.email, "password": "wrong password"},
                         headers=GERMAN)
    assert failed.status_code == 401
    assert "Diese E-Mail-Adresse und dieses Passwort passen zu keinem aktiven Konto." \
        in _text(failed)
    english = _text(make_browser().get("/login"))
    assert "Keep me signed in" in english and "Anmelden" not in english


def test_public_verify_page_follows_the_browser(app, make_browser):
    anyone = make_browser()
    page = _text(anyone.get("/verify", headers=GERMAN))
    assert "Freigabezertifikat prüfen" in page and "Zertifikats-ID" in page
    assert "Verify an approval certificate" not in page
    unknown = _text(anyone.get("/verify/SO-ABCD-EFGH-JKLM", headers=GERMAN))
    assert "Kein solches Zertifikat" in unknown
    assert "Wir haben kein Zertifikat ausgestellt, das zu „SO-ABCD-EFGH-JKLM“ passt." in unknown
    empty = anyone.post("/verify", {"certificate_id": ""}, headers=GERMAN)
    assert empty.status_code == 422
    assert "Geben Sie eine Zertifikats-ID ein oder wählen Sie ein PDF zum Hochladen." \
        in _text(empty)
    russian = _text(anyone.get("/verify/SO-ABCD-EFGH-JKLM", headers=RUSSIAN))
    assert "Такого сертификата нет" in russian and '<html lang="ru">' in russian
    assert "No such certificate" in _text(anyone.get("/verify/SO-ABCD-EFGH-JKLM"))
