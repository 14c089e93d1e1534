"""Page previews of a 20-page PDF against `pdftoppm -r 96 -png` on the same pages, in one run.

    .venv/bin/python bench/render.py [--repeat 5] [--pages 20]

Builds a PDF of N pages with WeasyPrint (a heading, two paragraphs, a photo, a table and a
coloured band per page), uploads it as a version to a throwaway SQLite database, then
times the whole render job (`portal.files.render.render_version`: the limited child
process drawing both sizes with pypdfium2 and extracting text, the images hashed into the
content-addressed store, the rows recorded) against pdftoppm, alternating the two so both
see the same machine. pypdfium2 alone, in-process at 96 dpi to PNG, is printed for
context.
"""
from __future__ import annotations

import argparse
import base64
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pypdfium2 as pdfium
import weasyprint
from flask_migrate import upgrade
from PIL import Image
from sqlalchemy import select, update

from portal import create_app, workflow
from portal.extensions import db
from portal.files.render import render_version
from portal.models import (
    Client,
    PageRender,
    Project,
    RenderStatus,
    Role,
    User,
    VersionRender,
    today_utc,
)
from portal.notifications import background
from portal.people.accounts import hash_password

PDFTOPPM = "/usr/bin/pdftoppm"


def document(pages: int) -> bytes:
    photo = Image.radial_gradient("L").resize((600, 400)).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=85)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()
    text = "The quick brown fox jumps over the lazy dog. Pricing, headline and body copy. "
    rows = "".join(f"<tr><td>Row {r}</td><td>{r * 17} EUR</td></tr>" for r in range(8))
    body = "".join(
        f'<section style="page-break-after: always"><h1>Page {n}: Website relaunch</h1>'
        f"<p>{text * 8}</p><img src=\"{uri}\" style=\"width: 50%\"><p>{text * 4}</p>"
        f'<table border="1">{rows}</table><div style="background: #3a6; height: 60px">'
        "</div></section>" for n in range(1, pages + 1))
    return weasyprint.HTML(string=f"<html><body>{body}</body></html>").write_pdf()


def a_version(pdf: bytes) -> int:
    staff = User(email="s@bench.example", name="Sam", role=Role.STAFF,
                 password_hash=hash_password("bench-password"))
    client = Client(name="Bench client")
    project = Project(client=client, name="Relaunch", owner=staff)
    db.session.add_all([staff, client, project])
    db.session.flush()
    deliverable = workflow.create_deliverable(staff, project, "Brochure", "",
                                              today_utc() + timedelta(days=7))
    version_id = workflow.upload_version(staff, deliverable, io.BytesIO(pdf), "brochure.pdf",
                                         "").id
    db.session.commit()
    return version_id


def fresh_render(version_id: int, store: Path) -> None:
    """Forget the render and its images, so the next run does all the work again."""
    keys = db.session.scalars(select(PageRender.display_key).where(
        PageRender.version_id == version_id)).all()
    keys += db.session.scalars(select(PageRender.thumb_key).where(
        PageRender.version_id == version_id)).all()
    for key in keys:
        (store / key[:2] / key[2:4] / key).unlink(missing_ok=True)
    db.session.execute(update(VersionRender).where(VersionRender.version_id == version_id)
                       .values(status=RenderStatus.PENDING, attempts=0, started_at=None))
    db.session.commit()


def pdftoppm(source: Path, work: Path) -> None:
    out = work / "ppm"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    subprocess.run([PDFTOPPM, "-r", "96", "-png", str(source), str(out / "p")], check=True)


def pdfium_alone(source: Path, work: Path) -> None:
    document = pdfium.PdfDocument(source)
    for index in range(len(document)):
        image = document[index].render(scale=96 / 72, rev_byteorder=True).to_pil()
        image.save(work / f"alone-{index}.png")
    document.close()


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--pages", type=int, default=20)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="signoff-bench-render-"))
    store = work / "files"
    app = create_app({"TESTING": True, "SECRET_KEY": "bench-" * 8, "REDIS_URL": "",
                      "SQLALCHEMY_DATABASE_URI": f"sqlite:///{work / 'bench.sqlite3'}",
                      "FILE_STORE": str(store)})
    pdf = document(args.pages)
    source = work / "doc.pdf"
    source.write_bytes(pdf)
    times: dict[str, list[float]] = {"render job": [], "pdftoppm": [], "pypdfium2 alone": []}
    with app.app_context():
        upgrade()
        version_id = a_version(pdf)
        background.wait_until_idle(app)  # the upload's own job; the runs below are timed
        for _ in range(args.repeat):
            fresh_render(version_id, store)
            times["render job"].append(timed(lambda: render_version(version_id)))
            times["pdftoppm"].append(timed(lambda: pdftoppm(source, work)))
            times["pypdfium2 alone"].append(timed(lambda: pdfium_alone(source, work)))
        pages = db.session.scalars(select(PageRender).where(
            PageRender.version_id == version_id).order_by(PageRender.number)).all()
        sizes = [(store / p.display_key[:2] / p.display_key[2:4] / p.display_key).stat().st_size
                 for p in pages]
        thumbs = [(store / p.thumb_key[:2] / p.thumb_key[2:4] / p.thumb_key).stat().st_size
                  for p in pages]
        ppm = sorted((work / "ppm").iterdir())
        with Image.open(ppm[0]) as first:
            ppm_size = first.size
        print(f"{args.pages}-page PDF, {len(pdf):,} bytes; {args.repeat} alternating runs")
        print(f"render job: {len(pages)} pages, display {pages[0].width}x{pages[0].height} "
              f"{pages[0].media_type} (mean {statistics.mean(sizes) / 1024:,.0f} KB), "
              f"thumb {pages[0].thumb_width}x{pages[0].thumb_height} "
              f"(mean {statistics.mean(thumbs) / 1024:,.0f} KB), text kept")
        print(f"pdftoppm -r 96 -png: {len(ppm)} pages, {ppm_size[0]}x{ppm_size[1]} PNG\n")
        base = statistics.median(times["pdftoppm"])
        print(f"{'what':18} {'median s':>9} {'min s':>7} {'max s':>7} {'x pdftoppm':>11}")
        for label, runs in times.items():
            median = statistics.median(runs)
            print(f"{label:18} {median:9.3f} {min(runs):7.3f} {max(runs):7.3f} "
                  f"{median / base:11.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
