"""The checks every browser journey runs by itself: axe-core and "no sideways scroll".

When: each time a top-level page has loaded and after each htmx swap settles, and once
more on every page still open when the test ends, at the viewport of the actor that saw
it (390x844 phone or 1280x800 desktop). A state already checked (same URL, same markup)
is not checked twice. The check runs beside the journey, and a top-level navigation
waits (routed, up to 5 s) until the check of the page it leaves has finished, and goto
and reload wait for it before they start, so a journey does not outrun it; anything
still cut short leaves a "(not finished …)" line in the log
(test-artifacts/e2e/<test>-axe.txt). The sweep (test_accessibility.py) checks every page
type, explicitly.

How: Playwright adds axe (tests/vendor/, never served by the app) to every document as an
init script and runs it by evaluation, both through the DevTools protocol, which the
page's Content-Security-Policy does not govern. So the browser keeps the production CSP
(no `bypass_csp`), and the journeys' check that no script or style is refused still
means what it says.

Serious and critical axe violations fail the test, as does a page wider than the
viewport; the failure lists rule, impact, target selectors and URL. A journey may excuse
one known page with `Journey.allow_axe(url_pattern, reason)`, the reason written out.
"""
from __future__ import annotations

import re
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AXE_DIR = Path(__file__).resolve().parents[1] / "vendor" / "axe-core-4.14.1"
BLOCKING = ("serious", "critical")
_axe_source: list[str] = []

# Runs in the page. The signature (URL and a hash of the markup) skips a state already
# checked. htmx marks the element whose request is leaving (.htmx-request: faded while
# it waits); the page is judged as it stands at rest, so that mark is lifted meanwhile.
_CHECK = r"""async (force) => {
  const markup = document.body ? document.body.innerHTML : '';
  let h = 2166136261;
  for (let i = 0; i < markup.length; i++) { h ^= markup.charCodeAt(i); h = Math.imul(h, 16777619); }
  const signature = location.href + '#' + markup.length + ':' + (h >>> 0);
  if (!force && window.__a11ySignature === signature) return null;
  window.__a11ySignature = signature;
  const busy = [...document.querySelectorAll('.htmx-request')];
  busy.forEach(e => e.classList.remove('htmx-request'));
  for (const a of document.getAnimations()) { try { a.finish(); } catch (e) { /* endless */ } }
  try {
    const result = await axe.run(document, {resultTypes: ['violations']});
    const root = document.documentElement;
    const describe = e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') +
      [...e.classList].map(c => '.' + c).join('');
    const wide = root.scrollWidth > root.clientWidth ? [...document.querySelectorAll('body *')]
      .filter(e => e.getBoundingClientRect().right > root.clientWidth + 0.5)
      .slice(-4).map(describe) : [];
    return {url: location.href, scrollWidth: root.scrollWidth, clientWidth: root.clientWidth,
            wide, violations: result.violations.map(v => ({
              id: v.id, impact: v.impact, help: v.help,
              targets: v.nodes.map(n => n.target.map(String).join(' '))}))};
  } finally {
    busy.forEach(e => e.classList.add('htmx-request'));
  }
}"""


# Added to every document before its own scripts (Playwright's init script, which the CSP
# does not govern): a top-level page reports when it has loaded and after each htmx swap.
_HOOK = """if (window === window.top) {
  const settled = () => window.__a11ySettled && window.__a11ySettled();
  addEventListener('load', settled);
  document.addEventListener('htmx:afterSettle', settled);
}"""


def axe_source() -> str:
    if not _axe_source:
        _axe_source.append((AXE_DIR / "axe.min.js").read_text(encoding="utf-8"))
    return _axe_source[0]


@dataclass(frozen=True)
class Finding:
    url: str
    viewport: str
    rule: str
    impact: str
    help: str
    targets: tuple[str, ...]

    def line(self) -> str:
        shown = ", ".join(self.targets[:6]) + (" …" if len(self.targets) > 6 else "")
        return f"  {self.viewport} {self.url}\n    {self.rule} [{self.impact}] {self.help}: {shown}"


