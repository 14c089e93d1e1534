"""`flask storage verify`: every stored version, render and certificate re-hashed from the
database's keys, on the local folder and on S3 (moto's server); what is missing or
altered is named and the command exits 1."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from portal import workflow
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import Certificate, DeliverableState, PageRender, Version
from tests.s3_server import s3_client, s3_server, s3_storage_fixture  # noqa: F401

S = DeliverableState


class Backend:
    """Reach into the store behind the portal's back, as a bad day would."""

    def __init__(self, app: Any, s3: dict[str, str] | None) -> None:
        self.app, self.s3 = app, s3

    def _path(self, key: str) -> Path:
        return Path(self.app.config["FILE_STORE"]) / key[:2] / key[2:4] / key

    def _name(self, key: str) -> str:
        return f"{self.s3['prefix']}/{key[:2]}/{key[2:4]}/{key}"

    def overwrite(self, key: str, data: bytes) -> None:
        if self.s3 is None:
            self._path(key).write_bytes(data)
        else:
            s3_client(self.s3["endpoint"]).put_object(Bucket=self.s3["bucket"],
                                                      Key=self._name(key), Body=data)

    def remove(self, key: str) -> None:
        if self.s3 is None:
            self._path(key).unlink()
        else:
            s3_client(self.s3["endpoint"]).delete_object(Bucket=self.s3["bucket"],
                                                         Key=self._name(key))


@pytest.fixture(params=["local", "s3"])
def backend_settings(request: pytest.FixtureRequest) -> dict[str, str] | None:
    """Request before `app`: the store the app keeps its files in."""
    return request.getfixturevalue("s3_storage") if request.param == "s3" else None


@pytest.fixture
def seeded(backend_settings, sealed, app, make_deliverable, staff) -> dict[str, Any]:
    """Two approved deliverables: versions, their page images and their certificates.
    Request it before `app` (the seal and the backend are settings)."""
    delivered = [make_deliverable(S.APPROVED) for _ in range(2)]  # the same file twice
    other = make_deliverable(S.DRAFT, with_version=False)
    workflow.upload_version(staff, other, io.BytesIO(sample_pdf("Another file")), "other.pdf",
                            "A file of its own")
    db.session.commit()
    certificates = list(db.session.scalars(select(Certificate).order_by(Certificate.id)))
    assert len(certificates) == 2
    pages = list(db.session.scalars(select(PageRender)))
    assert pages, "no page images were rendered"
    return {"deliverables": delivered, "other": other.current_version,
            "certificates": certificates, "pages": pages, "backend": Backend(app, backend_settings)}


def verify(app) -> Any:
    return app.test_cli_runner().invoke(args=["storage", "verify"])


def test_an_intact_store_passes_with_a_count(seeded, app):
    result = verify(app)
    assert result.exit_code == 0, result.output
    versions = db.session.scalar(select(db.func.count()).select_from(Version))
    assert "all intact" in result.output
    assert versions == 3
    assert "3 version" in result.output and "2 certificate" in result.output
    assert f"{2 * len(seeded['pages'])} render" in result.output


def test_an_altered_file_and_a_missing_one_are_named_and_fail(seeded, app):
    version = seeded["deliverables"][0].current_version
    certificate = seeded["certificates"][1]
    page = seeded["pages"][0]
    backend = seeded["backend"]
    backend.overwrite(version.storage_key, b"%PDF-1.7 not the file that was uploaded")
    backend.remove(certificate.storage_key)
    backend.remove(page.thumb_key)

    result = verify(app)

    assert result.exit_code == 1
    output = result.output
    assert f"altered: version {version.id} (key {version.storage_key})" in output
    assert f"missing: certificate {certificate.public_id}" in output
    assert (f"missing: render of version {page.version_id}, page {page.number} (thumbnail)"
            in output)
    # The second deliverable's version is the same file (one key): it is named too.
    shared = seeded["deliverables"][1].current_version
    assert f"altered: version {shared.id} (key {version.storage_key})" in output
    assert "problem(s)" in output
    assert f"version {seeded['other'].id} " not in output  # a file of its own, intact
