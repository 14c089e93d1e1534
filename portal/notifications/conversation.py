"""The conversation beside a document, both ways, in minutes: a client's comments reach the
deliverable's owner, and the team's replies (never internal notes) reach the approvers.

Each recipient gets one email per burst: their comments not yet sent go out once the burst
has been quiet for COMMENT_QUIET_MINUTES, or COMMENT_MAX_WAIT_MINUTES after its first
comment, whichever comes first (`burst_due`, the only copy of that rule). The every-minute
sweep calls `send_notices`; a comment is marked `notified_at` in the same transaction that
writes its emails, and each email's idempotency key names its burst, so a retried sweep
writes it once. A client's email carries their own link, through links.send_review_link.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from portal.extensions import db
from portal.models import (
    Approver,
    Comment,
    Contact,
    Deliverable,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.notifications.compose import compose
from portal.urls import external_url
from portal.workflow.links import send_review_link
from portal.workflow.on_screen import current_approver


@dataclass
class NoticeReport:
    owners: int = 0  # emails to owners about clients' comments
    clients: int = 0  # emails to approvers about the team's replies


def burst_due(first_at: datetime, last_at: datetime, now: datetime) -> bool:
    """Whether a recipient's burst, from its first to its last comment, goes out at `now`."""
    config = current_app.config
    quiet = last_at + timedelta(minutes=config["COMMENT_QUIET_MINUTES"])
    waited = first_at + timedelta(minutes=config["COMMENT_MAX_WAIT_MINUTES"])
    return now >= min(quiet, waited)


# What the emails read, loaded for all pending comments at once, not per comment.
_REQUEST = selectinload(Comment.request)
_DELIVERABLE = _REQUEST.selectinload(ReviewRequest.version).selectinload(Version.deliverable)
_LOADS = (
    selectinload(Comment.author_contact), selectinload(Comment.author_user),
    _DELIVERABLE.selectinload(Deliverable.owner),
    _DELIVERABLE.selectinload(Deliverable.project).selectinload(Project.client),
    _REQUEST.selectinload(ReviewRequest.sent_by),
    _REQUEST.selectinload(ReviewRequest.approvers).selectinload(Approver.contact)
    .selectinload(Contact.client),
)


def pending_query(now: datetime) -> Select:
    """Comments not yet sent to their other side: read from ix_comments_to_notify."""
    return (select(Comment)
            .where(Comment.notified_at.is_(None), ~Comment.internal, Comment.created_at <= now)
            .order_by(Comment.created_at, Comment.id))


def _pending(now: datetime) -> list[Comment]:
    """Every comment not yet sent, locked; a sweep running beside this one skips them."""
    return list(db.session.scalars(
        pending_query(now).with_for_update(skip_locked=True)
        .execution_options(populate_existing=True).options(*_LOADS)))


def _due_bursts(groups: dict[int, list[Comment]], now: datetime) -> Iterable[list[Comment]]:
    for burst in groups.values():
        times = [c.created_at for c in burst]
        if burst_due(min(times), max(times), now):
            yield burst


def send_notices(now: datetime) -> NoticeReport:
    """Write every burst that is due at `now`, in the caller's transaction."""
    report = NoticeReport()
    by_owner: dict[int, list[Comment]] = defaultdict(list)
    by_request: dict[int, list[Comment]] = defaultdict(list)
    for comment in _pending(now):
        if comment.author_contact_id is not None:
            by_owner[comment.request.version.deliverable.owner_id].append(comment)
        elif comment.author_user_id is not None:
            by_request[comment.request_id].append(comment)
    for burst in _due_bursts(by_owner, now):
        _tell_owner(burst)
        report.owners += 1
        _mark(burst, now)
    for burst in _due_bursts(by_request, now):
        for approver in burst[0].request.approvers:
            report.clients += _tell_approver(approver, burst, now)
        _mark(burst, now)
    return report


def _mark(burst: list[Comment], now: datetime) -> None:
    for comment in burst:
        comment.notified_at = now


def _tell_owner(burst: list[Comment]) -> None:
    """One email to the owner, the comments grouped by deliverable, each linked to its spot."""
    threads: dict[Deliverable, list[Comment]] = defaultdict(list)
    for comment in burst:
        threads[comment.request.version.deliverable].append(comment)
    owner = burst[0].request.version.deliverable.owner
    links = {d: external_url("staff.deliverable_page", deliverable_id=d.id)
             + f"#comment-{comments[0].id}" for d, comments in threads.items()}
    compose(to_addr=owner.email, to_name=owner.name, template="comment_notice",
            idempotency_key=f"comments:owner:{owner.id}:{max(c.id for c in burst)}",
            deliverable_id=next(iter(threads)).id if len(threads) == 1 else None,
            threads=threads, links=links, count=len(burst))


def reachable(approver: Approver) -> bool:
    """Whether the team's replies reach this approver: they were brought in (a queued
    approver has had no link yet), have an address, and staff did not revoke their link."""
    return (approver.invited_at is not None and bool(approver.contact.email)
            and approver.link_revoked_at is None)


def _tell_approver(approver: Approver, replies: list[Comment], now: datetime) -> int:
    """The team's replies, with the approver's link opening the page at the first of them.
    A cancelled request's links stay dead: the email points to the contact's place on the
    newest request if they have one, and otherwise carries the replies alone."""
    if not reachable(approver):
        return 0
    request = approver.request
    key = f"comments:approver:{approver.id}:{max(c.id for c in replies)}"
    context = {"replies": replies, "replies_on": request}
    if request.status != RequestStatus.CANCELLED:
        send_review_link(approver, now, template="comment_reply", idempotency_key=key,
                         anchor=f"comment-{replies[0].id}", **context)
        return 1
    current = current_approver(approver)
    if current is not None and reachable(current) \
            and current.request.status != RequestStatus.CANCELLED:
        send_review_link(current, now, template="comment_reply", idempotency_key=key, **context)
        return 1
    deliverable = request.version.deliverable
    compose(to_addr=approver.contact.email or "", to_name=approver.contact.name,
            template="comment_reply", idempotency_key=key, deliverable_id=deliverable.id,
            reply_to=deliverable.owner.email, deliverable=deliverable, version=request.version,
            request=request, url=None, sender=request.sent_by, **context)
    return 1
