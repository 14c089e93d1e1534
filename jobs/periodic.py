"""Jobs that run on a clock (see jobs/cron.py and `flask --app wsgi jobs …`)."""
from __future__ import annotations

from datetime import datetime

from jobs import app_context


def every_minute(at: str | None = None) -> dict[str, int]:
    """Reminders, escalations and expiries that are due, the comments whose burst is over,
    then the outbox relays."""
    from portal.api.writes import forget_old_answers
    from portal.certificates import ask_again_for_missing
    from portal.extensions import db
    from portal.files.render import ask_again_for_stale
    from portal.files.storage import file_store
    from portal.models import utcnow
    from portal.notifications import conversation, outbox, webhooks
    from portal.ops.metrics import SWEEP_SECONDS
    from portal.workflow import reminders

    with app_context():
        now = datetime.fromisoformat(at) if at else utcnow()
        with SWEEP_SECONDS.time():
            report = reminders.sweep(now)  # commits batch by batch
        relayed = outbox.relay(now) + webhooks.relay(now)
        # A certificate job lost with Redis is asked for again (queued at the commit).
        certificates = ask_again_for_missing()
        renders = ask_again_for_stale(now)  # and a render job lost the same way
        forgotten = forget_old_answers(now)  # API Idempotency-Key answers past 24 hours
        # Temporary copies a killed process left on this machine: by the real clock, as a
        # fast-forwarded sweep must not take an upload still under way for an old one.
        scratch = file_store().forget_stale_scratch(utcnow())
        db.session.commit()
        # Last, so nothing above waits on it; its emails are queued at its own commit.
        notices = conversation.send_notices(now)
        db.session.commit()
        return {"reminders": report.reminders, "escalations": report.escalations,
                "expired": report.expired, "comment_notices": notices.owners + notices.clients,
                "relayed": relayed, "certificates_requested": certificates,
                "renders_requested": renders, "idempotency_answers_forgotten": forgotten,
                "scratch_entries_removed": scratch}
