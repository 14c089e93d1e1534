"""Public verification: anyone can check a certificate by its id or by uploading it."""
from __future__ import annotations

from flask import Blueprint, current_app, request
from flask_babel import gettext as _

from portal.certificates import Verification, verify_id, verify_pdf
from portal.extensions import limiter
from portal.views.htmx import render

bp = Blueprint("verify", __name__)


def _limit() -> str:
    return current_app.config["VERIFY_RATE_LIMIT"]


def _page(result: Verification | None = None, status: int = 200, error: str = "",
          entered: str = ""):
    return render("public/verify.html", block="result", status=status, result=result,
                  error=error, entered=entered, max_mb=current_app.config["VERIFY_MAX_MB"])


@bp.get("/verify")
def form():
    return _page()


@bp.get("/verify/<public_id>")
@limiter.limit(_limit)
def by_link(public_id: str):
    return _page(verify_id(public_id), entered=public_id)


@bp.post("/verify")
@limiter.limit(_limit)
def check():
    max_bytes = current_app.config["VERIFY_MAX_MB"] * 1024 * 1024
    if request.content_length and request.content_length > max_bytes + 64 * 1024:
        limit = current_app.config["VERIFY_MAX_MB"]
        return _page(status=413, error=_("The file is larger than %(limit)s MB; our "
                                         "certificates are much smaller.", limit=limit))
    upload = request.files.get("file")
    if upload and upload.filename:
        data = upload.stream.read(max_bytes + 1)
        if len(data) > max_bytes:
            return _page(status=413,
                         error=_("That file is too large to be one of our certificates."))
        return _page(verify_pdf(data))
    public_id = request.form.get("certificate_id", "").strip()
    if not public_id:
        return _page(status=422, error=_("Type a certificate id or choose a PDF to upload."))
    return _page(verify_id(public_id), entered=public_id)


