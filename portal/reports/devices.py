"""What a person decided from, in words: "Safari 17 on iPhone" for a user-agent string.

One function for the certificate, the decision receipt and any staff page. The parsing is
ua-parser's (the ua-parser project's maintained rules), not ours; what is ours is only how
its answer is put in a few words, and the fallback when it recognises nothing.
"""
from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from ua_parser import parse

# Said in the language being rendered (a receipt, a certificate, a staff page).
UNKNOWN = _l("unknown browser")
UNRECOGNISED = _l("unrecognised browser")
# ua-parser's families name the form factor ("Mobile Safari", "Chrome Mobile iOS"); the
# device already says that, so the words go.
_FORM_WORDS = {"Mobile", "iOS"}
_OS_NAMES = {"Mac OS X": "macOS"}
_OS_WITH_VERSION = {"Windows", "Android", "iOS", "iPadOS"}
_NO_DEVICE = {None, "", "Other", "Generic Smartphone", "Generic Feature Phone", "Generic Tablet",
              "Spider"}


def describe_device(user_agent: str | None) -> str:
    """A browser and device a person recognises, e.g. "Chrome 131 on Windows 10"; the
    full string belongs beside it where evidence is needed (the certificate's appendix).
    The words around the names follow the language being rendered."""
    parsed = _parsed(user_agent)
    if parsed is None:
        return str(UNKNOWN)
    name, where = parsed
    if name is None:
        return str(UNRECOGNISED)
    return _("%(browser)s on %(device)s", browser=name, device=where) if where else name


@lru_cache(maxsize=1024)
def _parsed(user_agent: str | None) -> tuple[str | None, str] | None:
    """The browser's name and the platform (None: no string; no name: not recognised)."""
    if not user_agent or not user_agent.strip():
        return None
    result = parse(user_agent)
    browser = result.user_agent
    if browser is None or browser.family in (None, "", "Other"):
        return None, ""
    name = " ".join(w for w in browser.family.split() if w not in _FORM_WORDS) or browser.family
    if browser.major:
        name = f"{name} {browser.major}"
    return name, _platform(result)


def _platform(result) -> str:
    device, os = result.device, result.os
    if device is not None and device.brand == "Apple" and device.family in (
            "iPhone", "iPad", "iPod", "Mac"):
        return str(device.family)  # "Safari 17 on iPhone": the model is not in the string
    system = ""
    if os is not None and os.family not in (None, "", "Other"):
        system = _OS_NAMES.get(os.family, os.family)
        if os.family in _OS_WITH_VERSION and os.major:
            system = f"{system} {os.major}"
    if device is not None and device.family not in _NO_DEVICE and device.model \
            and device.brand not in (None, "Apple", "Generic"):
        model = device.family if device.family.startswith(device.brand) else \
            f"{device.brand} {device.model}"
        return f"{model} ({system})" if system else model
    return system


def numbered_user_agents(user_agents: Iterable[str | None]) -> dict[str, int]:
    """Each distinct non-empty string once, numbered 1, 2, … in the order first seen, so
    a row can say "[UA 1]" and an appendix list the full string once."""
    numbers: dict[str, int] = {}
    for user_agent in user_agents:
        if user_agent and user_agent.strip() and user_agent not in numbers:
            numbers[user_agent] = len(numbers) + 1
    return numbers