@dataclass
class Auditor:
    """Collects what the checks found, for one test."""

    origin: str = "http"  # only the app's pages are checked (a journey may visit others)
    findings: list[Finding] = field(default_factory=list)
    log: list[str] = field(default_factory=list)  # one line per check, for the report
    allowed: list[tuple[re.Pattern[str], str]] = field(default_factory=list)
    _busy: set[int] = field(default_factory=set)
    _direct: set[int] = field(default_factory=set)  # pages the test is navigating itself

    def watch(self, context: Any) -> None:
        """Check each top-level page of `context` whenever it settles; a page leaves only
        once the check of what it shows has finished."""
        context.expose_binding("__a11ySettled", lambda source: self._settled(source["page"]))
        context.add_init_script(script=axe_source())
        context.add_init_script(script=_HOOK)
        context.route("**/*", self._gate)

    def _gate(self, route: Any) -> None:
        """Hold a navigation the page starts itself (a link, a form) while the check of the
        page it leaves runs. One the test starts (goto, reload) has waited before it began:
        Chromium answers no evaluation while such a navigation is held."""
        from playwright.sync_api import Error

        try:
            request = route.request
            if request.is_navigation_request() and request.frame.parent_frame is None:
                page = request.frame.page
                if id(page) not in self._direct:
                    self.hold(page, 5)  # bounded: a check begun after the click waits on it
        except Error:
            pass  # a popup's first request has no frame yet; nothing of it to wait for
        finally:
            with suppress(Error):  # the context closed meanwhile
                route.continue_()

    def hold(self, page: Any, seconds: float = 30) -> None:
        """Wait while a check runs in `page` (the other checks and the journey go on)."""
        for _ in range(int(seconds * 20)):
            if id(page) not in self._busy or page.is_closed():
                return
            page.wait_for_timeout(50)

    def guard(self, page: Any) -> Any:
        """`page`, whose goto, reload, go_back and go_forward first let a running check end."""
        for name in ("goto", "reload", "go_back", "go_forward"):
            setattr(page, name, self._waiting(page, getattr(page, name)))
        return page

    def _waiting(self, page: Any, go: Any) -> Any:
        def navigate(*args: Any, **kwargs: Any) -> Any:
            if page.url.startswith("http"):  # a round trip: a check the page just asked
                with suppress(Exception):    # for has begun by its end
                    page.evaluate("() => 0")
            self.hold(page)
            self._direct.add(id(page))
            try:
                return go(*args, **kwargs)
            finally:
                self._direct.discard(id(page))
        return navigate

    def _settled(self, page: Any) -> None:
        from playwright.sync_api import Error

        try:
            self.check(page)
        except Error as exc:  # the journey moved on mid-check; its next state is checked
            self.log.append(f"(not finished: {page.url}: {exc.message.splitlines()[0]})")

    def check(self, page: Any, *, force: bool = False) -> dict[str, Any] | None:
        """Run axe and measure the width of what `page` shows now (None: seen already)."""
        self.hold(page)  # one run at a time in a page (axe refuses two)
        if page.is_closed() or not page.url.startswith(self.origin):
            return None
        self._busy.add(id(page))
        try:  # one evaluation: Chromium starts none while a navigation is held
            result = page.evaluate(_CHECK, force)
        finally:
            self._busy.discard(id(page))
        if result:
            size = page.viewport_size or {"width": 0, "height": 0}
            self._record(result, f"{size['width']}x{size['height']}", size["width"])
        return result

    def _record(self, result: dict[str, Any], viewport: str, width: int) -> None:
        url = result["url"]
        excuse = next((why for pattern, why in self.allowed if pattern.search(url)), None)
        blocking = [v for v in result["violations"] if v["impact"] in BLOCKING]
        too_wide = result["scrollWidth"] > min(width, result["clientWidth"])
        self.log.append(f"{viewport} {url} serious/critical={len(blocking)} "
                        f"scrollWidth={result['scrollWidth']}"
                        + (f" (excused: {excuse})" if excuse and blocking else ""))
        if too_wide:
            self.findings.append(Finding(
                url, viewport, "page-wider-than-viewport", "serious",
                f"the page is {result['scrollWidth']} px wide in a {width} px viewport; "
                "wider than it", tuple(result["wide"])))
        if excuse:
            return
        for v in blocking:
            self.findings.append(Finding(url, viewport, v["id"], v["impact"], v["help"],
                                         tuple(v["targets"])))

    def check_all(self, pages: list[Any]) -> None:
        """The states the journey ended on."""
        from playwright.sync_api import Error

        for page in pages:
            if page.is_closed():
                continue
            try:
                page.wait_for_load_state()
                self.check(page)
            except Error:  # caught mid-navigation: once more, on the page it arrived at
                page.wait_for_load_state()
                self.check(page)

    def report(self) -> str:
        unique = list(dict.fromkeys(self.findings))
        return ("axe-core (serious/critical) and page-width violations:\n"
                + "\n".join(f.line() for f in unique))
