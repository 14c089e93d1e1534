"""/healthz and /readyz answer without a session, a login or a rate limit, say only ok or
failed per check, and fail when a real dependency is away; ProxyFix trusts exactly the hops
it was told about."""
from __future__ import annotations

from flask import request, url_for

from portal import create_app

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1
DEAD_DATABASE = "postgresql+psycopg://nobody:pw-not-shown@127.0.0.1:1/none"


def _plain(response) -> None:
    """No cookie, no cache, JSON: what a probe gets."""
    assert response.headers.get("Set-Cookie") is None
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"


def test_healthz_answers_without_a_session_or_a_login(app):
    response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json() == {"status": "ok"}
    _plain(response)


def test_readyz_checks_the_database_and_the_file_store(app):
    response = app.test_client().get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"status": "ok",
                                   "checks": {"database": "ok", "storage": "ok"}}
    _plain(response)


def test_readyz_checks_redis_when_there_is_one(app_config, clean_redis, database_url):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url,
                      "REDIS_URL": clean_redis})
    body = app.test_client().get("/readyz").get_json()
    assert body["checks"] == {"database": "ok", "redis": "ok", "storage": "ok"}


def test_a_dead_redis_makes_it_not_ready_and_says_which(app_config, database_url):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url,
                      "REDIS_URL": DEAD_REDIS})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "failed", "checks": {
        "database": "ok", "redis": "failed", "storage": "ok"}}
    assert "127.0.0.1" not in response.get_data(as_text=True)
    _plain(response)


def test_a_dead_database_makes_it_not_ready_without_saying_its_address(app_config):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": DEAD_DATABASE})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"] == "failed"
    text = response.get_data(as_text=True)
    assert "pw-not-shown" not in text and "nobody" not in text
    assert app.test_client().get("/healthz").status_code == 200  # the process still answers


def test_a_file_store_that_cannot_be_written_makes_it_not_ready(app_config, database_url,
                                                                tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store should be")
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url,
                      "FILE_STORE": str(blocker / "files")})
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "storage": "failed"}
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_probes_are_not_rate_limited_and_need_no_csrf(app):
    client = app.test_client()
    statuses = {client.get("/healthz").status_code for _ in range(50)}
    assert statuses == {200}
    assert client.post("/healthz").status_code == 405  # no form, so no CSRF to refuse


def _with_probe(app):
    """A route that shows what the app believes about the request (after ProxyFix)."""
    @app.get("/_probe")
    def probe():
        return {"remote_addr": request.remote_addr, "scheme": request.scheme,
                "login": url_for("auth.login", _external=True)}


# The proxy passes the browser's Host on; a caller's own X-Forwarded-Host and -Prefix
# (most proxies pass them through untouched) are never believed.
FORWARDED = {"X-Forwarded-For": "198.51.100.23", "X-Forwarded-Proto": "https",
             "Host": "portal.example", "X-Forwarded-Host": "evil.example",
             "X-Forwarded-Prefix": "//evil.example"}


def test_behind_one_proxy_hop_https_is_believed(app_config, database_url, monkeypatch):
    # As deployed: settings from the environment (config.py derives the Secure flags from
    # PUBLIC_BASE_URL there), one proxy in front that speaks https to the browser.
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://portal.example")
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", "1")
    overrides = {k: v for k, v in app_config.items() if k != "PUBLIC_BASE_URL"}
    app = create_app({**overrides, "SQLALCHEMY_DATABASE_URI": database_url})
    _with_probe(app)
    client = app.test_client()
    seen = client.get("/_probe", headers=FORWARDED,
                      environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_json()
    assert seen == {"remote_addr": "198.51.100.23", "scheme": "https",
                    "login": "https://portal.example/login"}
    login = client.get("/login", headers=FORWARDED, environ_base={"REMOTE_ADDR": "10.0.0.2"})
    cookie = login.headers["Set-Cookie"]
    assert "session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


def test_with_no_trusted_hops_forwarded_headers_are_ignored(app_config, database_url):
    app = create_app({**app_config, "SQLALCHEMY_DATABASE_URI": database_url})
    assert app.config["TRUSTED_PROXY_HOPS"] == 0
    _with_probe(app)
    seen = app.test_client().get("/_probe", headers=FORWARDED,
                                 environ_base={"REMOTE_ADDR": "10.0.0.2"}).get_json()
    assert seen == {"remote_addr": "10.0.0.2", "scheme": "http",
                    "login": "http://portal.example/login"}


def test_a_hanging_check_is_not_started_again_by_the_next_probes():
    """Probes come every few seconds from every load balancer: a check that hangs answers
    "failed" for each of them, and no second copy of it starts (no threads pile up)."""
    import threading

    from portal.ops.health import _running, run_checks

    release, calls = threading.Event(), []

    def hangs() -> None:
        calls.append(1)
        release.wait(10)

    try:
        for _ in range(3):
            assert run_checks({"hanging": hangs}, deadline=0.2) == {"hanging": "failed"}
        assert len(calls) == 1
    finally:
        release.set()
    _running["hanging"].result(timeout=10)  # it ends; the next probe runs it afresh
    assert run_checks({"hanging": hangs}, deadline=5) == {"hanging": "ok"}
    assert len(calls) == 2
