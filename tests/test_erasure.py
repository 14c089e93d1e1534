"""Retention: `flask clients erase CLIENT --before DATE` leaves no personal value of a former
client anywhere in the database, touches no other client, keeps the audit chain verifiable
and the certificate genuine, and is refused while a request is open."""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from portal import workflow
from portal.certificates import Verdict, verify_pdf
from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.files.storage import file_store
from portal.models import (
    AuditEvent,
    Certificate,
    Client,
    Contact,
    Decision,
    DeliverableState,
    OnBehalfChannel,
    OutboxMessage,
    Outcome,
    Policy,
    RequestStatus,
    ReviewRequest,
    Role,
    WebhookDelivery,
    today_utc,
    utcnow,
)
from portal.notifications import webhooks
from portal.workflow import delegation as handover
from portal.workflow.comments import post_comment
from portal.workflow.invitations import record_view
from portal.workflow.observers import add_observer
from portal.workflow.on_behalf import Evidence, record_on_behalf
from tests.conftest import future, on_screen, stored_path

S = DeliverableState

# Every personal value of the former client the scenario writes: none may survive.
FORMER = {
    "names": ["Jane Formerly", "Joe Formerly", "Olga Onlooker", "Pat Handover"],
    "emails": ["jane@former.example", "joe@former.example", "olga@former.example",
               "pat@former.example"],
    "ips": ["198.51.100.17", "198.51.100.23", "198.51.100.99"],  # the second's: SECOND_IP
    "user_agents": ["JaneBrowser/7.1", "PatBrowser/3.3", "JaneViewer/2.0"],
    "texts": ["Jane's comment about the hero image", "Swap the teal for navy",
              "Logo must be the 2025 mark", "Pat decides on my behalf",
              "Wrong typeface throughout", "Staff reply: fixed the hero for Joe",
              "Joe said yes on the phone", "joe-formerly-call.pdf"],
}
SECOND_IP = "198.51.100.201"
FORMER_CO = ("--name", "Former Co", "--yes", "--before")  # then the date
OTHER = {"name": "Kim Keeper", "email": "kim@other.example", "ip": "203.0.113.44",
         "user_agent": "KimBrowser/1.0", "text": "Kim likes this one"}


@pytest.fixture(autouse=True)
def _seal(sealed):
    """Certificates are sealed (asked for before `app`, as the fixture needs)."""
    return sealed


@pytest.fixture
def erase_cli(app):
    def run(*args: str):
        db.session.commit()
        result = app.test_cli_runner().invoke(args=["clients", "erase", *args])
        db.session.expire_all()
        return result
    return run


def _contact(client: Client, name: str, email: str) -> Contact:
    contact = Contact(client=client, name=name, email=email)
    db.session.add(contact)
    db.session.flush()
    return contact


def _deliver(make_deliverable, project, contacts) -> ReviewRequest:
    d = make_deliverable(S.READY, project=project)
    request = workflow.deliver(d.owner, d, contacts, Policy.PARALLEL, future(7))
    db.session.commit()
    return request


@dataclass
class World:
    former: Client
    other: Client
    certificate: Certificate
    pdf: bytes
    first: ReviewRequest
    second: ReviewRequest


