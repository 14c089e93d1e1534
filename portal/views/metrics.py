"""Approval metrics per client and overall (being built)."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("metrics", __name__)
