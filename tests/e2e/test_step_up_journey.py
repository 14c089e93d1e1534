"""The emailed-code step-up in Chromium, on a phone: ask, read the email, type, decide."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.extensions import db
from portal.models import Decision, DeliverableState, IdentityCheck
from tests.e2e.browser_api import expect
from tests.e2e.conftest import Journey, link_in, reading, wait_for_mail

pytestmark = pytest.mark.e2e


def test_a_decision_after_an_emailed_code(browser_page: Journey, make_deliverable, smtp_sink):
    j = browser_page
    d = make_deliverable(DeliverableState.DELIVERED)
    d.open_request.require_code = True
    email, title = d.open_request.approvers[0].contact.email, d.title
    db.session.commit()

    phone = j.actor(phone=True)
    phone.goto(link_in(wait_for_mail(smtp_sink, email)[0]))
    panel = phone.locator("#decision-panel")
    expect(panel).to_contain_text("Before you decide, confirm it is you")
    expect(phone.get_by_role("button", name="Approve", exact=True)).to_have_count(0)
    phone.get_by_role("button", name="Email me a code").click()
    expect(panel.get_by_role("status").last).to_contain_text("We have emailed you a code")
    mails = wait_for_mail(smtp_sink, email, 2)
    code = re.search(r"\b(\d{6})\b", mails[-1]["Subject"]).group(1)
    j.shot(phone, "01-code-asked-phone")

    phone.get_by_label("Code from the email").fill(code)
    phone.get_by_role("button", name="Confirm code").click()
    expect(panel).to_contain_text("Code confirmed: you can decide now.")
    phone.get_by_role("button", name="Approve", exact=True).click()
    phone.get_by_role("button", name=f"Approve version 1 of {title}", exact=True).click()
    expect(panel).to_contain_text("— approved")
    j.shot(phone, "02-decided-phone")
    with reading():
        assert db.session.scalars(select(Decision.identity)).one() == IdentityCheck.EMAIL_CODE
