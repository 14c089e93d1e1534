"""Compare: two versions of one deliverable side by side, the changed regions from the
stored pixel difference of their renders, and the words that changed, for staff and for
the clients the versions were sent to. Real PDFs made with WeasyPrint: three pages, and
the next version changes one word on page 2."""
from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
import weasyprint
from PIL import Image, ImageDraw
from sqlalchemy import func, select

import jobs.compare
from portal import workflow
from portal.extensions import db
from portal.files.page_diff import diff_images
from portal.models import (
    Approver,
    Deliverable,
    Outcome,
    PageDiff,
    Policy,
    User,
    Version,
)
from portal.reports import compare as compare_report
from portal.reports.word_diff import word_diff
from portal.workflow.links import issue_token
from tests.conftest import future, on_screen, stored_path

YEAR = "private, max-age=31536000, immutable"
BODY = "Our offer for the relaunch, set out page by page. " * 12


def three_page_pdf(second: str, more: int = 0) -> bytes:
    """Three A4 pages (and `more`), each a heading and a paragraph; `second` heads page 2."""
    titles = ("Welcome", second, "Contact", *(f"Annex {n}" for n in range(1, more + 1)))
    pages = "".join(f'<section style="page-break-after: always"><h1>{title}</h1>'
                    f"<p>{BODY}</p></section>" for title in titles)
    return weasyprint.HTML(string=f"<html><body>{pages}</body></html>").write_pdf()


@dataclass
class Story:
    deliverable: Deliverable
    first: Version  # sent, changes requested
    second: Version  # sent: the one under review
    approver: Approver  # of the second version's request
    other: Approver  # a second approver of that request


def _send(staff: User, colleague: User, d: Deliverable, content: bytes) -> Version:
    version = workflow.upload_version(staff, d, io.BytesIO(content), "offer.pdf", "")
    db.session.commit()  # the render job runs after the commit; the test's commit waits
    workflow.submit_for_review(staff, d, colleague)
    workflow.review_internally(colleague, d, approve=True)
    workflow.deliver(staff, d, d.project.client.contacts[:2], Policy.PARALLEL, future(7))
    db.session.commit()
    return version


def _reject(approver: Approver) -> None:
    workflow.record_decision(approver, Outcome.REJECTED, "Call it Rates",
                             seen_sha256=on_screen(approver))
    db.session.commit()


@pytest.fixture
def story(staff, colleague, make_project) -> Story:
    d = workflow.create_deliverable(staff, make_project(), "Offer", "The relaunch offer.",
                                    future(14))
    first = _send(staff, colleague, d, three_page_pdf("Pricing"))
    _reject(d.open_request.approvers[0])
    second = _send(staff, colleague, d, three_page_pdf("Rates"))
    approver, other = d.open_request.approvers
    return Story(d, first, second, approver, other)


def _page(html: str, number: int) -> str:
    """The part of the compare page about page `number`."""
    match = re.search(rf'id="page-{number}">(.*?)</li>', html, re.S)
    assert match, f"no page {number} on the page"
    return match.group(1)


def _settled(browser, url: str) -> str:
    """The compare page once the differences are there: the first answer asks for them
    and polls; the job has run by the next request (the test's commit waits for it)."""
    first = browser.get(url)
    assert first.status_code == 200
    if "working out what changed" in first.get_data(as_text=True):
        assert 'hx-trigger="every 2s"' in first.get_data(as_text=True)
    assert first.headers["Cache-Control"] in ("no-store", "private, no-store")
    polled = browser.get(url, headers={"HX-Request": "true"})
    assert polled.status_code == 286, "still polling"  # htmx stops polling on 286
    assert "HX-Request" in polled.headers["Vary"]
    assert 'hx-trigger="every 2s"' not in polled.get_data(as_text=True)
    return browser.get(url).get_data(as_text=True)


# --- the pixel difference, computed once ------------------------------------------------

def test_the_changed_region_is_on_page_2_only_and_worked_out_once(app, story):
    a, b = story.first, story.second
    with app.test_request_context():  # the page images' URLs
        waiting = compare_report.compare(a, b)
    assert waiting.ready and [r.change.state for r in waiting.rows] == [
        "same", "pending", "same"]  # pages 1 and 3 render to the same image: nothing to do

    assert jobs.compare.diff_pages(a.id, b.id) == 1
    assert jobs.compare.diff_pages(a.id, b.id) == 0  # stored: never worked out again
    assert db.session.scalar(select(func.count(PageDiff.id))) == 1

    with app.test_request_context():
        done = compare_report.compare(a, b)
    assert [r.change.state for r in done.rows] == ["same", "changed", "same"]
    assert done.changed_pages == [2] and not done.diffs_pending
    (box,) = done.rows[1].change.boxes
    assert 0 < box.x < 0.5 and 0 < box.y < 0.15  # the heading, top left of the page
    assert 0 < box.width < 0.5 and 0 < box.height < 0.1
    diff = db.session.scalar(select(PageDiff))
    with Image.open(stored_path(app, diff.overlay_key)) as overlay:
        assert overlay.format == "PNG" and overlay.size == (diff.width, diff.height)
        inside = overlay.convert("RGBA").crop((
            int(box.x * diff.width), int(box.y * diff.height),
            int((box.x + box.width) * diff.width), int((box.y + box.height) * diff.height)))
        assert inside.getextrema()[3][1] > 0  # tinted pixels in the box
        assert overlay.convert("RGBA").getchannel("A").getbbox()[3] <= (
            box.y + box.height) * diff.height + 1  # and nowhere below it


