"""The client's review page: who is looking, what they may see, and what the page shows.

A fixed number of statements however long the thread, however many pins, pages and
versions: one for the approver with their request (its approvers, decisions, conditions,
version, deliverable, project, client: what the grant check and the page both read), one
for the thread with its authors, one for the earlier versions, one for the client's earlier
points, one for the viewer's pages. A comment post answers with the new comment alone.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, or_, select
from sqlalchemy.orm import aliased, joinedload

from portal.extensions import db
from portal.models import (
    Approver,
    ApproverStatus,
    Comment,
    Condition,
    Contact,
    Decision,
    Deliverable,
    PageRender,
    Project,
    RequestStatus,
    ReviewRequest,
    Version,
)
from portal.reports import feedback, renders
from portal.reports.pins import Marker, pins
from portal.workflow import step_up
from portal.workflow.comments import client_thread
from portal.workflow.turns import request_status_for


def _decisions(path: Any) -> Any:
    """Each approver on `path` with their name and decision (its conditions, and where each
    was met): what the approver list and the earlier versions show."""
    return path.options(joinedload(Approver.contact),
                        joinedload(Approver.decision).joinedload(Decision.conditions)
                        .joinedload(Condition.resolved_in_version))


def _approver_statement(whole_page: bool) -> Any:
    request = joinedload(Approver.request)
    version = request.joinedload(ReviewRequest.version).joinedload(Version.deliverable)
    loads = [joinedload(Approver.contact).joinedload(Contact.client)]
    if whole_page:
        loads += [version.joinedload(Deliverable.project).joinedload(Project.client),
                  request.joinedload(ReviewRequest.certificate),
                  _decisions(request.joinedload(ReviewRequest.approvers))]
    else:
        loads.append(version)
    return (select(Approver).where(Approver.public_id == bindparam("public_id"))
            .options(*loads))


# Built once, with the public id bound per request: building these joined loads cost
# more Python time than running them.
_APPROVER = {True: _approver_statement(True), False: _approver_statement(False)}


def approver_by_public_id(public_id: Any, *, whole_page: bool = True) -> Approver | None:
    """The approver a client URL names, with their request as the pages show it, in one
    statement: the grant check reads the same row, so it costs no round trip of its own.
    Not `whole_page`: only the request's version and deliverable (what a comment needs)."""
    if not isinstance(public_id, str):
        return None
    return db.session.scalars(_APPROVER[whole_page],
                              {"public_id": public_id}).unique().one_or_none()


def shared_version(approver: Approver, version_id: int) -> Version | None:
    """A version of this approver's deliverable that was sent to the client (the one under
    review, or an earlier one that had a request of its own); None for anything else."""
    version = db.session.get(Version, version_id)
    request = approver.request
    if version is None or version.deliverable_id != request.version.deliverable_id:
        return None
    return version if version.id == request.version_id or version.requests else None


# The earlier versions that were sent to the client, newest first, each with its requests'
# approvers and decisions (one statement, built once).
_HISTORY = (
    select(Version).where(Version.deliverable_id == bindparam("deliverable_id"),
                          Version.number < bindparam("number"), Version.requests.any())
    .order_by(Version.number.desc())
    .options(_decisions(joinedload(Version.requests, innerjoin=True)
                        .joinedload(ReviewRequest.approvers))))


def _history(version: Version) -> list[Version]:
    return list(db.session.scalars(_HISTORY, {"deliverable_id": version.deliverable_id,
                                              "number": version.number}).unique())


def page(approver: Approver) -> dict[str, Any]:
    """Everything the page shows, in a fixed number of queries."""
    review_request = approver.request
    version = review_request.version
    deliverable = version.deliverable
    history = _history(version)
    return {
        "approver": approver, "review_request": review_request, "version": version,
        "deliverable": deliverable, "project": deliverable.project,
        "client": deliverable.project.client, "history": history,
        "earlier_conditions": _earlier_conditions(history),
        "earlier_points": feedback.earlier_points(version),
        "status_line": request_status_for(approver),
        "standing": {a.id: standing(a, approver) for a in review_request.approvers},
        "step_up": step_up.state(approver),
        **thread(approver),
    }


def _earlier_conditions(history: list[Version]) -> list[dict[str, Any]]:
    """The approvals with conditions on earlier versions, newest version first: each
    condition and how it stands now."""
    return [{"version": v, "approver": a} for v in history for r in v.requests
            for a in r.approvers if a.decision is not None and a.decision.conditions]


