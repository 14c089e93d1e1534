"""Every email in its reader's language: a client's contacts read theirs in the contact's
language (their switch on the review page first), staff in their own; a reminder the send
job writes later ends in the same language. Sent through the real SMTP sink and read
there, as the reader would: the translated words are there, no English sentence of the
template is left, and dates are written the locale's way."""
from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_file
from babel.messages.pofile import read_po
from sqlalchemy import select

from portal import workflow
from portal.certificates import create_development_key
from portal.extensions import db
from portal.i18n import in_language
from portal.local_time import format_long_day, format_when
from portal.models import (
    DeliverableState,
    OutboxMessage,
    Outcome,
    Policy,
    User,
    utcnow,
)
from portal.notifications import conversation
from portal.workflow import reminders, step_up
from portal.workflow.closing import expire_request
from portal.workflow.comments import post_comment
from portal.workflow.invitations import send_fresh_link
from tests.conftest import SmtpSink, as_sent, future, on_screen

S = DeliverableState
ROOT = Path(__file__).resolve().parent.parent
EMAILS = ROOT / "templates" / "emails"
TRANSLATIONS = ROOT / "portal" / "translations"
CODE = re.compile(r"\b(\d{6})\b")
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
# How each language opens an email and asks for a review: written out here, not read from
# the catalogue, so a catalogue that lost its words fails.
GREETING = {"en": "Hello", "de": "Guten Tag", "fr": "Bonjour", "es": "Hola",
            "ru": "Здравствуйте"}
ASKED = {"en": "has sent you", "de": "zur Prüfung gesendet", "fr": "vous a envoyé",
         "es": "le ha enviado", "ru": "отправил(а) вам на согласование"}  # noqa: RUF001
PERSONAL = {"en": "This link is personal to you", "de": "Dieser Link ist persönlich",
            "fr": "Ce lien vous est personnel", "es": "Este enlace es personal",
            "ru": "не пересылайте её"}
LANGUAGES = list(GREETING)
OUR_TEMPLATES = ("certificate_issued", "comment_notice", "comment_reply", "decision_code",
                 "decision_not_needed", "decision_receipt", "decision_recorded", "escalation",
                 "internal_review_request", "link_renewed", "reminder", "request_expired",
                 "review_request")


@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff languages seal")


@pytest.fixture
def mail(app_config: dict[str, Any], smtp_sink: SmtpSink, seal_key) -> SmtpSink:
    """Request before `app`: in-process jobs send to the real SMTP sink and seal with the
    development key."""
    app_config.update(REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_sink.port,
                      SIGNING_KEY=str(seal_key[0]), SIGNING_CERT=str(seal_key[1]),
                      SIGNING_PKCS12="")
    return smtp_sink


# --- what a template says in English --------------------------------------------------

def _msgids(path: Path) -> list[str]:
    options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
    found = []
    for _line, message, _comments, _context in extract_from_file(
            "jinja2.ext:babel_extract", str(path), options=options):
        found.extend([message] if isinstance(message, str) else message)
    return found


def _english_sentences(template: str) -> set[str]:
    """The literal stretches of every msgid the template (and the layout) uses, long enough
    to be English prose rather than a name or a number."""
    paths = [EMAILS / f"{template}{part}" for part in (".subject.txt", ".txt", ".html")]
    stretches = set()
    for message in (m for p in [*paths, EMAILS / "_layout.html"] for m in _msgids(p)):
        for piece in re.split(r"%\(\w+\)[sd]|[“”‘’'\"()]", message):  # noqa: RUF001
            piece = piece.strip(" .,:;")
            if len(piece) >= 12 and " " in piece:
                stretches.add(piece)
    assert stretches, template
    return stretches


def _words(text: str) -> str:
    return " ".join(text.split())


