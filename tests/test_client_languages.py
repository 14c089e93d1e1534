# ruff: noqa: RUF001  (Russian text: its letters look like Latin ones on purpose)
"""The client's pages in five languages: the review page (with comments, a pin, conditions
and points from an earlier version, and that version's decisions) reads in the approver's
language with no English left; dates, numbers and file sizes follow the locale; staff's
choice for a contact and the client's default are honoured; the switch on the page keeps the
approver's choice in the database and refuses anything but a shipped language."""
from __future__ import annotations

import html as html_lib
import io
import re
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_skeleton
from babel.messages.pofile import read_po
from werkzeug.datastructures import MultiDict

from portal import workflow
from portal.extensions import db
from portal.formats import format_number, format_size
from portal.i18n import TRANSLATIONS, in_language
from portal.local_time import format_day, format_long_day, format_when
from portal.models import Approver, DeliverableState, Outcome, Policy, ReviewRequest
from portal.workflow.comments import post_comment
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen
from tests.test_renders import three_page_pdf

S = DeliverableState
LANGUAGES = ("en", "de", "fr", "es", "ru")
LOGO = "Swap the logo"
POINT = "Bigger headline"
PINNED = "Move this block"
TEAM_REPLY = "Done in the next round"

# A few phrases each page must show, written by hand (not read back from the catalogue).
KNOWN = {
    "en": ("Your decision", "Earlier versions", "Conditions from earlier versions",
           "Your points from earlier versions", "Post comment", "Approve with conditions"),
    "de": ("Ihre Entscheidung", "Frühere Versionen", "Bedingungen aus früheren Versionen",
           "Ihre Anmerkungen zu früheren Versionen", "Kommentar senden",
           "Unter Bedingungen freigeben"),
    "fr": ("Votre décision", "Versions précédentes", "Conditions des versions précédentes",
           "Vos remarques sur les versions précédentes", "Publier le commentaire",
           "Approuver sous conditions"),
    "es": ("Su decisión", "Versiones anteriores", "Condiciones de versiones anteriores",
           "Sus observaciones sobre versiones anteriores", "Publicar comentario",
           "Aprobar con condiciones"),
    "ru": ("Ваше решение", "Предыдущие версии", "Условия из предыдущих версий",
           "Ваши замечания к предыдущим версиям", "Отправить комментарий",
           "Одобрить с условиями"),
}
WORD = re.compile(r"[^\W\d_][\w']*")
# Where the client's words come from: their pages and the messages they can meet.
CLIENT_SOURCES = ("templates/client/", "templates/errors/", "templates/_viewer.html",
                  "templates/_conditions.html", "templates/_macros.html",
                  "templates/_flashes.html", "templates/base.html", "templates/compare.html",
                  "portal/views/client", "portal/models/labels.py",
                  "portal/workflow/policies.py", "portal/workflow/decisions.py",
                  "portal/workflow/comments.py", "portal/workflow/step_up.py")
SIZE_UNIT = {"en": "kB", "de": "kB", "fr": "ko", "es": "kB", "ru": "кБ"}
LANGUAGE_ERROR = {"de": "Wählen Sie eine der Sprachen aus der Liste.",
                  "en": "Choose one of the languages in the list."}


# --- the scene ---------------------------------------------------------------------------

def _open(make_browser, approver: Approver):
    browser = make_browser()
    assert browser.get(f"/r/{issue_token(approver)}").status_code == 303
    return browser


