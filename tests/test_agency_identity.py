"""The agency's identity: set by an admin, seen by clients on their page, in every email
(From, subject, body; read from the real SMTP sink) and on the certificate."""
from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from flask import render_template
from PIL import Image
from sqlalchemy import select

from portal import create_app
from portal.certificates.issue import _context as certificate_context
from portal.config import ConfigError
from portal.extensions import db
from portal.files.svg_clean import clean_svg
from portal.local_time import format_day, format_when
from portal.models import AgencyProfile, AuditEvent, DeliverableState, Role
from portal.people.colours import SURFACES, WHITE, contrast, palette
from portal.workflow.links import issue_token
from tests.conftest import SECRET

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "emails"


@pytest.fixture
def mail(app_config: dict[str, Any], smtp_sink):
    """Real SMTP to the sink, sent by the app's own worker thread (no Redis)."""
    app_config.update({"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_sink.port, "REDIS_URL": "",
                       "MAIL_DEFAULT_SENDER": "Signoff <review@acme-agency.test>"})
    return smtp_sink


@pytest.fixture
def admin(make_browser, make_user):
    browser = make_browser()
    browser.login(make_user(Role.ADMIN).email)
    return browser


def _png(width: int = 120, height: int = 40, colour: str = "#0a7d3b") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(out, format="PNG")
    return out.getvalue()


def _text(email) -> str:
    return email.get_body(preferencelist=("plain",)).get_content()


def _html(email) -> str:
    return email.get_body(preferencelist=("html",)).get_content()


def _set_identity(admin, **form: str):
    data = {"name": "Acme Agency", "sender_name": "", "accent": "#0a7d3b", **form}
    return admin.post("/admin/agency", data)


def test_clients_see_the_agency_on_their_page_and_in_their_email(mail, admin, app,
                                                                 make_deliverable, browser):
    assert _set_identity(admin, sender_name="Acme Reviews").status_code == 302
    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    mail.wait_for(1)
    [invite] = mail.to(approver.contact.email)

    assert invite["From"].addresses[0].display_name == "Acme Reviews"
    assert invite["From"].addresses[0].addr_spec == "review@acme-agency.test"
    due = d.open_request.due_date
    assert invite["Subject"] == f"Acme Agency: please review Homepage v3 v1 by {format_day(due)}"
    assert invite.get_content_type() == "multipart/alternative"
    expires = format_when(approver.link_expires_at)  # the client's zone: UTC here
    for part in (_text(invite), _html(invite)):
        assert "Acme Agency" in part and f"It works until {expires}" in re.sub(r"<[^>]+>", "",
                                                                             part)
    assert "signoff@localhost" not in invite.as_string()

    browser.get(f"/r/{issue_token(approver)}")
    page = browser.get(browser.review).get_data(as_text=True)
    topbar = page[page.index('<header class="topbar client-bar brand-bar">'):
                  page.index("</header>")]
    assert "Acme Agency" in topbar and "Signoff" not in topbar
    assert "<title>Homepage v3 · version 1 · Acme Agency</title>" in page
    version = db.session.get(AgencyProfile, 1).version
    assert f'href="/brand.css?v={version}"' in page

    css = browser.get(f"/brand.css?v={version}")
    assert css.mimetype == "text/css"
    assert css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert "--brand: #0a7d3b" in css.get_data(as_text=True)
    assert browser.get("/brand.css?v=old").headers["Cache-Control"] == "no-cache"