def _text(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content()


def _html(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return body.get_content()


def _assert_in_language(message: EmailMessage, template: str, code: str) -> str:
    """Subject, text and HTML are in `code`: its greeting, the right <html lang>, and (in
    any language but English) none of the template's English sentences."""
    subject, text, html = message["Subject"], _words(_text(message)), _words(_html(message))
    assert text.startswith(GREETING[code]), (template, code, text[:80])
    assert f'<html lang="{code}">' in html, (template, code)
    english = _english_sentences(template)
    if code == "en":  # the check below can fail: English text has these stretches
        assert any(s in text for s in english), (template, text[:200])
        return text
    for where, words in (("subject", subject), ("text", text), ("html", html)):
        left = [s for s in english if s in words]
        assert not left, (template, code, where, left)
    for month in MONTHS:
        assert month not in text and month not in subject, (template, code, month)
    return text


class Inbox:
    """What reached one address since it was last asked."""

    def __init__(self, sink: SmtpSink, address: str) -> None:
        self.sink, self.address, self.seen = sink, address, 0

    def new(self) -> list[EmailMessage]:
        db.session.commit()  # anything written goes out (the in-process jobs send it)
        messages = self.sink.to(self.address)
        fresh, self.seen = messages[self.seen:], len(messages)
        return fresh

    def one(self) -> EmailMessage:
        fresh = self.new()
        assert len(fresh) == 1, [m["Subject"] for m in fresh]
        return fresh[0]


def _client_with_language(make_client, make_project, code: str, *, contacts: int = 2):
    client = make_client(contacts=contacts)
    client.language, client.timezone = code, "Europe/Berlin"
    db.session.commit()
    return make_project(client)


# --- the catalogue ------------------------------------------------------------------

def _catalogue(code: str):
    with (TRANSLATIONS / code / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=code)


@pytest.mark.parametrize("code", ["de", "fr", "es", "ru"])
def test_every_msgid_of_every_email_is_translated(code):
    catalogue = _catalogue(code)
    paths = [EMAILS / "_layout.html"] + [EMAILS / f"{name}{part}" for name in OUR_TEMPLATES
                                         for part in (".subject.txt", ".txt", ".html")]
    untranslated = []
    for path in paths:
        options = {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}
        for _line, message, _comments, context in extract_from_file(
                "jinja2.ext:babel_extract", str(path), options=options):
            key = message if isinstance(message, str) else message[0]
            entry = catalogue.get(key, context)
            strings = () if entry is None else (
                entry.string if isinstance(entry.string, tuple) else (entry.string,))
            if entry is None or not strings or not all(strings) or entry.fuzzy:
                untranslated.append((path.name, key))
    assert not untranslated


# --- a client's emails, one language each ----------------------------------------------

@pytest.mark.parametrize("code", LANGUAGES)
def test_each_client_email_arrives_in_the_contacts_language(
        mail, app, make_client, make_project, make_deliverable, staff, code):
    project = _client_with_language(make_client, make_project, code)
    d = make_deliverable(S.READY, project=project)
    contacts = project.client.contacts
    ann_box, bob_box = (Inbox(mail, c.email) for c in contacts)

    request = workflow.deliver(staff, d, contacts, Policy.ANY_ONE, future(7), require_code=True)
    db.session.commit()
    ann, bob = request.approvers
    invitation = ann_box.one()
    text = _assert_in_language(invitation, "review_request", code)
    assert ASKED[code] in text and PERSONAL[code] in text
    with in_language(code):  # the due date and the link's end, the locale's way
        assert _words(format_long_day(request.due_date)) in text
        until = _words(format_when(ann.link_expires_at, project.client.zone))
        assert until in text and until in _words(_html(invitation))
    bob_box.one()

    # A reminder is queued unrendered and written by the send job: in the same language.
    assert reminders.remind(ann, utcnow())
    queued = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith(f"reminder:{ann.id}:")))
    assert queued.deferred_template == "reminder" and queued.body_text == ""
    reminder = ann_box.one()
    _assert_in_language(reminder, "reminder", code)
    db.session.refresh(queued)
    assert queued.deferred_template is None and queued.subject == reminder["Subject"]

    # Bob's link ran out and he asked for a fresh one: the same invitation, in his language.
    send_fresh_link(bob)
    _assert_in_language(bob_box.one(), "review_request", code)

    # The team replies beside the document; the sweep sends it once the burst is quiet.
    post_comment(staff, request, "We moved the logo up.")
    db.session.commit()
    conversation.send_notices(utcnow() + timedelta(minutes=11))
    _assert_in_language(ann_box.one(), "comment_reply", code)
    _assert_in_language(bob_box.one(), "comment_reply", code)

    # The step-up code, then a decision with a condition: the receipt, the others' notice
    # that they need not decide, and the sealed certificate.
    step_up.send_code(ann, seen_sha256=on_screen(ann))
    coded = ann_box.one()
    _assert_in_language(coded, "decision_code", code)
    typed = CODE.search(coded["Subject"]).group(1)
    assert step_up.confirm_code(ann, typed, seen_sha256=on_screen(ann)) == \
        step_up.CodeCheck.CONFIRMED
    workflow.record_decision(ann, Outcome.APPROVED_WITH_CONDITIONS, seen_sha256=on_screen(ann),
                             conditions=["Use the 2025 logo"], ip="203.0.113.9")
    db.session.commit()
    received = ann_box.new()
    assert len(received) == 2, [m["Subject"] for m in received]
    receipt, certificate = sorted(received, key=lambda m: bool(list(m.iter_attachments())))
    _assert_in_language(receipt, "decision_receipt", code)
    text = _assert_in_language(certificate, "certificate_issued", code)
    assert "Use the 2025 logo" in text
    [attachment] = list(certificate.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    _assert_in_language(bob_box.one(), "decision_not_needed", code)


def test_the_language_an_approver_switched_to_beats_the_contacts(
        mail, app, make_client, make_project, make_deliverable, staff):
    project = _client_with_language(make_client, make_project, "de", contacts=1)
    d = make_deliverable(S.DELIVERED, project=project)
    approver = d.open_request.approvers[0]
    approver.language = "ru"  # chosen on the review page
    db.session.commit()
    box = Inbox(mail, approver.contact.email)
    box.new()
    assert reminders.remind(approver, utcnow())
    text = _assert_in_language(box.one(), "reminder", "ru")
    assert "Напоминание от" in text


def test_a_queued_reminder_rendered_later_keeps_the_contacts_language(
        app, make_client, make_project, make_deliverable):
    project = _client_with_language(make_client, make_project, "fr", contacts=1)
    d = make_deliverable(S.DELIVERED, project=project)
    approver = d.open_request.approvers[0]
    approver.contact.language = "es"  # staff chose Spanish for this contact
    db.session.commit()
    assert reminders.remind(approver, utcnow())
    db.session.commit()
    row = db.session.scalar(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.startswith(f"reminder:{approver.id}:")))
    sent = as_sent(row)
    assert sent.subject.startswith(
        "Signoff: le recordamos que revise Homepage v3 v1 a más tardar el")
    assert "Le recordamos de parte de Signoff" in _words(sent.body_text)
    assert '<html lang="es">' in sent.body_html


