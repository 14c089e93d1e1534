"""Certificate seal, render+seal and download, each against its baseline in the same run.

    .venv/bin/python bench/certificates.py [--repeat 7] [--downloads 200]

Builds a throwaway SQLite database with two approved requests whose deliverables have a
~10-event and a ~300-event audit trail, then times, interleaved so that each figure and its
baseline see the same load (the machine is shared):
  - the seal alone (pyHanko over a bare page's PDF) against one RSA-3072 signature;
  - render+seal of each certificate against a bare one-page WeasyPrint render (and, for
    scale, WeasyPrint's own cost of 300 short paragraphs);
  - GET of an issued certificate through the app (signed in, in-process test client)
    against a bare Flask app sending the same PDF file with send_file.
Medians of wall time and of this process's CPU time (the CPU ratio is the steadier one on a
loaded machine); x base = median / the baseline's median.
"""
from __future__ import annotations

import argparse
import io
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import weasyprint
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from flask import Flask, send_file
from flask_migrate import upgrade
from pypdf import PdfReader
from sqlalchemy import func, select

from portal import create_app, workflow
from portal.certificates.issue import certificate_page, issue_certificate, render_certificate
from portal.certificates.render import html_to_pdf
from portal.certificates.seal import create_development_key, seal_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.files.storage import file_store
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

PASSWORD = "bench-password"


class Row:
    def __init__(self, label: str, base: str, fn: Callable[[], object]) -> None:
        self.label, self.base, self.fn = label, base, fn
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.note = ""

    def once(self) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        self.fn()
        self.cpu.append(time.process_time() - cpu)
        self.wall.append(time.perf_counter() - wall)


def interleaved(rows: list[Row], repeat: int) -> None:
    for row in rows:
        row.fn()  # warm: key loaded, fonts matched, templates compiled
    for _ in range(repeat):
        for row in rows:
            row.once()


def approved_request(comments: int):
    staff = User(email=f"s{comments}@bench.example", name="Sam", role=Role.STAFF,
                 password_hash=hash_password(PASSWORD))
    reviewer = User(email=f"r{comments}@bench.example", name="Rae", role=Role.STAFF,
                    password_hash=hash_password(PASSWORD))
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
    db.session.info.clear()  # nothing handed to a queue: no background job competes
    db.session.commit()
    return request


def events_of(request) -> int:
    return db.session.scalar(select(func.count(AuditEvent.id)).where(
        AuditEvent.deliverable_id == request.version.deliverable_id))


def render_rows(app: Flask, key: Path, pdf_dir: Path | None = None) -> list[Row]:
    rsa = load_pem_private_key(key.read_bytes(), None)
    page = weasyprint.HTML(string="<h1>Bare page</h1>").write_pdf()
    paragraphs = "".join(f"<p>{i} 2026-11-30 05:16:14 comment.posted Jane Doe 0123abcd</p>"
                         for i in range(300))
    rows = [
        Row("RSA-3072 signature (cryptography)", "", lambda: rsa.sign(
            b"x" * 32, padding.PKCS1v15(), hashes.SHA256())),
        Row("seal alone (bare page's PDF + PAdES)", "RSA-3072 signature (cryptography)",
            lambda: seal_pdf(page, app.config, reason="bench")),
        Row("bare one-page WeasyPrint", "", lambda: weasyprint.HTML(
            string="<h1>Bare page</h1>").write_pdf()),
        Row("bare WeasyPrint, 300 short paragraphs", "bare one-page WeasyPrint",
            lambda: weasyprint.HTML(string=paragraphs).write_pdf()),
    ]
    for comments in (1, 290):
        request = approved_request(comments)
        pdf = render_certificate(request, "SO-BENCH-0000-0000", request.closed_at, "en")
        row = Row(f"certificate render + seal, {events_of(request)} events",
                  "bare one-page WeasyPrint",
                  lambda r=request: render_certificate(r, "SO-BENCH-0000-0000", r.closed_at, "en"))
        if pdf_dir is not None:  # to look at (pdftoppm -r 70 -png)
            (pdf_dir / f"certificate-{events_of(request)}-events.pdf").write_bytes(pdf)
        row.note = f"{len(PdfReader(io.BytesIO(pdf)).pages)} pages, {len(pdf):,} bytes"
        rows += [row, *floor_rows(app, request, events_of(request))]
    return rows


