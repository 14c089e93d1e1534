"""A locked (approved) version can never change or disappear, whatever code tries."""
from __future__ import annotations

from typing import Any

from flask_babel import gettext as _
from sqlalchemy import event, inspect, select
from sqlalchemy.orm import Session, scoped_session

from portal.errors import IllegalTransition
from portal.models import Version
from portal.models.work import VERSION_CONTENT_FIELDS


def _was_locked(session: Session, version: Version) -> bool:
    """Ask the database, not the object: its in-memory state may be expired or edited."""
    if version.id is None:
        return False
    with session.no_autoflush:
        stored = session.execute(
            select(Version.locked_at).where(Version.id == version.id)
        ).scalar_one_or_none()
    return stored is not None


def _refuse_changes_to_locked_versions(session: Session, _ctx: Any, _instances: Any) -> None:
    for obj in session.deleted:
        if isinstance(obj, Version) and _was_locked(session, obj):
            raise IllegalTransition(_("Version %(number)s is approved and locked; it cannot "
                                      "be deleted.", number=obj.number))
    for obj in session.dirty:
        if not isinstance(obj, Version):
            continue
        state = inspect(obj)
        changed = [f for f in (*VERSION_CONTENT_FIELDS, "locked_at")
                   if state.attrs[f].history.has_changes()]
        if changed and _was_locked(session, obj):
            raise IllegalTransition(
                _("Version %(number)s is approved and locked; it cannot be replaced or edited. "
                  "Upload a new version instead.", number=obj.number)
            )


def install_version_lock(session: scoped_session) -> None:
    """On the app's session (not SQLAlchemy's Session class, which every engine shares)."""
    if not event.contains(session, "before_flush", _refuse_changes_to_locked_versions):
        event.listen(session, "before_flush", _refuse_changes_to_locked_versions)
