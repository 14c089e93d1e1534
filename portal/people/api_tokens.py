"""Personal API tokens: created by their owner, shown once, kept only as a hash.

A token reads `so_<prefix>_<secret>`. The prefix (public) finds the row; the SHA-256 of
the whole token, compared in constant time, proves it. A token acts as its user, with
that user's role, within its scopes (read: GET; write: everything else).
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import UTC, date, datetime, time, timedelta

from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from portal import audit
from portal.database import writing
from portal.errors import InvalidInput, NotAllowed
from portal.extensions import db
from portal.models import ApiToken, User
from portal.models.api import SCOPES

PREFIX_LENGTH = 8
TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is a hint, not an access log


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_token(owner: User, name: str, scopes: list[str], expires_on: date | None,
                 now: datetime) -> tuple[ApiToken, str]:
    """The new token and its secret, which is shown this once and never again."""
    name = (name or "").strip()
    if not name or len(name) > 80:
        raise InvalidInput(_("Give the token a name of up to 80 characters, so you can tell "
                             "it apart later."))
    chosen = [s for s in SCOPES if s in scopes]
    if not chosen or len(chosen) != len(set(scopes)):
        raise InvalidInput(_("Choose what the token may do: read, or read and write."))
    if "write" in chosen and "read" not in chosen:
        chosen = ["read", "write"]
    expires_at = None
    if expires_on is not None:
        if expires_on <= now.date():
            raise InvalidInput(_("The expiry date must be in the future."))
        expires_at = datetime.combine(expires_on, time(), tzinfo=UTC)
    prefix = secrets.token_hex(PREFIX_LENGTH // 2)
    secret = f"so_{prefix}_{secrets.token_urlsafe(32)}"
    token = ApiToken(user=owner, name=name, prefix=prefix, secret_sha256=_digest(secret),
                     scopes=" ".join(chosen), created_at=now, expires_at=expires_at)
    db.session.add(token)
    audit.record(owner, "api_token.created", token, name=name, prefix=prefix,
                 scopes=token.scopes, expires_at=expires_at.isoformat() if expires_at else None)
    return token, secret


def revoke_token(actor: User, token: ApiToken, now: datetime) -> None:
    """Only its owner revokes a token (an admin deactivating the user ends all of them)."""
    if token.user_id != actor.id:
        raise NotAllowed(_("You can only revoke your own tokens."))
    _revoke(actor, token, now)


def revoke_all(actor: User, owner: User, now: datetime) -> None:
    """Every live token of `owner`, ended by an admin switching the account off."""
    for token in tokens_of(owner):
        _revoke(actor, token, now)


def _revoke(actor: User, token: ApiToken, now: datetime) -> None:
    if token.revoked_at is None:
        token.revoked_at = now
        audit.record(actor, "api_token.revoked", token, prefix=token.prefix)


def tokens_of(owner: User) -> list[ApiToken]:
    return list(db.session.scalars(
        select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id.desc())))


def token_from_secret(secret: str, now: datetime) -> ApiToken | None:
    """The usable token this secret proves, or None (unknown, wrong, revoked, expired, or
    its user deactivated): the caller says only that it is not accepted."""
    parts = secret.split("_", 2)  # the random part may hold "_" itself
    if len(parts) != 3 or parts[0] != "so" or len(parts[1]) != PREFIX_LENGTH:
        return None
    token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == parts[1]))
    if token is None or not hmac.compare_digest(token.secret_sha256, _digest(secret)):
        return None
    return token if token.is_usable(now) else None


def touch(token: ApiToken, now: datetime) -> None:
    """Note the token's use, at most once a minute, in a transaction of its own (a GET's
    transaction only reads)."""
    if token.last_used_at is not None and now - token.last_used_at < TOUCH_EVERY:
        return
    # The request's transaction has only read so far, but a writing request's began
    # IMMEDIATE on SQLite and holds the write lock the connection below would wait for.
    token_id = token.id
    db.session.commit()
    try:
        with writing(), db.engine.begin() as connection:
            connection.execute(update(ApiToken).where(ApiToken.id == token_id)
                               .values(last_used_at=now))
    except OperationalError:  # a hint: never worth failing the call (SQLite busy behind
        pass                  # a long writer), the next call a minute on tries again
