"""`flask --app wsgi clients …`: a former client's personal data."""
from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from flask.cli import AppGroup

from portal.extensions import db
from portal.models import utcnow
from portal.people.erasure import ErasureRefused, erase_client, find_client

clients = AppGroup("clients", help="A client's personal data after the retention period.")


@clients.command("erase")
@click.argument("client")
@click.option("--before", "before", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Erase what belongs to requests finished before this date (YYYY-MM-DD, "
                   "UTC): the end of the retention period.")
def erase(client: str, before: datetime) -> None:
    """Replace CLIENT's personal data (CLIENT: its exact name, or its id) with pseudonyms.
    Refused while any request of the client is open."""
    found = find_client(client)
    if found is None:
        click.echo(f"No client is named {client!r} or has that id; nothing was erased.",
                   err=True)
        sys.exit(1)
    try:
        report = erase_client(found, before.replace(tzinfo=UTC).date(), None, utcnow())
        db.session.commit()
    except ErasureRefused as exc:
        db.session.rollback()
        click.echo(f"Refused: {exc.message}", err=True)
        sys.exit(1)
    if not report.counts:
        click.echo(f"Nothing to erase for {found.name!r}: no request finished before "
                   f"{before.date().isoformat()} ({report.requests_kept} kept).")
        return
    counts = ", ".join(f"{name}: {n}" for name, n in report.counts.items())
    click.echo(f"Erased the personal data of {report.requests_erased} finished request(s) of "
               f"{found.name!r} ({report.requests_kept} kept). {counts}.")
