"""Every approver gets the finished certificate: once it is issued (sealed and stored), one
email each with the sealed PDF attached, through a real SMTP server; none for a request
that did not end approved, and never a second one however often the issuing job runs."""
from __future__ import annotations

import hashlib
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import jobs.certificates
from portal import workflow
from portal.certificates import ISSUE_JOB, Verdict, create_development_key, verify_pdf
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import (
    Certificate,
    Deliverable,
    DeliverableState,
    OutboxMessage,
    OutboxStatus,
    Outcome,
    ReviewRequest,
)
from portal.notifications import outbox
from portal.notifications.queue import after_commit
from tests.conftest import SmtpSink, on_screen, stored_path

S = DeliverableState
SUBJECT = "Approval certificate "


@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return create_development_key(tmp_path_factory.mktemp("seal"), "Signoff delivery seal")


@pytest.fixture
def signing(app_config: dict[str, Any], seal_key: tuple[Path, Path]) -> dict[str, str]:
    """Request before `app`: certificates are sealed with the development key."""
    settings = {"SIGNING_KEY": str(seal_key[0]), "SIGNING_CERT": str(seal_key[1]),
                "SIGNING_PKCS12": ""}
    app_config.update(settings)
    return settings


@pytest.fixture
def embedded_mail(app_config: dict[str, Any], smtp_sink: SmtpSink) -> SmtpSink:
    """Request before `app`: the embedded default (jobs in process) mailing to the sink."""
    app_config.update(REDIS_URL="", MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_sink.port)
    return smtp_sink


def _request_of(d: Deliverable) -> ReviewRequest:
    db.session.expire_all()
    return db.session.get(Deliverable, d.id).requests[0]


def _certificate_emails(sink: SmtpSink, address: str) -> list[EmailMessage]:
    return [m for m in sink.to(address) if m["Subject"].startswith(SUBJECT)]


def _certificate_rows() -> list[OutboxMessage]:
    return list(db.session.scalars(select(OutboxMessage).where(
        OutboxMessage.idempotency_key.like("certificate:%")).order_by(OutboxMessage.id)))