@pytest.fixture
def world(app, make_client, make_project, make_deliverable, staff, make_user) -> World:
    """A former client with two finished requests and everything they leave behind, and
    another client with one."""
    admin = make_user(Role.ADMIN, email="ada@agency.example")
    webhooks.register(admin, "http://127.0.0.1:9/hook", "receiver", allow_private=True)
    former, other = make_client("Former Co", contacts=0), make_client("Other Co", contacts=0)
    jane, joe, olga = (_contact(former, n, e) for n, e in zip(FORMER["names"][:3],
                                                               FORMER["emails"][:3],
                                                               strict=True))
    kim = _contact(other, OTHER["name"], OTHER["email"])
    db.session.commit()
    former_work, other_work = make_project(former), make_project(other)

    # 1: approved with conditions, after a view, comments, an observer and a hand-over.
    first = _deliver(make_deliverable, former_work, [jane, joe])
    now = utcnow()  # after it went out: what follows happens while it is open
    add_observer(first, olga, True, staff, now)
    a_jane, a_joe = first.approvers
    record_view(a_jane, seen_sha256=on_screen(a_jane), ip=FORMER["ips"][2],
                user_agent=FORMER["user_agents"][2])
    post_comment(jane, first, FORMER["texts"][0], seen_sha256=on_screen(a_jane))
    post_comment(staff, first, FORMER["texts"][5])
    asked = handover.ask_to_delegate(a_joe, FORMER["names"][3], FORMER["emails"][3],
                                     FORMER["texts"][3], now)
    a_pat = handover.confirm(asked, staff, now)
    db.session.commit()
    workflow.record_decision(a_jane, Outcome.APPROVED_WITH_CONDITIONS, seen_sha256=on_screen(
        a_jane), conditions=[FORMER["texts"][1], FORMER["texts"][2]], ip=FORMER["ips"][0],
        user_agent=FORMER["user_agents"][0])
    workflow.record_decision(a_pat, Outcome.APPROVED, seen_sha256=on_screen(a_pat),
                             ip=FORMER["ips"][1], user_agent=FORMER["user_agents"][1])
    db.session.commit()
    # 2: changes requested.
    second = _deliver(make_deliverable, former_work, [jane])
    workflow.record_decision(second.approvers[0], Outcome.REJECTED, FORMER["texts"][4],
                             seen_sha256=on_screen(second.approvers[0]), ip=SECOND_IP,
                             user_agent=FORMER["user_agents"][0])
    # 3: approved by phone, recorded on Joe's behalf with evidence.
    third = _deliver(make_deliverable, former_work, [joe])
    given = utcnow()  # after the request went out (a minute may have turned since `now`)
    record_on_behalf(third.approvers[0], Outcome.APPROVED, channel=OnBehalfChannel.PHONE,
                     given_at=given, note=FORMER["texts"][6], evidence=Evidence(
                         io.BytesIO(sample_pdf("Call notes")), FORMER["texts"][7],
                         file_store()), seen_sha256=on_screen(third.approvers[0]),
                     by_user=staff, at=given)
    # The other client's approval.
    theirs = _deliver(make_deliverable, other_work, [kim])
    post_comment(kim, theirs, OTHER["text"], seen_sha256=on_screen(theirs.approvers[0]))
    workflow.record_decision(theirs.approvers[0], Outcome.APPROVED, OTHER["text"],
                             seen_sha256=on_screen(theirs.approvers[0]), ip=OTHER["ip"],
                             user_agent=OTHER["user_agent"])
    db.session.commit()

    assert (first.status, second.status) == (RequestStatus.APPROVED_WITH_CONDITIONS,
                                             RequestStatus.CHANGES_REQUESTED)
    certificate = db.session.scalar(select(Certificate).where(
        Certificate.request_id == first.id))
    assert certificate is not None
    # The scenario did write every value the test looks for, where it looks.
    assert [v for v in _every_former_value() if not _found(v)] == []
    assert {"outbox_messages.body_text", "webhook_deliveries.payload", "audit_events.detail",
            "delegations.email"} <= set(_found(FORMER["emails"][3]))
    assert db.session.scalar(select(sa.func.count()).select_from(WebhookDelivery)) > 0
    assert db.session.scalar(select(sa.func.count()).select_from(OutboxMessage)) > 0
    return World(former, other, certificate,
                 stored_path(app, certificate.storage_key).read_bytes(), first, second)


def _text_columns() -> list[tuple[sa.Table, sa.Column]]:
    """Every text column of every table: a column added later is searched too."""
    return [(table, column) for table in db.metadata.sorted_tables
            for column in table.columns if isinstance(column.type, sa.String)]


def _found(value: str) -> list[str]:
    """Where `value` occurs, as table.column (text columns, and binary ones as text)."""
    where = []
    needle = value.lower()
    for table, column in _text_columns():
        hit = db.session.execute(select(sa.func.count()).select_from(table).where(
            sa.func.lower(column).contains(needle, autoescape=True))).scalar()
        if hit:
            where.append(f"{table.name}.{column.name}")
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            if isinstance(column.type, sa.LargeBinary):
                for (data,) in db.session.execute(select(column)):
                    if data and needle in bytes(data).decode("utf-8", "replace").lower():
                        where.append(f"{table.name}.{column.name}")
    return where


def _everything() -> dict[str, list[Any]]:
    """Every row of every table, for "nothing changed"."""
    return {t.name: [tuple(r) for r in db.session.execute(select(t).order_by(
        *t.primary_key.columns))] for t in db.metadata.sorted_tables}


