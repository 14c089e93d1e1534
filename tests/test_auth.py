"""Staff sign-in: the form, credentials, sessions, redirects, accounts from the CLI, CSRF,
rate limiting and the security headers every page carries."""
from __future__ import annotations

import contextvars
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import Client, DeliverableState, Role, User
from tests.conftest import PASSWORD

NEW_PASSWORD = "a perfectly long password"


def _alert(response) -> str:
    """The text of the page's error message (role="alert")."""
    match = re.search(r'role="alert">(.*?)</', response.get_data(as_text=True), re.S)
    assert match, "the page shows no error message"
    return match.group(1).strip()


def _is_signed_in(browser) -> bool:
    response = browser.get("/clients")  # a page every signed-in role may read
    if response.status_code == 200:
        return True
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    return False


def _post_without_token(browser, url: str, data: dict[str, str]):
    """A form post as a forged cross-site form would send it: no csrf_token field.

    Run in a fresh context, as the Browser does, so the request has its own `g` and
    database session.
    """
    db.session.commit()
    response = contextvars.Context().run(browser.client.post, url, data=data)
    db.session.expire_all()
    return response


def _users(email: str) -> list[User]:
    return list(db.session.scalars(select(User).where(func.lower(User.email) == email.lower())))


# --- the form -------------------------------------------------------------------------

def test_login_page_has_labelled_email_and_password_fields_and_a_sign_in_button(browser):
    response = browser.get("/login")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert '<label for="email">Email</label>' in html
    assert '<input id="email" name="email" type="email"' in html
    assert '<label for="password">Password</label>' in html
    assert '<input id="password" name="password" type="password"' in html
    assert '<button type="submit">Sign in</button>' in html


# --- credentials ----------------------------------------------------------------------

def test_correct_credentials_sign_in_and_land_on_the_dashboard(browser, make_deliverable,
                                                               staff):
    make_deliverable(DeliverableState.DRAFT)
    assert not _is_signed_in(browser)

    response = browser.login(staff.email)
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/"

    dashboard = browser.get("/")
    html = dashboard.get_data(as_text=True)
    assert dashboard.status_code == 200
    assert "What needs attention" in html
    assert "Sam Staff" in html  # who is signed in
    assert "Homepage v3" in browser.get("/deliverables").get_data(as_text=True)


def test_email_is_case_insensitive(browser, staff):
    response = browser.login("  SAM@Agency.EXAMPLE ")
    assert response.status_code == 302
    assert _is_signed_in(browser)


def test_wrong_password_and_unknown_email_give_the_same_message(make_browser, staff):
    wrong_password = make_browser().login(staff.email, "not the password at all")
    unknown_email = make_browser().login("nobody@agency.example", PASSWORD)

    assert wrong_password.status_code == unknown_email.status_code == 401
    message = _alert(wrong_password)
    assert message == _alert(unknown_email)
    assert message == "That email and password do not match an active account."
    for telltale in ("password is", "incorrect password", "wrong password", "unknown",
                     "not found", "no account", "does not exist", "no user"):
        assert telltale not in message.lower()


def test_a_failed_sign_in_keeps_the_email_but_not_the_password(browser, staff):
    response = browser.login(staff.email, "not the password at all")
    html = response.get_data(as_text=True)
    assert f'value="{staff.email}"' in html
    assert "not the password at all" not in html
    assert not _is_signed_in(browser)


def test_an_inactive_user_cannot_sign_in(browser, make_user):
    gone = make_user(Role.STAFF, email="gone@agency.example", active=False)
    response = browser.login(gone.email)
    assert response.status_code == 401
    assert _alert(response) == "That email and password do not match an active account."
    assert not _is_signed_in(browser)


def test_deactivating_a_user_ends_their_session(browser, staff):
    browser.login(staff.email)
    assert _is_signed_in(browser)
    staff.active = False
    db.session.commit()
    assert not _is_signed_in(browser)


# --- sessions -------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/clients"])
def test_pages_need_sign_in(browser, path):
    response = browser.get(path)
    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert location.path == "/login"
    assert parse_qs(location.query)["next"] == [path]


def test_sign_in_returns_to_the_page_asked_for(browser, staff):
    first = browser.get("/clients")
    login_url = first.headers["Location"]
    browser.csrf_token()
    response = browser.post(login_url, {"email": staff.email, "password": PASSWORD})
    assert response.status_code == 302
    assert response.headers["Location"] == "/clients"
    assert browser.get("/clients").status_code == 200


def test_sign_out_ends_the_session(browser, staff):
    browser.login(staff.email)
    assert _is_signed_in(browser)

    response = browser.post("/logout", {})
    assert response.status_code == 302
    assert urlsplit(response.headers["Location"]).path == "/login"
    assert "You are signed out." in browser.get("/login").get_data(as_text=True)
    assert not _is_signed_in(browser)


