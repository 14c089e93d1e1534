"""`flask --app wsgi storage …`: the stored files themselves."""
from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from portal.files.integrity import verify_store
from portal.files.storage import file_store

storage = AppGroup("storage", help="Stored files: versions, renders and certificates.")


@storage.command("verify")
def verify() -> None:
    """Re-hash every stored version, render and certificate; name what is missing or
    altered and exit 1 if anything is."""
    report = verify_store(file_store())
    for state, item in report.problems:
        click.echo(f"{state}: {item.label} (key {item.key})", err=True)
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items())) or "nothing"
    if not report.ok:
        click.echo(f"storage verify: {len(report.problems)} problem(s) among {counts}",
                   err=True)
        sys.exit(1)
    click.echo(f"storage verify: all intact ({counts})")
