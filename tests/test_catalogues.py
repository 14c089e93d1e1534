"""The shipped catalogues are whole: every string the code and templates use is extracted,
translated in every language (no empty or fuzzy entry), compiled into a current .mo, keeps
its placeholders, and no template holds text outside gettext."""
from __future__ import annotations

import gettext
import re
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from portal.i18n import LANGUAGES, TRANSLATIONS
from tests import i18n_text

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = [code for code in LANGUAGES if code != "en"]  # English is the source text
PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


def _catalogue(code: str):
    with (TRANSLATIONS / code / "LC_MESSAGES/messages.po").open("rb") as f:
        return read_po(f, locale=code)


def _messages(catalogue) -> list:
    return [m for m in catalogue if m.id]


def _forms(message) -> tuple[str, ...]:
    return tuple(message.string) if isinstance(message.string, tuple | list) else (
        message.string,)


def _ids(message) -> tuple[str, ...]:
    return tuple(message.id) if isinstance(message.id, tuple | list) else (message.id,)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory) -> set:
    """What the code and templates use today, extracted the way `make messages` does."""
    pot = tmp_path_factory.mktemp("pot") / "messages.pot"
    subprocess.run([str(Path(sys.executable).parent / "pybabel"), "extract", "-F", "babel.cfg",
                    "-k", "_l", "-k", "lazy_gettext", "-o", str(pot), "."], cwd=ROOT,
                   check=True, capture_output=True)
    with pot.open("rb") as f:
        return {(m.id if isinstance(m.id, str) else tuple(m.id), m.context)
                for m in read_po(f) if m.id}


@pytest.mark.parametrize("code", SHIPPED)
def test_every_string_in_use_is_in_the_catalogue(code, extracted):
    held = {(m.id if isinstance(m.id, str) else tuple(m.id), m.context)
            for m in _messages(_catalogue(code))}
    missing = sorted(str(k[0]) for k in extracted - held)
    assert not missing, f"{code}: run `make messages` and translate: {missing[:10]}"


@pytest.mark.parametrize("code", SHIPPED)
def test_no_string_is_empty_or_fuzzy(code):
    catalogue = _catalogue(code)
    empty = [_ids(m)[0] for m in _messages(catalogue) if not all(_forms(m))]
    fuzzy = [_ids(m)[0] for m in _messages(catalogue) if m.fuzzy]
    assert not empty, f"{code}: untranslated: {empty[:10]}"
    assert not fuzzy, f"{code}: fuzzy: {fuzzy[:10]}"
    # As many plural forms as CLDR gives the language (Babel's data: ru 3; fr and es 3,
    # counting "many" for a million; de 2).
    assert catalogue.num_plurals == Catalog(locale=code).num_plurals


@pytest.mark.parametrize("code", SHIPPED)
def test_translations_keep_their_placeholders(code):
    """A translation may drop the count from a plural form ("Ein Kommentar") but never
    invent or lose another value: rendering would fail or say less."""
    wrong = []
    for m in _messages(_catalogue(code)):
        source = set().union(*(PLACEHOLDER.findall(i) for i in _ids(m)))
        for form in _forms(m):
            names = set(PLACEHOLDER.findall(form))
            lost = source - names - ({"num"} if m.pluralizable else set())
            if names - source or lost:
                wrong.append((_ids(m)[0], form))
    assert not wrong, f"{code}: {wrong[:5]}"


@pytest.mark.parametrize("code", SHIPPED)
def test_the_compiled_catalogue_is_current(code):
    """The committed .mo says what the .po says (`make catalogues` after every change)."""
    with (TRANSLATIONS / code / "LC_MESSAGES/messages.mo").open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    catalogue = _catalogue(code)
    form = gettext.c2py(catalogue.plural_expr)
    stale = []
    for m in _messages(catalogue):
        if m.pluralizable:
            args = (m.context,) if m.context else ()
            plural = compiled.npgettext if m.context else compiled.ngettext
            got = tuple(plural(*args, m.id[0], m.id[1], n) for n in (1, 2, 5))
            want = tuple(m.string[form(n)] for n in (1, 2, 5))
        else:
            got = (compiled.pgettext(m.context, m.id) if m.context
                   else compiled.gettext(m.id))
            want = m.string
        if got != want:
            stale.append(_ids(m)[0])
    assert not stale, f"{code}: run `make catalogues`: {stale[:10]}"


def test_no_template_holds_text_outside_gettext():
    found = [f"{path.relative_to(ROOT)}: {text[:100]}"
             for path in i18n_text.templates() for text in i18n_text.untranslated(path)]
    assert not found, "\n".join(found[:30])


def test_the_checker_finds_text_outside_gettext(tmp_path):
    page = tmp_path / "page.html"
    page.write_text('<p>{{ _("Approve") }}</p><p title="Close">Send me a link</p>'
                    '{% trans %}Kept{% endtrans %}{{ button("Side by side") }}'
                    '<a href="{{ url }}" class="btn primary">{{ _("Open") }}</a> PDF · 3 MB')
    assert i18n_text.untranslated(page) == ['p title="Close"', "Send me a link",
                                           '"Side by side"']