def test_sign_out_is_not_a_get(browser, staff):
    browser.login(staff.email)
    assert browser.get("/logout").status_code == 405
    assert _is_signed_in(browser)


def test_changing_the_session_token_signs_out_existing_sessions(make_browser, staff):
    laptop, phone = make_browser(), make_browser()
    laptop.login(staff.email)
    phone.login(staff.email)
    assert _is_signed_in(laptop) and _is_signed_in(phone)

    staff.session_token = secrets.token_urlsafe(24)  # what a password reset does
    db.session.commit()

    assert not _is_signed_in(laptop)
    assert not _is_signed_in(phone)
    laptop.login(staff.email)  # signing in again works
    assert _is_signed_in(laptop)


def test_keep_me_signed_in_outlives_the_session_cookie_but_not_sign_out(browser, staff):
    browser.csrf_token()
    browser.post("/login", {"email": staff.email, "password": PASSWORD, "remember": "1"})
    assert browser.client.get_cookie("remember_token") is not None
    browser.client.delete_cookie("session")  # the browser was closed
    assert _is_signed_in(browser)

    browser.post("/logout", {})
    assert browser.client.get_cookie("remember_token") is None
    browser.client.delete_cookie("session")
    assert not _is_signed_in(browser)


def test_without_keep_me_signed_in_closing_the_browser_signs_out(browser, staff):
    browser.login(staff.email)
    assert browser.client.get_cookie("remember_token") is None
    browser.client.delete_cookie("session")
    assert not _is_signed_in(browser)


def test_changing_the_session_token_also_ends_remembered_sign_ins(browser, staff):
    browser.csrf_token()
    browser.post("/login", {"email": staff.email, "password": PASSWORD, "remember": "1"})
    staff.session_token = secrets.token_urlsafe(24)
    db.session.commit()
    browser.client.delete_cookie("session")
    assert not _is_signed_in(browser)


def test_a_value_planted_before_sign_in_is_gone_after_it(browser, staff):
    with browser.client.session_transaction() as session:
        session["planted"] = "x"
    browser.get("/login")
    with browser.client.session_transaction() as session:
        assert session.get("planted") == "x"  # it survives ordinary requests

    browser.login(staff.email)
    assert _is_signed_in(browser)
    with browser.client.session_transaction() as session:
        assert "planted" not in session


# --- where sign-in sends you (open redirects) -----------------------------------------

