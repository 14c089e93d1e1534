"""Issuing approval certificates."""
from __future__ import annotations

from jobs import app_context


def issue(request_id: int) -> str | None:
    """Render, seal and store the certificate of an approved request (once)."""
    from portal.certificates import issue_certificate
    from portal.extensions import db
    from portal.ops.metrics import CERTIFICATE_SECONDS

    with app_context():
        with CERTIFICATE_SECONDS.time():
            certificate = issue_certificate(request_id)
        db.session.commit()
        return certificate.public_id if certificate else None
