"""Which approvers this browser may act for: one grant per review link opened in it.

The session keeps a set of grants (approver public id → link generation, signing time).
Opening a link adds or refreshes its own grant and never touches another, and every client
URL names its approver, so any number of tabs work side by side and a grant for one
approver never opens another's page.
"""
from __future__ import annotations

from typing import Any

from flask import abort, make_response, render_template, session
from werkzeug.wrappers import Response

from portal.i18n import approver_language, use_language
from portal.models import Approver, RequestStatus
from portal.reports import review_page
from portal.views.common import no_store
from portal.workflow import links
from portal.workflow.links import LinkCheck, LinkState
from portal.workflow.replaced import replaced

GRANTS_KEY = "review_grants"
# A cookie holds a few KB: keep the newest grants (each is ~50 bytes).
MAX_GRANTS = 24


def _grants() -> dict[str, Any]:
    grants = session.get(GRANTS_KEY)
    return grants if isinstance(grants, dict) else {}


def add_grant(check: LinkCheck) -> None:
    grants = dict(_grants())
    grants[check.approver.public_id] = [check.generation, int(check.signed_at.timestamp())]
    if len(grants) > MAX_GRANTS:
        newest = sorted(grants.items(), key=lambda item: item[1][1], reverse=True)
        grants = dict(newest[:MAX_GRANTS])
    session[GRANTS_KEY] = grants  # a new dict, so the session knows it changed


def _granted_generation(public_id: str) -> Any:
    grant = _grants().get(public_id)
    return grant[0] if isinstance(grant, list) and grant else None


def speak_to(approver: Approver | None) -> None:
    """The rest of this request (page, htmx piece, error page) is in the approver's language:
    their own choice on the page, else their contact's, else the client's, else the portal's.
    Without an approver: the browser's, else the portal's."""
    if approver is not None:
        use_language(approver_language(approver))


def no_access_page(approver: Approver | None) -> Response:
    """A review URL this browser holds no link for: a way forward, not a dead end. It names
    nothing about the document, since the URL alone is not a secret."""
    speak_to(approver)
    offer = approver is not None and approver.awaiting_decision
    html = render_template("client/no_access.html", approver=approver, offer=offer)
    return no_store(make_response(html, 403 if approver else 404))


def may_point_on(approver: Approver, generation: Any = None) -> bool:
    """Whether a dead link's page may point on to a newer version: only when its request
    was cancelled (re-delivered, most often) and nothing else has killed the link since (the
    cancellation is its only newer generation). A revoked link, a resent one or a changed
    address learns nothing. `generation` is the link's; None: this browser's grant."""
    if generation is None:
        generation = _granted_generation(approver.public_id)
    return (approver.request.status == RequestStatus.CANCELLED
            and approver.link_revoked_at is None
            and isinstance(generation, int) and generation == approver.link_generation - 1)


def holds_valid_grant(approver: Approver) -> bool:
    """Whether a link for this approver, still good, was opened in this browser."""
    generation = _granted_generation(approver.public_id)
    return generation is not None and links.link_state(approver, generation) == LinkState.VALID


def way_on(approver: Approver) -> dict[str, Any]:
    """For a page about an old version: where its approver should go now, and whether this
    browser may open that page (else it offers to email the link to the address on file)."""
    newer = replaced(approver)
    return {"replaced": newer,
            "granted": bool(newer and newer.newer and holds_valid_grant(newer.newer))}


def gone_page(approver: Approver, generation: Any = None) -> Response:
    """A dead link: where to go now when its request was cancelled; otherwise a fresh link
    to the address on file when one is still wanted (never after staff revoked it)."""
    speak_to(approver)
    ways = way_on(approver) if may_point_on(approver, generation) else {"replaced": None}
    offer = (ways["replaced"] is None and approver.link_revoked_at is None
             and approver.awaiting_decision)
    html = render_template("client/gone.html", client=approver.contact.client,
                           approver=approver, offer=offer, **ways)
    return no_store(make_response(html, 410))


def access(public_id: str, *, whole_page: bool = True) -> tuple[Approver, LinkState]:
    """The approver this URL names, if a link for them was opened in this browser, and
    what that link is worth now; otherwise the request ends with the no-access page.
    The check reads the row the page loads (`whole_page`: with all the page shows)."""
    approver = review_page.approver_by_public_id(public_id, whole_page=whole_page)
    speak_to(approver)
    generation = _granted_generation(public_id)
    if approver is None or generation is None:
        abort(no_access_page(approver))
    return approver, links.link_state(approver, generation)
