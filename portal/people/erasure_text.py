"""The words of an erasure: which original values become which pseudonyms, and rewriting
free text and JSON (audit details, webhook payloads, email contexts) with them.

Pseudonyms are built from row ids, never from the original values: a hash of an email
address would let anyone holding the address confirm it was here.
"""
from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from typing import Any

ERASED = "[erased]"
# Keys under which a request's technical traces travel in audit details and payloads.
TRACE_KEYS = frozenset({"ip", "user_agent"})
# A free text shorter than this ("OK", "Yes") is erased in its own row and where a value
# equals it, never searched for inside other texts: it would match everywhere.
SEARCHABLE_TEXT = 12


def contact_name(contact_id: int) -> str:
    return f"Former contact {contact_id}"


def contact_email(contact_id: int) -> str:
    return f"contact-{contact_id}@erased.invalid"


def colleague_name(delegation_id: int) -> str:
    return f"Former colleague {delegation_id}"


def colleague_email(delegation_id: int) -> str:
    return f"colleague-{delegation_id}@erased.invalid"


def actor_label(contact_id: int) -> str:
    """As audit.actor_of labels a contact, for the contact's pseudonyms."""
    return f"{contact_name(contact_id)} <{contact_email(contact_id)}>"


@dataclass
class Pseudonyms:
    """Original value -> replacement. Names and emails are replaced wherever they occur in
    a text; free texts (comments, notes, conditions) and traces (IPs, user agents) are
    replaced whole by the marker when a value equals one of them."""

    people: dict[str, str] = field(default_factory=dict)
    texts: set[str] = field(default_factory=set)
    # IPs and user agents: the marker only where the row is the erased request's own (a
    # shared office IP may also sit on a kept request's rows).
    traces: set[str] = field(default_factory=set)
    _pattern: re.Pattern[str] | None = None

    def person(self, original: str | None, pseudonym: str) -> None:
        if original and original.strip() and original not in self.people:
            self.people[original] = pseudonym
            self._pattern = None

    def text(self, original: str | None) -> None:
        if original and original.strip():
            self.texts.add(original)

    def trace(self, original: str | None) -> None:
        if original and original.strip():
            self.traces.add(original)

    @property
    def searchable(self) -> list[str]:
        """Every form a person's value may be stored in: as typed, HTML-escaped (email
        bodies) and JSON-escaped (audit details keep non-ASCII as \\u escapes)."""
        forms: set[str] = set()
        for value in self.people:
            forms.update({value, html.escape(value), json.dumps(value)[1:-1]})
        return sorted(forms)

    def _regex(self) -> re.Pattern[str] | None:
        if self._pattern is None and self.people:
            variants = {}
            for original, pseudonym in self.people.items():
                for form in (original, html.escape(original), json.dumps(original)[1:-1]):
                    variants.setdefault(form.lower(), pseudonym)
            alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
            # Whole words only: "Jo" must not eat the start of "Join".
            self._pattern = re.compile(rf"(?<![\w@.])(?:{alternatives})(?![\w@])", re.IGNORECASE)
            self._variants = variants
        return self._pattern

    def mentions_person(self, value: str | None) -> bool:
        pattern = self._regex()
        return bool(value and pattern is not None and pattern.search(value))

    def _long_texts(self) -> list[str]:
        return sorted((t for t in self.texts if len(t) >= SEARCHABLE_TEXT), key=len,
                      reverse=True)

    def mentions(self, value: str | None) -> bool:
        if not value:
            return False
        if self.mentions_person(value):
            return True
        return any(t in value or html.escape(t) in value
                   for t in [*self._long_texts(), *self.traces])

    def rewrite(self, value: str, *, traces: bool = False) -> str:
        """A text with every name and email replaced, the marker if it is a free text
        (or, with traces, an IP or user agent), and a free text quoted inside it (a
        "Jane wrote: …" subject) replaced by the marker."""
        if value in self.texts or (traces and value in self.traces):
            return ERASED
        for text in self._long_texts():
            for form in {text, html.escape(text)}:
                value = value.replace(form, ERASED)
        pattern = self._regex()
        if pattern is None:
            return value
        return pattern.sub(lambda m: self._variants[m.group(0).lower()], value)

    def rewrite_json(self, value: Any, *, traces: bool) -> Any:
        """The same JSON value with strings rewritten; with traces, IPs and user agents
        (by key) become the marker too."""
        if isinstance(value, str):
            return self.rewrite(value, traces=traces)
        if isinstance(value, list):
            return [self.rewrite_json(v, traces=traces) for v in value]
        if isinstance(value, dict):
            return {k: ERASED if traces and k in TRACE_KEYS and isinstance(v, str) and v
                    else self.rewrite_json(v, traces=traces)
                    for k, v in value.items()}
        return value
