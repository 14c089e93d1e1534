"""Playwright's sync API for the journeys, or the whole module skipped with the reason
(a failure under CI=true, where Chromium and Playwright must be there)."""
from __future__ import annotations

import pytest

from tests.conftest import IN_CI

try:
    from playwright.sync_api import Page, expect
except ImportError as exc:
    if IN_CI:
        raise
    pytest.skip(f"Chromium is not available: the playwright package is not installed ({exc})",
                allow_module_level=True)

__all__ = ["Page", "expect"]