@pytest.fixture
def scene(make_deliverable, make_browser, staff, colleague):
    """Version 1: A1 made a point and approved with a condition, A2 asked for changes.
    Version 2 (open, two approvers): a pinned client comment and a reply from the team."""
    d = make_deliverable(S.DELIVERED, approvers=2)
    first = d.open_request
    one, two = first.approvers
    post_comment(one.contact, first, POINT, seen_sha256=on_screen(one))
    workflow.record_decision(one, Outcome.APPROVED_WITH_CONDITIONS, "",
                             seen_sha256=on_screen(one), conditions=[LOGO])
    workflow.record_decision(two, Outcome.REJECTED, "Wrong colours", seen_sha256=on_screen(two))
    workflow.upload_version(staff, d, io.BytesIO(three_page_pdf()), "homepage-v2.pdf",
                            "Round 2")  # three pages, a few kB: a size in kB to read
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL,
                               future(7))
    db.session.commit()
    approver = request.approvers[0]
    browser = _open(make_browser, approver)
    assert browser.post(f"{browser.review}/comments", {
        "body": PINNED, "page": "1", "x": "0.5", "y": "0.25", "sha256": on_screen(approver),
    }).status_code == 303
    assert post_comment(staff, request, TEAM_REPLY) is not None
    db.session.commit()
    assert browser.get(browser.review).status_code == 200  # shows (and so ends) the flash
    return {"deliverable": d, "request": request, "approver": approver, "browser": browser}


def _page(browser) -> str:
    response = browser.get(browser.review)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def _words(page: str) -> str:
    """What a reader sees: the page's text and readable attributes, tags dropped."""
    body = page[page.index("<body"):]
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", body, flags=re.S)
    attributes = " ".join(re.findall(r'\b(?:alt|aria-label|title|data-announce)="([^"]*)"',
                                     body))
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", body).split()) + " " +
                             attributes)


def _flat(text: str) -> str:
    """Spaces as _words leaves them (CLDR writes some as no-break spaces)."""
    return " ".join(text.split())


def _catalogue(lang: str):
    with (TRANSLATIONS / lang / "LC_MESSAGES/messages.po").open("rb") as f:
        return read_po(f, locale=lang)


def _ascii_words(text: str) -> set[str]:
    """Whole words of four letters or more written in plain Latin letters ("Frühere" is not
    "here"), lower-cased."""
    return {w.lower() for w in WORD.findall(text) if w.isascii() and len(w) >= 4}


def _client_messages() -> list:
    """The template catalogue's messages used on the client's pages (by their locations)."""
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        return [m for m in read_po(f) if m.id and any(
            path.startswith(CLIENT_SOURCES) for path, _line in m.locations)]


def _english_words() -> set[str]:
    """Every word of the client's English msgids."""
    words: set[str] = set()
    for message in _client_messages():
        ids = message.id if isinstance(message.id, tuple | list) else (message.id,)
        for text in ids:
            words |= _ascii_words(text or "")
    return words


def _translated_words(lang: str) -> set[str]:
    words: set[str] = set()
    for message in _catalogue(lang):
        strings = message.string if isinstance(message.string, tuple | list) else (
            message.string,)
        for text in strings:
            words.update(w.lower() for w in re.findall(r"\w{4,}", text or ""))
    return words


def _data_free(words: str, scene) -> str:
    """The page's words without what people typed or named (titles, names, bodies)."""
    d = scene["deliverable"]
    typed = [d.title, d.description, d.project.name, d.project.client.name, POINT, PINNED,
             TEAM_REPLY, LOGO, "Wrong colours", "Round 2", "First cut", "homepage-v2.pdf",
             "homepage.pdf", "Signoff", "SHA-256", scene["staff_name"]]
    typed += [c.name for c in d.project.client.contacts]
    for item in sorted(filter(None, typed), key=len, reverse=True):
        words = words.replace(item, " ")
    return words


# --- the page in each language -----------------------------------------------------------

