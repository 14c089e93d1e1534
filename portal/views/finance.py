"""Finance: approved work with its certificates, filters, CSV export, and downloads."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from flask import Blueprint, Response, request
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select

from portal.extensions import db
from portal.models import Client, Project
from portal.reports import finance
from portal.views.common import certificate_response, parse_date
from portal.views.htmx import render

bp = Blueprint("finance", __name__)
FILTER_FIELDS = ("client", "project", "start", "end")


def _filters() -> finance.Filters:
    """The filters in the URL; a bad date is an InvalidInput: a clear 422 page."""
    args = request.args
    return finance.Filters(
        client=args.get("client", type=int), project=args.get("project", type=int),
        start=parse_date(args.get("start"), _("The start date")),
        end=parse_date(args.get("end"), _("The end date")))


@bp.get("/finance")
@login_required
def approved():
    filters = _filters()
    page = max(request.args.get("page", 1, type=int), 1)
    rows, total, pages = finance.approved_page(filters, page)
    clients = db.session.scalars(select(Client).order_by(Client.name)).all()
    projects = db.session.scalars(select(Project).order_by(Project.name)).all()
    return render("finance/approved.html", block="results", rows=rows, filters=filters,
                  clients=clients, projects=projects, page=page, pages=pages, total=total,
                  query_args={k: v for k, v in request.args.items()
                              if k in FILTER_FIELDS and v})


@bp.get("/finance/export.csv")
@login_required
def export_csv():
    out = io.StringIO()
    csv.writer(out).writerows(finance.csv_rows(_filters()))
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(out.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition":
                             f'attachment; filename="signoff-approved-{stamp}.csv"'})


@bp.get("/certificates/<public_id>.pdf")
@login_required
def certificate(public_id: str):
    """Any signed-in role (admin, staff, finance) may download; clients use their page."""
    return certificate_response(public_id)
