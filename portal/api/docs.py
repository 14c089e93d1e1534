"""/api/v1/docs: the API's human reference, drawn by the portal from its own contract."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("api_docs", __name__)
