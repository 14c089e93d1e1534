"""/api/v1: Versions: upload, download, page images."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_versions", __name__, description="Versions: upload, download, page images")
