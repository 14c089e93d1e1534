"""Who an API call acts as: the bearer token's user, with that user's role, within the
token's scopes. Session cookies are never accepted here (no CSRF on the API)."""
from __future__ import annotations

import re
from datetime import datetime

from flask import abort, g, request
from flask_babel import gettext as _
from flask_limiter.util import get_remote_address

from portal.api.problems import API_PREFIX, is_api_url
from portal.models import ApiToken, User
from portal.models.base import utcnow
from portal.people.api_tokens import token_from_secret, touch

# Readable without a token: the contract and its reference page hold no data.
PUBLIC_PATHS = {f"{API_PREFIX}/openapi.json", f"{API_PREFIX}/docs"}
READS = {"GET", "HEAD", "OPTIONS"}
# POSTs that only read (an upload to be checked, nothing kept): a read token may send them.
READING_POSTS = {f"{API_PREFIX}/certificates/verify"}
BEARER = re.compile(r"^Bearer\s+(so_[0-9a-f]{8}_[A-Za-z0-9_-]{20,})\s*$", re.IGNORECASE)


def acting_user() -> User:
    """The person this call acts as (set by `authenticate` before any API view runs)."""
    return g.api_token.user


def authenticate() -> None:
    """Before every API request: a usable token with the scope the method needs."""
    if not is_api_url() or request.path in PUBLIC_PATHS:
        return
    now = utcnow()
    token = _proven_token(now)
    if token is None:
        abort(401, _("Send a valid API token: 'Authorization: Bearer so_…'. Tokens are "
                     "created on your account page; a revoked or expired one is refused."))
    reads = request.method in READS or request.path in READING_POSTS
    scope = "read" if reads else "write"
    if not token.allows(scope):
        abort(403, _("This token may only read. Create a token with the write scope to "
                     "change anything."))
    g.api_token = token
    g._login_user = token.user  # Flask-Login's current_user, for this request only
    touch(token, now)


def _proven_token(now: datetime) -> ApiToken | None:
    """The usable token the request's header proves, looked up once per request (the rate
    limiter asks first, then `authenticate`)."""
    if "_proven_token" not in g:
        match = BEARER.match(request.headers.get("Authorization", ""))
        g._proven_token = token_from_secret(match.group(1), now) if match else None
    return g._proven_token


def rate_key() -> str:
    """Rate limits count per proven token, else per address: naming someone's prefix (it is
    shown on their page) with a wrong secret spends the caller's allowance, not theirs."""
    token = _proven_token(utcnow())
    return f"api-token:{token.prefix}" if token is not None else get_remote_address()