def test_pages_of_different_sizes_are_compared_at_bs_size(tmp_path: Path):
    def page(size: tuple[int, int], boxes: list[tuple[int, int, int, int]]) -> Path:
        image = Image.new("RGB", size, "white")
        draw = ImageDraw.Draw(image)
        for box in boxes:
            draw.rectangle(box, fill="black")
        path = tmp_path / f"{size[0]}-{len(boxes)}.png"
        image.save(path)
        return path

    old = page((800, 1000), [(100, 100, 299, 249)])
    new = page((400, 500), [(50, 50, 149, 124), (200, 400, 299, 449)])  # one box more
    found = diff_images(old, new)
    assert (found.width, found.height) == (400, 500) and found.overlay
    (x, y, w, h), = found.regions
    assert x <= 0.5 < 0.75 <= x + w <= 0.85 and y <= 0.8 < 0.9 <= y + h <= 0.98
    assert diff_images(new, new).regions == [] and diff_images(new, new).overlay == b""


# --- the text difference ---------------------------------------------------------------

def test_the_word_difference_keeps_context_and_cuts_long_unchanged_runs():
    old = " ".join(f"w{i}" for i in range(100))
    new = old.replace("w50", "fifty")
    pieces = word_diff(old, new)
    kinds = [p.kind for p in pieces]
    assert kinds == ["gap", "same", "del", "ins", "same", "gap"]
    assert (pieces[2].text, pieces[3].text) == ("w50", "fifty")
    assert pieces[0].text == str(50 - 12) and pieces[1].text.split()[0] == "w38"
    assert word_diff(old, old) == [] and word_diff("", "") == []
    assert [(p.kind, p.text) for p in word_diff("a b", "a c")] == [
        ("same", "a"), ("del", "b"), ("ins", "c")]


def test_the_compare_page_reads_a_fixed_number_of_queries(app, browser, staff, make_project,
                                                          count_queries, report):
    browser.login(staff.email)
    counts = {}
    for more in (0, 5):
        d = workflow.create_deliverable(staff, make_project(), "Offer", "", future(14))
        old, new = (workflow.upload_version(staff, d, io.BytesIO(three_page_pdf(word, more)),
                                            "offer.pdf", "") for word in ("Pricing", "Rates"))
        db.session.commit()
        jobs.compare.diff_pages(old.id, new.id)
        for mode in ("side", "overlay", "text"):
            url = f"/deliverables/{d.id}/compare?mode={mode}"
            assert "changes on page 2." in browser.get(url).get_data(as_text=True) or (
                mode == "text")
            with count_queries() as counter:
                assert browser.get(url).status_code == 200
            counts[(mode, 3 + more)] = counter.count
    report(f"compare page queries: {counts}")
    for mode in ("side", "overlay", "text"):
        assert counts[(mode, 3)] == counts[(mode, 8)]


# --- staff ------------------------------------------------------------------------------

def test_staff_compare_marks_page_2_and_shows_the_changed_word(app, browser, staff, story):
    browser.login(staff.email)
    base = f"/deliverables/{story.deliverable.id}/compare"
    assert 'hx-trigger="every 2s"' in browser.get(base).get_data(as_text=True)  # asked for
    side = _settled(browser, base)
    assert "Version 1 → version 2" in side and "changes on page 2." in side
    assert 'class="compare-box"' in _page(side, 2)
    for unchanged in (1, 3):
        assert "No visible change" in _page(side, unchanged)
        assert "compare-box" not in _page(side, unchanged)
    pair = _page(side, 2)
    assert f"/versions/{story.first.id}/pages/2.jpg" in pair
    assert f"/versions/{story.second.id}/pages/2.jpg" in pair

    overlay = browser.get(f"{base}?a={story.first.id}&b={story.second.id}&mode=overlay"
                          ).get_data(as_text=True)
    (src,) = re.findall(r'class="compare-layer" src="([^"]+)"', overlay)
    assert src.startswith(f"/compare/{story.first.id}/{story.second.id}/pages/2.png?h=")
    assert 'class="compare-box"' in _page(overlay, 2)
    image = browser.get(src)
    assert image.status_code == 200 and image.mimetype == "image/png"
    assert image.headers["Cache-Control"] == YEAR
    assert browser.get(src.replace("/pages/2.", "/pages/1.")).status_code == 404  # unchanged

    text = browser.get(f"{base}?mode=text").get_data(as_text=True)
    assert "the text changed on page 2." in text
    page_2 = _page(text, 2)
    assert re.search(r'<del class="diff-del">.*?Pricing</del>', page_2)
    assert re.search(r'<ins class="diff-ins">.*?Rates</ins>', page_2)
    assert "No text changes on this page." in _page(text, 1)
    assert "<del" not in _page(text, 3)


