"""The language a certificate is issued in: its page furniture, and the record of it.

Which language is portal.i18n.request_language's rule. The certificate is rendered inside
`in_language` of it, says so on its first page ("Issued in English", written by each
catalogue in its own language), and the language is kept in its `certificate.issued` audit
event (hash-chained like the rest of the trail), where `issued_language` reads it back.
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from flask_babel import gettext as _
from sqlalchemy import select

from portal.extensions import db
from portal.i18n import is_language
from portal.models import AuditEvent, Certificate

# Stand-ins for what CSS fills in (the certificate id, the page counters): the sentence is
# translated whole, then cut at them.
_MARKS = ("\x00", "\x01")


def _css_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\A ")
    return f'"{escaped}"'


def _content(sentence: str, fills: dict[str, str]) -> str:
    """A CSS `content` value: the translated sentence's words as strings around the
    functions standing in for its values (in whatever order the language puts them)."""
    parts: list[str] = []
    rest = sentence
    while rest:
        at, mark = min(((rest.find(m), m) for m in fills if m in rest), default=(-1, ""))
        if at < 0:
            parts.append(_css_string(rest))
            break
        if at:
            parts.append(_css_string(rest[:at]))
        parts.append(fills[mark])
        rest = rest[at + len(mark):]
    return " ".join(parts) or '""'


def margin_css() -> str:
    """The page's running footer in the language being rendered (static/css/certificate.css
    holds the English one, which this overrides)."""
    first, second = _MARKS
    title = _content(_("Approval certificate %(id)s", id=first), {first: "string(certid)"})
    pages = _content(_("Page %(page)s of %(pages)s", page=first, pages=second),
                     {first: "counter(page)", second: "counter(pages)"})
    return ("@page { @bottom-left { content: " + title + "; } "
            "@bottom-right { content: " + pages + "; } }")


def issued_language(certificate: Certificate) -> str:
    """The language this certificate was issued in, as its audit event records it
    (certificates from before languages were English)."""
    return issued_languages([certificate.id])[certificate.id]


def issued_languages(certificate_ids: Iterable[int]) -> dict[int, str]:
    """issued_language of many certificates, in one query (a list of them)."""
    ids = set(certificate_ids)
    found: dict[int, str] = {}
    if ids:
        rows = db.session.execute(
            select(AuditEvent.subject_id, AuditEvent.detail)
            .where(AuditEvent.verb == "certificate.issued",
                   AuditEvent.subject_type == Certificate.__tablename__,
                   AuditEvent.subject_id.in_(ids)).order_by(AuditEvent.seq))
        for certificate_id, detail in rows:
            code = json.loads(detail).get("language") if detail else None
            found.setdefault(certificate_id, code if is_language(code) else "en")
    return {certificate_id: found.get(certificate_id, "en") for certificate_id in ids}
