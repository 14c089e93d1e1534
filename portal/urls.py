"""Addresses for people outside the browser (emails, certificates, webhooks).

Built from the app's routes like url_for, but always against PUBLIC_BASE_URL, so a job,
the CLI and a request all write the same link whatever host the request came in on.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import current_app


def external_url(endpoint: str, **values: Any) -> str:
    base = urlsplit(current_app.config["PUBLIC_BASE_URL"])
    adapter = current_app.url_map.bind(base.netloc, script_name=base.path or "/",
                                       url_scheme=base.scheme)
    return adapter.build(endpoint, values, force_external=True)
