"""POSTs to addresses an admin typed in, without letting them reach our own network (SSRF).

The host is resolved once, every address is checked, and the connection goes to the
checked address (DNS cannot swap in an internal one between the check and the request).
"""
from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from urllib.parse import urlsplit

from portal.errors import InvalidInput

TIMEOUT = 10


class UnsafeDestination(InvalidInput):
    pass


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeDestination(f"The host {host!r} does not resolve: {exc}.") from exc
    return sorted({info[4][0] for info in infos})


def resolve_safely(url: str, allow_private: bool) -> tuple[str, str, int]:
    """The (scheme, address, port) to connect to; refuses internal addresses (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("Webhook URLs must be http:// or https:// with a host name.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _addresses(parts.hostname, port)
    for address in addresses:
        ip = ipaddress.ip_address(address)
        internal = (ip.is_loopback or ip.is_link_local or ip.is_private or ip.is_reserved
                    or ip.is_multicast or ip.is_unspecified)
        if internal and not allow_private:
            raise UnsafeDestination(
                f"{parts.hostname} resolves to {address}, an internal address. Webhooks may "
                "not reach loopback, link-local or private networks unless an admin allows "
                "it for this endpoint.")
    return parts.scheme, addresses[0], port


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address we already checked, still verifying the certificate's name."""

    def __init__(self, address: str, host: str, port: int) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post(url: str, allow_private: bool, body: str, headers: dict[str, str]) -> int:
    scheme, address, port = resolve_safely(url, allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(address, parts.hostname or "", port) if scheme == "https"
        else http.client.HTTPConnection(address, port, timeout=TIMEOUT))
    try:
        connection.request("POST", path, body=body.encode(),
                           headers={**headers, "Host": parts.netloc})
        return connection.getresponse().status
    finally:
        connection.close()