def thread(approver: Approver) -> dict[str, Any]:
    """The thread and what the viewer shows of it (the pages and their pins): what a
    decision redraws. No history."""
    comments = client_thread(approver.request_id)
    version_id = approver.request.version_id
    return {"approver": approver, "review_request": approver.request, "comments": comments,
            "viewer": renders.viewer(version_id, approver.public_id),
            "pins": pins(comments, version_id),
            # Every time on the client's pages is in their zone (portal/local_time.py).
            "zone": approver.contact.client.zone}


@dataclass(frozen=True)
class PostedComment:
    """A comment as the thread shows it, read before the commit so the answer is drawn
    without asking the database again (the attributes the thread's markup reads)."""
    id: int
    author_name: str
    author_user_id: int | None
    created_at: datetime
    body: str
    page: int | None
    pin_number: int | None  # its marker's number (#1, #2…) when pinned
    marker: Marker | None  # drawn on its page when that page is shown
    aspect: float | None  # that page's height / width


@dataclass(frozen=True)
class Posted:
    """What a comment post adds to the page on screen: the comments after the newest one it
    showed (the poster's own, and any that arrived meanwhile), and the thread's new count."""
    comments: list[PostedComment]
    total: int
    zone: tzinfo

    @property
    def newest_id(self) -> int:
        return self.comments[-1].id

    @property
    def first(self) -> bool:  # the thread was empty: its "No comments yet" goes
        return self.total == len(self.comments)


_OTHER = aliased(Comment)
_SAME_THREAD = and_(_OTHER.request_id == Comment.request_id, _OTHER.internal.is_(False))
# Built once (building a statement costs more than running it): the client-visible comments
# after `after` (and always `comment_id`), each with its pin's number on the version under
# review, the thread's count, and the shape of the page it is pinned to.
_POSTED = (
    select(Comment,
           select(func.count(_OTHER.id)).where(
               _SAME_THREAD, _OTHER.page.is_not(None),
               _OTHER.version_id == bindparam("version_id"), _OTHER.id <= Comment.id)
           .scalar_subquery(),
           select(func.count(_OTHER.id)).where(_SAME_THREAD).scalar_subquery(),
           PageRender.width, PageRender.height)
    .outerjoin(PageRender, and_(PageRender.version_id == Comment.version_id,
                                PageRender.number == Comment.page))
    .where(Comment.request_id == bindparam("request_id"), Comment.internal.is_(False),
           or_(Comment.id > bindparam("after"), Comment.id == bindparam("comment_id")))
    .order_by(Comment.id)
    .options(joinedload(Comment.author_user), joinedload(Comment.author_contact)))


def posted(approver: Approver, comment: Comment, after: int | None) -> Posted:
    """The client-visible comments after `after` (the newest the page showed; None: only
    `comment`), with their pin numbers, the pages' shapes and the count, in one statement."""
    version_id = approver.request.version_id
    rows = db.session.execute(_POSTED, {
        "version_id": version_id, "request_id": approver.request_id,
        "after": comment.id if after is None else after, "comment_id": comment.id}).all()
    items = []
    for c, pin_number, _newest, width, height in rows:
        pinned = c.page is not None and c.version_id == version_id
        marker = (Marker(c.id, pin_number, c.page, c.x, c.y, c.w, c.h, False)
                  if pinned and width else None)
        items.append(PostedComment(c.id, c.author_name, c.author_user_id, c.created_at, c.body,
                                   c.page, pin_number if pinned else None, marker,
                                   height / width if marker else None))
    return Posted(items, rows[-1][2], approver.contact.client.zone)


def standing(row: Approver, viewer: Approver) -> str:
    """How one approver of a request stands, in the words the client reads ("Waiting for
    you", "After Jane Doe", "Changes requested"), never the stored status."""
    if row.decision is not None:
        label = row.decision.outcome.label
        return label[:1].upper() + label[1:]
    you = row.id == viewer.id
    if row.status == ApproverStatus.INVITED:
        return _("Waiting for you") if you else _("Deciding now")
    if row.status == ApproverStatus.QUEUED:
        earlier = [a for a in row.request.approvers if a.position < row.position]
        if not earlier:
            return _("Waiting for you") if you else _("Deciding next")
        before = earlier[-1]
        if before.id == viewer.id:
            return _("After you")
        return _("After %(name)s", name=before.contact.name)
    if row.request.status == RequestStatus.EXPIRED:
        return _("Did not decide in time")
    if row.request.status == RequestStatus.CANCELLED:
        return _("Request withdrawn by the team")
    return _("No decision needed")
