"""Renders: each version's pages as images for the viewer, made by a job after the upload.

A PDF becomes a display image (about 1600 px wide) and a thumbnail per page, with the
page's text; a PNG, JPEG or WebP becomes one page the same way (EXIF orientation applied);
an SVG is shown as itself, in an <img>, so it is ready at once; other types have no
preview and keep their download. The drawing happens in a child process
(portal/files/rasterise.py) under CPU-time, memory and file-size limits, with caps on
pages, page size and pixels: a hostile or broken file ends as "failed" with a reason
people can read, and the worker lives on.

A render is derived data: the images are stored content-addressed like versions, and a
render can be made again from the version's file at any time.
"""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flask import current_app
from sqlalchemy import delete, or_, select

from portal.extensions import db
from portal.files.storage import Store, file_store
from portal.files.svg import svg_size
from portal.models import PageRender, RenderStatus, Version, VersionRender, utcnow
from portal.notifications.queue import after_commit, relay_after_commit

log = logging.getLogger(__name__)
RENDER_JOB = "jobs.renders.render"
JOB_PREFIX = "render"
CHILD = Path(__file__).with_name("rasterise.py")
KINDS = {"application/pdf": "pdf", "image/png": "image", "image/jpeg": "image",
         "image/webp": "image"}
SVG = "image/svg+xml"
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", SVG: "svg"}  # of the page images
MAX_ATTEMPTS = 3
RELAY_AFTER = timedelta(minutes=2)  # a pending render no job has started by then is asked again
CANNOT = "This file cannot be previewed; download it."


def limits(config: Any) -> dict[str, Any]:
    """What the child may spend and make (settings in portal/config.py)."""
    return {
        "cpu_seconds": int(config["RENDER_CPU_SECONDS"]),
        "memory_mb": int(config["RENDER_MEMORY_MB"]),
        "max_pages": int(config["RENDER_MAX_PAGES"]),
        "max_image_pixels": int(config["RENDER_MAX_IMAGE_MEGAPIXELS"] * 1_000_000),
        "max_page_points": 14_400,  # 5.08 m: PDF's own largest page without UserUnit
        "max_page_pixels": 12_000_000,
        "max_aspect": 25,
        "display_width": 1600,
        "thumb_width": 240,
    }


def wall_seconds(config: Any) -> int:
    """The child's time on the clock: its CPU limit, plus room for waiting on the disk."""
    return int(config["RENDER_CPU_SECONDS"]) * 2 + 10


def lease(config: Any) -> timedelta:
    """How long a started attempt keeps others off: longer than any attempt may take."""
    return timedelta(seconds=wall_seconds(config) + 60)


def job_id(version_id: int) -> str:
    return f"{JOB_PREFIX}-{version_id}"


def request_render(version: Version) -> None:
    """Ask for a new version's render: a pending row now, the job after the commit."""
    db.session.flush()  # the version's id
    db.session.add(VersionRender(version_id=version.id, status=RenderStatus.PENDING))
    after_commit(RENDER_JOB, version.id, job_id=job_id(version.id))


@dataclass(frozen=True)
class Plan:
    version_id: int
    attempt: int
    storage_key: str
    media_type: str


@dataclass(frozen=True)
class Outcome:
    status: RenderStatus
    error: str = ""
    pages: list[dict[str, Any]] = field(default_factory=list)


def render_version(version_id: int) -> RenderStatus | None:
    """The job: render the version's pages once. Commits twice, and holds no transaction
    while the child works: the attempt is counted first (so a file that brings down the
    whole worker is not retried for ever), then the result is recorded if this attempt is
    still the newest. A run that finds the render done, or under way, changes nothing."""
    plan = _start(version_id)
    if plan is None:
        status = db.session.scalar(select(VersionRender.status)
                                   .where(VersionRender.version_id == version_id))
        db.session.rollback()
        return status
    outcome = make(plan)
    status = _finish(plan, outcome)
    db.session.commit()
    return status


def _locked(version_id: int) -> VersionRender | None:
    return db.session.execute(
        select(VersionRender).where(VersionRender.version_id == version_id)
        .with_for_update().execution_options(populate_existing=True)).scalar_one_or_none()


def _start(version_id: int) -> Plan | None:
    version = db.session.get(Version, version_id)
    record = _locked(version_id) if version is not None else None
    now = utcnow()
    if version is None or record is None or record.status != RenderStatus.PENDING:
        db.session.rollback()
        return None
    if record.started_at is not None and record.started_at > now - lease(current_app.config):
        db.session.rollback()  # another worker is on it; the relay asks again if it died
        return None
    if record.attempts >= MAX_ATTEMPTS:
        _record(record, Outcome(RenderStatus.FAILED, "Previewing it failed every time we "
                                "tried."), now)
        db.session.commit()
        return None
    record.attempts += 1
    record.started_at = now
    plan = Plan(version_id, record.attempts, version.storage_key, version.media_type)
    db.session.commit()
    return plan


def _finish(plan: Plan, outcome: Outcome) -> RenderStatus | None:
    record = _locked(plan.version_id)
    if record is None or record.status != RenderStatus.PENDING or record.attempts != plan.attempt:
        return record.status if record else None  # a newer attempt (or a reset) took over
    _record(record, outcome, utcnow())
    return record.status


