"""HTML to PDF with WeasyPrint, fetching nothing but data: URLs and our own static files."""
from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import weasyprint
from weasyprint.urls import URLFetcher


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


def html_to_pdf(html: str, static_root: Path) -> bytes:
    document = weasyprint.HTML(string=html, base_url=static_root.resolve().as_uri() + "/",
                               url_fetcher=PortalOnlyFetcher(static_root))
    return document.write_pdf()
