"""Addresses for people outside the browser (emails, certificates, webhooks).

Built from the app's routes like url_for, but always against PUBLIC_BASE_URL, so a job,
the CLI and a request all write the same link whatever host the request came in on.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app
from werkzeug.routing import IntegerConverter, Map


def external_url(endpoint: str, **values: Any) -> str:
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                       url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)


MAX_ROW_ID = 2**31 - 1  # the largest id an INTEGER column holds on every backend


class RowIdConverter(IntegerConverter):
    """`<int:…>` in every route: a number past what a row id can be is a 404, not a query
    the database refuses (PostgreSQL: 'integer out of range', a 500)."""

    def __init__(self, map: Map, fixed_digits: int = 0, min: int | None = None,
                 max: int | None = None, signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, MAX_ROW_ID if max is None else max, signed)
