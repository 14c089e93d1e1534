"""/api/v1: Approval certificates: metadata, sealed PDF, verification.

The list reads the finance page's rows with its filters (reports/finance.py), the PDF is
the finance download (views/common.certificate_response), and verifying is the public
verify page's check (certificates/verify.py). Every signed-in role may read them, as on
the pages."""
from __future__ import annotations

from collections.abc import Callable
from functools import partial, wraps
from typing import Any

import filetype
from flask import abort, current_app, request, url_for
from flask_babel import gettext as _
from flask_smorest import Blueprint
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from werkzeug.datastructures import FileStorage
from werkzeug.wrappers import Response

from portal.api.certificate_schemas import (
    CertificateListArgs,
    CertificateSchema,
    VerificationSchema,
    VerificationUploadSchema,
)
from portal.api.common import ID
from portal.api.common import problems as documented
from portal.api.pagination import page_of, paginate
from portal.certificates import Verdict, Verification, by_public_id, verify_pdf, verify_url
from portal.certificates.language import issued_languages
from portal.errors import DomainError, UnsupportedFile
from portal.extensions import db
from portal.files.filetypes import KINDS
from portal.models import (
    APPROVED_STATUSES,
    Certificate,
    Deliverable,
    Project,
    ReviewRequest,
    Version,
)
from portal.reports import finance
from portal.views.common import certificate_response

blp = Blueprint("api_certificates", __name__,
                description="Approval certificates: metadata, sealed PDF, verification")

REQUEST_ID = f"<{ID}:request_id>"
PDF = KINDS["pdf"].media_type


class TooLarge(DomainError):
    status = 413


problems = partial(documented, blp)  # the refusals an operation can answer


def _loaded() -> Any:
    """What a certificate's description reads, loaded with it."""
    return (selectinload(Certificate.request).selectinload(ReviewRequest.version)
            .selectinload(Version.deliverable).selectinload(Deliverable.project)
            .selectinload(Project.client))


def _described(certificate: Certificate, language: str) -> dict[str, Any]:
    review = certificate.request
    version = review.version
    deliverable = version.deliverable
    project = deliverable.project
    return {
        "id": certificate.public_id,
        "request": {"id": review.id, "status": review.status.value,
                    "status_label": review.status.label, "closed_at": review.closed_at},
        "version": {"id": version.id, "number": version.number,
                    "file_name": version.file_name, "sha256": version.sha256},
        "deliverable": {"id": deliverable.id, "title": deliverable.title},
        "project": {"id": project.id, "name": project.name},
        "client": {"id": project.client.id, "name": project.client.name},
        "issued_at": certificate.issued_at, "language": language, "sealed": True,
        "pdf_sha256": certificate.pdf_sha256, "size": certificate.size,
        "audit_head_hash": certificate.audit_head_hash,
        "verify_url": verify_url(certificate.public_id),
        "pdf_url": url_for("api_certificates.certificate_pdf",
                           certificate_id=certificate.public_id),
    }


def _describe_one(certificate: Certificate) -> dict[str, Any]:
    return _described(certificate, issued_languages([certificate.id])[certificate.id])


@blp.get("/certificates")
@blp.arguments(CertificateListArgs, location="query")
@blp.response(200, page_of(CertificateSchema))
@problems(401, 403, 422)
def list_certificates(args: dict[str, Any]) -> dict[str, Any]:
    """List certificates, newest first

    The approved work the finance page lists, with its filters: client, project, and the
    days the approval completed (start and end, inclusive, UTC)."""
    filters = finance.Filters(client=args.get("client"), project=args.get("project"),
                              start=args.get("start"), end=args.get("end"))
    approved = finance.approved_query(filters).order_by(None).subquery()
    query = (select(Certificate).join(approved, approved.c.id == Certificate.request_id)
             .options(_loaded()))
    page = paginate(query, Certificate.id, args)
    languages = issued_languages(c.id for c in page["items"])
    page["items"] = [_described(c, languages[c.id]) for c in page["items"]]
    return page


