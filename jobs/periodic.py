"""Jobs that run on a clock (see jobs/cron.py and `flask --app wsgi jobs …`)."""
from __future__ import annotations

from datetime import datetime

from jobs import app_context


def every_minute(at: str | None = None) -> dict[str, int]:
    """Reminders, escalations and expiries that are due, then the outbox relay."""
    from portal import outbox, queue, reminders, webhooks
    from portal.certificates import requests_missing_certificates
    from portal.models import utcnow

    with app_context():
        now = datetime.fromisoformat(at) if at else utcnow()
        report = reminders.sweep(now)
        outbox.commit()
        relayed = outbox.relay(now) + webhooks.relay(now)
        # A certificate job lost with Redis is asked for again.
        missing = requests_missing_certificates()
        for request_id in missing:
            queue.enqueue_unless_waiting("jobs.certificates.issue", request_id,
                                         job_id=f"certificate-{request_id}")
        return {"reminders": report.reminders, "escalations": report.escalations,
                "expired": report.expired, "relayed": relayed,
                "certificates_requested": len(missing)}


def daily_digest(at: str | None = None) -> int:
    from portal import digests, outbox
    from portal.models import utcnow

    with app_context():
        count = digests.send_comment_digests(datetime.fromisoformat(at) if at else utcnow())
        outbox.relay()
        return count