def _every_former_value() -> list[str]:
    return [v for values in FORMER.values() for v in values] + [SECOND_IP]


def test_erase_leaves_no_personal_value_and_keeps_the_rest_verifiable(
        app, world, erase_cli, make_browser):
    # A receiver's error text echoing the payload (set on one of Former Co's deliveries).
    delivery = next(w for w in db.session.scalars(select(WebhookDelivery))
                    if f'"client":{{"id":{world.former.id},' in w.payload)
    delivery.last_error = f"HTTP 422: unknown approver {FORMER['emails'][0]}"
    result = erase_cli(*FORMER_CO, (today_utc() + timedelta(days=1)).isoformat())
    assert result.exit_code == 0, result.output
    assert "3 finished request(s)" in result.output and "contacts: 4" in result.output

    left = {value: where for value in _every_former_value() if (where := _found(value))}
    assert left == {}

    # The other client's people and words are untouched.
    for value in OTHER.values():
        assert _found(value), value
    kim = db.session.scalar(select(Contact).where(Contact.client_id == world.other.id))
    assert (kim.name, kim.email) == (OTHER["name"], OTHER["email"])
    theirs = db.session.scalar(select(Decision).where(Decision.ip == OTHER["ip"]))
    assert (theirs.text, theirs.user_agent) == (OTHER["text"], OTHER["user_agent"])

    # Pseudonyms, stable per person; the company, its projects and the outcomes stay.
    names = sorted(c.name for c in world.former.contacts)
    assert all(n.startswith("Former contact ") for n in names) and len(set(names)) == 4
    assert all(c.email.endswith("@erased.invalid") for c in world.former.contacts)
    assert db.session.scalar(select(Client.name).where(Client.id == world.former.id)) \
        == "Former Co"

    # The chain verifies; the erasure is in it, with counts and without the values.
    verified = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    [erasure] = db.session.scalars(select(AuditEvent).where(AuditEvent.verb == "client.erased"))
    detail = json.loads(erasure.detail)
    assert erasure.actor == "system" and erasure.subject_id == world.former.id
    assert detail["counts"]["contacts"] == 4 and detail["counts"]["audit_events"] > 0
    assert len(detail["requests"]) == 3 and len(detail["redacted"]) == \
        detail["counts"]["audit_events"]

    # The certificate: the same stored file, still genuine, by upload and on the page.
    certificate = db.session.get(Certificate, world.certificate.id)
    assert stored_path(app, certificate.storage_key).read_bytes() == world.pdf
    checked = verify_pdf(world.pdf)
    assert checked.verdict == Verdict.GENUINE and checked.record is not None
    assert all(d.name.startswith("Former contact ") for d in checked.record.decisions)
    page = make_browser().post("/verify", {"file": (io.BytesIO(world.pdf), "c.pdf")},
                               content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Genuine" in html
    assert "Jane Formerly" not in html

    # A row rewritten by the erasure is still held to what the erasure recorded.
    seq = int(next(iter(detail["redacted"])))
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.seq == seq).values(
        actor_label="Someone Else"))
    db.session.commit()
    broken = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and f"broken at event {seq}" in broken.output


def test_running_it_again_changes_nothing_more_and_the_chain_holds(app, world, erase_cli):
    tomorrow = (today_utc() + timedelta(days=1)).isoformat()
    assert erase_cli("--id", str(world.former.id), "--yes", "--before", tomorrow).exit_code == 0
    again = erase_cli("--id", str(world.former.id), "--yes", "--before", tomorrow)
    assert again.exit_code == 0, again.output
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0
    assert not {v for v in _every_former_value() if _found(v)}


def test_refused_while_a_request_is_open_and_nothing_changes(
        app, world, erase_cli, make_deliverable, make_project):
    jane = next(c for c in world.former.contacts if c.name == FORMER["names"][0])
    project = world.former.projects[0]
    open_request = _deliver(make_deliverable, project, [jane])
    before = _everything()
    result = erase_cli(*FORMER_CO, (today_utc() + timedelta(days=1)).isoformat())
    assert result.exit_code == 1
    assert "open request" in result.output and str(open_request.id) in result.output
    assert "nothing was erased" in result.output
    assert _everything() == before


