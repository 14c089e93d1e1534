"""/api/v1: Webhook endpoints (admins)."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_webhooks", __name__, description="Webhook endpoints (admins)")
