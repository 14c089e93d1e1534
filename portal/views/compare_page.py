"""The compare page and its overlay images, for the staff and client routes that checked
access (portal/views/staff_compare.py, portal/views/client_compare.py).

Pages of both versions side by side, the pixel difference over B, or the words that
changed. A difference not worked out yet is asked of a job (a GET writes nothing) and the
page polls with htmx until it is there; the last answer is 286, which stops the polling.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from flask import abort, request
from flask.wrappers import Response

from portal.files.compare import ask_for_diffs
from portal.models import Version
from portal.reports import compare as compare_report
from portal.views.common import stream_stored
from portal.views.htmx import is_htmx, render
from portal.views.render_files import CACHE_CONTROL

STOP_POLLING = 286


def compare_page(*, versions: Sequence[Version], under_review: Version,
                 public_id: str | None, endpoint: str, scope: dict[str, Any],
                 **context: Any) -> Response:
    """The page (or, for htmx, its body) for the pair the query string names."""
    mode = request.args.get("mode", "side")
    mode = mode if mode in compare_report.MODES else "side"
    try:
        pair = compare_report.pick(versions, under_review, request.args.get("a", type=int),
                                   request.args.get("b", type=int))
    except LookupError:
        abort(404)
    comparison = None
    if pair is not None:
        comparison = compare_report.compare(*pair, public_id, with_text=mode == "text")
        if comparison.diffs_pending:
            ask_for_diffs(pair[0].id, pair[1].id)
    waiting = comparison is not None and (
        comparison.renders_pending or (mode != "text" and comparison.diffs_pending))
    status = STOP_POLLING if is_htmx() and not waiting else 200
    return render("compare.html", block="compare_body", status=status, mode=mode,
                  modes=compare_report.MODES, versions=versions, comparison=comparison,
                  waiting=waiting, endpoint=endpoint, scope=scope, **context)


def overlay_image(a_id: int, b_id: int, number: int) -> Response:
    """The stored overlay of page `number` (B over A); its name is its hash, so a year's
    private caching is safe, as for the page images."""
    key = compare_report.overlay_key(a_id, b_id, number)
    if not key:
        abort(404)
    response = stream_stored(key, "image/png", etag=key, max_age=31536000)
    if response is None:
        abort(404)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
