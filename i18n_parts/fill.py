"""Session scaffolding (deleted once the catalogues are whole): extract, merge, fill each
language's catalogue from every part file i18n_parts/<area>/<lang>.po, compile.

Run under a lock so helpers never write the catalogues at once:
    flock /work/main/i18n_parts/.lock .venv/bin/python i18n_parts/fill.py
Prints, per language, what is still untranslated (first few msgids).
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TRANSLATIONS = ROOT / "portal/translations"
POT = TRANSLATIONS / "messages.pot"
LANGS = ("de", "fr", "es", "ru")


def run(*args: str) -> None:
    done = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True,
                          text=True)
    if done.returncode:
        sys.exit(done.stdout + done.stderr)


def key(message) -> tuple:
    return (message.id, message.context)


def main() -> int:
    run("pybabel", "extract", "-F", "babel.cfg", "-k", "_l", "-k", "lazy_gettext",
        "--sort-by-file", "--project", "Signoff", "--copyright-holder", "Signoff",
        "-o", str(POT), ".")
    run("pybabel", "update", "-i", str(POT), "-d", str(TRANSLATIONS),
        "--no-fuzzy-matching", "--ignore-obsolete")
    for lang in LANGS:
        po_path = TRANSLATIONS / lang / "LC_MESSAGES/messages.po"
        with po_path.open("rb") as f:
            catalog = read_po(f, locale=lang)
        known = {}
        for part in sorted((ROOT / "i18n_parts").glob(f"*/{lang}.po")):
            with part.open("rb") as f:
                for m in read_po(f, locale=lang):
                    if not m.id:
                        continue
                    strings = m.string if isinstance(m.string, tuple) else (m.string,)
                    if all(strings):
                        known.setdefault(key(m), m.string)
        missing = []
        for m in catalog:
            if not m.id:
                continue
            if key(m) in known:
                found = known[key(m)]
                if isinstance(m.id, tuple | list) and not isinstance(found, tuple | list):
                    missing.append(m.id)
                    continue
                m.string = found
            m.flags.discard("fuzzy")
            strings = m.string if isinstance(m.string, tuple | list) else (m.string,)
            if not all(strings):
                missing.append(m.id)
        with po_path.open("wb") as f:
            write_po(f, catalog, sort_by_file=True, ignore_obsolete=True, width=96)
        print(f"{lang}: {len(catalog) - len(missing)} of {len(catalog)} translated"
              + (f"; missing e.g. {missing[:5]}" if missing else ""))
    run("pybabel", "compile", "-d", str(TRANSLATIONS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
