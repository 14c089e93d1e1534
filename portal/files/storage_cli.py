"""`flask --app wsgi storage …`: the stored files themselves."""
from __future__ import annotations

from flask.cli import AppGroup

storage = AppGroup("storage", help="Stored files: versions, renders and certificates.")