@pytest.mark.parametrize("target", ["/clients", "/deliverables/1?tab=files"])
def test_next_is_followed_for_same_site_paths(browser, staff, target):
    browser.csrf_token()
    response = browser.post("/login", {"email": staff.email, "password": PASSWORD},
                            query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == target


EVIL_TARGETS = [
    "//evil.example",
    "//evil.example/clients",
    "https://evil.example/",
    "http:evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\t/evil.example",
    "javascript:alert(1)",
]


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_next_never_leaves_the_site_on_sign_in(browser, staff, target):
    browser.csrf_token()
    response = browser.post("/login", {"email": staff.email, "password": PASSWORD},
                            query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert _is_signed_in(browser)


@pytest.mark.parametrize("target", EVIL_TARGETS)
def test_next_never_leaves_the_site_when_already_signed_in(browser, staff, target):
    browser.login(staff.email)
    response = browser.get("/login", query_string={"next": target})
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


# --- accounts from the command line ---------------------------------------------------

def _cli(app, *args: str, input: str):
    return app.test_cli_runner().invoke(args=["users", "create", *args], input=input)


def test_cli_creates_a_user_with_an_argon2id_hash_who_can_sign_in(app, browser):
    result = _cli(app, "Fiona.Finance@Agency.example", "--role", "finance", "--name",
                  "Fiona", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert "Created finance fiona.finance@agency.example." in result.output

    [user] = _users("fiona.finance@agency.example")
    assert user.email == "fiona.finance@agency.example"
    assert user.role == Role.FINANCE and user.name == "Fiona" and user.active
    assert user.password_hash.startswith("$argon2id$")
    assert NEW_PASSWORD not in user.password_hash

    assert browser.login("fiona.finance@agency.example", NEW_PASSWORD).status_code == 302
    assert _is_signed_in(browser)


def test_cli_hashes_are_salted(app):
    for email in ("one@agency.example", "two@agency.example"):
        assert _cli(app, email, "--password-stdin", input=NEW_PASSWORD + "\n").exit_code == 0
    hashes = [u.password_hash for u in db.session.scalars(select(User))]
    assert len(hashes) == 2 and hashes[0] != hashes[1]
    assert all(h.startswith("$argon2id$") for h in hashes)


def test_cli_refuses_a_short_password(app):
    result = _cli(app, "short@agency.example", "--password-stdin", input="short\n")
    assert result.exit_code != 0
    assert "Passwords need at least 10 characters." in result.output
    assert _users("short@agency.example") == []


def test_cli_refuses_a_duplicate_email(app, staff):
    result = _cli(app, "SAM@agency.example", "--role", "admin", "--password-stdin",
                  input=NEW_PASSWORD + "\n")
    assert result.exit_code != 0
    assert "already exists" in result.output
    [user] = _users("sam@agency.example")
    assert user.role == Role.STAFF  # the existing account is untouched


def test_cli_refuses_an_invalid_email(app):
    result = _cli(app, "not-an-email", "--password-stdin", input=NEW_PASSWORD + "\n")
    assert result.exit_code != 0
    assert "not a valid email address" in result.output
    assert db.session.scalar(select(func.count()).select_from(User)) == 0


def test_cli_prompts_for_the_password_twice(app, browser):
    result = _cli(app, "ivy@agency.example", "--role", "admin",
                  input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}\n")
    assert result.exit_code == 0, result.output
    assert "Password" in result.output and NEW_PASSWORD not in result.output
    [user] = _users("ivy@agency.example")
    assert user.role == Role.ADMIN and user.password_hash.startswith("$argon2id$")
    assert browser.login("ivy@agency.example", NEW_PASSWORD).status_code == 302


def test_cli_prompt_refuses_passwords_that_do_not_match(app):
    result = _cli(app, "ivy@agency.example", input=f"{NEW_PASSWORD}\n{NEW_PASSWORD}x\n")
    assert result.exit_code != 0
    assert "do not match" in result.output
    assert _users("ivy@agency.example") == []


# --- CSRF -----------------------------------------------------------------------------

def test_a_post_without_csrf_token_is_refused_and_saves_nothing(browser, staff):
    browser.login(staff.email)
    response = _post_without_token(browser, "/clients/new", {"name": "Forged Corp"})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Form expired" in html
    assert "Nothing was saved" in html
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0

    # The same form with its token goes through, so the token was all that was missing.
    assert browser.post("/clients/new", {"name": "Real Corp"}).status_code == 302
    assert [c.name for c in db.session.scalars(select(Client))] == ["Real Corp"]


def test_a_post_with_a_wrong_csrf_token_is_refused(browser, staff):
    browser.login(staff.email)
    response = _post_without_token(browser, "/clients/new",
                                   {"name": "Forged Corp", "csrf_token": "forged"})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(Client)) == 0


def test_sign_in_without_csrf_token_is_refused(browser, staff):
    response = _post_without_token(browser, "/login",
                                   {"email": staff.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "Form expired" in response.get_data(as_text=True)
    assert not _is_signed_in(browser)


def test_sign_out_without_csrf_token_does_not_sign_out(browser, staff):
    browser.login(staff.email)
    assert _post_without_token(browser, "/logout", {}).status_code == 400
    assert _is_signed_in(browser)


# --- rate limiting --------------------------------------------------------------------

@pytest.fixture
def login_limit_of_three(app_config):
    app_config["LOGIN_RATE_LIMIT"] = "3 per minute"


def test_the_fourth_failed_sign_in_in_a_minute_is_refused(login_limit_of_three, browser,
                                                          staff):
    for _ in range(3):
        assert browser.login(staff.email, "not the password at all").status_code == 401
    blocked = browser.login(staff.email, "not the password at all")
    assert blocked.status_code == 429
    assert "Too Many Requests" in blocked.get_data(as_text=True)
    assert int(blocked.headers["Retry-After"]) > 0
    # Even the right password is refused until the window passes.
    assert browser.login(staff.email).status_code == 429
    assert not _is_signed_in(browser)
    # Only posts count: the form itself still opens.
    assert browser.get("/login").status_code == 200


# --- response headers -----------------------------------------------------------------

def _directives(csp: str) -> dict[str, list[str]]:
    parts = (p.split() for p in csp.split(";") if p.strip())
    return {p[0]: p[1:] for p in parts}


@pytest.mark.parametrize(("path", "signed_in"), [
    ("/login", False), ("/", True), ("/clients", True), ("/no-such-page", True)])
def test_pages_carry_security_headers(browser, staff, path, signed_in):
    if signed_in:
        browser.login(staff.email)
    response = browser.get(path)
    assert response.status_code == (404 if path == "/no-such-page" else 200)
    csp = _directives(response.headers["Content-Security-Policy"])
    script_src = csp.get("script-src", csp.get("default-src"))
    assert script_src == ["'self'"]
    assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src
    assert csp["frame-ancestors"] == ["'none'"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


def test_the_login_page_has_no_inline_script(browser):
    html = browser.get("/login").get_data(as_text=True)
    scripts = re.findall(r"<script\b[^>]*>", html)
    assert scripts and all(" src=" in tag for tag in scripts)
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers either
