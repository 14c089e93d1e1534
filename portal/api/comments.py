"""/api/v1: The conversation on a request: replies, internal notes, pins."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_comments", __name__,
                description="The conversation on a request: replies, internal notes, pins")