def _pdf_attachment(email: EmailMessage) -> tuple[str, bytes]:
    [part] = list(email.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    return part.get_filename() or "", part.get_content()


def _text(email: EmailMessage) -> str:
    body = email.get_body(preferencelist=("plain",))
    assert body is not None
    return body.get_content()


@pytest.mark.parametrize("state", [S.APPROVED, S.APPROVED_WITH_CONDITIONS])
def test_every_approver_gets_the_sealed_certificate_once(signing, embedded_mail, app,
                                                        make_deliverable, state):
    d = make_deliverable(state, approvers=2)  # the commit runs every job, the sink gets mail
    request = _request_of(d)
    certificate = request.certificate
    assert certificate is not None
    stored = file_store().read_bytes(certificate.storage_key)
    assert stored == stored_path(app, certificate.storage_key).read_bytes()
    assert hashlib.sha256(stored).hexdigest() == certificate.pdf_sha256

    assert len(request.approvers) == 2
    for approver in request.approvers:
        assert approver.decision is not None
        [email] = _certificate_emails(embedded_mail, approver.contact.email)
        name, pdf = _pdf_attachment(email)
        assert name == f"approval-certificate-{certificate.public_id}.pdf"
        assert pdf == stored
        verification = verify_pdf(pdf)
        assert verification.verdict == Verdict.GENUINE, verification.detail
        assert verification.certificate is not None
        assert verification.certificate.id == certificate.id

        assert certificate.public_id in email["Subject"] and "Homepage v3" in email["Subject"]
        text = _text(email)
        words = " ".join(text.split())
        assert f"Hello {approver.contact.name}," in text
        assert f"Certificate: {certificate.public_id}" in text
        assert "Deliverable: Homepage v3" in text
        assert "Version: 1, homepage.pdf" in text
        assert request.version.sha256 in text
        assert f"Outcome: {request.status.label.capitalize()}" in text
        assert f"http://portal.test/verify/{certificate.public_id}" in text
        assert f"is {request.status.label}." in words
        if state == S.APPROVED_WITH_CONDITIONS:
            assert "Conditions (" in text and "Fix the logo" in text
        else:
            assert "Conditions" not in text
        html = email.get_body(preferencelist=("html",))
        assert html is not None and certificate.public_id in html.get_content()
        assert email["Reply-To"] == d.owner.email

    rows = _certificate_rows()
    assert sorted(r.to_addr for r in rows) == sorted(a.contact.email for a in request.approvers)
    assert {r.status for r in rows} == {OutboxStatus.SENT}
    assert {r.deliverable_id for r in rows} == {d.id}
    # Nobody else (the owner, the reviewer) is sent the certificate.
    recipients = [r for rcpts, m in embedded_mail.messages if m["Subject"].startswith(SUBJECT)
                  for r in rcpts]
    assert sorted(recipients) == sorted(a.contact.email for a in request.approvers)


def test_a_rejected_request_sends_no_certificate(signing, embedded_mail, app,
                                                 make_deliverable):
    d = make_deliverable(S.CHANGES_REQUESTED, approvers=2)
    request = _request_of(d)
    rejecter, other = request.approvers

    assert db.session.scalar(select(func.count(Certificate.id))) == 0
    assert _certificate_rows() == []
    assert not any(m["Subject"].startswith(SUBJECT) for _, m in embedded_mail.messages)
    # The sink did get this request's other emails: the rejecter's receipt among them.
    assert any(m["Subject"].startswith("Your decision")
               for m in embedded_mail.to(rejecter.contact.email))
    assert not _certificate_emails(embedded_mail, other.contact.email)

    # Asking for a certificate of a request that did not end approved does nothing.
    assert jobs.certificates.issue(request.id) is None
    assert db.session.scalar(select(func.count(Certificate.id))) == 0
    assert _certificate_rows() == []


def test_what_staff_and_clients_typed_is_text_in_the_email(signing, embedded_mail, app,
                                                          make_deliverable):
    hostile = '<img src=x onerror="alert(1)">'
    d = make_deliverable(S.DELIVERED, approvers=1)
    d.title = f"Brief {hostile}"
    approver = d.open_request.approvers[0]
    workflow.record_decision(approver, Outcome.APPROVED_WITH_CONDITIONS, f"Keep {hostile}",
                             seen_sha256=on_screen(approver))
    db.session.commit()

    [email] = _certificate_emails(embedded_mail, approver.contact.email)
    html = email.get_body(preferencelist=("html",))
    assert html is not None
    assert "<img" not in html.get_content()
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html.get_content()
    assert f"Deliverable: Brief {hostile}" in _text(email)  # plain text stays literal
    assert f"Keep {hostile}" in _text(email)


def test_running_the_issuing_job_again_sends_no_second_email(signing, embedded_mail, app,
                                                             make_deliverable):
    d = make_deliverable(S.APPROVED, approvers=2)
    request = _request_of(d)
    public_id = request.certificate.public_id
    sent = len(embedded_mail.messages)
    assert sum(1 for _, m in embedded_mail.messages if m["Subject"].startswith(SUBJECT)) == 2

    # The job again, by hand and through the queue (as the sweep would ask for it) ...
    assert jobs.certificates.issue(request.id) == public_id
    after_commit(ISSUE_JOB, request.id, job_id="certificate-again")
    db.session.commit()  # runs it, and waits for whatever it queued
    # ... and the relay, for anything left pending.
    outbox.relay()
    db.session.commit()

    assert db.session.scalar(select(func.count(Certificate.id))) == 1
    assert len(_certificate_rows()) == 2
    assert len(embedded_mail.messages) == sent
    for approver in request.approvers:
        assert len(_certificate_emails(embedded_mail, approver.contact.email)) == 1


def test_an_altered_stored_certificate_is_never_sent(signing, embedded_mail, app,
                                                     make_deliverable):
    """The email carries the bytes issued or nothing: a stored file that no longer matches
    the recorded SHA-256 fails the row at once (staff see it) instead of going out."""
    embedded_mail.refuse_always = True  # the certificate emails stay pending
    d = make_deliverable(S.APPROVED, approvers=1)
    certificate = _request_of(d).certificate
    [row] = _certificate_rows()
    assert row.status == OutboxStatus.PENDING

    path = stored_path(app, certificate.storage_key)
    pdf = bytearray(path.read_bytes())
    pdf[len(pdf) // 2] ^= 0x01
    path.write_bytes(bytes(pdf))
    embedded_mail.refuse_always = False

    assert outbox.deliver(row.id) == OutboxStatus.FAILED
    db.session.expire_all()
    row = db.session.get(OutboxMessage, row.id)
    assert "differs from the one issued" in row.last_error
    assert not any(m["Subject"].startswith(SUBJECT) for _, m in embedded_mail.messages)


def test_through_redis_and_a_real_worker(signing, jobs_config, app, make_deliverable,
                                         run_worker, smtp_sink, monkeypatch):
    """The issuing job in an `rq worker` process: one email each, a second run adds none."""
    monkeypatch.setenv("SIGNING_KEY", signing["SIGNING_KEY"])
    monkeypatch.setenv("SIGNING_CERT", signing["SIGNING_CERT"])
    d = make_deliverable(S.APPROVED, approvers=2)
    run_worker.burst()
    request = _request_of(d)
    certificate = request.certificate
    assert certificate is not None
    stored = file_store().read_bytes(certificate.storage_key)
    for approver in request.approvers:
        [email] = _certificate_emails(smtp_sink, approver.contact.email)
        assert _pdf_attachment(email)[1] == stored
    sent = len(smtp_sink.messages)

    after_commit(ISSUE_JOB, request.id, job_id="certificate-again")
    db.session.commit()
    run_worker.burst()
    assert len(smtp_sink.messages) == sent
    assert len(_certificate_rows()) == 2