@blp.get("/certificates/<certificate_id>")
@blp.response(200, CertificateSchema)
@problems(401, 403, 404)
def get_certificate(certificate_id: str) -> dict[str, Any]:
    """Read a certificate's metadata"""
    certificate = by_public_id(certificate_id)
    if certificate is None:
        abort(404)
    return _describe_one(certificate)


@blp.get("/certificates/<certificate_id>/pdf")
@blp.response(200, {"type": "string", "format": "binary"}, content_type=PDF,
              description="The sealed PDF, as issued")
@problems(401, 403, 404)
def certificate_pdf(certificate_id: str) -> Response:
    """Download the sealed PDF"""
    return certificate_response(certificate_id)


@blp.get(f"/requests/{REQUEST_ID}/certificate")
@blp.response(200, CertificateSchema)
@problems(401, 403, 404)
def request_certificate(request_id: int) -> dict[str, Any]:
    """Read the certificate of a request

    404 while the request is open or did not end in an approval, and for the moment
    between the approval and the certificate being sealed (its detail says so)."""
    review = db.get_or_404(ReviewRequest, request_id)
    certificate = db.session.scalar(select(Certificate).where(
        Certificate.request_id == review.id).options(_loaded()))
    if certificate is None:
        abort(404, _("This request was approved; its certificate is being issued. Try again "
                     "in a moment.") if review.status in APPROVED_STATUSES else
              _("This request has no certificate: only an approved request gets one."))
    return _describe_one(certificate)


def _bounded(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse a body too large to be one of our certificates before it is read, as the
    verify page does."""
    @wraps(view)
    def checked(*args: Any, **kwargs: Any) -> Any:
        limit = current_app.config["VERIFY_MAX_MB"]
        if request.content_length and request.content_length > limit * 1024 * 1024 + 64 * 1024:
            raise TooLarge(_("The file is larger than %(limit)s MB; our certificates are much "
                             "smaller.", limit=limit))
        return view(*args, **kwargs)
    return checked


def _read(upload: FileStorage) -> bytes:
    max_bytes = current_app.config["VERIFY_MAX_MB"] * 1024 * 1024
    data = upload.stream.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise TooLarge(_("That file is too large to be one of our certificates."))
    if filetype.guess_mime(data[:8192]) != PDF:
        raise UnsupportedFile(_("That file is not a PDF: upload the certificate's PDF to "
                                "verify it."))
    return data


# The verify page's headings, in the reader's language.
SUMMARIES: dict[Verdict, Callable[[], str]] = {
    Verdict.GENUINE: lambda: _("Genuine"),
    Verdict.ALTERED: lambda: _("This file was altered after it was issued"),
    Verdict.UNKNOWN: lambda: _("No such certificate"),
}


def _verdict(result: Verification) -> dict[str, Any]:
    record = result.record  # read before verification ended its transaction
    certifies = None
    if record is not None:
        certifies = {**vars(record), "certificate_id": record.public_id,
                     "decisions": [vars(d) for d in record.decisions]}
    return {"valid": result.verdict == Verdict.GENUINE, "verdict": result.verdict.value,
            "summary": SUMMARIES[result.verdict](), "detail": result.detail,
            "certificate_id": record.public_id if record else None, "certifies": certifies}


@blp.post("/certificates/verify")
@_bounded
@blp.arguments(VerificationUploadSchema, location="files")
@blp.response(200, VerificationSchema)
@problems(401, 403, 413, 415, 422)
def verify_certificate(files: dict[str, FileStorage]) -> dict[str, Any]:
    """Verify a certificate PDF

    The public verify page's check: `valid` only if the upload is, byte for byte, a
    certificate we issued (its seal checked too). An altered copy says which certificate
    it claims to be and what that one records."""
    return _verdict(verify_pdf(_read(files["file"])))
