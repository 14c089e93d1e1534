"""Webhook delivery jobs."""
from __future__ import annotations

from jobs import app_context


def deliver(delivery_id: int) -> str | None:
    from portal.notifications import webhooks

    with app_context():
        status = webhooks.deliver(delivery_id)
        return status.value if status else None
