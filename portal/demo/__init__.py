"""Demo data: three staff roles, a client, and one deliverable in each lifecycle state.

Everything goes through the same domain functions the pages use, so the demo has a real
audit trail and real outbox messages.
"""
from __future__ import annotations

import io
from datetime import timedelta

from sqlalchemy import func, select

from portal import workflow
from portal.demo.samples import sample_pdf, sample_png
from portal.extensions import db
from portal.models import Outcome, Policy, Role, User, today_utc
from portal.people import accounts
from portal.people import clients as people

PASSWORD = "signoff-demo"
DEMO_LOGINS = {
    "password": PASSWORD,
    "users": [("admin", "alice@signoff.example"), ("staff", "bob@signoff.example"),
              ("finance", "fiona@signoff.example")],
}


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count(User.id)))


def load() -> None:
    """Write the demo in the caller's transaction (the CLI commits it)."""
    admin = accounts.create_user(None, "alice@signoff.example", "Alice Admin", PASSWORD,
                                 Role.ADMIN)
    bob = accounts.create_user(admin, "bob@signoff.example", "Bob Producer", PASSWORD, Role.STAFF)
    accounts.create_user(admin, "fiona@signoff.example", "Fiona Finance", PASSWORD, Role.FINANCE)
    client = people.create_client(admin, "Acme Corp", [
        ("Jane Doe", "jane@acme.example"), ("John Roe", "john@acme.example")])
    project = people.create_project(admin, client, "Website relaunch", admin)
    jane, john = sorted(client.contacts, key=lambda c: c.name)
    due = today_utc() + timedelta(days=10)

    def deliverable(title: str, description: str, state_steps: int):
        item = workflow.create_deliverable(admin, project, title, description, due)
        data = sample_png() if "Logo" in title else sample_pdf(f"{title} - version 1")
        name = "logo.png" if "Logo" in title else f"{title.lower().replace(' ', '-')}-v1.pdf"
        workflow.upload_version(admin, item, io.BytesIO(data), name, "First version.")
        if state_steps >= 1:
            workflow.submit_for_review(admin, item, bob)
        if state_steps >= 2:
            workflow.review_internally(bob, item, approve=True, note="Looks good.")
        return item

    deliverable("Brand guidelines", "The brand book: colours, type, tone of voice.", 0)
    deliverable("Homepage design", "Desktop and mobile homepage layouts.", 1)
    deliverable("Launch email", "The email announcing the new site.", 2)

    delivered = deliverable("Landing page copy", "All copy for the campaign landing page.", 2)
    workflow.deliver(admin, delivered, [jane, john], Policy.SEQUENTIAL, due)

    for title, outcome, text, conditions in (
        ("Logo refresh", Outcome.APPROVED, "", None),
        ("Brochure", Outcome.APPROVED_WITH_CONDITIONS, "",
         ["Fix the typo on page 2 before print.", "Use the 2025 logo on the back cover."]),
        ("Social media kit", Outcome.REJECTED, "The colours do not match our brand book.", None),
    ):
        item = deliverable(title, f"{title} for the relaunch.", 2)
        request = workflow.deliver(admin, item, [jane], Policy.PARALLEL, due)
        # The requested changes stay unclassified: staff's next step on that page.
        workflow.record_decision(request.approvers[0], outcome, text,
                                 conditions=conditions, ip="127.0.0.1", user_agent="demo data",
                                 seen_sha256=request.version.sha256)
