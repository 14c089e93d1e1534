"""Browser journeys: the real app on a live port, Debian's Chromium driven by Playwright.

The live server answers in its own threads, each request with its own database session,
while the test keeps the app context the `app` fixture pushed. SQLite transactions here
begin IMMEDIATE (portal/__init__.py), so a test that reads must let go of its transaction
before the browser acts again: read inside `with reading():`, which commits at the end.
Never `playwright install`: the browser is /usr/bin/chromium.
"""
from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from werkzeug.serving import make_server

from portal.certificates import create_development_key
from portal.extensions import db
from portal.models import Role, User
from tests.conftest import PASSWORD, SmtpSink, _free_port, need_server
from tests.e2e.a11y import Auditor

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 15_000
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LINK = re.compile(r"http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_.\-]+")


@contextmanager
def reading() -> Iterator[None]:
    """See what the live server wrote, then end the transaction so it can write again.

    Take plain values (ids, strings) out of the block: touching an expired ORM object
    afterwards would open a new transaction and hold SQLite's write lock.
    """
    db.session.expire_all()
    try:
        yield
    finally:
        db.session.commit()


def off_the_browser_thread(app: Flask, fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn` on a thread of its own, in a fresh app context, as a worker would.

    Playwright's sync API keeps an asyncio loop running on the test's thread, and the
    certificate seal (pyhanko) calls asyncio.run(), which refuses to nest. The live
    server's threads have no loop, so this only matters for work the test itself does.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        with app.app_context():
            try:
                outcome["value"] = fn(*args)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                db.session.remove()

    db.session.commit()  # let the other thread write
    thread = threading.Thread(target=work, name="e2e-worker")
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), f"{fn.__name__} did not finish in 60 s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# --- the live server ------------------------------------------------------------------

@pytest.fixture(scope="session")
def seal_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A development seal for certificates (RSA-3072 takes a moment, so once)."""
    return create_development_key(tmp_path_factory.mktemp("e2e-seal"), "Signoff e2e seal")


@pytest.fixture
def live_port() -> int:
    return _free_port()


@pytest.fixture(autouse=True)
def _e2e_settings(database_url: str, app_config: dict[str, Any], smtp_sink: SmtpSink,
                  seal_key: tuple[Path, Path], live_port: int) -> None:
    """Runs before anything builds `app`: real SMTP to the sink, links to the live port."""
    if not database_url.startswith("sqlite"):
        pytest.skip("browser journeys run once, on SQLite (the workflow is covered on "
                    "PostgreSQL by the HTTP-level tests)")
    key, cert = seal_key
    app_config.update({
        "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_sink.port,
        "PUBLIC_BASE_URL": f"http://127.0.0.1:{live_port}",
        "SIGNING_KEY": str(key), "SIGNING_CERT": str(cert), "SIGNING_PKCS12": "",
        "SIGNING_TSA_URL": "",
        "REDIS_URL": "",  # the embedded default: jobs on the in-process background worker
        "RATELIMIT_STORAGE_URI": "memory://",
        "CLIENT_RATE_LIMIT": "10000 per minute", "RENEW_RATE_LIMIT": "1000 per minute",
        "VERIFY_RATE_LIMIT": "1000 per minute",
    })


@pytest.fixture
def live_server(app: Flask, live_port: int) -> Iterator[str]:
    """The app on http://127.0.0.1:<port>, threaded, for as long as the test runs."""
    if "sqlite" not in app.config["SQLALCHEMY_DATABASE_URI"]:
        pytest.skip("browser journeys run once, on SQLite")
    db.session.commit()  # nothing of the test's may hold the write lock
    server = make_server("127.0.0.1", live_port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-live-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{live_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


# --- people ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    id: int
    email: str
    name: str


def _person(user: User) -> Person:
    person = Person(user.id, user.email, user.name)
    db.session.commit()
    return person


@pytest.fixture
def staff_a(staff: User) -> Person:
    """Staff member A (Sam Staff), who owns the work."""
    return _person(staff)


@pytest.fixture
def colleague_b(colleague: User) -> Person:
    """Colleague B (Cora Colleague), who reviews A's work."""
    return _person(colleague)


@pytest.fixture
def finance_f(make_user: Callable[..., User]) -> Person:
    return _person(make_user(Role.FINANCE, email="fiona@agency.example", name="Fiona Finance"))


# --- mail -----------------------------------------------------------------------------

def wait_for_mail(sink: SmtpSink, address: str, count: int = 1, timeout: float = 15.0) -> list:
    """The messages the sink holds for `address`, once there are at least `count`."""
    deadline = time.monotonic() + timeout
    while True:
        messages = sink.to(address)
        if len(messages) >= count:
            return messages
        if time.monotonic() > deadline:
            subjects = [(rcpts, m["Subject"]) for rcpts, m in sink.messages]
            raise AssertionError(f"expected {count} email(s) to {address}, got "
                                 f"{len(messages)}; the sink holds {subjects}")
        time.sleep(0.05)


def text_of(message: Any) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def link_in(message: Any) -> str:
    """The magic link in an email's plain-text body."""
    match = LINK.search(text_of(message))
    assert match, f"no review link in: {text_of(message)!r}"
    return match.group(0)


# --- the browser ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, once per module. Missing: skipped here, a failure under CI.

    Module scope on purpose: Playwright's sync API keeps an asyncio loop running on the
    main thread while it is started, and the tests that run after these (certificate
    sealing calls asyncio.run()) need it stopped again.
    """
    if not CHROMIUM.exists():
        need_server("Chromium", f"{CHROMIUM} is missing (apt-get install chromium; never "
                    "`playwright install`)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError as exc:
        need_server("Chromium", f"the playwright package is not installed ({exc}); "
                    "pip install -e '.[dev]'")
    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                    timeout=30_000)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class Journey:
    """One test's actors, each in a browser context of their own, and its screenshots.

    Every page an actor opens is checked with axe-core and for sideways scroll
    (tests/e2e/a11y.py), without the test asking."""

    browser: Any
    base_url: str
    test_name: str
    contexts: list[Any] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    shots: list[Path] = field(default_factory=list)
    auditor: Auditor = field(default_factory=Auditor)
    watched: list[Any] = field(default_factory=list)

    def actor(self, *, phone: bool = False) -> Any:
        """A fresh context (own cookies) and page; phone = 390x844 with touch."""
        options: dict[str, Any] = {"base_url": self.base_url, "accept_downloads": True,
                                   "viewport": PHONE if phone else DESKTOP}
        if phone:
            options.update(is_mobile=True, has_touch=True, device_scale_factor=2)
        context = self.browser.new_context(**options)
        context.set_default_timeout(TIMEOUT_MS)
        context.set_default_navigation_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        self.auditor.watch(context)
        self.watched.append(context)
        page = self.auditor.guard(context.new_page())
        page.set_default_timeout(TIMEOUT_MS)
        page.on("dialog", self._accept_dialog)
        page.on("pageerror", lambda exc: self.page_errors.append(f"{page.url}: {exc}"))
        page.on("console", lambda message: self._console(page, message))
        return page

    def _accept_dialog(self, dialog: Any) -> None:
        self.dialogs.append(dialog.message)
        dialog.accept()

    def _console(self, page: Any, message: Any) -> None:
        # A blocked script or style is a bug the user would see; 4xx pages log too, so
        # only Content-Security-Policy refusals count here.
        if message.type == "error" and "Content Security Policy" in message.text:
            self.page_errors.append(f"{page.url} ({message.location}): {message.text}")

    def sign_in(self, page: Any, email: str, password: str = PASSWORD) -> None:
        from playwright.sync_api import expect

        page.goto("/login")
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    def shot(self, page: Any, name: str) -> Path:
        """A full-page PNG in test-artifacts/e2e/<test>-<name>.png.

        caret="initial": hiding the caret leaves an empty style="" on the focused field,
        which htmx copies while settling a swap, and the CSP then reports a refusal."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{self.test_name}-{name}.png"
        page.screenshot(path=str(path), full_page=True, caret="initial")
        self.shots.append(path)
        return path

    def __post_init__(self) -> None:
        self.auditor.origin = self.base_url

    def allow_axe(self, url_pattern: str, reason: str) -> None:
        """Excuse axe's findings on the one page whose URL matches, for a written reason."""
        assert len(reason.split()) >= 4, "say why this page may fail axe"
        self.auditor.allowed.append((re.compile(url_pattern), reason))

    def audit(self) -> None:
        """Check the states the actors' pages are on now, write the log, fail on findings."""
        self.auditor.check_all([p for c in self.watched for p in c.pages])
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{self.test_name}-axe.txt").write_text(
            "\n".join(self.auditor.log) + "\n", encoding="utf-8")
        assert not self.auditor.findings, self.auditor.report()

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browser_page(live_server: str, request: pytest.FixtureRequest) -> Iterator[Journey]:
    """Helpers for one journey: `.actor()` per person, `.sign_in()`, `.shot()`.

    Chromium is asked for only now, after the PostgreSQL half has been skipped."""
    journey = Journey(request.getfixturevalue("chromium"), live_server,
                      request.node.originalname)
    try:
        yield journey
        journey.audit()
    finally:
        journey.close()
    assert not journey.page_errors, f"the browser reported errors: {journey.page_errors}"
