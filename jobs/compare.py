"""Compare: the pixel differences of two versions' pages, worked out once."""
from __future__ import annotations

from jobs import app_context


def diff_pages(a_version_id: int, b_version_id: int) -> int:
    """Store the difference of each pair of pages that has none yet; how many it stored."""
    from portal.files.compare import diff_versions

    with app_context():
        return diff_versions(a_version_id, b_version_id)
