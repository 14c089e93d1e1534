"""/verify upload time for hostile PDFs against a genuine certificate, in one run.

    .venv/bin/python bench/verify.py [--repeat 5] [--skip-old]

Builds a throwaway SQLite database with one issued certificate, then times
portal.certificates.verify_pdf (and POST /verify through the test client) on the genuine
file, a copy with one byte changed, two small hostile PDFs (a text bomb: one form whose
text operator repeats 300,000 times, drawn 4 times on 5 pages; an xref bomb: a compressed
cross-reference stream of a million free entries) and a one-page stranger. The baseline,
measured in the same run, is hashing the upload plus one indexed SELECT: the least any
answer costs. Unless --skip-old, it also times once how the replaced code looked for the
id in an upload whose hash matched nothing (pypdf's document information, then page 1's
text), on the same files.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import io
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from flask_migrate import upgrade
from pypdf import PdfReader
from sqlalchemy import select

from portal import create_app
from portal.certificates import issue_certificate, verify_pdf
from portal.certificates.claim import ID_PATTERN
from portal.certificates.seal import create_development_key
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import Certificate
from tests.hostile_pdfs import text_bomb_pdf, xref_bomb_pdf

ROOT = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def approved_request_id() -> int:
    """One approved request, made the way bench/certificates.py makes its own."""
    spec = importlib.util.spec_from_file_location("bench_certificates",
                                                  ROOT / "bench" / "certificates.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.approved_request(1).id


def bare(pdf: bytes) -> None:
    digest = hashlib.sha256(pdf).hexdigest()
    db.session.scalar(select(Certificate.id).where(Certificate.pdf_sha256 == digest))
    db.session.rollback()


def old_claim(pdf: bytes) -> str | None:
    """What verify.py did with an upload before this change, minus the queries."""
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        found = ID_PATTERN.search(str((reader.metadata or {}).get("/Title", "")))
        if found is None and reader.pages:
            found = ID_PATTERN.search(reader.pages[0].extract_text() or "")
    except Exception:
        return None
    return found.group(0) if found else None


def flipped(pdf: bytes) -> bytes:
    changed = bytearray(pdf)
    changed[len(pdf) // 3] ^= 0x01  # inside a content stream, well before the seal
    return bytes(changed)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-old", action="store_true")
    args = parser.parse_args()
    logging.getLogger("pypdf").setLevel(logging.ERROR)  # the old path warns on the bombs
    work = Path(tempfile.mkdtemp(prefix="signoff-bench-verify-"))
    key, cert = create_development_key(work / "signing", "bench seal")
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-" * 8, "WTF_CSRF_ENABLED": False,
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.sqlite3'}",
                      "FILE_STORE": str(work / "files"), "SIGNING_KEY": str(key),
                      "SIGNING_CERT": str(cert), "VERIFY_RATE_LIMIT": "100000/minute"})
    with app.app_context():
        upgrade()
        certificate = issue_certificate(approved_request_id())
        db.session.commit()
        genuine = file_store().read_bytes(certificate.storage_key)
        files = {
            "genuine certificate": genuine,
            "one byte changed": flipped(genuine),
            "text bomb": text_bomb_pdf(),
            "text bomb claiming the id": text_bomb_pdf(
                title=f"Approval certificate {certificate.public_id}"),
            "xref bomb": xref_bomb_pdf(),
            "one-page stranger": sample_pdf("Quarterly report"),
        }
        client = app.test_client()

        def post(pdf: bytes) -> int:
            response = client.post("/verify", data={"file": (io.BytesIO(pdf), "upload.pdf")},
                                   content_type="multipart/form-data")
            assert response.status_code == 200, response.status_code
            return response.status_code

        base = timed(lambda: bare(genuine), args.repeat)
        print(f"baseline: sha256 of the certificate + one indexed SELECT: {base * 1000:.2f} ms")
        print(f"{'upload':28} {'bytes':>8} {'verdict':>8} {'verify_pdf ms':>13} {'x base':>7} "
              f"{'POST ms':>8} {'old claim ms':>12}")
        for label, pdf in files.items():
            verdict = verify_pdf(pdf).verdict.value
            seconds = timed(lambda p=pdf: verify_pdf(p), args.repeat)
            http = timed(lambda p=pdf: post(p), args.repeat)
            old = "" if args.skip_old else f"{timed(lambda p=pdf: old_claim(p), 1) * 1000:12.0f}"
            print(f"{label:28} {len(pdf):8} {verdict:>8} {seconds * 1000:13.2f} "
                  f"{seconds / base:7.1f} {http * 1000:8.1f} {old}")


if __name__ == "__main__":
    main()
