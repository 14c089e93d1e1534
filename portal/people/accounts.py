"""Staff accounts: creation, password hashing (Argon2id) and sign-in checks."""
from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from sqlalchemy import func, select

from portal import audit
from portal.errors import InvalidInput
from portal.extensions import db
from portal.i18n import is_language
from portal.models import Role, User
from portal.models.base import utcnow
from portal.models.people import new_session_token
from portal.people.api_tokens import revoke_all
from portal.permissions import require_admin
from portal.validation import single_line

_hasher = PasswordHasher()
# Verified against when the email is unknown, so both failures cost the same time.
_DUMMY_HASH = _hasher.hash("not a real password")
MIN_PASSWORD_LENGTH = 10


def normalise_email(raw: str) -> str:
    try:
        return validate_email(raw.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        locale = get_locale()
        if locale is None or locale.language == "en":  # the validator's reason is English
            raise InvalidInput(f"“{raw.strip()}” is not a valid email address: {exc}") from exc
        raise InvalidInput(_("“%(address)s” is not a valid email address.",
                             address=raw.strip())) from exc


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(ngettext("Passwords need at least %(num)d character.",
                                    "Passwords need at least %(num)d characters.",
                                    MIN_PASSWORD_LENGTH))
    return _hasher.hash(password)


def create_user(
    actor: User | None, email: str, name: str, password: str, role: Role = Role.STAFF
) -> User:
    email = normalise_email(email)
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)):
        raise InvalidInput(_("A user with the email %(email)s already exists.", email=email))
    if actor is not None:
        require_admin(actor, "manage users")
    name = single_line(name, _("The name"), 120) if name and name.strip() else email
    user = User(email=email, name=name, password_hash=hash_password(password),
                role=Role(role))
    db.session.add(user)
    audit.record(actor, "user.created", user, email=email, role=user.role.value)
    return user


def authenticate(email: str, password: str) -> User | None:
    """The active user with these credentials, or None (never says which part was wrong)."""
    user = db.session.scalar(select(User).where(User.email == email.strip().lower()))
    stored = user.password_hash if user else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    if user is None or not user.active:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def sign_out_everywhere(user: User) -> None:
    """A new session token: every session and remember-me cookie of this user, including
    copies of them, stops working."""
    user.session_token = new_session_token()
    audit.record(user, "user.signed_out", user)


def _admins_left_without(user: User) -> int:
    return db.session.scalar(select(func.count(User.id)).where(
        User.role == Role.ADMIN, User.active, User.id != user.id)) or 0


def update_user(actor: User, user: User, *, role: Role, active: bool) -> None:
    """Change a user's role or switch the account off; there is always one active admin."""
    require_admin(actor, "manage users")
    losing_admin = user.role == Role.ADMIN and (role != Role.ADMIN or not active)
    if losing_admin and _admins_left_without(user) == 0:
        raise InvalidInput(_("Signoff needs at least one active admin."))
    before = {"role": user.role.value, "active": user.active}
    user.role, user.active = role, active
    if not active:
        user.session_token = new_session_token()  # signs them out everywhere
    audit.record(actor, "user.updated", user, before=before,
                 after={"role": role.value, "active": active})
    if not active:  # and ends their API tokens: switching the account on again revives none
        revoke_all(actor, user, utcnow())


def set_own_language(user: User, code: str | None) -> None:
    """The language of the staff pages for this person; None (or "") follows their
    browser. Each person chooses only their own."""
    code = (code or "").strip() or None
    if code is not None and not is_language(code):
        raise InvalidInput(_("Choose a language from the list."))
    if user.language != code:
        audit.record(user, "user.language", user, language=code, previous=user.language)
        user.language = code
