"""/api/v1: Approval certificates: metadata, sealed PDF, verification."""
from __future__ import annotations

from flask_smorest import Blueprint

blp = Blueprint("api_certificates", __name__,
                description="Approval certificates: metadata, sealed PDF, verification")
