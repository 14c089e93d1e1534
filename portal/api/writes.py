"""The one way an API call changes anything: the view calls the domain (which flushes),
then this commits. A creating call may carry an Idempotency-Key: the same key with the
same request replays the first answer; with a different request it is refused (422)."""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from copy import deepcopy
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Response, make_response, request
from flask_babel import gettext as _
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from portal.api.auth import acting_user
from portal.errors import DomainError, InvalidInput
from portal.extensions import db
from portal.models import IdempotentRequest, utcnow

IDEMPOTENCY_HEADER = {
    "in": "header", "name": "Idempotency-Key", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Any unique string (a UUID). A retried call with the same key and the "
                   "same request creates nothing new and answers as the first did; the "
                   "same key with a different request is refused (422). Kept 24 hours.",
}


KEEP = timedelta(hours=24)  # how long a key's answer is kept (the header's description)


class KeyReused(DomainError):
    status = 422


def writes(view: Callable[..., Any]) -> Callable[..., Any]:
    """Commit what the view did; a domain refusal rolls back (the error handlers)."""
    @wraps(view)
    def committed(*args: Any, **kwargs: Any) -> Any:
        result = view(*args, **kwargs)
        db.session.commit()
        return result
    return committed


def _fingerprint() -> str:
    """Method, path, query and body, independent of a multipart boundary or JSON spacing."""
    digest = hashlib.sha256(f"{request.method} {request.path}".encode())
    digest.update(json.dumps(sorted(request.args.items(multi=True))).encode())
    if request.is_json:
        body = request.get_json(silent=True)
        digest.update(json.dumps(body, sort_keys=True).encode())
    elif request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        digest.update(json.dumps(sorted(request.form.items(multi=True))).encode())
        for field, upload in sorted(request.files.items(multi=True), key=lambda f: f[0]):
            data = upload.stream.read()
            upload.stream.seek(0)
            digest.update(f"{field}:{upload.filename}:".encode())
            digest.update(hashlib.sha256(data).digest())
    else:
        digest.update(request.get_data(cache=True))
    return digest.hexdigest()


def _replay(kept: IdempotentRequest) -> Response:
    response = make_response(kept.body, kept.status)
    response.mimetype = "application/json"
    if kept.location:
        response.headers["Location"] = kept.location
    response.headers["Idempotent-Replayed"] = "true"
    return response


def _kept(user_id: int, key: str) -> IdempotentRequest | None:
    """The answer kept for this key, if it is younger than KEEP (an older one is dropped:
    the key may be used afresh)."""
    kept = db.session.scalar(select(IdempotentRequest).where(
        IdempotentRequest.user_id == user_id, IdempotentRequest.key == key))
    if kept is not None and kept.created_at < utcnow() - KEEP:
        db.session.delete(kept)
        db.session.flush()
        return None
    return kept


def forget_old_answers(now: datetime) -> int:
    """Drop kept answers older than KEEP (every minute, jobs/periodic.py)."""
    result = db.session.execute(delete(IdempotentRequest)
                                .where(IdempotentRequest.created_at < now - KEEP))
    return result.rowcount or 0


def _checked_replay(kept: IdempotentRequest, fingerprint: str) -> Response:
    if kept.fingerprint != fingerprint:
        raise KeyReused(_("This Idempotency-Key was already used for a different request. "
                          "Use a new key for a new request."))
    return _replay(kept)


def creates(view: Callable[..., Any]) -> Callable[..., Any]:
    """`writes`, plus Idempotency-Key. Put it above the smorest decorators."""
    @wraps(view)
    def once(*args: Any, **kwargs: Any) -> Any:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return writes(view)(*args, **kwargs)
        if not key.strip() or len(key) > 255 or not key.isprintable():
            raise InvalidInput(_("An Idempotency-Key is 1 to 255 printable characters."))
        user_id, fingerprint = acting_user().id, _fingerprint()
        kept = _kept(user_id, key)
        if kept is not None:
            return _checked_replay(kept, fingerprint)
        try:
            response = make_response(view(*args, **kwargs))
            if response.status_code < 300:  # a refusal is not kept: the retry may succeed
                db.session.add(IdempotentRequest(
                    user_id=user_id, key=key, fingerprint=fingerprint,
                    status=response.status_code, body=response.get_data(),
                    location=response.headers.get("Location")))
            db.session.commit()
        except IntegrityError:
            # A concurrent retry with this key committed first: its row for the key, or
            # the unique thing it created (a client's name), refused ours. Answer as it did.
            db.session.rollback()
            kept = _kept(user_id, key)
            if kept is None:
                raise
            return _checked_replay(kept, fingerprint)
        return response
    doc = deepcopy(getattr(view, "_apidoc", {}))
    doc.setdefault("manual_doc", {}).setdefault("parameters", []).append(IDEMPOTENCY_HEADER)
    once._apidoc = doc  # type: ignore[attr-defined]
    return once
