"""The restore drill, as the README tells it: after a bad day, dump the database and copy
the bucket, restore both into a fresh database and a fresh bucket, and the restored
portal passes `flask audit verify` and `flask storage verify` and serves its certificates.

PostgreSQL only (pg_dump / pg_restore); files on a real S3-protocol server (moto's).
"""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from portal import create_app, workflow
from portal.certificates.verify import Verdict, verify_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import Certificate, DeliverableState, PageRender, Version
from tests.conftest import SECRET, Browser
from tests.s3_server import copy_bucket, new_bucket, s3_server, s3_storage_fixture  # noqa: F401

S = DeliverableState
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def postgres_only(database_url: str) -> str:
    if not database_url.startswith("postgresql"):
        pytest.skip("the restore drill is pg_dump and pg_restore: PostgreSQL only")
    return database_url


def pg(*args: str) -> str:
    """A PostgreSQL client tool on the local server, as the README runs it."""
    done = subprocess.run([*args, "-h", "127.0.0.1", "-U", "postgres"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, f"{args[0]}: {done.stderr}"
    return done.stdout


def flask_command(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT,
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_a_dump_and_a_bucket_copy_restore_into_a_portal_that_verifies(
        postgres_only, s3_storage, sealed, app, make_deliverable, staff, tmp_path):
    # Real work: an approved deliverable with its certificate, and a second version of a
    # draft, each rendered; every file in the bucket.
    approved = make_deliverable(S.APPROVED)
    draft = make_deliverable(S.DRAFT)
    workflow.upload_version(staff, draft, io.BytesIO(sample_pdf("Second cut")), "v2.pdf",
                            "The second cut")
    db.session.commit()
    certificate = db.session.scalar(select(Certificate))
    assert certificate is not None
    assert certificate.request.version_id == approved.current_version.id
    assert db.session.scalar(select(db.func.count()).select_from(PageRender)) >= 2
    versions = db.session.scalar(select(db.func.count()).select_from(Version))
    db.session.commit()

    # 1. Dump the database; copy every object to a fresh bucket.
    source_db = make_url(postgres_only).database
    dump = tmp_path / "signoff.dump"
    pg("pg_dump", "--format=custom", "--no-owner", f"--file={dump}", source_db)
    endpoint = s3_storage["endpoint"]
    restored_bucket = new_bucket(endpoint)
    copied = copy_bucket(endpoint, s3_storage["bucket"], restored_bucket)
    assert copied >= versions + 1

    # 2. Restore into a fresh database.
    restored_db = f"{source_db}_restore_{uuid.uuid4().hex[:8]}"
    pg("createdb", restored_db)
    try:
        pg("pg_restore", "--no-owner", "--exit-on-error", f"--dbname={restored_db}", str(dump))
        restored_url = make_url(postgres_only).set(database=restored_db).render_as_string(
            hide_password=False)
        settings = {
            "DATABASE_URL": restored_url, "SECRET_KEY": SECRET,
            "FILE_STORAGE_URL": f"s3://{restored_bucket}/{s3_storage['prefix']}",
            "S3_ENDPOINT_URL": endpoint, "S3_REGION": s3_storage["S3_REGION"],
            "FILE_STORE": str(tmp_path / "restored-scratch"),
            "INSTANCE_PATH": str(tmp_path / "restored-instance"),
            "SIGNING_KEY": str(sealed[0]), "SIGNING_CERT": str(sealed[1]),
            "REDIS_URL": "",
        }

        # 3. Both verify commands pass against the restored database and bucket.
        audit = flask_command(settings, "audit", "verify")
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert "Audit chain intact" in audit.stdout
        storage = flask_command(settings, "storage", "verify")
        assert storage.returncode == 0, storage.stdout + storage.stderr
        assert "all intact" in storage.stdout and f"{versions} version" in storage.stdout

        # 4. The restored portal serves the certificate, byte for byte the one issued.
        _serve_the_certificate(settings, certificate.public_id, certificate.pdf_sha256,
                               staff.email)
    finally:
        pg("dropdb", "--if-exists", "--force", restored_db)


def _serve_the_certificate(settings: dict[str, str], public_id: str, sha256: str,
                           email: str) -> None:
    restored = create_app({
        "TESTING": True, "SECRET_KEY": SECRET, "LOGIN_RATE_LIMIT": "1000 per minute",
        "SQLALCHEMY_DATABASE_URI": settings["DATABASE_URL"],
        **{name: settings[name] for name in ("FILE_STORAGE_URL", "S3_ENDPOINT_URL",
                                             "S3_REGION", "FILE_STORE", "REDIS_URL")},
        "SIGNING_KEY": settings["SIGNING_KEY"], "SIGNING_CERT": settings["SIGNING_CERT"],
        "SIGNING_PKCS12": "",
    })
    with restored.app_context():
        try:
            browser = Browser(restored.test_client())
            browser.login(email)
            served = browser.get(f"/certificates/{public_id}.pdf")
            assert served.status_code == 200
            pdf: Any = served.get_data()
            assert hashlib.sha256(pdf).hexdigest() == sha256
            assert verify_pdf(pdf).verdict == Verdict.GENUINE
        finally:
            db.session.remove()
            db.engine.dispose()