def test_a_cutoff_before_the_requests_ended_leaves_them(app, world, erase_cli):
    before = _everything()
    result = erase_cli(*FORMER_CO, today_utc().isoformat())
    assert result.exit_code == 0, result.output
    assert "Nothing to erase" in result.output
    assert _everything() == before
    assert all(_found(v) for v in FORMER["emails"])


def test_an_unknown_client_is_refused(app, erase_cli):
    result = erase_cli("--name", "Nobody Ltd", "--yes", "--before", "2020-01-01")
    assert result.exit_code == 1 and "No client is named 'Nobody Ltd'" in result.output


def test_a_cutoff_between_two_requests_erases_the_older_and_keeps_who_is_still_on_the_newer(
        app, world, erase_cli):
    """The first request ended 400 days ago (its emails with it), the second yesterday:
    a 30-day cutoff erases the first; Jane, also on the second, keeps her name."""
    long_ago = utcnow() - timedelta(days=400)
    db.session.execute(sa.update(ReviewRequest).where(ReviewRequest.id == world.first.id)
                       .values(closed_at=long_ago))
    db.session.execute(sa.update(OutboxMessage).where(
        OutboxMessage.deliverable_id == world.first.version.deliverable_id)
        .values(created_at=long_ago - timedelta(minutes=1)))
    result = erase_cli(*FORMER_CO, (today_utc() - timedelta(days=30)).isoformat())
    assert result.exit_code == 0, result.output
    assert "1 finished request(s)" in result.output and "(2 kept)" in result.output

    gone = [*FORMER["names"][2:], *FORMER["emails"][2:], FORMER["ips"][1], FORMER["ips"][2],
            FORMER["user_agents"][1], FORMER["user_agents"][2],
            *(t for i, t in enumerate(FORMER["texts"][:6]) if i != 4)]
    assert {v: w for v in gone if (w := _found(v))} == {}
    jane = next(c for c in world.former.contacts if c.email == FORMER["emails"][0])
    assert jane.name == FORMER["names"][0]
    kept = db.session.scalar(select(Decision).where(Decision.request_id == world.second.id))
    assert (kept.text, kept.ip, kept.user_agent) == (FORMER["texts"][4], SECOND_IP,
                                                     FORMER["user_agents"][0])
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_an_erasure_event_vouches_only_for_earlier_rows_and_is_itself_chained(
        app, world, erase_cli):
    from portal import audit

    assert erase_cli(*FORMER_CO, "2999-01-01").exit_code == 0
    [erasure] = db.session.scalars(select(AuditEvent).where(AuditEvent.verb == "client.erased"))
    # A later row cannot be excused by an erasure that claims it in advance.
    claim = audit.record(None, "client.erased", world.other, redacted={"999999": "0" * 64})
    later = audit.record(None, "client.timezone", world.other, timezone="UTC")
    db.session.commit()
    assert claim.seq < later.seq
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.seq == later.seq).values(
        detail='{"timezone":"Europe/Paris"}'))
    db.session.commit()
    broken = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert broken.exit_code == 1 and f"broken at event {later.seq}" in broken.output

    # Editing the erasure's own list shows at the erasure.
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.seq == later.seq).values(
        detail=later.detail))
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.seq == erasure.seq).values(
        detail=erasure.detail.replace('"redacted":{', '"redacted":{"1":"' + "0" * 64 + '",', 1)))
    db.session.commit()
    broken = app.test_cli_runner().invoke(args=["audit", "verify"])
    assert broken.exit_code == 1
    assert f"erasure event {erasure.seq}, which may have vouched for it" in broken.output


