"""Certificate render+seal time against a bare one-page WeasyPrint PDF, in one run.

    .venv/bin/python bench/certificates.py [--repeat 5]

Builds a throwaway SQLite database with two approved requests whose deliverables have a
~10-event and a ~300-event audit trail, then times portal.certificates' render and seal.
"""
from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import weasyprint
from flask_migrate import upgrade
from pypdf import PdfReader
from sqlalchemy import func, select

from portal import create_app, workflow
from portal.certificates.issue import render_certificate
from portal.certificates.seal import create_development_key, seal_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import (
    AuditEvent,
    Client,
    Contact,
    Outcome,
    Policy,
    Project,
    Role,
    User,
    today_utc,
)
from portal.people.accounts import hash_password
from portal.workflow.comments import post_comment


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def approved_request(comments: int):
    staff = User(email=f"s{comments}@bench.example", name="Sam", role=Role.STAFF,
                 password_hash=hash_password("bench-password"))
    reviewer = User(email=f"r{comments}@bench.example", name="Rae", role=Role.STAFF,
                    password_hash=hash_password("bench-password"))
    client = Client(name=f"Client {comments}")
    contact = Contact(client=client, name="Jane Doe", email=f"jane{comments}@client.example")
    project = Project(client=client, name="Relaunch", owner=staff)
    db.session.add_all([staff, reviewer, client, contact, project])
    db.session.flush()
    due = today_utc() + timedelta(days=7)
    d = workflow.create_deliverable(staff, project, "Homepage", "The homepage.", due)
    workflow.upload_version(staff, d, io.BytesIO(sample_pdf("bench")), "home.pdf", "First")
    workflow.submit_for_review(staff, d, reviewer)
    workflow.review_internally(reviewer, d, approve=True)
    request = workflow.deliver(staff, d, [contact], Policy.PARALLEL, due)
    for i in range(comments):
        post_comment(contact, request, f"Comment {i}: " + "a fairly long remark " * 5,
                     seen_sha256=request.version.sha256)
    workflow.record_decision(request.approvers[0], Outcome.APPROVED_WITH_CONDITIONS,
                             "Fix the footer",
                             seen_sha256=request.version.sha256)
    db.session.commit()
    return request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signoff-bench-certs-"))
    key, cert = create_development_key(work / "signing", "bench seal")
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-" * 8,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.sqlite3'}",
                      "FILE_STORE": str(work / "files"), "SIGNING_KEY": str(key),
                      "SIGNING_CERT": str(cert)})
    with app.app_context():
        upgrade()
        small, large = approved_request(1), approved_request(290)
        bare = timed(lambda: weasyprint.HTML(string="<h1>Bare page</h1>").write_pdf(),
                     args.repeat)
        rows = [("bare one-page WeasyPrint", statistics.median(bare), 1, 0)]
        for label, request in (("certificate, short trail", small),
                               ("certificate, long trail", large)):
            events = db.session.scalar(select(func.count(AuditEvent.id)).where(
                AuditEvent.deliverable_id == request.version.deliverable_id))
            pdf = render_certificate(request, "SO-BENCH-0000-0000", request.closed_at)
            times = timed(lambda r=request: render_certificate(r, "SO-BENCH-0000-0000",
                                                               r.closed_at), args.repeat)
            rows.append((label, statistics.median(times), len(PdfReader(io.BytesIO(pdf)).pages),
                         events))
        seal = timed(lambda: seal_pdf(weasyprint.HTML(string="<p>x</p>").write_pdf(),
                                      app.config, reason="bench"), args.repeat)
        rows.append(("seal alone (bare page + PAdES)", statistics.median(seal), 1, 0))
        base = rows[0][1]
        print(f"{'what':34} {'events':>6} {'pages':>6} {'median s':>9} {'x bare':>7}")
        for label, seconds, pages, events in rows:
            print(f"{label:34} {events:>6} {pages:>6} {seconds:9.3f} {seconds / base:7.1f}")


if __name__ == "__main__":
    main()