@pytest.mark.parametrize("lang", LANGUAGES)
def test_the_review_page_reads_in_each_language(scene, staff, lang):
    scene["staff_name"] = staff.name
    approver: Approver = scene["approver"]
    approver.contact.language = lang  # staff's choice for this contact
    db.session.commit()
    page = _page(scene["browser"])
    assert f'<html lang="{lang}">' in page
    words = _words(page)
    for phrase in KNOWN[lang]:
        assert phrase in words, (lang, phrase)
    # Everything the scene set up is on the page.
    for shown in (POINT, PINNED, TEAM_REPLY, LOGO):
        assert shown in words
    if lang != "en":
        for phrase in KNOWN["en"]:
            assert phrase not in words, (lang, phrase)
        # No English word of the client's catalogue is left, unless the language writes
        # it the same way ("Version", "Zoom", "Document").
        leftover = _ascii_words(_data_free(words, scene))
        english = leftover & _english_words() - _translated_words(lang)
        assert not english, (lang, sorted(english))

    # Dates: the due date in the locale's long form, each comment's time in the short one.
    request: ReviewRequest = scene["request"]
    assert _flat(format_date(request.due_date, "full" if lang != "en" else "EEEE d MMMM y",
                             locale=lang)) in words
    zone = approver.contact.client.zone or UTC
    posted = max(c.created_at for c in request.comments)
    local = posted.astimezone(zone)
    day = (format_skeleton("yMMMEd", local, locale=lang) if lang != "en"
           else format_date(local, "EEE d MMM y", locale="en"))
    assert _flat(f"{day}, {local:%H:%M}") in words

    # The file's size, in the locale's unit and digits.
    size = request.version.size
    assert size >= 1024
    assert f"{round(size / 1024)} {SIZE_UNIT[lang]}" in words


def test_known_dates_numbers_and_sizes_per_locale(app):
    moment = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)
    berlin = ZoneInfo("Europe/Berlin")
    expected = {
        "en": ("Tue 1 Dec 2026, 14:05 CET", "Fri 4 Dec", "Friday 4 December 2026",
               "1,234,567", "1.5 MB", "512 bytes"),
        "de": ("Di., 1. Dez. 2026, 14:05 MEZ", "Fr., 4. Dez.", "Freitag, 4. Dezember 2026",
               "1.234.567", "1,5 MB", "512 Byte"),
        "fr": ("mar. 1 déc. 2026, 14:05 CET", "ven. 4 déc.", "vendredi 4 décembre 2026",
               "1\u202f234\u202f567", "1,5\u202fMo", "512\xa0octets"),  # CLDR's spaces
        "es": ("mar, 1 dic 2026, 14:05 CET", "vie, 4 dic", "viernes, 4 de diciembre de 2026",
               "1.234.567", "1,5 MB", "512 bytes"),
        "ru": ("вт, 1 дек. 2026\u202fг., 14:05 CET", "пт, 4 дек.",
               "пятница, 4 декабря 2026\u202fг.",
               "1\xa0234\xa0567", "1,5 МБ", "512 байт"),
    }
    day = datetime(2026, 12, 4).date()
    for lang, (when, short, long, number, mb, small) in expected.items():
        with app.test_request_context(), in_language(lang):
            assert format_when(moment, berlin) == when
            assert format_day(day) == short
            assert format_long_day(day) == long
            assert format_number(1234567) == number
            assert format_size(1572864) == mb
            assert format_size(512) == small
    # Outside any request (a job without a language): English, as before.
    assert format_when(moment) == "Tue 1 Dec 2026, 13:05 UTC"


# --- whose language ----------------------------------------------------------------------

def test_the_clients_language_is_the_default_and_staffs_choice_wins(scene):
    approver: Approver = scene["approver"]
    client = approver.contact.client
    client.language = "fr"
    db.session.commit()
    assert '<html lang="fr">' in _page(scene["browser"])
    approver.contact.language = "es"  # staff chose Spanish for this contact
    db.session.commit()
    page = _page(scene["browser"])
    assert '<html lang="es">' in page and "Su decisión" in page
    approver.contact.language = None
    client.language = None
    db.session.commit()
    assert '<html lang="en">' in _page(scene["browser"])  # the portal's