def test_staff_default_pair_is_the_latest_version_and_the_last_one_sent(
        app, browser, staff, story):
    _reject(story.approver)
    third = workflow.upload_version(staff, story.deliverable, io.BytesIO(
        three_page_pdf("Rates")), "offer.pdf", "")
    db.session.commit()
    versions = compare_report.staff_versions(story.deliverable.id)
    a, b = compare_report.default_pair(versions, versions[-1])
    assert (a.id, b.id) == (story.second.id, third.id)
    browser.login(staff.email)
    html = _settled(browser, f"/deliverables/{story.deliverable.id}/compare")
    assert "Version 2 → version 3" in html and "no visible changes." in html
    assert browser.get(f"/deliverables/{story.deliverable.id}/compare?a=999999"
                       ).status_code == 404


def test_signed_out_people_get_no_staff_compare(app, browser, story):
    response = browser.get(f"/deliverables/{story.deliverable.id}/compare")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert browser.get(f"/compare/{story.first.id}/{story.second.id}/pages/2.png"
                       ).status_code == 302


# --- clients ----------------------------------------------------------------------------

def test_the_client_compares_the_version_under_review_with_the_last_one_sent(
        app, make_browser, story):
    client = make_browser()
    client.get(f"/r/{issue_token(story.approver)}")
    url = f"/review/{story.approver.public_id}/compare"
    side = _settled(client, url)
    assert "Version 1 → version 2" in side and 'class="compare-box"' in _page(side, 2)
    assert "compare-box" not in _page(side, 1) + _page(side, 3)
    pid = story.approver.public_id
    assert f"/review/{pid}/versions/{story.first.id}/pages/2.jpg" in _page(side, 2)

    overlay = client.get(f"{url}?mode=overlay").get_data(as_text=True)
    (src,) = re.findall(r'class="compare-layer" src="([^"]+)"', overlay)
    assert src.startswith(f"/review/{pid}/compare/{story.first.id}/{story.second.id}/pages/2.png")
    assert client.get(src).status_code == 200

    text = client.get(f"{url}?mode=text").get_data(as_text=True)
    assert re.search(r"<del[^>]*>.*?Pricing</del>", _page(text, 2))
    assert re.search(r"<ins[^>]*>.*?Rates</ins>", _page(text, 2))

    # Another approver of the same request, and a browser with no link: no way in.
    other = make_browser()
    other.get(f"/r/{issue_token(story.other)}")
    stranger = make_browser()
    for browser in (other, stranger):
        assert browser.get(url).status_code == 403
        assert browser.get(src).status_code == 403
    assert stranger.get("/review/nobody/compare").status_code == 404


def test_a_version_never_sent_to_the_client_cannot_be_compared_by_them(
        app, make_browser, staff, story):
    _reject(story.approver)
    unsent = workflow.upload_version(staff, story.deliverable, io.BytesIO(
        three_page_pdf("Fees")), "offer.pdf", "")
    db.session.commit()
    client = make_browser()
    client.get(f"/r/{issue_token(story.approver)}")
    url = f"/review/{story.approver.public_id}/compare"
    assert client.get(f"{url}?a={story.first.id}&b={unsent.id}").status_code == 404
    assert client.get(f"{url}?a={unsent.id}").status_code == 404
    jobs.compare.diff_pages(story.second.id, unsent.id)  # even once it exists
    assert client.get(f"{url[:-len('/compare')]}/compare/{story.second.id}/{unsent.id}"
                      "/pages/2.png").status_code == 404
    assert client.get(f"{url}?a={story.first.id}&b={story.second.id}").status_code == 200
    versions = compare_report.client_versions(story.approver)
    assert [v.number for v in versions] == [1, 2]


def test_the_first_version_has_nothing_to_compare_with(app, make_browser, make_deliverable):
    from portal.models import DeliverableState

    d = make_deliverable(DeliverableState.DELIVERED)
    approver = d.open_request.approvers[0]
    client = make_browser()
    client.get(f"/r/{issue_token(approver)}")
    page = client.get(f"/review/{approver.public_id}/compare")
    assert page.status_code == 200
    assert "There is no earlier version to compare with yet." in page.get_data(as_text=True)
