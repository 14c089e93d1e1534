"""The production shape's cases of the security catalogue (tests/test_security_catalogue.py
lists them): who reads /-/metrics, whether a forged X-Forwarded-For buys a fresh rate-limit
allowance, and what the probes tell a stranger."""
from __future__ import annotations

from typing import Any

from portal.extensions import limiter

METRICS = "/-/metrics"
TOKEN = "metrics-token-for-the-catalogue-0123456789"


def metrics_need_the_token_or_loopback(w: Any) -> dict[str, Any]:
    """Without METRICS_TOKEN only loopback reads; with it only the token does, from anywhere
    (compared in constant time). Everyone else: 404, as for a page that is not there."""
    anonymous = w.app.test_client()
    remote = {"REMOTE_ADDR": "203.0.113.50"}
    answers = {"no token set, loopback": anonymous.get(METRICS).status_code,
               "no token set, relayed by a local proxy": anonymous.get(
                   METRICS, headers={"X-Forwarded-For": "203.0.113.9"}).status_code,
               "no token set, remote": anonymous.get(METRICS, environ_base=remote).status_code,
               "signed-in admin, remote": w.ada.get(METRICS,
                                                    environ_base=remote).status_code}
    w.app.config["METRICS_TOKEN"] = TOKEN
    try:
        answers.update({
            "token set, none given, loopback": anonymous.get(METRICS).status_code,
            "token set, wrong token": anonymous.get(
                METRICS, headers={"Authorization": f"Bearer {TOKEN[:-1]}x"}).status_code,
            "token set, as a query string": anonymous.get(
                f"{METRICS}?token={TOKEN}").status_code,
            "token set, right token, remote": anonymous.get(
                METRICS, environ_base=remote,
                headers={"Authorization": f"Bearer {TOKEN}"}).status_code,
        })
    finally:
        w.app.config["METRICS_TOKEN"] = ""
    return answers


def forwarded_for_does_not_reset_rate_limits(w: Any) -> dict[str, Any]:
    """With TRUSTED_PROXY_HOPS=0 a caller's X-Forwarded-For is not its address: changing it
    on each try does not buy a fresh allowance of failed sign-ins (nor, from a distant
    address, read the metrics)."""
    assert w.app.config["TRUSTED_PROXY_HOPS"] == 0
    saved = w.app.config["LOGIN_RATE_LIMIT"]
    w.app.config["LOGIN_RATE_LIMIT"] = "3 per minute"
    limiter.reset()
    browser = w.new_browser()
    try:
        statuses = [browser.post("/login", {"email": w.staff.email, "password": "wrong"},
                                 headers={"X-Forwarded-For": f"198.51.100.{i}"},
                                 environ_base={"REMOTE_ADDR": "203.0.113.77"}).status_code
                    for i in range(5)]
        metrics = w.app.test_client().get(METRICS, environ_base={"REMOTE_ADDR": "203.0.113.77"},
                                          headers={"X-Forwarded-For": "127.0.0.1"}).status_code
    finally:
        w.app.config["LOGIN_RATE_LIMIT"] = saved
        limiter.reset()
    return {"failed sign-ins": statuses, "metrics claiming loopback": metrics}


def probes_show_no_personal_data(w: Any) -> dict[str, Any]:
    """/healthz and /readyz answer anyone, without a cookie, and say only ok or failed:
    no names, addresses, database URL or paths."""
    anonymous = w.app.test_client()
    health, ready = anonymous.get("/healthz"), anonymous.get("/readyz")
    text = health.get_data(as_text=True) + ready.get_data(as_text=True)
    personal = [w.a1.contact.email, w.a1.contact.name, w.staff.email, w.staff.name,
                w.app.config["SQLALCHEMY_DATABASE_URI"], w.app.config["FILE_STORE"]]
    return {
        "healthz": (health.status_code, health.get_json()),
        "readyz": (ready.status_code, sorted(ready.get_json()["checks"].values())),
        "cookies": [r.headers.get("Set-Cookie") for r in (health, ready)],
        "leaks": [p for p in personal if p and p in text],
    }


def forwarded_host_and_prefix_are_not_believed(w: Any) -> dict[str, Any]:
    """Behind one trusted proxy, the caller's address and scheme come from it, but a
    caller's own X-Forwarded-Host or -Prefix (most proxies pass them through) never
    chooses where a redirect or an asset link points."""
    from portal import create_app

    app = create_app({**w.app.config, "TRUSTED_PROXY_HOPS": 1})
    client = app.test_client()
    forged = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https",
              "X-Forwarded-Host": "evil.example", "X-Forwarded-Prefix": "//evil.example"}
    home = client.get("/", headers=forged)
    login = client.get("/login", headers=forged).get_data(as_text=True)
    return {"redirect": (home.status_code, "evil.example" in home.headers.get("Location", "")),
            "links on the sign-in page name the forged host": "evil.example" in login}
