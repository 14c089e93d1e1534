"""Finance: approved work with its certificates, filters, CSV export, and downloads."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, time, timedelta
from typing import Any

from flask import Blueprint, Response, abort, request, send_file
from flask_login import login_required
from sqlalchemy import Select, func, select
from sqlalchemy.orm import selectinload

from portal.certificates import by_public_id
from portal.extensions import db
from portal.htmx import render
from portal.models import (
    Approver,
    Client,
    Deliverable,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.storage import file_store
from portal.views.staff import parse_date

bp = Blueprint("finance", __name__)
PAGE_SIZE = 25
APPROVED = (RequestStatus.APPROVED, RequestStatus.APPROVED_WITH_CONDITIONS)


def _cell(value: Any) -> Any:
    """Text a client typed must not run as a formula when finance opens the CSV."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _filters() -> dict[str, Any]:
    args = request.args
    return {
        "client": args.get("client", type=int), "project": args.get("project", type=int),
        "start": parse_date(args.get("start"), "The start date"),
        "end": parse_date(args.get("end"), "The end date"),
    }


def _query(filters: dict[str, Any]) -> Select:
    query = (
        select(ReviewRequest).join(ReviewRequest.version).join(Version.deliverable)
        .join(Deliverable.project)
        .where(ReviewRequest.status.in_(APPROVED))
        .order_by(ReviewRequest.closed_at.desc(), ReviewRequest.id.desc())
        .options(selectinload(ReviewRequest.version).selectinload(Version.deliverable)
                 .selectinload(Deliverable.project).selectinload(Project.client),
                 selectinload(ReviewRequest.approvers).selectinload(Approver.contact),
                 selectinload(ReviewRequest.approvers).selectinload(Approver.decision),
                 selectinload(ReviewRequest.certificate))
    )
    if filters["client"]:
        query = query.where(Project.client_id == filters["client"])
    if filters["project"]:
        query = query.where(Deliverable.project_id == filters["project"])
    if filters["start"]:
        query = query.where(ReviewRequest.closed_at >= datetime.combine(filters["start"], time(),
                                                                        UTC))
    if filters["end"]:
        end = datetime.combine(filters["end"] + timedelta(days=1), time(), UTC)
        query = query.where(ReviewRequest.closed_at < end)
    return query


@bp.get("/finance")
@login_required
def approved():
    filters = _filters()  # a bad date is an InvalidInput: a clear 422 page
    page = max(request.args.get("page", 1, type=int), 1)
    query = _query(filters)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = db.session.scalars(query.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)).all()
    clients = db.session.scalars(select(Client).order_by(Client.name)).all()
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    pages = max((total + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    return render("finance/approved.html", block="results", rows=rows, filters=filters,
                  clients=clients, projects=projects, page=page, pages=pages, total=total,
                  query_args={k: v for k, v in request.args.items()
                              if k in ("client", "project", "start", "end") and v})


@bp.get("/finance/export.csv")
@login_required
def export_csv():
    filters = _filters()  # a bad date is an InvalidInput: a clear 422 page
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["certificate", "client", "project", "deliverable", "version", "file",
                     "sha256", "approved_at_utc", "outcome", "approvers", "conditions"])
    for r in db.session.scalars(_query(filters)):
        deliverable = r.version.deliverable
        conditions = " | ".join(f"{a.contact.name}: {a.decision.text}" for a in r.approvers
                                if a.decision and a.decision.text)
        writer.writerow([_cell(value) for value in [
            r.certificate.public_id if r.certificate else "", deliverable.project.client.name,
            deliverable.project.name, deliverable.title, r.version.number, r.version.file_name,
            r.version.sha256, r.closed_at.strftime("%Y-%m-%d %H:%M:%S") if r.closed_at else "",
            r.status.value, "; ".join(f"{a.contact.name} <{a.contact.email}>"
                                      for a in r.approvers), conditions,
        ]])
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="signoff-approved-{stamp}.csv"'})


def certificate_response(public_id: str):
    certificate = by_public_id(public_id)
    if certificate is None:
        abort(404)
    response = send_file(file_store().path_for(certificate.storage_key),
                         mimetype="application/pdf", as_attachment=True,
                         download_name=f"approval-certificate-{certificate.public_id}.pdf",
                         max_age=0)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/certificates/<public_id>.pdf")
@login_required
def certificate(public_id: str):
    """Any signed-in role (admin, staff, finance) may download; clients use their page."""
    return certificate_response(public_id)