def _record(record: VersionRender, outcome: Outcome, now: datetime) -> None:
    db.session.execute(delete(PageRender).where(PageRender.version_id == record.version_id))
    for page in outcome.pages:
        db.session.add(PageRender(version_id=record.version_id, **page))
    record.status, record.error = outcome.status, outcome.error
    record.page_count, record.rendered_at = len(outcome.pages), now


def make(plan: Plan) -> Outcome:
    """The pages of the version's file (no database: the caller holds no transaction)."""
    store = file_store()
    missing = Outcome(RenderStatus.FAILED, "The file is missing from the store.")
    kind = None if plan.media_type == SVG else KINDS.get(plan.media_type)
    if kind is None and plan.media_type != SVG:
        return Outcome(RenderStatus.NO_PREVIEW) if store.exists(plan.storage_key) else missing
    config = current_app.config
    with ExitStack() as held:
        try:  # the file itself on a local store; a temporary copy from S3
            source = held.enter_context(store.local_copy(plan.storage_key))
        except FileNotFoundError:
            return missing
        if kind is None:
            return _svg(source, plan.storage_key)
        work = held.enter_context(
            tempfile.TemporaryDirectory(dir=store.scratch(), prefix="render-"))
        answer = rasterise(source, Path(work), kind, limits(config), wall_seconds(config))
        if "error" in answer:
            return Outcome(RenderStatus.FAILED, str(answer["error"]))
        try:
            return Outcome(RenderStatus.READY, pages=_store_pages(store, Path(work), answer))
        except (KeyError, TypeError, ValueError, OSError):
            log.exception("renderer's answer for version %s unusable", plan.version_id)
            return Outcome(RenderStatus.FAILED, "The previewer gave no usable answer.")


def _svg(source: Path, key: str) -> Outcome:
    """An SVG is its own display image (an <img> runs no script); only its shape is read."""
    with source.open("rb") as fh:
        width, height = svg_size(fh.read(65536))
    ratio = min(max(height / width, 1 / 25), 25)  # the viewer's frame, not the drawing
    width = max(1, round(width))
    height, thumb_height = max(1, round(width * ratio)), max(1, round(240 * ratio))
    return Outcome(RenderStatus.READY, pages=[{
        "number": 1, "width": width, "height": height, "thumb_width": 240,
        "thumb_height": thumb_height, "display_key": key, "thumb_key": key,
        "media_type": SVG, "text": "",
    }])


def _store_pages(store: Store, work: Path, answer: dict[str, Any]) -> list[dict[str, Any]]:
    pages = []
    for page in answer["pages"]:
        pages.append({
            "number": int(page["number"]), "width": int(page["width"]),
            "height": int(page["height"]), "thumb_width": int(page["thumb_width"]),
            "thumb_height": int(page["thumb_height"]),
            # Names only: the child cannot point us outside its own folder.
            "display_key": store.put_file(work / Path(page["display"]).name),
            "thumb_key": store.put_file(work / Path(page["thumb"]).name),
            "media_type": str(page["media_type"]), "text": str(page["text"]),
        })
    return pages


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def rasterise(source: Path, work: Path, kind: str, caps: dict[str, Any],
              wall: int) -> dict[str, Any]:
    """Run the child; its answer ({"pages": …} or {"error": …}), whatever became of it."""
    command = [sys.executable, "-I", str(CHILD), str(source), str(work), kind, json.dumps(caps)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=wall, check=False,
                              stdin=subprocess.DEVNULL, env={"LC_ALL": "C.UTF-8"})
    except subprocess.TimeoutExpired:
        return {"error": f"Previewing it took longer than the {wall} s we allow."}
    if done.returncode != 0:
        log.warning("renderer for %s ended with %s: %s", source.name, done.returncode,
                    done.stderr[-2000:].decode(errors="replace"))
        if done.returncode == -signal.SIGXCPU:
            return {"error": "Previewing it needs more than the "
                             f"{caps['cpu_seconds']} s of processor time we allow."}
        if done.returncode == -signal.SIGKILL:
            return {"error": "The previewer was stopped on this file (it needs more time or "
                             "memory than we allow)."}
        if done.returncode < 0:
            return {"error": "The previewer stopped on this file "
                             f"({_signal_name(-done.returncode)})."}
        return {"error": "The previewer stopped on this file (it may need more memory "
                         "than we allow)."}
    try:
        answer = json.loads(done.stdout.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"error": "The previewer gave no answer for this file."}
    return answer if isinstance(answer, dict) else {"error": "The previewer gave no answer."}


def ask_again_for_stale(now: datetime, limit: int = 100) -> int:
    """The sweep's relay: pending renders whose job was lost (Redis was down, the worker
    died) are queued again at the caller's commit; how many."""
    started_before = now - lease(current_app.config)
    stale = list(db.session.scalars(
        select(VersionRender.version_id)
        .where(VersionRender.status == RenderStatus.PENDING,
               VersionRender.requested_at <= now - RELAY_AFTER,
               or_(VersionRender.started_at.is_(None),
                   VersionRender.started_at < started_before))
        .order_by(VersionRender.requested_at).limit(limit)))
    return relay_after_commit(RENDER_JOB, stale, JOB_PREFIX)