def test_another_clients_twin_and_a_staff_namesake_keep_their_rows(
        app, world, erase_cli, make_deliverable, make_user):
    """A freelancer on both accounts (Jane's name and address, at Other Co, on a request
    still open there) and a staff user named like Joe: nothing of theirs changes."""
    from portal import audit

    twin = _contact(world.other, FORMER["names"][0], FORMER["emails"][0])
    namesake = make_user(Role.STAFF, email="joe.f@agency.example", name=FORMER["names"][1])
    db.session.commit()
    open_request = _deliver(make_deliverable, world.other.projects[0], [twin])
    deliverable = world.first.version.deliverable
    audit.record(namesake, "deliverable.edited", deliverable, deliverable=deliverable,
                 title=deliverable.title)
    db.session.commit()
    others = sorted(d.id for p in world.other.projects for d in p.deliverables)

    def theirs() -> dict[str, Any]:
        e, m = AuditEvent, OutboxMessage
        return {
            "audit": [(r.seq, r.actor_label, r.detail) for r in db.session.scalars(
                select(e).where(sa.or_(e.deliverable_id.in_(others),
                                       e.actor.in_([f"contact:{twin.id}",
                                                    f"user:{namesake.id}"]))))],
            "outbox": [(r.id, r.to_addr, r.subject, r.body_text, r.status)
                       for r in db.session.scalars(select(m).where(
                           m.deliverable_id.in_(others)))],
            "webhooks": [(r.id, r.payload, r.status) for r in db.session.scalars(
                select(WebhookDelivery)) if f'"client":{{"id":{world.other.id},' in r.payload],
            "people": [(twin.id, twin.name, twin.email),
                       (namesake.id, namesake.name, namesake.email)]}

    before = theirs()
    assert before["outbox"] and before["webhooks"] and len(before["audit"]) > 3
    assert any(str(open_request.id) in d for _s, _l, d in before["audit"])
    result = erase_cli(*FORMER_CO, (today_utc() + timedelta(days=1)).isoformat())
    assert result.exit_code == 0, result.output
    db.session.expire_all()
    assert theirs() == before
    assert db.session.get(ReviewRequest, open_request.id).status == RequestStatus.OPEN
    # Former Co's own people are erased all the same.
    assert all(c.name.startswith("Former contact ") for c in world.former.contacts)
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0


def test_a_short_text_is_not_searched_for_and_a_long_one_is_erased_inside_a_text():
    from portal.people.erasure_text import Pseudonyms

    names = Pseudonyms()
    names.person("Jane Formerly", "Former contact 1")
    names.text("OK")
    names.text("Swap the teal for navy")
    assert not names.mentions("Kim said OK") and not names.mentions_person("Kim said OK")
    assert names.rewrite("OK") == "[erased]"  # the row's own copy, by equality
    assert names.rewrite("Jane Formerly wrote: Swap the teal for navy") == \
        "Former contact 1 wrote: [erased]"


def test_the_operator_names_the_client_by_id_or_name_and_confirms(
        app, world, erase_cli, make_client):
    # A client literally named like Former Co's id: --id never picks it.
    decoy = make_client(str(world.former.id), contacts=0)
    db.session.commit()
    before = _everything()
    tomorrow = (today_utc() + timedelta(days=1)).isoformat()
    shown = erase_cli("--id", str(world.former.id), "--before", tomorrow)
    assert shown.exit_code == 1
    assert f"Client #{world.former.id} 'Former Co': 3 finished request(s)" in shown.output
    assert "run again with --yes" in shown.output
    for both_or_none in (("--id", str(world.former.id), "--name", "Former Co"), ()):
        refused = erase_cli(*both_or_none, "--yes", "--before", tomorrow)
        assert refused.exit_code == 1 and "exactly one of --id" in refused.output
    named = erase_cli("--name", decoy.name, "--before", tomorrow)
    assert f"Client #{decoy.id} '{decoy.name}': 0 finished" in named.output
    assert _everything() == before


def test_an_erasure_and_a_delivery_of_the_same_client_wait_for_each_other(
        app, make_client, make_project, make_deliverable):
    """The erasure holds the client row exclusively, a delivery holds it shared: neither
    gets past the other's lock until it commits (here: a lock timeout instead of a wait)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite serialises writers with its own lock")
    from sqlalchemy.exc import OperationalError

    from portal.people.erasure import erase_client

    client = make_client("Locked Co")
    deliverable = make_deliverable(S.READY, project=make_project(client))
    contacts = list(client.contacts)
    db.session.commit()
    row = select(Client.id).where(Client.id == client.id)
    with db.engine.connect() as other:
        other.execute(row.with_for_update(read=True))  # a delivery in flight
        db.session.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="lock"):
            erase_client(client, today_utc(), None, utcnow(), voucher_key=b"k")
        db.session.rollback()
        other.rollback()
        other.execute(row.with_for_update())  # an erasure in flight
        db.session.execute(sa.text("SET LOCAL lock_timeout = '300ms'"))
        with pytest.raises(OperationalError, match="lock"):
            workflow.deliver(deliverable.owner, deliverable, contacts, Policy.PARALLEL,
                             future(7))
        db.session.rollback()
        other.rollback()
