"""/api/v1: Versions: upload, download, page images.

The same functions as the staff pages: upload_version (portal/views/staff.py, its size
limit and file-type refusals included), the download (views/common.send_stored) and the
page images (reports/renders.viewer, views/render_files.page_image)."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from flask import abort, url_for
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_smorest import Blueprint
from marshmallow import RAISE
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from webargs.flaskparser import FlaskParser
from werkzeug.datastructures import CombinedMultiDict

from portal import workflow
from portal.api.auth import acting_user
from portal.api.common import ID, LOCATION, problems
from portal.api.common import named as _named
from portal.api.deliverables_schemas import (
    DELIVERABLE_ID,
    VERSION_ID,
    RenderSchema,
    VersionSchema,
    VersionUploadSchema,
)
from portal.api.pagination import PageArgs, page_of, paginate
from portal.api.writes import creates
from portal.errors import InvalidInput
from portal.extensions import db
from portal.files.filetypes import KINDS
from portal.files.render import EXTENSIONS
from portal.models import (
    Deliverable,
    InternalReview,
    PageRender,
    RenderStatus,
    Version,
    VersionRender,
)
from portal.reports import renders
from portal.views.common import send_stored
from portal.views.render_files import page_image


class MultipartParser(FlaskParser):
    """A multipart body's text fields and its files, read by one schema (the upload's
    file and what changed come in one request)."""

    def load_files(self, req: Any, schema: Any) -> Any:
        return self._makeproxy(CombinedMultiDict([req.files, req.form]), schema)


blp = Blueprint("api_versions", __name__, description="Versions: upload, download, page images")
blp.ARGUMENTS_PARSER = MultipartParser()  # this blueprint's only; the others keep theirs

PAGE_NUMBER = f"<{ID}:number>"
BINARY = {"schema": {"type": "string", "format": "binary"}}
# What a file or page image can be served as, for the contract.
FILE_CONTENT = {kind.media_type: BINARY for kind in KINDS.values()}
IMAGE_CONTENT = {media_type: BINARY for media_type in EXTENSIONS}


def _binary(description: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"responses": {"200": {"description": description, "content": content}}}


def _render_statuses(version_ids: list[int]) -> dict[int, RenderStatus]:
    rows = db.session.execute(select(VersionRender.version_id, VersionRender.status)
                              .where(VersionRender.version_id.in_(version_ids)))
    return {version_id: status for version_id, status in rows}


def versions_out(versions: Iterable[Version]) -> list[dict[str, Any]]:
    """What the API says of each version (VersionSchema), render states in one query."""
    versions = list(versions)
    statuses = _render_statuses([v.id for v in versions])
    return [{
        "id": v.id, "deliverable_id": v.deliverable_id, "number": v.number,
        "file_name": v.file_name, "media_type": v.media_type, "size": v.size,
        "sha256": v.sha256, "what_changed": v.what_changed or "",
        "uploaded_by": _named(v.uploaded_by), "uploaded_at": v.uploaded_at,
        "locked_at": v.locked_at, "render_status": statuses.get(v.id),
        "internal_reviews": [{"id": r.id, "reviewer": _named(r.reviewer),
                              "outcome": r.outcome, "note": r.note or "", "at": r.at}
                             for r in v.reviews],
        "file_url": url_for("api_versions.download_version", version_id=v.id),
    } for v in versions]


def _versions() -> Any:
    return select(Version).options(
        selectinload(Version.uploaded_by),
        selectinload(Version.reviews).selectinload(InternalReview.reviewer))


@blp.get(f"/deliverables/{DELIVERABLE_ID}/versions")
@blp.arguments(PageArgs, location="query")
@blp.response(200, page_of(VersionSchema))
@problems(blp, 401, 404, 422)
def list_versions(args: dict[str, Any], deliverable_id: int) -> dict[str, Any]:
    """List a deliverable's versions, newest first"""
    db.get_or_404(Deliverable, deliverable_id)
    page = paginate(_versions().where(Version.deliverable_id == deliverable_id),
                    Version.id, args)
    return {**page, "items": versions_out(page["items"])}


