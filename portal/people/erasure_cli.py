"""`flask --app wsgi clients …`: a former client's personal data."""
from __future__ import annotations

from flask.cli import AppGroup

clients = AppGroup("clients", help="A client's personal data after the retention period.")
