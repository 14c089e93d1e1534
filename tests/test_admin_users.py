"""Admins manage accounts and roles; there is always an active admin."""
from __future__ import annotations

from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Role, User


def test_admin_creates_a_user_who_can_sign_in(app, browser, make_browser, make_user):
    admin = make_user(Role.ADMIN)
    browser.login(admin.email)
    response = browser.post("/admin/users", {"email": "New@Agency.example", "name": "Newt",
                                             "role": "finance", "password": "long enough pw"})
    assert response.status_code == 302
    user = db.session.scalar(select(User).where(User.email == "new@agency.example"))
    assert user.role == Role.FINANCE and user.password_hash.startswith("$argon2id$")
    newcomer = make_browser()
    assert newcomer.login("new@agency.example", "long enough pw").status_code == 302


def test_role_change_and_switching_off_signs_the_user_out(app, browser, make_browser,
                                                          make_user, staff):
    admin = make_user(Role.ADMIN)
    sam = make_browser()
    sam.login(staff.email)
    browser.login(admin.email)
    browser.post(f"/admin/users/{staff.id}", {"role": "finance", "active": "1"})
    db.session.refresh(staff)
    assert staff.role == Role.FINANCE
    browser.post(f"/admin/users/{staff.id}", {"role": "finance"})  # active unticked
    db.session.refresh(staff)
    assert not staff.active
    assert sam.get("/clients").status_code == 302  # signed out
    verbs = db.session.scalars(select(AuditEvent.verb)).all()
    assert verbs.count("user.updated") == 2


def test_the_last_admin_cannot_be_demoted(app, browser, make_user):
    admin = make_user(Role.ADMIN)
    browser.login(admin.email)
    response = browser.post(f"/admin/users/{admin.id}", {"role": "staff", "active": "1"},
                            follow_redirects=True)
    assert "at least one active admin" in response.get_data(as_text=True)
    db.session.refresh(admin)
    assert admin.role == Role.ADMIN


def test_staff_cannot_manage_users(app, browser, staff):
    browser.login(staff.email)
    users_before = db.session.scalar(select(func.count(User.id)))
    assert browser.get("/admin/users").status_code == 403
    assert browser.post(f"/admin/users/{staff.id}", {"role": "admin", "active": "1"}) \
        .status_code == 403
    assert browser.post("/admin/users", {"email": "new@agency.example", "name": "New",
                                         "password": "long enough password",
                                         "role": "admin"}).status_code == 403
    db.session.refresh(staff)
    assert staff.role == Role.STAFF and staff.active
    assert db.session.scalar(select(func.count(User.id))) == users_before
