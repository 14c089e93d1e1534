"""/api/v1: Clients, their contacts, and projects."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_clients", __name__, description="Clients, their contacts, and projects")
