"""Is every file the database names still in the store, byte for byte?

Each stored file is named by a row: a version's file, a page image or thumbnail of a
render, a comparison overlay, on-behalf evidence, a certificate. Each is read in chunks
and re-hashed against what the row says it is. A file several rows share is read once.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from portal.extensions import db
from portal.files.storage import Store, checked_key
from portal.models import Certificate, DecisionOnBehalf, PageDiff, PageRender, Version

INTACT, MISSING, ALTERED = "intact", "missing", "altered"


@dataclass(frozen=True)
class StoredItem:
    kind: str  # version, render, overlay, evidence, certificate
    label: str  # which one, in words for the operator
    key: str
    sha256: str  # what its bytes must hash to


@dataclass
class Report:
    checked: Counter[str] = field(default_factory=Counter)
    problems: list[tuple[str, StoredItem]] = field(default_factory=list)  # (state, item)

    @property
    def ok(self) -> bool:
        return not self.problems


def stored_items() -> Iterator[StoredItem]:
    """Every file the database names, with the hash it must have."""
    rows = db.session.execute(select(Version.id, Version.storage_key, Version.sha256)
                              .order_by(Version.id))
    for version_id, key, sha in rows:
        yield StoredItem("version", f"version {version_id}", key, sha)
    rows = db.session.execute(select(PageRender.version_id, PageRender.number,
                                     PageRender.display_key, PageRender.thumb_key)
                              .order_by(PageRender.version_id, PageRender.number))
    for version_id, number, display, thumb in rows:
        page = f"render of version {version_id}, page {number}"
        yield StoredItem("render", f"{page} (display image)", display, display)
        yield StoredItem("render", f"{page} (thumbnail)", thumb, thumb)
    rows = db.session.execute(select(PageDiff.id, PageDiff.overlay_key)
                              .where(PageDiff.overlay_key != "").order_by(PageDiff.id))
    for diff_id, key in rows:
        yield StoredItem("overlay", f"comparison overlay {diff_id}", key, key)
    rows = db.session.execute(select(DecisionOnBehalf.decision_id, DecisionOnBehalf.evidence_key)
                              .where(DecisionOnBehalf.evidence_key.is_not(None))
                              .order_by(DecisionOnBehalf.id))
    for decision_id, key in rows:
        yield StoredItem("evidence", f"on-behalf evidence of decision {decision_id}", key, key)
    rows = db.session.execute(select(Certificate.public_id, Certificate.storage_key,
                                     Certificate.pdf_sha256).order_by(Certificate.id))
    for public_id, key, sha in rows:
        yield StoredItem("certificate", f"certificate {public_id}", key, sha)


def verify_store(store: Store) -> Report:
    """Re-hash every named file (streamed, never whole in memory); what is missing or
    altered is in the report's problems."""
    report, seen = Report(), {}
    for item in stored_items():
        report.checked[item.kind] += 1
        if item.key not in seen:
            try:
                seen[item.key] = store.sha256_of(checked_key(item.key))
            except ValueError:  # not a key at all: nothing can be stored under it
                seen[item.key] = None
        actual = seen[item.key]
        if actual is None:
            report.problems.append((MISSING, item))
        elif actual != item.sha256 or actual != item.key:
            report.problems.append((ALTERED, item))
    return report
