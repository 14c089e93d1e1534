"""How a decision recorded on a contact's behalf is said, in one sentence, wherever it is
shown: the client's page, the staff page, the receipt and the certificate.

"Recorded by Bob Producer on behalf of Jane Doe, who approved by phone on 30 Nov 2026."
Each outcome and channel is a whole sentence of its own, so translators see the sentence.
"""
from __future__ import annotations

from datetime import UTC, date

from babel.dates import format_date, format_skeleton
from flask_babel import get_locale
from flask_babel import gettext as _

from portal.local_time import shown_zone
from portal.models import Decision, OnBehalfChannel, Outcome

_C = OnBehalfChannel


def given_day(decision: Decision) -> str:
    """The day the contact gave it, in the zone and language being rendered."""
    day: date = decision.on_behalf.given_at.astimezone(shown_zone() or UTC).date()
    locale = get_locale()
    if locale is None or locale.language == "en":
        return format_date(day, "d MMM y", locale="en")
    return format_skeleton("yMMMd", day, locale=locale)


def _approved(by: str, whom: str, day: str, channel: OnBehalfChannel) -> str:
    return {
        _C.PHONE: _("Recorded by %(by)s on behalf of %(whom)s, who approved by phone on "
                    "%(day)s.", by=by, whom=whom, day=day),
        _C.MEETING: _("Recorded by %(by)s on behalf of %(whom)s, who approved in a meeting "
                      "on %(day)s.", by=by, whom=whom, day=day),
        _C.EMAIL: _("Recorded by %(by)s on behalf of %(whom)s, who approved by email on "
                    "%(day)s.", by=by, whom=whom, day=day),
        _C.OTHER: _("Recorded by %(by)s on behalf of %(whom)s, who approved on %(day)s.",
                    by=by, whom=whom, day=day),
    }[channel]


def _with_conditions(by: str, whom: str, day: str, channel: OnBehalfChannel) -> str:
    return {
        _C.PHONE: _("Recorded by %(by)s on behalf of %(whom)s, who approved with conditions "
                    "by phone on %(day)s.", by=by, whom=whom, day=day),
        _C.MEETING: _("Recorded by %(by)s on behalf of %(whom)s, who approved with "
                      "conditions in a meeting on %(day)s.", by=by, whom=whom, day=day),
        _C.EMAIL: _("Recorded by %(by)s on behalf of %(whom)s, who approved with conditions "
                    "by email on %(day)s.", by=by, whom=whom, day=day),
        _C.OTHER: _("Recorded by %(by)s on behalf of %(whom)s, who approved with conditions "
                    "on %(day)s.", by=by, whom=whom, day=day),
    }[channel]


def _changes(by: str, whom: str, day: str, channel: OnBehalfChannel) -> str:
    return {
        _C.PHONE: _("Recorded by %(by)s on behalf of %(whom)s, who requested changes by "
                    "phone on %(day)s.", by=by, whom=whom, day=day),
        _C.MEETING: _("Recorded by %(by)s on behalf of %(whom)s, who requested changes in a "
                      "meeting on %(day)s.", by=by, whom=whom, day=day),
        _C.EMAIL: _("Recorded by %(by)s on behalf of %(whom)s, who requested changes by "
                    "email on %(day)s.", by=by, whom=whom, day=day),
        _C.OTHER: _("Recorded by %(by)s on behalf of %(whom)s, who requested changes on "
                    "%(day)s.", by=by, whom=whom, day=day),
    }[channel]


_BY_OUTCOME = {Outcome.APPROVED: _approved, Outcome.APPROVED_WITH_CONDITIONS: _with_conditions,
               Outcome.REJECTED: _changes}


def on_behalf_sentence(decision: Decision | None) -> str:
    """The sentence for a decision recorded on behalf ('' for any other); plain text, which
    HTML templates escape."""
    row = decision.on_behalf if decision is not None else None
    if row is None:
        return ""
    return _BY_OUTCOME[decision.outcome](row.recorded_by.name, decision.approver.contact.name,
                                         given_day(decision), row.channel)