@blp.post(f"/deliverables/{DELIVERABLE_ID}/versions")
@creates
@blp.arguments(VersionUploadSchema, location="files", content_type="multipart/form-data",
               unknown=RAISE)
@blp.response(201, VersionSchema, headers=LOCATION)
@problems(blp, 401, 403, 404, 409, 413, 415, 422)
def upload_version(data: dict[str, Any],
                   deliverable_id: int) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Upload a new version of a deliverable

    A multipart body: `file`, and `what_changed` (optional). The deliverable goes back to
    draft, as on its page; its page images are made after the upload."""
    deliverable = db.get_or_404(Deliverable, deliverable_id)
    upload = data["file"]
    if not upload.filename:
        raise InvalidInput(_("Choose a file to upload."))
    version = workflow.upload_version(acting_user(), deliverable, upload.stream,
                                      upload.filename, data["what_changed"])
    db.session.flush()
    return versions_out([version])[0], 201, {
        "Location": url_for("api_versions.get_version", version_id=version.id)}


def _version(version_id: int) -> Version:
    return db.first_or_404(_versions().where(Version.id == version_id))


@blp.get(f"/versions/{VERSION_ID}")
@blp.response(200, VersionSchema)
@problems(blp, 401, 404)
def get_version(version_id: int) -> dict[str, Any]:
    """A version: its file's name, size and SHA-256, who uploaded it, its page images' state"""
    return versions_out([_version(version_id)])[0]


@blp.get(f"/versions/{VERSION_ID}/file")
@blp.doc(**_binary("The version's file, as uploaded", FILE_CONTENT))
@blp.response(200)
@problems(blp, 401, 404)
def download_version(version_id: int) -> Response:
    """Download a version's file"""
    version = db.get_or_404(Version, version_id)
    return send_stored(version.storage_key, version.media_type, version.file_name)


@blp.get(f"/versions/{VERSION_ID}/renders")
@blp.response(200, RenderSchema)
@problems(blp, 401, 404)
def version_renders(version_id: int) -> dict[str, Any]:
    """A version's page images: whether they are ready, and each page's"""
    db.get_or_404(Version, version_id)
    viewer = renders.viewer(version_id)
    return {"version_id": version_id, "status": viewer.status, "message": viewer.message,
            "pages": [{
                "number": page.number, "width": page.width, "height": page.height,
                "thumb_width": page.thumb_width, "thumb_height": page.thumb_height,
                "media_type": page.media_type,
                "image_url": url_for("api_versions.page_image_file", version_id=version_id,
                                     number=page.number),
                "thumb_url": url_for("api_versions.page_thumb_file", version_id=version_id,
                                     number=page.number),
            } for page in viewer.pages]}


def _page_file(version_id: int, number: int, *, thumb: bool) -> Response:
    """The staff view's image; its URL here carries no hash, so it is checked each time."""
    media_type = db.session.scalar(select(PageRender.media_type).where(
        PageRender.version_id == version_id, PageRender.number == number))
    if media_type is None:
        abort(404)
    response = page_image(version_id, number, EXTENSIONS.get(media_type, "bin"), thumb=thumb)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


@blp.get(f"/versions/{VERSION_ID}/pages/{PAGE_NUMBER}")
@blp.doc(**_binary("The page's display image", IMAGE_CONTENT))
@blp.response(200)
@problems(blp, 401, 404)
def page_image_file(version_id: int, number: int) -> Response:
    """One page's image (of a ready render)"""
    return _page_file(version_id, number, thumb=False)


@blp.get(f"/versions/{VERSION_ID}/thumbs/{PAGE_NUMBER}")
@blp.doc(**_binary("The page's thumbnail", IMAGE_CONTENT))
@blp.response(200)
@problems(blp, 401, 404)
def page_thumb_file(version_id: int, number: int) -> Response:
    """One page's thumbnail (of a ready render)"""
    return _page_file(version_id, number, thumb=True)
