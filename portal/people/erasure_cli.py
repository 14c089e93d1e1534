"""`flask --app wsgi clients …`: a former client's personal data."""
from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from portal.extensions import db
from portal.models import utcnow
from portal.people.erasure import ErasureRefused, erase_client, find_client, plan_erasure

clients = AppGroup("clients", help="A client's personal data after the retention period.")


def _fail(message: str) -> None:
    click.echo(message, err=True)
    sys.exit(1)


@clients.command("erase")
@click.option("--id", "client_id", type=int, help="The client's id.")
@click.option("--name", "name", help="The client's exact name.")
@click.option("--before", "before", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Erase what belongs to requests finished before this date (YYYY-MM-DD, "
                   "UTC): the end of the retention period.")
@click.option("--yes", "confirmed", is_flag=True,
              help="Do it. Without --yes the command only shows what it would erase.")
def erase(client_id: int | None, name: str | None, before: datetime, confirmed: bool) -> None:
    """Replace a former client's personal data with pseudonyms (cannot be undone).
    Choose the client by --id or --name (exactly one). Refused while any request of the
    client is open. Without --yes: shows what would go and exits 1, changing nothing."""
    if (client_id is None) == (name is None):
        _fail("Give exactly one of --id N or --name NAME; nothing was erased.")
    found = find_client(client_id=client_id, name=name)
    if found is None:
        _fail(f"No client {'#' + str(client_id) if name is None else 'is named ' + repr(name)}"
              "; nothing was erased.")
    assert found is not None
    day = before.replace(tzinfo=UTC).date()
    plan = plan_erasure(found, day)
    click.echo(f"Client #{found.id} {found.name!r}: {len(plan.erased)} finished request(s) "
               f"before {day.isoformat()} to erase "
               f"({', '.join(str(r.id) for r in plan.erased) or 'none'}), "
               f"{len(plan.kept)} kept, {len(plan.still_open)} open.")
    if not confirmed:
        db.session.rollback()
        _fail("Nothing changed: run again with --yes to erase (it cannot be undone).")
    try:
        report = erase_client(found, day, None, utcnow())
        db.session.commit()
    except ErasureRefused as exc:
        db.session.rollback()
        _fail(f"Refused: {exc.message}")
    if not report.counts:
        click.echo(f"Nothing to erase for {found.name!r}: no request finished before "
                   f"{day.isoformat()} ({report.requests_kept} kept).")
        return
    counts = ", ".join(f"{key}: {n}" for key, n in report.counts.items())
    click.echo(f"Erased the personal data of {report.requests_erased} finished request(s) of "
               f"{found.name!r} ({report.requests_kept} kept). {counts}.")
