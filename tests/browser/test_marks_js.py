"""Marking regions on the viewer (studies/marks.js, Annotorious on OpenSeadragon) in headless Chromium.

No Django: the viewer test's server (test_viewer_js.HarnessHandler) serves the app's static files, plus the
marks harness page (tests/browser/marks_harness/) and a 400x300 test image, every response under the site's
Content-Security-Policy. An init script collects ``securitypolicyviolation`` events; since Playwright's
``wait_for_function`` compiles its predicate with eval, which that policy refuses, the test polls with
``page.evaluate`` (helpers.wait_until).
"""

from __future__ import annotations

import io
import json
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, expect

from tests.browser.helpers import wait_until
from tests.browser.test_viewer_js import HarnessHandler

pytestmark = pytest.mark.browser

HARNESS = Path(__file__).resolve().parent / "marks_harness"
WIDTH, HEIGHT = 400, 300
#: The site's policy (ratingstudy/settings.py) without the nonce: no inline script, no eval.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""
SETTLED = """(() => {
  const viewer = window.ratingViewer;
  if (!window.marksHarness.painted || !viewer.world.getItemAt(0)) return false;
  const vp = viewer.viewport, zoom = vp.getZoom(true), target = vp.getZoom(false);
  return Math.abs(zoom - target) <= 1e-9 * target && vp.getCenter(true).distanceTo(vp.getCenter(false)) <= 1e-9;
})()"""
#: Image pixel -> page (CSS pixel) position, at the current view.
TO_PAGE = """([x, y]) => {
  const viewer = window.ratingViewer;
  const p = viewer.viewport.imageToViewerElementCoordinates(new OpenSeadragon.Point(x, y));
  const box = viewer.element.getBoundingClientRect();
  return [box.left + p.x, box.top + p.y];
}"""
CENTER = "() => { const c = window.ratingViewer.viewport.getCenter(true); return [c.x, c.y]; }"


