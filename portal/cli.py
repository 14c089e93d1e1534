"""Command-line tools: `flask --app wsgi users|audit|demo|jobs|certs …`."""
from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from portal import audit
from portal.errors import DomainError
from portal.extensions import db
from portal.models import Role
from portal.notifications import background
from portal.notifications.smtp import console_quiet
from portal.people import accounts

users = AppGroup("users", help="Manage staff accounts.")
audit_cli = AppGroup("audit", help="Check the audit trail.")
demo = AppGroup("demo", help="Demo data for a first look.")
jobs_cli = AppGroup("jobs", help="Run the periodic jobs by hand or from system cron.")
certs = AppGroup("certs", help="The key that seals approval certificates.")
files = AppGroup("files", help="Stored files and their page previews.")


@certs.command("init")
@click.option("--if-missing", is_flag=True, help="Keep an existing key.")
def certs_init(if_missing: bool) -> None:
    """Create a self-signed sealing key in instance/signing/ (development and demo)."""
    from portal.certificates import create_development_key

    directory = Path(current_app.instance_path) / "signing"
    if if_missing and (directory / "seal-key.pem").exists():
        click.echo(f"Sealing key already in {directory}.")
        return
    key, cert = create_development_key(directory, "Signoff development seal")
    current_app.config.update(SIGNING_KEY=str(key), SIGNING_CERT=str(cert))
    click.echo(f"Created a self-signed sealing key:\n  SIGNING_KEY={key}\n  SIGNING_CERT={cert}\n"
               "Production should use a key from a certificate authority (SIGNING_PKCS12).")


@users.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice([r.value for r in Role]), default=Role.STAFF.value,
              show_default=True)
@click.option("--name", default="", help="Display name (defaults to the email).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user(email: str, role: str, name: str, password_stdin: bool) -> None:
    """Create a staff account; asks for the password unless --password-stdin."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = accounts.create_user(None, email, name, password, Role(role))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    click.echo(f"Created {user.role.value} {user.email}.")


@audit_cli.command("verify")
def verify_audit() -> None:
    """Walk the hash chain; exit 1 naming the first bad event."""
    from portal.audit_erasure import accepted_summary

    report = audit.verify_chain()
    if report.ok:
        rewritten = accepted_summary(report.accepted)
        click.echo(f"Audit chain intact: {report.checked} events checked"
                   + (f"; {rewritten}" if rewritten else "") + ".")
        if report.rejected_erasures:
            click.echo("Warning: erasure event(s) "
                       f"{', '.join(map(str, report.rejected_erasures))} do not verify "
                       "(forged, or signed under a SECRET_KEY no longer configured) and "
                       "vouch for nothing.", err=True)
        return
    click.echo(f"Audit chain broken at event {report.bad_seq}: {report.problem}. "
               f"{report.checked} events before it are intact.", err=True)
    sys.exit(1)


@demo.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing when the database has users.")
def load_demo(if_empty: bool) -> None:
    """Load demo users, a client and one deliverable in each lifecycle state."""
    from portal.demo import DEMO_LOGINS, database_is_empty, load

    if if_empty and not database_is_empty():
        click.echo("The database already has data; demo data not loaded.")
    else:
        load()
        with console_quiet(current_app.config):  # the demo's emails stay on the Outbox page
            db.session.commit()
            background.wait_until_idle(current_app)  # they are sent quietly, before we go on
        click.echo("Demo data loaded.")
    click.echo("\nDemo logins (password for each: " + DEMO_LOGINS["password"] + "):")
    for role, email in DEMO_LOGINS["users"]:
        click.echo(f"  {role:<8} {email}")


AT_HELP = "Run as if it were this moment (ISO 8601, UTC), e.g. to fast-forward the demo."


def _at(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date and time") from exc
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


@jobs_cli.command("sweep")
@click.option("--at", "at", default=None, help=AT_HELP)
def sweep(at: str | None) -> None:
    """Send due reminders, escalate overdue requests, expire stale ones, send the comments
    whose burst is over, relay the outbox."""
    from jobs.periodic import every_minute

    report = every_minute(_at(at))
    click.echo(", ".join(f"{key}: {value}" for key, value in report.items()))


@jobs_cli.command("relay")
def relay() -> None:
    """Queue every pending email (what the sweep does every minute)."""
    from jobs.outbox import relay as relay_job

    click.echo(f"relayed: {relay_job()}")


@files.command("render")
@click.option("--missing", is_flag=True,
              help="Versions without a preview, previews still pending, and previews whose "
                   "images are gone from the store.")
@click.option("--failed", is_flag=True, help="Previews that failed (after raising a limit).")
@click.argument("version_ids", nargs=-1, type=int)
def render_previews(missing: bool, failed: bool, version_ids: tuple[int, ...]) -> None:
    """Make page previews again, here and now (renders are derived data)."""
    from portal.files.render import render_version
    from portal.files.render_missing import mark_for_rendering

    if not (missing or failed or version_ids):
        raise click.UsageError("Name versions, or pass --missing or --failed.")
    chosen = mark_for_rendering(missing=missing, failed=failed, version_ids=version_ids)
    db.session.commit()
    counts: dict[str, int] = {}
    for version_id in chosen:
        status = render_version(version_id)
        label = status.value if status else "gone"
        counts[label] = counts.get(label, 0) + 1
        click.echo(f"version {version_id}: {label}")
    summary = ", ".join(f"{label}: {n}" for label, n in sorted(counts.items()))
    click.echo(f"{len(chosen)} versions rendered" + (f" ({summary})" if summary else "") + ".")


def init_app(app: Flask) -> None:
    from portal.files.storage_cli import storage
    from portal.people.erasure_cli import clients

    for group in (users, audit_cli, demo, jobs_cli, certs, files, storage, clients):
        app.cli.add_command(group)
