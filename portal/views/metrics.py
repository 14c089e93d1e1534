"""Approval metrics per client and overall: any signed-in role may read them."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, request
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_login import login_required
from sqlalchemy import select
from werkzeug.datastructures import MultiDict

from portal.errors import InvalidInput
from portal.extensions import db
from portal.models import Client, today_utc
from portal.reports import metrics, staff_formats
from portal.views.common import parse_date
from portal.views.htmx import render

bp = Blueprint("metrics", __name__)
FIELDS = ("client", "start", "end", "group")


def _period(args: MultiDict[str, str], client_ids: set[int]) -> metrics.Period:
    """The period asked for; InvalidInput (422) names what is wrong."""
    today = today_utc()
    start = parse_date(args.get("start"), _("The start date"))
    end = parse_date(args.get("end"), _("The end date")) or today
    start = start or end - timedelta(days=metrics.DEFAULT_DAYS - 1)
    if start > end:
        raise InvalidInput(_("The start date (%(start)s) must be on or before the end date "
                             "(%(end)s).", start=start.isoformat(), end=end.isoformat()))
    if (end - start).days + 1 > metrics.MAX_DAYS:
        raise InvalidInput(_("Choose a period of at most three years."))
    raw_client = args.get("client", "").strip()
    client_id = int(raw_client) if raw_client.isdigit() else None
    if raw_client and client_id not in client_ids:
        raise InvalidInput(_("There is no such client; choose one from the list."))
    group = args.get("group") or metrics.Grouping.WEEK.value
    if group not in {g.value for g in metrics.Grouping}:
        raise InvalidInput(_("Group the trend by week or by month."))
    return metrics.Period(start, end, client_id, metrics.Grouping(group))


def _page(status: int = 200, **context: Any) -> Response:
    return render("staff/metrics.html", block="results", status=status, fmt=staff_formats,
                  **context)


@bp.get("/metrics")
@login_required
def overview():
    clients = db.session.execute(select(Client.id, Client.name).order_by(Client.name)).all()
    form = {name: request.args.get(name, "") for name in FIELDS}
    try:
        period = _period(request.args, {c.id for c in clients})
    except InvalidInput as exc:
        return _page(exc.status, error=exc.message, report=None, form=form, clients=clients)
    report = metrics.report(period, now=datetime.now(UTC))
    form = {"client": str(period.client_id or ""), "start": period.start.isoformat(),
            "end": period.end.isoformat(), "group": period.group.value}
    return _page(error=None, report=report, form=form, clients=clients,
                 client_name=next((c.name for c in clients if c.id == period.client_id),
                                  _("All clients")))
