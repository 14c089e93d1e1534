"""HTML to PDF with WeasyPrint, fetching nothing but data: URLs and our own static files."""
from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import weasyprint
from weasyprint.text.fonts import FontConfiguration
from weasyprint.urls import URLFetcher

STYLESHEET = "css/certificate.css"


class PortalOnlyFetcher(URLFetcher):
    """Anything a user typed that slips into the HTML can reach no file and no network."""

    def __init__(self, static_root: Path) -> None:
        super().__init__(allowed_protocols={"data", "file"}, allow_redirects=False)
        self.static_root = static_root.resolve()

    def fetch(self, url: str, headers: dict | None = None):  # type: ignore[override]
        if url.startswith("data:"):
            return super().fetch(url, headers)
        parts = urlsplit(url)
        if parts.scheme == "file" and not parts.netloc:
            path = Path(unquote(parts.path)).resolve()
            if path.is_relative_to(self.static_root) and path.is_file():
                return super().fetch(url, headers)
        raise ValueError(f"blocked fetch of {url!r}: only data: URLs and our static files")


class _Kept(threading.local):
    """Per thread (Pango's objects are not to be shared): the font configuration, whose
    fontconfig set-up and matched faces then serve every certificate, and the parsed
    stylesheet, parsed again only when its file changes."""

    def __init__(self) -> None:
        self.fonts = FontConfiguration()
        self.stylesheets: dict[Path, tuple[int, weasyprint.CSS]] = {}
        self.page_css: dict[str, weasyprint.CSS] = {}  # one per language, a few lines each

    def stylesheet(self, path: Path) -> weasyprint.CSS:
        mtime = path.stat().st_mtime_ns
        kept = self.stylesheets.get(path)
        if kept is None or kept[0] != mtime:
            kept = self.stylesheets[path] = (mtime, weasyprint.CSS(
                filename=str(path), font_config=self.fonts))
        return kept[1]

    def extra(self, css: str) -> weasyprint.CSS:
        kept = self.page_css.get(css)
        if kept is None:
            kept = self.page_css[css] = weasyprint.CSS(string=css, font_config=self.fonts)
        return kept


_kept = _Kept()


def html_to_pdf(html: str, static_root: Path, stylesheet: str = STYLESHEET,
                page_css: str = "") -> bytes:
    """The page with our stylesheet (the HTML links none, so none is fetched and parsed),
    then `page_css` (our own text: the page furniture in the document's language)."""
    root = static_root.resolve()
    document = weasyprint.HTML(string=html, base_url=root.as_uri() + "/",
                               url_fetcher=PortalOnlyFetcher(static_root))
    sheets = [_kept.stylesheet(root / stylesheet)]
    if page_css:
        sheets.append(_kept.extra(page_css))
    return document.write_pdf(stylesheets=sheets, font_config=_kept.fonts)
