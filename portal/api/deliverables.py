"""/api/v1: Deliverables: create, edit, internal review."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_deliverables", __name__,
                description="Deliverables: create, edit, internal review")