def gradient_png() -> bytes:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([200 + x * 55 // WIDTH, 120 + y * 80 // HEIGHT, 190 + (x + y) % 40], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


class MarksHandler(HarnessHandler):
    """The viewer harness's static files, plus the marks page and image; every response carries the CSP."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = urlsplit(self.path).path
        if path == "/marks":
            self.reply((HARNESS / "marks.html").read_bytes(), "text/html; charset=utf-8")
        elif path == "/harness/harness.js":
            self.reply((HARNESS / "harness.js").read_bytes(), "text/javascript")
        elif path == "/i/marks.png":
            self.reply(self.server.png, "image/png")
        else:
            super().do_GET()

    def end_headers(self) -> None:
        self.send_header("Content-Security-Policy", CSP)
        super().end_headers()


@pytest.fixture(scope="module")
def marks_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), MarksHandler)
    server.daemon_threads = True
    server.png = gradient_png()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/marks"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.add_init_script(COLLECT_VIOLATIONS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    page.js_errors = errors
    yield page
    context.close()


def settle(page: Page) -> None:
    wait_until(page, SETTLED)


def to_page(page: Page, x: float, y: float) -> tuple[float, float]:
    return tuple(page.evaluate(TO_PAGE, [x, y]))


def drag(page: Page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=8)
    page.mouse.up()


def marks(page: Page) -> list[dict]:
    value = page.locator("input[name=marks]").input_value()
    return json.loads(value) if value else []


def assert_marks(page: Page, expected: list[dict]) -> None:
    """The output's marks, in order, equal ``expected`` within 0.01 of the image size."""
    count = f"JSON.parse(document.querySelector('input[name=marks]').value || '[]').length === {len(expected)}"
    wait_until(page, count)
    found = marks(page)
    assert [m["type"] for m in found] == [m["type"] for m in expected], found
    for mark, want in zip(found, expected, strict=True):
        assert set(mark) == set(want), mark
        assert all(round(value, 4) == value for key, value in mark.items() if key != "type"), mark
        assert {k: v for k, v in mark.items() if k != "type"} == pytest.approx(
            {k: v for k, v in want.items() if k != "type"}, abs=0.01
        )
    assert page.evaluate("window.marksHarness.changed") == found, "onChange was not told"


def test_points_boxes_delete_and_panning_under_csp(marks_url, page, artifacts_dir):
    page.goto(marks_url)
    settle(page)
    toolbar = page.get_by_role("toolbar", name="Mark what gave it away")
    expect(toolbar).to_have_count(0)

    page.get_by_label("Generated").check()
    expect(toolbar).to_be_visible()
    assert page.locator("input[name=marks]").input_value() == "[]"
    point_button = toolbar.get_by_role("button", name="Point")
    box_button = toolbar.get_by_role("button", name="Box")

    # A point at a quarter of the image, then a box from its centre to 90% of it, at the home view.
    page.keyboard.press("p")
    expect(point_button).to_have_attribute("aria-pressed", "true")
    page.mouse.click(*to_page(page, 0.25 * WIDTH, 0.25 * HEIGHT))
    assert_marks(page, [{"type": "point", "x": 0.25, "y": 0.25}])
    page.keyboard.press("B")
    expect(box_button).to_have_attribute("aria-pressed", "true")
    expect(point_button).to_have_attribute("aria-pressed", "false")
    drag(page, to_page(page, 0.5 * WIDTH, 0.5 * HEIGHT), to_page(page, 0.9 * WIDTH, 0.9 * HEIGHT))
    box = {"type": "box", "x": 0.5, "y": 0.5, "w": 0.4, "h": 0.4}
    assert_marks(page, [{"type": "point", "x": 0.25, "y": 0.25}, box])
    (artifacts_dir / "marks-harness.png").write_bytes(page.screenshot())

    # Out of the drawing mode, a click selects the point and the Delete key removes it.
    page.keyboard.press("b")
    expect(box_button).to_have_attribute("aria-pressed", "false")
    delete_button = toolbar.get_by_role("button", name="Delete")
    expect(delete_button).to_be_disabled()
    page.mouse.click(*to_page(page, 0.25 * WIDTH, 0.25 * HEIGHT))
    expect(delete_button).to_be_enabled()
    page.keyboard.press("Delete")
    assert_marks(page, [box])

    # Marks stay inside the image: a box dragged from beside it starts at its edge (the home view leaves a
    # strip of about 11 CSS pixels either side), a click beside it marks nothing.
    page.keyboard.press("b")
    drag(page, to_page(page, -4, 0.5 * HEIGHT), to_page(page, 0.25 * WIDTH, 0.8 * HEIGHT))
    assert_marks(page, [box, {"type": "box", "x": 0, "y": 0.5, "w": 0.25, "h": 0.3}])
    assert marks(page)[1]["x"] == 0
    page.keyboard.press("Delete")
    assert_marks(page, [box])
    page.keyboard.press("p")
    page.mouse.click(*to_page(page, -4, 0.5 * HEIGHT))
    page.wait_for_timeout(200)
    assert_marks(page, [box])
    page.keyboard.press("p")
    expect(point_button).to_have_attribute("aria-pressed", "false")

    # Zoomed in, a drag in box mode draws and does not pan; the new box is selected, Backspace removes it.
    page.keyboard.press("+")
    page.keyboard.press("+")
    settle(page)
    page.keyboard.press("b")
    center = page.evaluate(CENTER)
    drag(page, to_page(page, 0.4 * WIDTH, 0.4 * HEIGHT), to_page(page, 0.6 * WIDTH, 0.55 * HEIGHT))
    settle(page)
    assert page.evaluate(CENTER) == pytest.approx(center, abs=1e-9), (
        "the drag panned while drawing a box"
    )
    assert_marks(page, [box, {"type": "box", "x": 0.4, "y": 0.4, "w": 0.2, "h": 0.15}])
    page.keyboard.press("Backspace")
    assert_marks(page, [box])

    # In point mode a drag neither pans nor marks.
    page.keyboard.press("p")
    drag(page, to_page(page, 0.45 * WIDTH, 0.45 * HEIGHT), to_page(page, 0.3 * WIDTH, 0.3 * HEIGHT))
    settle(page)
    assert page.evaluate(CENTER) == pytest.approx(center, abs=1e-9), "the drag panned in point mode"
    assert_marks(page, [box])

    # Leaving the drawing mode gives the drag back to panning.
    page.keyboard.press("Escape")
    expect(point_button).to_have_attribute("aria-pressed", "false")
    drag(page, to_page(page, 0.45 * WIDTH, 0.45 * HEIGHT), to_page(page, 0.3 * WIDTH, 0.3 * HEIGHT))
    settle(page)
    moved = page.evaluate(CENTER)
    assert moved[0] > center[0] + 1e-3 and moved[1] > center[1] + 1e-3, (
        "no panning after the drawing mode"
    )
    assert_marks(page, [box])

    # A click on a mark selects it, in point mode too; the Delete button removes it, "Clear all" the rest.
    page.keyboard.press("p")
    spot = to_page(page, 0.5 * WIDTH, 0.45 * HEIGHT)
    page.mouse.click(*spot)
    point = {"type": "point", "x": 0.5, "y": 0.45}
    assert_marks(page, [box, point])
    page.mouse.click(*spot)
    expect(delete_button).to_be_enabled()
    delete_button.click()
    assert_marks(page, [box])
    toolbar.get_by_role("button", name="Clear all").click()
    assert_marks(page, [])

    # Back to "Real": no marks, no toolbar, an empty output; panning still works.
    page.mouse.click(*spot)
    assert_marks(page, [point])
    page.get_by_label("Real").check()
    expect(toolbar).to_have_count(0)
    expect(page.locator("#mark-container")).to_be_hidden()
    assert page.locator("input[name=marks]").input_value() == ""
    assert page.evaluate("window.marksHarness.changed") == []
    expect(page.locator("#viewer canvas.a9s-gl-canvas")).to_have_count(0)
    drag(page, to_page(page, 0.45 * WIDTH, 0.45 * HEIGHT), to_page(page, 0.6 * WIDTH, 0.6 * HEIGHT))
    settle(page)
    assert page.evaluate(CENTER)[0] < moved[0] - 1e-3, "no panning after marking was switched off"

    assert page.evaluate("window.__cspViolations") == []
    assert page.js_errors == []
