"""POSTs to addresses an admin typed in, without letting them reach our own network (SSRF),
and without letting a slow receiver hold us for long.

The host is resolved once, every address is checked, and the connection goes to the
checked address (DNS cannot swap in an internal one between the check and the request).
The whole exchange has one deadline: a socket timeout bounds each read, so a receiver
trickling a byte a second would never trip it; a watchdog shuts the socket instead.
"""
from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from urllib.parse import urlsplit

from portal.errors import InvalidInput

DEADLINE = 10.0  # seconds for the whole POST: connect, send, status line and headers
NOT_A_WEBHOOK_URL = "Webhook URLs must be http:// or https:// with a host name."


class UnsafeDestination(InvalidInput):
    pass


def _addresses(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:  # UnicodeError: a label IDNA refuses
        raise UnsafeDestination(f"The host {host!r} does not resolve: {exc}.") from exc
    return sorted({info[4][0] for info in infos})


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: IPv4 inside IPv6


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address leads to (mapped, NAT64, 6to4, Teredo)."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def _globally_routable(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Only addresses the public internet routes: is_global leaves out 100.64.0.0/10, where
    some clouds keep their metadata service; IPv6 that carries an IPv4 address is judged by
    that address too."""
    embedded = _embedded_ipv4(ip) if isinstance(ip, ipaddress.IPv6Address) else []
    return all(a.is_global and not a.is_multicast for a in [ip, *embedded])


def resolve_safely(url: str, allow_private: bool) -> tuple[str, str, int]:
    """The (scheme, address, port) to connect to; refuses internal addresses (SSRF)."""
    try:  # a bracketed host that is no address, or a port out of range or not a number
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UnsafeDestination(NOT_A_WEBHOOK_URL) from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination(NOT_A_WEBHOOK_URL)
    addresses = _addresses(parts.hostname, port)
    for address in addresses:
        if not _globally_routable(ipaddress.ip_address(address)) and not allow_private:
            raise UnsafeDestination(
                f"{parts.hostname} resolves to {address}, which is not a public internet "
                "address. Webhooks may not reach loopback, link-local, private or shared "
                "(carrier-grade NAT) networks unless an admin allows it for this endpoint.")
    return parts.scheme, addresses[0], port


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to an address we already checked, still verifying the certificate's name."""

    def __init__(self, address: str, host: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        # The plain socket is set first, so the watchdog can cut a handshake that trickles.
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.host)  # type: ignore[attr-defined]


class _Watchdog:
    """Shuts the connection's socket at the deadline, which ends any read or write blocked
    on it at once (plain or TLS); `fired` says that is why the exchange failed."""

    def __init__(self, connection: http.client.HTTPConnection, seconds: float) -> None:
        self.fired = False
        self._connection = connection
        self._timer = threading.Timer(max(seconds, 0.0), self._cut)
        self._timer.daemon = True
        self._timer.start()

    def _cut(self) -> None:
        self.fired = True
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing to cut
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def post(url: str, allow_private: bool, body: str, headers: dict[str, str], *,
         deadline: float = DEADLINE) -> int:
    """POST and return the status code, within `deadline` seconds in all (TimeoutError)."""
    started = time.monotonic()
    scheme, address, port = resolve_safely(url, allow_private)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    left = deadline - (time.monotonic() - started)
    if left <= 0:
        raise TimeoutError(f"no answer within {deadline:g} s in all (name lookup)")
    connection: http.client.HTTPConnection = (
        _PinnedHTTPS(address, parts.hostname or "", port, left) if scheme == "https"
        else http.client.HTTPConnection(address, port, timeout=left))
    # A TCP connect is bounded by the socket timeout (`left`); the rest by the watchdog.
    watchdog = _Watchdog(connection, left)
    try:
        connection.connect()
        if watchdog.fired:
            raise TimeoutError("connected too late")
        connection.request("POST", path, body=body.encode(),
                           headers={**headers, "Host": parts.netloc})
        status = connection.getresponse().status
        if watchdog.fired:  # a cut can pass for the end of the headers
            raise TimeoutError("cut off")
        return status
    except (OSError, http.client.HTTPException) as exc:
        if watchdog.fired:
            raise TimeoutError(f"no complete answer within {deadline:g} s in all") from exc
        raise
    finally:
        watchdog.cancel()
        connection.close()
