"""The client's language switch on their review page: the choice is kept on the approver
(Approver.language), so their page, its htmx pieces and error pages follow it from then on
(portal.i18n.approver_language). Not audited: it changes what the approver reads, not what
anyone decided."""
from __future__ import annotations

from flask_babel import gettext as _

from portal.errors import InvalidInput
from portal.i18n import is_language
from portal.models import Approver


def choose_language(approver: Approver, code: str | None) -> str:
    """Keep `code` as the language of this approver's pages; anything but a shipped
    language is refused (nothing changes)."""
    if not isinstance(code, str) or not is_language(code):
        raise InvalidInput(_("Choose one of the languages in the list."))
    approver.language = code
    return code