# --- staff read theirs in their own language -------------------------------------------

def _inboxes(mail: SmtpSink, *people: User) -> Iterator[Inbox]:
    for person in people:
        box = Inbox(mail, person.email)
        box.new()
        yield box


@pytest.mark.parametrize("code", ["de", "ru"])
def test_staff_emails_follow_the_staff_members_language(
        mail, app, make_client, make_project, make_deliverable, staff, colleague, code):
    staff.language = colleague.language = code
    db.session.commit()
    project = _client_with_language(make_client, make_project, "en", contacts=1)
    owner_box, reviewer_box = _inboxes(mail, staff, colleague)

    d = make_deliverable(S.IN_REVIEW, project=project)
    _assert_in_language(reviewer_box.one(), "internal_review_request", code)
    workflow.review_internally(colleague, d, approve=True)
    request = workflow.deliver(staff, d, project.client.contacts, Policy.PARALLEL, future(7))
    db.session.commit()
    approver = request.approvers[0]

    post_comment(approver.contact, request, "Can the logo be larger?",
                 seen_sha256=on_screen(approver))
    db.session.commit()
    conversation.send_notices(utcnow() + timedelta(minutes=11))
    _assert_in_language(owner_box.one(), "comment_notice", code)

    send_fresh_link(approver)
    _assert_in_language(owner_box.one(), "link_renewed", code)

    reminders.escalate(request, utcnow() + timedelta(days=9))
    _assert_in_language(owner_box.one(), "escalation", code)

    expire_request(request, utcnow() + timedelta(days=20))
    _assert_in_language(owner_box.one(), "request_expired", code)

    make_deliverable(S.CHANGES_REQUESTED, project=project)
    told = [m for m in owner_box.new() if "Wrong colours" in _text(m)]
    assert len(told) == 1
    _assert_in_language(told[0], "decision_recorded", code)
