"""A review link's token is a credential: no access log ever shows it.

Both servers are the real ones: Werkzeug's (`flask run`, `make run`) and Gunicorn
(production), each answering a real HTTP request on loopback; the test reads the log.
"""
from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from portal.access_log import redact
from portal.extensions import db
from portal.models import DeliverableState
from portal.workflow.links import issue_token
from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parent.parent


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _open(url: str, referer: str = "") -> int:
    request = urllib.request.Request(url, headers={"Referer": referer} if referer else {})
    try:
        with urllib.request.build_opener(_NoRedirect()).open(request, timeout=20) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        exc.close()
        return exc.code


def _token(make_deliverable) -> str:
    token = issue_token(make_deliverable(DeliverableState.DELIVERED).open_request.approvers[0])
    db.session.commit()
    return token


def test_redact_rewrites_only_the_token():
    line = 'GET /r/eyJhIjoi.Zx9.abc-_d HTTP/1.1" 303 -'
    assert redact(line) == 'GET /r/[token] HTTP/1.1" 303 -'
    assert redact("GET /review/AbC HTTP/1.1") == "GET /review/AbC HTTP/1.1"
    assert redact("http://portal.example/r/tok?x=1") == "http://portal.example/r/[token]?x=1"


def test_werkzeug_access_log_has_no_token(app, make_deliverable, caplog):
    token = _token(make_deliverable)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with caplog.at_level(logging.INFO, logger="werkzeug"):
            assert _open(f"{base}/r/{token}") == 303
            assert _open(f"{base}/review/nobody", referer=f"{base}/r/{token}") == 404
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
    logged = caplog.text
    assert "GET /r/[token] HTTP/1.1" in logged and " 303 " in logged
    assert token not in logged and token.split(".")[0] not in logged


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_gunicorn_access_log_has_no_token(app, make_deliverable, tmp_path, database_url):
    gunicorn = Path(sys.executable).with_name("gunicorn")
    if not gunicorn.exists():
        pytest.skip("gunicorn is not installed (pip install -e '.[dev]')")
    token = _token(make_deliverable)
    port, log = _free_port(), tmp_path / "access.log"
    env = {**os.environ, "DATABASE_URL": database_url, "SECRET_KEY": SECRET, "REDIS_URL": "",
           "INSTANCE_PATH": str(tmp_path / "instance"), "FILE_STORE": str(tmp_path / "files")}
    server = subprocess.Popen(
        [str(gunicorn), "-c", str(ROOT / "gunicorn.conf.py"), "-w", "1",
         "-b", f"127.0.0.1:{port}", "--access-logfile", str(log), "--chdir", str(ROOT),
         "wsgi:app"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, server.stderr.read().decode()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "gunicorn did not start in 30 s"
                time.sleep(0.1)
        assert _open(f"{base}/r/{token}") == 303
        assert _open(f"{base}/review/nobody", referer=f"{base}/r/{token}") == 404
    finally:
        server.terminate()
        server.wait(timeout=30)
        server.stderr.close()
    logged = log.read_text()
    assert '"GET /r/[token] HTTP/1.1" 303' in logged, logged
    assert f"{base}/r/[token]" in logged  # the Referer, redacted too
    assert token not in logged and token.split(".")[0] not in logged