def test_the_switch_remembers_the_choice_for_this_approver(scene, make_browser):
    approver: Approver = scene["approver"]
    browser = scene["browser"]
    approver.contact.language = "de"
    db.session.commit()
    page = _page(browser)
    assert 'name="language"' in page and '<option value="ru" lang="ru">Русский</option>' in page
    assert f'action="/review/{approver.public_id}/language"' in page

    switched = browser.post(f"{browser.review}/language", {"language": "ru"})
    assert switched.status_code == 303 and switched.headers["Location"].endswith(
        browser.review)
    db.session.refresh(approver)
    assert approver.language == "ru"
    page = _page(browser)
    assert '<html lang="ru">' in page and "Ваше решение" in page
    assert '<option value="ru" lang="ru" selected>' in page

    # The other approver of the same request still reads their contact's language.
    other = scene["request"].approvers[1]
    other.contact.language = "fr"
    db.session.commit()
    other_browser = _open(make_browser, other)
    assert '<html lang="fr">' in _page(other_browser)
    db.session.refresh(other)
    assert other.language is None

    # htmx pieces and the answers to posts speak the chosen language too.
    panel = browser.get(f"{browser.review}?choice=approve", headers={"HX-Request": "true"})
    title = scene["deliverable"].title
    assert f"Одобрить версию 2 материала «{title}»" in html_lib.unescape(
        panel.get_data(as_text=True))
    empty = browser.post(f"{browser.review}/comments", {"body": " ",
                                                        "sha256": on_screen(approver)})
    assert empty.status_code == 422
    assert "Сначала напишите комментарий." in empty.get_data(as_text=True)
    missing = browser.get(f"{browser.review}/files/999999")
    assert missing.status_code == 404
    assert "Не удалось найти эту страницу" in missing.get_data(as_text=True)


@pytest.mark.parametrize("code", ["xx", "", "EN", "de-DE", "<script>alert(1)</script>"])
def test_a_bad_code_is_refused_and_nothing_changes(scene, code):
    approver: Approver = scene["approver"]
    approver.contact.language = "de"
    db.session.commit()
    browser = scene["browser"]
    response = browser.post(f"{browser.review}/language", MultiDict({"language": code}))
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert LANGUAGE_ERROR["de"] in page and '<html lang="de">' in page
    assert "<script>alert(1)</script>" not in page
    assert PINNED in page  # the page as it was, nothing lost
    db.session.refresh(approver)
    assert approver.language is None


def test_the_switch_needs_the_approvers_link(scene, make_browser):
    approver: Approver = scene["approver"]
    stranger = make_browser()
    response = stranger.post(f"/review/{approver.public_id}/language", {"language": "ru"})
    assert response.status_code == 403
    db.session.refresh(approver)
    assert approver.language is None


def test_every_client_msgid_is_translated():
    """Each language's catalogue holds every string of the client's part, none empty or
    fuzzy."""
    ours = _client_messages()
    for lang in ("de", "fr", "es", "ru"):
        shipped = _catalogue(lang)
        assert len(ours) > 250
        for m in ours:
            found = shipped.get(m.id, context=m.context)
            assert found is not None, (lang, m.id)
            strings = found.string if isinstance(found.string, tuple | list) else (
                found.string,)
            assert all(strings) and "fuzzy" not in found.flags, (lang, m.id)


def test_a_new_version_keeps_the_language_the_client_switched_to(
        make_deliverable, make_browser, staff, colleague):
    """The switch is remembered for the approver, and a new version's approver (the same
    contact on the same deliverable) starts where they left off: page and invitation agree."""
    d = make_deliverable(S.DELIVERED, approvers=1)
    first = d.open_request.approvers[0]
    browser = _open(make_browser, first)
    assert browser.post(f"{browser.review}/language", {"language": "fr"}).status_code == 303
    workflow.record_decision(first, Outcome.REJECTED, "Shorter", seen_sha256=on_screen(first))
    workflow.upload_version(staff, d, io.BytesIO(three_page_pdf()), "v2.pdf", "Round 2")
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, [first.contact], Policy.PARALLEL, future(7))
    db.session.commit()
    second = request.approvers[0]
    assert second.language == "fr"
    assert 'lang="fr"' in _page(_open(make_browser, second))
    from portal.notifications.compose import reader_of

    assert reader_of(first.contact.email, d.id).language == "fr"