def test_a_colour_too_light_for_text_is_darkened_and_the_admin_is_told(admin, app):
    response = admin.post("/admin/agency", {"name": "Sunny", "sender_name": "",
                                            "accent": "#FFDD00"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    colours = palette("#ffdd00")
    assert colours.adjusted and colours.on_accent == "#000000"
    assert "#ffdd00 is too light for text on white" in page and colours.ink in page
    css = admin.get("/brand.css").get_data(as_text=True)
    assert f"--accent: {colours.ink};" in css and "--brand: #ffdd00;" in css
    assert contrast(colours.ink, WHITE) >= 4.5

    refused = admin.post("/admin/agency", {"name": "Sunny", "accent": "yellow"})
    assert refused.status_code == 422
    assert "six hexadecimal digits" in refused.get_data(as_text=True)
    assert db.session.get(AgencyProfile, 1).accent == "#ffdd00"


def test_every_accent_colour_gets_text_that_reads():
    for r in range(0, 256, 51):
        for g in range(0, 256, 51):
            for b in range(0, 256, 17):
                p = palette(f"#{r:02x}{g:02x}{b:02x}")
                assert p.band_ratio >= 4.5, p
                assert all(contrast(p.ink, s) >= 4.5 for s in SURFACES), p
                assert contrast(p.ink, WHITE) >= 4.5  # white text on the buttons


def test_only_admins_change_the_identity(make_browser, make_user, app):
    for role in (Role.STAFF, Role.FINANCE):
        someone = make_browser()
        someone.login(make_user(role).email)
        assert someone.get("/admin/agency").status_code == 403
        assert someone.post("/admin/agency", {"name": "Evil", "accent": "#000000"}
                            ).status_code == 403
    assert db.session.get(AgencyProfile, 1) is None


def test_a_png_logo_is_checked_re_encoded_and_served_as_an_image(admin, app, browser):
    uploaded = _png() + b"<script>trailing bytes</script>"
    response = admin.post("/admin/agency/logo", {"logo": (io.BytesIO(uploaded), "logo.png")},
                          content_type="multipart/form-data")
    assert response.status_code == 302
    profile = db.session.get(AgencyProfile, 1)
    assert profile.logo_type == "image/png" and b"<script>" not in profile.logo
    assert Image.open(io.BytesIO(profile.logo)).size == (120, 40)
    assert db.session.scalars(select(AuditEvent.verb).where(
        AuditEvent.verb == "agency.logo_set")).all() == ["agency.logo_set"]

    served = browser.get(f"/agency/logo?v={profile.version}")
    assert served.status_code == 200 and served.mimetype == "image/png"
    assert served.data == profile.logo
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"

    for data, name, says in ((_png(2500, 20), "wide.png", "between 16 and 2000 pixels"),
                             (b"GIF89a not a logo", "logo.gif", "must be a PNG or an SVG"),
                             (b"\x89PNG\r\n\x1a\n broken", "broken.png", "could not be read")):
        refused = admin.post("/admin/agency/logo", {"logo": (io.BytesIO(data), name)},
                             content_type="multipart/form-data")
        assert refused.status_code == 422 and says in refused.get_data(as_text=True), name
    assert db.session.get(AgencyProfile, 1).logo_sha256 == profile.logo_sha256  # kept

    admin.post("/admin/agency/logo/remove")
    assert browser.get("/agency/logo").status_code == 404


HOSTILE_SVG = b"""<?xml version="1.0"?>
<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink"
     viewBox="0 0 100 40" onload="alert(1)">
  <script>alert(2)</script>
  <style>@import url(https://evil.example/x.css);</style>
  <style>.a { fill: url(#g) }</style>
  <defs><linearGradient id="g"><stop offset="0" stop-color="#0a7d3b"/></linearGradient></defs>
  <path class="a" d="M0 0h100v40H0z" onclick="alert(3)"/>
  <rect width="10" height="10" style="fill: url(https://evil.example/track.png)"/>
  <image href="https://evil.example/pixel.png" width="1" height="1"/>
  <use xlink:href="https://evil.example/sprite.svg#x"/>
  <use href="#g"/>
  <a href="javascript:alert(4)"><text x="5" y="30">Acme</text></a>
  <foreignObject><div xmlns="http://www.w3.org/1999/xhtml">hi</div></foreignObject>
  <text x="5" y="20">Acme <tspan>Agency</tspan></text>
</svg>"""


def test_an_svg_logo_keeps_its_drawing_and_loses_anything_that_runs_or_loads():
    cleaned = clean_svg(HOSTILE_SVG).decode()
    for gone in ("script", "onload", "onclick", "evil.example", "javascript", "foreignObject",
                 "<image", "@import", "alert"):
        assert gone not in cleaned, gone
    for kept in ('d="M0 0h100v40H0z"', "url(#g)", 'stop-color="#0a7d3b"', 'href="#g"',
                 "Acme <tspan>Agency</tspan>", 'viewBox="0 0 100 40"'):
        assert kept in cleaned, kept
    assert cleaned.startswith('<svg xmlns="http://www.w3.org/2000/svg"')

    for bad, says in ((b'<!DOCTYPE svg [<!ENTITY x "y">]><svg xmlns="http://www.w3.org/2000/svg">'
                       b"&x;</svg>", "DOCTYPE"),
                      (b"<svg><unclosed", "could not be read"),
                      (b'<html xmlns="http://www.w3.org/1999/xhtml"><svg/></html>', "not an SVG")):
        with pytest.raises(Exception, match=says):
            clean_svg(bad)


def test_the_svg_logo_is_stored_clean_and_served_sandboxed(admin, app, browser):
    response = admin.post("/admin/agency/logo",
                          {"logo": (io.BytesIO(HOSTILE_SVG), "logo.svg")},
                          content_type="multipart/form-data")
    assert response.status_code == 302
    served = browser.get("/agency/logo")
    assert served.mimetype == "image/svg+xml" and b"script" not in served.data
    assert served.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "sandbox" in served.headers["Content-Security-Policy"]
    assert served.headers["Cache-Control"] == "no-cache"  # no version asked for


def test_the_certificate_names_the_agency_with_its_logo(admin, app, make_deliverable):
    _set_identity(admin)
    admin.post("/admin/agency/logo", {"logo": (io.BytesIO(_png()), "logo.png")},
               content_type="multipart/form-data")
    d = make_deliverable(DeliverableState.APPROVED)
    request = d.versions[0].requests[0]
    html = render_template("certificates/certificate.html",
                           **certificate_context(request, "CERT-TEST", request.closed_at))
    header = html[html.index('<header class="top">'):html.index("</header>")]
    assert "Acme Agency" in header and 'src="data:image/png;base64,' in header


def test_every_email_has_a_subject_a_text_and_an_html_part():
    names = {p.name.split(".")[0] for p in TEMPLATES.iterdir() if not p.name.startswith("_")}
    assert names
    for name in names:
        for part in (".subject.txt", ".txt", ".html"):
            assert (TEMPLATES / f"{name}{part}").is_file(), f"{name}{part} is missing"


def test_a_server_sending_real_mail_refuses_to_start_from_localhost(tmp_path, monkeypatch):
    monkeypatch.setenv("INSTANCE_PATH", str(tmp_path))
    base = {"SECRET_KEY": SECRET, "MAIL_SERVER": "smtp.acme-agency.test",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'x.sqlite3'}"}
    with pytest.raises(ConfigError, match="MAIL_DEFAULT_SENDER must be an address on your own"):
        create_app(base)
    with pytest.raises(ConfigError):
        create_app({**base, "MAIL_DEFAULT_SENDER": "Signoff <signoff@localhost>"})
    assert create_app({**base, "MAIL_DEFAULT_SENDER": "review@acme-agency.test"})
    assert create_app({**base, "MAIL_SERVER": ""})  # console mail: nothing leaves the box
