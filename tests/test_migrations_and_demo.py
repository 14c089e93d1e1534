"""The schema comes from migrations that match the models; the demo loads every state."""
from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select

from portal.extensions import db
from portal.models import AuditEvent, Deliverable, DeliverableState, OutboxMessage, User


def test_migrations_match_the_models(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, db.metadata)
    assert differences == []


def test_demo_loads_one_deliverable_in_each_state_and_prints_logins(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0, result.output
    assert "alice@signoff.example" in result.output and "signoff-demo" in result.output
    states = set(db.session.scalars(select(Deliverable.state)))
    assert states == set(DeliverableState)
    roles = {u.role.value for u in db.session.scalars(select(User))}
    assert roles == {"admin", "staff", "finance"}
    assert db.session.scalar(select(func.count(OutboxMessage.id))) > 0

    again = runner.invoke(args=["demo", "load", "--if-empty"])
    assert "already has data" in again.output
    assert db.session.scalar(select(func.count(Deliverable.id))) == len(DeliverableState)

    verify = runner.invoke(args=["audit", "verify"])
    assert verify.exit_code == 0
    events = db.session.scalar(select(func.count(AuditEvent.id)))
    assert f"{events} events checked" in verify.output


def test_demo_users_sign_in_and_see_the_board(app, browser):
    app.test_cli_runner().invoke(args=["demo", "load"])
    response = browser.login("alice@signoff.example", "signoff-demo")
    assert response.status_code == 302
    everything = browser.get("/deliverables").get_data(as_text=True)
    for title in ("Brand guidelines", "Homepage design", "Launch email", "Landing page copy",
                  "Logo refresh", "Brochure", "Social media kit"):
        assert title in everything
    board = browser.get("/").get_data(as_text=True)
    attention = {
        "section-rejected": "Social media kit", "section-with_client": "Landing page copy",
        "section-approved": "Brochure",
    }
    for section, title in attention.items():
        start = board.index(f'id="{section}"')
        assert title in board[start:board.index("</section>", start)]
    assert "Waiting for Jane Doe" in board