def floor_rows(app: Flask, request, events: int) -> list[Row]:
    """WeasyPrint's own share of a certificate: its finished HTML laid out as the app lays
    it out (no queries, no QR code, no seal), and the same words with no markup, no
    stylesheet and no wrapping (one <pre>): a cheap layout of that text, not a proven floor."""
    html, page_css = certificate_page(request, "SO-BENCH-0000-0000", request.closed_at, "en")
    static = Path(app.static_folder or "static")
    words = re.sub(r"<[^>]+>", " ", html.split("<body>", 1)[1])
    return [Row(f"  its HTML laid out only ({events} events)", "bare one-page WeasyPrint",
                lambda: html_to_pdf(html, static, page_css=page_css)),
            Row(f"  its words alone, one <pre>, no CSS ({events} events)",
                "bare one-page WeasyPrint",
                lambda: weasyprint.HTML(string=f"<pre>{words}</pre>").write_pdf())]


def download_rows(app: Flask, work: Path) -> list[Row]:
    """The app's download route against a bare Flask app sending the same file, both
    through the in-process test client."""
    request = approved_request(3)
    certificate = issue_certificate(request.id)
    assert certificate is not None and file_store().path_for(
        certificate.storage_key).stat().st_size > 0
    db.session.info.clear()
    db.session.commit()
    url, path = f"/certificates/{certificate.public_id}.pdf", file_store().path_for(
        certificate.storage_key)
    size = path.stat().st_size
    bare = Flask("bare")

    @bare.get("/file.pdf")
    def file_pdf():
        return send_file(path, mimetype="application/pdf", as_attachment=True,
                         download_name="file.pdf", max_age=0)
    bare_client, app_client = bare.test_client(), app.test_client()
    login = app_client.post("/login", data={"email": "s3@bench.example",
                                            "password": PASSWORD})
    assert login.status_code == 302, login.status_code

    def get(client, target: str) -> Callable[[], None]:
        def fetch() -> None:
            response = client.get(target)
            assert response.status_code == 200, (target, response.status_code)
        return fetch
    static = Path(app.static_folder or "static") / "css" / "certificate.css"
    rows = [Row("bare Flask send_file (same PDF)", "", get(bare_client, "/file.pdf")),
            Row("GET /certificates/<id>.pdf (staff)", "bare Flask send_file (same PDF)",
                get(app_client, url)),
            # The app's own floor for sending a file: its middleware, no lookup, no check.
            Row("GET /static/css/certificate.css (app)", "bare Flask send_file (same PDF)",
                get(app_client, "/static/css/certificate.css"))]
    for row in rows[:2]:
        row.note = f"{size:,} bytes"
    rows[2].note = f"{static.stat().st_size:,} bytes"
    return rows


def report(rows: list[Row], title: str, per_second: bool = False) -> None:
    by_label = {row.label: row for row in rows}
    print(f"\n{title}")
    head = "req/s (1/p50)" if per_second else "x base (wall)"
    print(f"| what | p50 wall ms | p50 CPU ms | {head} | x base (CPU) | baseline | note |")
    print("|---|---:|---:|---:|---:|---|---|")
    for row in rows:
        wall, cpu = statistics.median(row.wall), statistics.median(row.cpu)
        base = by_label.get(row.base)
        if per_second:
            first = (f"{1 / wall:.0f}" + (f" ({(1 / wall) / (1 / statistics.median(base.wall)):.2f}"
                     "x base)" if base else ""))
        else:
            first = f"{wall / statistics.median(base.wall):.1f}" if base else "1"
        ratio = f"{cpu / statistics.median(base.cpu):.1f}" if base else "1"
        print(f"| {row.label} | {wall * 1000:.1f} | {cpu * 1000:.1f} | {first} | {ratio} | "
              f"{row.base or '(baseline)'} | {row.note} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--downloads", type=int, default=200)
    parser.add_argument("--pdf-dir", type=Path, help="write the two certificates here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signoff-bench-certs-"))
    key, cert = create_development_key(work / "signing", "bench seal")
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-" * 8, "REDIS_URL": "",
                      "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.sqlite3'}",
                      "FILE_STORE": str(work / "files"), "SIGNING_KEY": str(key),
                      "SIGNING_CERT": str(cert)})
    print(f"load before: {os.getloadavg()[0]:.2f} (1 min), {os.cpu_count()} CPUs")
    with app.app_context():  # each test-client request has a context (and session) of its own
        upgrade()
        rows = render_rows(app, key, args.pdf_dir)
        downloads = download_rows(app, work)
        interleaved(rows, args.repeat)
        db.session.commit()  # no read transaction of ours held open during the downloads
        interleaved(downloads, args.downloads)
    report(rows[:2], "seal (median of interleaved runs)")
    report(rows[2:], "render + seal")
    report(downloads, "certificate download, in-process test client", per_second=True)
    print(f"\nload after: {os.getloadavg()[0]:.2f} (1 min); repeat {args.repeat}, "
          f"downloads {args.downloads}")


if __name__ == "__main__":
    main()
