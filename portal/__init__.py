"""Signoff: a client review and approval portal."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

from portal.config import build_config, check_mail_sender, check_secret_key
from portal.extensions import csrf, db, htmx_ext, limiter, login_manager, migrate
from portal.urls import RowIdConverter

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent


def _shipped(folder: str) -> str:
    """templates/ or static/: inside the package when installed from a wheel, beside it in
    a checkout (the repository keeps them at the top level)."""
    inside = PACKAGE / folder
    return str(inside if inside.is_dir() else ROOT / folder)


def _instance_path() -> str | None:
    """INSTANCE_PATH, else instance/ in a checkout, else Flask's own choice for an
    installed package (<prefix>/var/portal-instance)."""
    if os.environ.get("INSTANCE_PATH"):
        return os.environ["INSTANCE_PATH"]
    return str(ROOT / "instance") if (ROOT / "pyproject.toml").exists() else None


def create_app(overrides: dict[str, Any] | None = None) -> Flask:
    app = Flask(
        __name__,
        instance_path=_instance_path(),
        template_folder=_shipped("templates"),
        static_folder=_shipped("static"),
    )
    app.url_map.converters["int"] = RowIdConverter  # before any route is added
    instance_path = Path(app.instance_path)
    app.config.from_mapping(build_config(instance_path, overrides))
    check_secret_key(app.config, instance_path, app.debug)
    check_mail_sender(app.config, app.debug)
    # The outbox page shows every email's link: never in production.
    app.config.setdefault("DEV_OUTBOX", app.debug or bool(app.config.get("TESTING")))

    db.init_app(app)
    from portal.database import abandon_transaction
    # Registered after Flask-SQLAlchemy's, so it runs before its session.remove(), whose
    # rollback would raise (and turn a drawn page into a bare 500) on a dropped connection.
    app.teardown_appcontext(abandon_transaction)
    migrate.init_app(app, db, directory=str(PACKAGE / "migrations"),
                     render_as_batch=True, compare_type=True)
    login_manager.init_app(app)
    csrf.init_app(app)
    htmx_ext.init_app(app)
    limiter.init_app(app)

    from portal import cli, i18n, ops
    from portal.access_log import install_werkzeug_filter
    from portal.api import init_api
    from portal.database import configure_engine
    from portal.notifications import (
        observer_outcome,  # noqa: F401  (observers hear the outcome)
        reactions,  # noqa: F401  (registers the consumers)
    )
    from portal.notifications.queue import install_dispatch
    from portal.urls import external_url
    from portal.views import register_views
    from portal.workflow import install_version_lock

    with app.app_context():
        configure_engine(db.engine)
    install_dispatch(db.session)
    install_version_lock(db.session)
    install_werkzeug_filter()
    i18n.init_app(app)
    ops.init_app(app)
    app.jinja_env.globals["external_url"] = external_url
    register_views(app)
    init_api(app)
    cli.init_app(app)
    return app
