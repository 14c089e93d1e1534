"""Trust X-Forwarded-* only from the proxies we were told about (TRUSTED_PROXY_HOPS).

With 0 (the default) nothing a caller sends in X-Forwarded-For or -Proto is believed: the
address is the socket's, which is what rate limits, audit IPs and the metrics' loopback
rule see. Behind N proxies, each of them appends one hop; we take the Nth from the right
for the address and the scheme, and nothing else: most proxies pass a caller's own
X-Forwarded-Host, -Port and -Prefix through untouched, and believing them would let a
caller choose where our redirects and asset links point. The host is the request's Host
(have the proxy pass it on); emailed links come from PUBLIC_BASE_URL, and cookies are
Secure when it is https (portal/config.py), whatever the proxy says.
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
            app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)
