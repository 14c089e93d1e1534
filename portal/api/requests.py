"""/api/v1: Delivery and review requests: approvers, reminders, links, decisions."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_requests", __name__,
                description="Delivery and review requests: approvers, reminders, links, decisions")
