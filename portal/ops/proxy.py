"""Trust X-Forwarded-* only from the proxies we were told about (TRUSTED_PROXY_HOPS).

With 0 (the default) nothing a caller sends in X-Forwarded-For or -Proto is believed: the
address is the socket's, which is what rate limits, audit IPs and the metrics' loopback
rule see. Behind N proxies, each of them appends one hop; we take the Nth from the right
for the address, and the scheme, host and port the same way. Cookies are Secure and links
https from PUBLIC_BASE_URL (portal/config.py), whatever the proxy says.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def install(app: Flask) -> None:
    hops = int(app.config.get("TRUSTED_PROXY_HOPS") or 0)
    if hops < 0:
        raise ValueError("TRUSTED_PROXY_HOPS must be 0 or more")
    if hops:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops, x_prefix=hops)
