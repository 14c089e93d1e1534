"""Staff pages in the person's language: a staff user who reads German sees the dashboard,
the deliverable page (a request out with the client, comments, conditions), the metrics
page and the domain's refusals in German, with German dates; nobody else changes language.
"""
from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from sqlalchemy import select

from portal import workflow
from portal.extensions import db
from portal.models import (
    Deliverable,
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    User,
)
from portal.workflow.comments import post_comment
from tests.conftest import on_screen

S = DeliverableState
CATALOGUES = Path(__file__).resolve().parent.parent / "portal" / "translations"
GERMAN_DAY = r"(Mo|Di|Mi|Do|Fr|Sa|So)\., \d{1,2}\. [A-ZÄÖÜ][a-zäöü]+\.? \d{4}"


def _text(html: str) -> str:
    """What a person reads: the page without its tags, entities decoded, spaces collapsed."""
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _german_catalogue() -> dict[str, str]:
    with (CATALOGUES / "de" / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        catalogue = read_mo(f)
    return {m.id: m.string for m in catalogue if m.id and isinstance(m.id, str)}


def _english_left(text: str) -> list[str]:
    """Every English sentence or phrase of the catalogue (two words or more, no values, a
    German translation that differs) still readable on the page: text that did not go
    through gettext in the page's language."""
    return sorted(english for english, german in _german_catalogue().items()
                  if german and german != english and "%(" not in english
                  and len(english.split()) > 1 and english in text)


def _reads_german(user: User) -> User:
    user.language = "de"
    db.session.commit()
    return user


def _with_client_comment_and_conditions(make_deliverable) -> Deliverable:
    """A deliverable approved with a condition by one approver while a second has not
    decided, with a client comment and a staff reply in the thread."""
    d = make_deliverable(S.DELIVERED, approvers=2, policy=Policy.PARALLEL)
    request = d.open_request
    first = request.approvers[0]
    post_comment(first.contact, request, "Bitte das Logo größer.",
                 seen_sha256=on_screen(first))
    workflow.record_decision(first, Outcome.APPROVED_WITH_CONDITIONS, "Fix the logo",
                             seen_sha256=on_screen(first))
    db.session.commit()
    return d


def test_the_dashboard_is_in_german(browser, staff, make_deliverable):
    _reads_german(staff)
    make_deliverable(S.DRAFT)
    d = _with_client_comment_and_conditions(make_deliverable)
    browser.login(staff.email)

    page = browser.get("/").get_data(as_text=True)
    text = _text(page)
    assert "Handlungsbedarf" in text
    assert re.search(r'aria-current="page">Meine<', page)
    for title in ("Warten darauf, dass Sie weitermachen", "Warten auf den Kunden, älteste zuerst",
                  "Überfällig und eskaliert", "Bedingungen noch offen"):
        assert title in text
    assert "1 neuer Kundenkommentar" in text  # the row's badge, a German plural
    assert "Sam Staff: hochladen und zur Prüfung einreichen" in text  # whose turn
    assert "Wartet auf Contact" in text  # the second approver still has to decide
    assert "What needs attention" not in text and "Nothing here." not in text
    assert _english_left(text) == []

    everyone = _text(browser.get("/?scope=everyone").get_data(as_text=True))
    assert "Warten darauf, dass das Team weitermacht" in everyone
    assert d.title in everyone


def test_the_deliverable_page_is_in_german_with_german_dates(browser, staff, make_deliverable):
    _reads_german(staff)
    d = _with_client_comment_and_conditions(make_deliverable)
    browser.login(staff.email)

    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    text = _text(page)
    for phrase in ("Verantwortlich", "Beim Kunden", "Anfrage zurückziehen", "Versionen",
                   "Kommentare", "Antworten", "Interne Notiz (der Kunde sieht sie nie)",
                   "Verlauf", "Jetzt erinnern", "Link widerrufen"):
        assert phrase in text, phrase
    # The conditions card, its resolve forms and the approvers' lines.
    assert "Bedingungen 1 offen" in text
    assert "Bedingung 1 der Freigabe von Version 1 durch Contact" in text
    assert "Wird nicht umgesetzt, weil" in text
    assert "Laden Sie eine neue Version hoch, um sie dort als erfüllt zu markieren." in text
    assert "1 Bedingung" in text
    assert "0 Erinnerungen gesendet" in text
    assert f"Anfrage Nr. {d.open_request.id}" in text
    assert "Erinnerungen nach 2 Werktagen, dann alle 2, höchstens 5" in text
    assert "Bitte das Logo größer." in text  # the client's comment, as written
    # Dates read the German way: "Mo., 30. Nov. 2026, 09:15 UTC", not "Mon 30 Nov 2026".
    assert re.search("Hochgeladen von Sam Staff am " + GERMAN_DAY, text)
    assert re.search(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul"
                     r"|Aug|Sep|Oct|Nov|Dec) \d{4}", text) is None
    assert "Some emails could not be delivered." not in text
    # The timeline quotes each email's subject as it was sent, in its reader's language
    # (the approvers here read English): those are quotations, not the page's words.
    for subject in db.session.scalars(select(OutboxMessage.subject).where(
            OutboxMessage.deliverable_id == d.id)):
        text = text.replace(" ".join(subject.split()), "")
    assert _english_left(text) == []


def test_the_metrics_page_is_in_german(browser, staff):
    _reads_german(staff)
    browser.login(staff.email)
    page = browser.get("/metrics?start=2026-03-02&end=2026-03-31&group=week")
    assert page.status_code == 200
    text = _text(page.get_data(as_text=True))
    for phrase in ("Freigabe-Kennzahlen", "Zeit bis zur Freigabe", "Werktage im Durchschnitt",
                   "Freigabe im ersten Anlauf", "Korrekturschleifen", "Verlauf nach Woche",
                   "Freigaben pro Woche", "Wie gezählt wird", "Alle Kunden"):
        assert phrase in text, phrase
    assert "2. März 2026 \N{EN DASH} 31. März 2026 (30 Tage)" in text  # days in German
    assert "Woche vom 2. März 2026" in text  # the trend table's first row
    assert "Approval metrics" not in text and "week of" not in text
    assert _english_left(text) == []

    wrong = browser.get("/metrics?start=2026-03-31&end=2026-03-02")
    assert wrong.status_code == 422
    assert ("Das Startdatum (2026-03-31) muss am oder vor dem Enddatum (2026-03-02) liegen."
            in _text(wrong.get_data(as_text=True)))


def test_a_refusal_and_a_confirmation_are_in_german(browser, make_browser, staff, colleague,
                                                    make_deliverable):
    _reads_german(staff)
    d = make_deliverable(S.IN_REVIEW)  # Sam uploaded it; Cora reviews it
    browser.login(staff.email)

    refused = browser.post(f"/deliverables/{d.id}/review", {"outcome": "approve"})
    assert refused.status_code == 403
    text = _text(refused.get_data(as_text=True))
    assert ("Sie haben diese Version hochgeladen, daher muss jemand anderes aus dem Team sie "
            "prüfen.") in text
    db.session.refresh(d)
    assert d.state == S.IN_REVIEW  # nothing happened

    # A colleague who chose no language reads the domain's refusals in English.
    cora = make_browser()
    cora.login(colleague.email)
    sent_back = cora.post(f"/deliverables/{d.id}/review", {"outcome": "send_back"})
    assert sent_back.status_code == 422
    assert "Say what needs to change when you send a version back." in _text(
        sent_back.get_data(as_text=True))

    edited = browser.post(f"/deliverables/{d.id}/edit",
                          {"title": d.title, "description": "Neu", "due_date": ""})
    assert edited.status_code == 302
    page = _text(browser.get(f"/deliverables/{d.id}").get_data(as_text=True))
    assert "Gespeichert: Beschreibung, Fälligkeitsdatum." in page


def test_delivery_needs_everything_and_says_so_in_german(browser, staff, make_deliverable):
    _reads_german(staff)
    d = make_deliverable(S.READY)
    browser.login(staff.email)
    answer = browser.post(f"/deliverables/{d.id}/deliver", {"policy": "parallel"})
    assert answer.status_code == 409
    text = _text(answer.get_data(as_text=True))
    assert "mindestens eine freigebende Person" in text and "ein Fälligkeitsdatum" in text
    db.session.refresh(d)
    assert d.state == S.READY and d.open_request is None


def test_the_browser_language_counts_when_a_person_chose_none(make_browser, staff):
    assert staff.language is None
    browser = make_browser()
    browser.login(staff.email)
    german = browser.get("/", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"})
    assert "Handlungsbedarf" in _text(german.get_data(as_text=True))
    english = browser.get("/")
    assert "What needs attention" in _text(english.get_data(as_text=True))


def test_whose_turn_and_trend_labels_follow_the_language_they_are_asked_in(app, staff,
                                                                          make_deliverable):
    from portal.i18n import in_language
    from portal.reports import metrics
    from portal.workflow.turns import whose_turn

    d = make_deliverable(S.READY)
    period = metrics.Period(datetime(2025, 3, 3, tzinfo=UTC).date(),
                            datetime(2025, 3, 9, tzinfo=UTC).date())
    with in_language("de"):
        assert whose_turn(d).label == "Sam Staff: an den Kunden ausliefern"
        point = metrics.trend([], period)[0]
        assert (point.label, point.name) == ("3. März", "Woche vom 3. März 2025")
    with in_language("ru"):
        assert whose_turn(d).label == "Sam Staff: передать клиенту"
    with in_language("en"):
        assert whose_turn(d).label == "Sam Staff: deliver to the client"
        point = metrics.trend([], period)[0]
        assert (point.label, point.name) == ("3 Mar", "week of 3 Mar 2025")


@pytest.mark.parametrize("language", ["de", "fr", "es", "ru"])
def test_every_staff_page_string_is_translated(language):
    """The staff part's catalogue entries are all there, in every shipped language."""
    with (CATALOGUES / language / "LC_MESSAGES" / "messages.mo").open("rb") as f:
        catalogue = read_mo(f)
    for english in ("What needs attention", "Approval metrics", "Conditions still open",
                    "Deliver version %(number)s to %(client)s", "week of %(day)s",
                    "You uploaded this version, so a colleague has to review it."):
        message = catalogue.get(english)
        assert message is not None and message.string, (language, english)
    plural = catalogue.get(("%(num)d new client comment", "%(num)d new client comments"))
    assert plural is not None and all(plural.string), language
