"""Page previews: a version's pages as images for the viewer."""
from __future__ import annotations

from jobs import app_context


def render(version_id: int) -> str | None:
    """Render the version's pages once (a retry or a second worker changes nothing)."""
    from portal.files.render import render_version

    with app_context():
        status = render_version(version_id)
        return status.value if status else None
