"""One helper for pages that htmx can also ask for in pieces."""
from __future__ import annotations

from typing import Any

from flask import make_response, render_template
from flask.wrappers import Response
from htmx_flask import request
from jinja2_fragments.flask import render_block


def is_htmx() -> bool:
    """A request for a fragment. Boosted links and Back-button history restores need
    the whole page."""
    headers = request.htmx
    return bool(headers) and not headers.boosted and not headers.history_restore_request


def render(template: str, block: str | None = None, status: int = 200,
           oob_blocks: tuple[str, ...] = (), **context: Any) -> Response:
    """The named block for htmx requests, the whole page otherwise.

    `oob_blocks` are sent along with `oob=True` in their context, so the template can mark
    them hx-swap-oob and htmx updates them in place too.
    """
    if not isinstance(status, int):
        raise TypeError("render(status=…) is the HTTP status; name the template variable "
                        "something else")
    if block and is_htmx():
        html = render_block(template, block, **context)
        html += "".join(render_block(template, extra, **{**context, "oob": True})
                        for extra in oob_blocks)
    else:
        html = render_template(template, **context)
    response = make_response(html, status)
    # Both headers decide which of the two answers this URL gives.
    response.vary.update(("HX-Request", "HX-History-Restore-Request"))
    return response
