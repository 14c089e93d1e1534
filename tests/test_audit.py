"""The hash-chained audit trail: what actions record, and `audit verify` catching tampering."""
from __future__ import annotations

import hashlib
import io
import itertools
import json

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from portal.demo.samples import sample_pdf
from portal.extensions import db
from portal.models import AuditEvent, DeliverableState

S = DeliverableState
READY_VERBS = ["deliverable.created", "version.uploaded", "deliverable.submitted",
               "version.review_approved"]


def verify(app):
    """Run `flask audit verify` as an operator would."""
    db.session.commit()
    result = app.test_cli_runner().invoke(args=["audit", "verify"])
    db.session.expire_all()
    return result


def events() -> list[AuditEvent]:
    return list(db.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def event_count() -> int:
    return db.session.scalar(select(func.count()).select_from(AuditEvent))


def tamper(sql: str, **params) -> None:
    db.session.execute(sa.text(sql), params)
    db.session.commit()
    db.session.expire_all()


def rehash(event: AuditEvent, **changes) -> str:
    """The event's hash as its author computes it: SHA-256 of its fields as compact JSON.

    An attacker with write access to the table and a copy of the source can do this too;
    the test checks that the chain still gives them away.
    """
    names = ["seq", "at", "actor", "actor_label", "verb", "subject_type", "subject_id",
             "deliverable_id", "detail", "prev_hash"]
    values = {name: changes.get(name, getattr(event, name)) for name in names}
    values["at"] = values["at"].isoformat(timespec="microseconds")
    fields = [values[name] for name in names]
    canonical = json.dumps(fields, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


@pytest.fixture
def trail(make_deliverable):
    """A deliverable driven to ready: four events, seq 1 to 4."""
    d = make_deliverable(S.READY)
    assert [e.verb for e in events()] == READY_VERBS
    return d


def test_verify_on_an_empty_trail_is_intact(app):
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 0 events checked." in result.output


def test_verify_after_real_actions_says_the_chain_is_intact(app, trail):
    count = event_count()
    assert count == 4
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert f"Audit chain intact: {count} events checked." in result.output


def test_chain_links_each_event_to_the_one_before(app, trail):
    rows = events()
    assert [e.seq for e in rows] == [1, 2, 3, 4]
    assert rows[0].prev_hash == "0" * 64
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert len({e.hash for e in rows}) == len(rows)


def test_an_edited_detail_breaks_the_chain_at_that_event(app, trail):
    tamper("UPDATE audit_events SET detail = :detail WHERE seq = 3",
           detail='{"reviewer":"someone.else@agency.example","version":1}')

    result = verify(app)

    assert result.exit_code == 1
    assert "Audit chain broken at event 3: was changed after it was written." in result.output
    assert "2 events before it are intact." in result.output


@pytest.mark.parametrize("column", ["actor_label", "verb"])
def test_other_edited_fields_are_caught_too(app, trail, column):
    tamper(f"UPDATE audit_events SET {column} = :value WHERE seq = 2", value="tampered")
    result = verify(app)
    assert result.exit_code == 1
    assert "Audit chain broken at event 2: was changed after it was written." in result.output


def test_a_deleted_middle_event_breaks_the_chain_at_its_seq(app, trail):
    tamper("DELETE FROM audit_events WHERE seq = 2")

    result = verify(app)

    assert result.exit_code == 1
    assert "Audit chain broken at event 2: event 2 is missing." in result.output
    assert "1 events before it are intact." in result.output


def test_a_deleted_first_event_breaks_the_chain_at_1(app, trail):
    tamper("DELETE FROM audit_events WHERE seq = 1")
    result = verify(app)
    assert result.exit_code == 1
    assert "Audit chain broken at event 1: event 1 is missing." in result.output


def test_edited_detail_with_a_made_up_hash_is_caught_at_that_event(app, trail):
    tamper("UPDATE audit_events SET detail = :detail, hash = :hash WHERE seq = 2",
           detail='{"file_name":"other.pdf"}', hash=hashlib.sha256(b"forged").hexdigest())
    result = verify(app)
    assert result.exit_code == 1
    assert "Audit chain broken at event 2: was changed after it was written." in result.output


def test_a_rewritten_event_with_a_matching_hash_is_caught_at_the_next_event(app, trail):
    original = events()[1]
    assert rehash(original) == original.hash  # the recomputation matches the app's own
    detail = json.loads(original.detail) | {"file_name": "forged.pdf"}
    forged_detail = json.dumps(detail, sort_keys=True, separators=(",", ":"))

    tamper("UPDATE audit_events SET detail = :detail, hash = :hash WHERE seq = 2",
           detail=forged_detail, hash=rehash(original, detail=forged_detail))
    forged = events()[1]
    assert json.loads(forged.detail)["file_name"] == "forged.pdf"
    assert rehash(forged) == forged.hash  # event 2 on its own now looks genuine

    result = verify(app)

    assert result.exit_code == 1
    assert ("Audit chain broken at event 3: does not follow the event before it."
            in result.output)
    assert "2 events before it are intact." in result.output


def test_events_record_who_did_what_to_which_deliverable(app, browser, staff, colleague,
                                                         make_deliverable):
    d = make_deliverable(S.READY)
    browser.login(staff.email)
    content = sample_pdf("Second cut")
    response = browser.post(f"/deliverables/{d.id}/versions",
                            data={"file": (io.BytesIO(content), "second.pdf"),
                                  "what_changed": "Second cut"},
                            content_type="multipart/form-data")
    assert response.status_code == 302

    rows = events()
    assert [e.verb for e in rows] == [*READY_VERBS, "version.uploaded"]
    assert {e.deliverable_id for e in rows} == {d.id}
    sam_label = "Sam Staff <sam@agency.example>"
    cora_label = "Cora Colleague <cora@agency.example>"
    assert [e.actor_label for e in rows] == [sam_label, sam_label, sam_label, cora_label,
                                            sam_label]
    assert [e.actor for e in rows] == [f"user:{staff.id}"] * 3 + [f"user:{colleague.id}",
                                                                  f"user:{staff.id}"]

    uploaded = rows[-1]
    assert uploaded.subject_type == "versions"
    assert uploaded.subject_id == d.current_version.id
    detail = json.loads(uploaded.detail)
    assert detail["number"] == 2
    assert detail["file_name"] == "second.pdf"
    assert detail["sha256"] == hashlib.sha256(content).hexdigest()
    assert detail["size"] == len(content)

    # Staff see the same trail, newest first, on the deliverable page.
    page = browser.get(f"/deliverables/{d.id}").get_data(as_text=True)
    assert "Version uploaded</strong> · Sam Staff &lt;sam@agency.example&gt;" in page
    assert "Internal review: approved</strong> · Cora Colleague &lt;cora@agency.example&gt;" in page
    assert page.index("Version uploaded</strong>") < page.index("Deliverable created</strong>")

    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 5 events checked." in result.output


def test_refused_uploads_leave_no_gap_in_the_chain(app, browser, staff, make_deliverable):
    d = make_deliverable(S.DRAFT)
    browser.login(staff.email)
    refused = browser.post(f"/deliverables/{d.id}/versions",
                           data={"file": (io.BytesIO(b"not a pdf"), "x.pdf")},
                           content_type="multipart/form-data")
    assert refused.status_code == 415
    accepted = browser.post(f"/deliverables/{d.id}/versions",
                            data={"file": (io.BytesIO(sample_pdf("Ok")), "ok.pdf")},
                            content_type="multipart/form-data")
    assert accepted.status_code == 302

    assert [e.seq for e in events()] == [1, 2, 3]
    assert [e.verb for e in events()] == ["deliverable.created", "version.uploaded",
                                          "version.uploaded"]
    result = verify(app)
    assert result.exit_code == 0, result.output
    assert "Audit chain intact: 3 events checked." in result.output


# Retention erasures (portal/audit_erasure.py): an appended `client.erased` event vouches
# for the rows it rewrote only if its HMAC, keyed by SECRET_KEY, holds.

def _rewritten_contact_event(make_client):
    """A client, a contact-added event, and that event rewritten in place (as an erasure
    pseudonymises it, or an attacker edits it): its stored hash no longer matches."""
    from portal import audit
    from portal.models import Contact

    client = make_client("Victim Co", contacts=0)
    contact = Contact(client=client, name="Vic Tim", email="vic@victim.example")
    db.session.add(contact)
    added = audit.record(None, "contact.added", contact, name=contact.name)
    audit.record(None, "client.direct_handover", client, value=True)
    db.session.commit()
    tamper("UPDATE audit_events SET detail = :d WHERE seq = :s",
           d='{"name":"Former contact 1"}', s=added.seq)
    db.session.expire_all()
    return client, db.session.get(AuditEvent, added.id)


def _erasure(client, row, key: bytes | None, **extra):
    """Append an erasure event vouching for `row`; signed with `key` (None: unsigned)."""
    from portal import audit
    from portal import audit_erasure as erasures

    detail = {"redacted": {str(row.seq): erasures.current_digest(row)}, "contacts": [],
              "deliverables": [], **extra}
    if key is not None:
        detail[erasures.VOUCHER] = erasures.voucher(key, client.id, detail)
    event = audit.record(None, erasures.ERASURE_VERB, client, **detail)
    db.session.commit()
    return event


def test_a_forged_erasure_event_vouches_for_nothing_and_is_named(app, make_client):
    from portal import audit_erasure as erasures

    client, row = _rewritten_contact_event(make_client)
    unsigned = _erasure(client, row, None)
    result = verify(app)
    assert result.exit_code == 1 and f"broken at event {row.seq}" in result.output
    assert f"erasure event {unsigned.seq}" in result.output
    assert "voucher does not verify" in result.output
    # Signed, but with a key anyone reading the database could derive: still refused.
    _erasure(client, row, erasures.erasure_keys([row.hash])[0])
    assert verify(app).exit_code == 1


def test_a_genuine_erasure_is_accepted_and_counted_and_survives_key_rotation(
        app, make_client):
    from portal import audit
    from portal import audit_erasure as erasures
    from tests.conftest import SECRET

    client, row = _rewritten_contact_event(make_client)
    erasure = _erasure(client, row, erasures.app_erasure_keys()[0])
    checked = verify(app)
    assert checked.exit_code == 0
    assert f"1 rewritten by erasure events {erasure.seq} (1)" in checked.output
    report = audit.verify_chain()
    assert report.ok and report.accepted == {erasure.seq: 1}
    assert report.rejected_erasures == []
    assert erasures.accepted_summary(report.accepted) == \
        f"1 rewritten by erasure events {erasure.seq} (1)"
    # SECRET_KEY rotated, the old one kept as a fallback: still accepted; dropped: not.
    new = "a-new-secret-key-after-rotation-0123456789"
    assert audit.verify_chain(erasures.erasure_keys([new, SECRET])).ok
    dropped = audit.verify_chain(erasures.erasure_keys([new]))
    assert dropped.bad_seq == row.seq and dropped.rejected_erasures == [erasure.seq]


def test_a_genuine_erasure_does_not_excuse_a_row_outside_what_an_erasure_touches(
        app, make_client):
    from portal import audit
    from portal import audit_erasure as erasures

    client = make_client("Victim Co", contacts=0)
    setting = audit.record(None, "client.direct_handover", client, value=True)
    db.session.commit()
    tamper("UPDATE audit_events SET detail = :d WHERE seq = :s", d='{"value":false}',
           s=setting.seq)
    db.session.expire_all()
    _erasure(client, db.session.get(AuditEvent, setting.id), erasures.app_erasure_keys()[0])
    result = verify(app)
    assert result.exit_code == 1 and f"broken at event {setting.seq}" in result.output
    assert "not within its scope" in result.output
