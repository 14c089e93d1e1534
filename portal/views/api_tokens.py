"""Each person's own API tokens, on their account page: create one (its secret shown once),
revoke one. The rules (names, scopes, expiry, whose token) are the domain's."""
from __future__ import annotations

from flask import flash, redirect, request, url_for
from flask.wrappers import Response
from flask_babel import gettext as _
from flask_login import login_required

from portal.errors import DomainError
from portal.extensions import db
from portal.models import ApiToken
from portal.models.base import utcnow
from portal.people.api_tokens import create_token, revoke_token
from portal.views.auth import account_page, bp
from portal.views.common import acting_user, get_or_404, parse_date

# The form's choice -> the scopes the domain takes.
SCOPE_CHOICES = {"read": ["read"], "write": ["read", "write"]}


@bp.post("/account/api-tokens")
@login_required
def create_api_token() -> Response | tuple[str, int]:
    """Create a token and answer with the account page showing its secret, this once: it is
    never stored (only its hash) nor put in the session cookie, which is signed, not
    encrypted. The page is no-store, so the back button does not bring it back."""
    form = request.form
    try:
        expires_on = parse_date(form.get("expires_on"), _("The expiry date"))
        token, secret = create_token(acting_user(), form.get("name", ""),
                                     SCOPE_CHOICES.get(form.get("scopes", ""), []),
                                     expires_on, utcnow())
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return account_page(exc.status, token_error=exc, token_form=form)
    return account_page(201, new_token={"id": token.id, "secret": secret})


@bp.post("/account/api-tokens/<int:token_id>/revoke")
@login_required
def revoke_api_token(token_id: int) -> Response:
    """Revoke one of your own tokens: from now on it is refused."""
    token = get_or_404(ApiToken, token_id)
    revoke_token(acting_user(), token, utcnow())  # NotAllowed for someone else's: a 403
    db.session.commit()
    flash(_("The token %(name)s is revoked: calls with it are refused from now on.",
            name=token.name))
    return redirect(url_for("auth.account", _anchor=f"token-{token.id}"))  # its new badge
