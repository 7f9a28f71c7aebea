"""The rating instrument's viewer (studies/viewer.js, studies/trial.js) in headless Chromium.

No Django: a small HTTP server in a thread serves the harness page (tests/browser/viewer_harness/, the
trial page's DOM with its data attributes filled from the query string), the app's static files and a
700x460 test image written at run time. Playwright drives Debian's /usr/bin/chromium (see conftest).
"""

from __future__ import annotations

import io
import mimetypes
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from string import Template
from urllib.parse import parse_qs, urlencode, urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Page, Route, expect

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).resolve().parent / "viewer_harness"
STATIC_ROOTS = (REPO / "ratingstudy/studies/static", REPO / "ratingstudy/core/static")
WIDTH, HEIGHT = 700, 460
#: The central square of the test image is a one-pixel black/white checkerboard.
CHECKER = 200
DESKTOP = {"width": 1280, "height": 800}

# Page-side probes; `ratingViewer` is the OpenSeadragon viewer, `ratingState` the trial's record.
MAGNIFICATION = """() => {
  const vp = window.ratingViewer.viewport;
  return vp.viewportToImageZoom(vp.getZoom(true)) * window.devicePixelRatio;
}"""
SETTLED = """() => {
  const viewer = window.ratingViewer;
  if (!viewer || !viewer.world.getItemAt(0) || window.ratingState.paintMs === null) return false;
  const vp = viewer.viewport;
  const zoom = vp.getZoom(true), target = vp.getZoom(false);
  return Math.abs(zoom - target) <= 1e-9 * target && vp.getCenter(true).distanceTo(vp.getCenter(false)) <= 1e-9;
}"""
AT_HOME = """() => {
  const vp = window.ratingViewer.viewport;
  const view = vp.getBounds(true), image = window.ratingViewer.world.getItemAt(0).getBounds(true);
  const eps = 1e-6;
  const contains = view.x <= image.x + eps && view.y <= image.y + eps
    && view.x + view.width >= image.x + image.width - eps && view.y + view.height >= image.y + image.height - eps;
  const fits = Math.abs(view.width - image.width) < eps || Math.abs(view.height - image.height) < eps;
  return contains && fits;
}"""
CENTER = "() => { const c = window.ratingViewer.viewport.getCenter(true); return [c.x, c.y]; }"


def pattern_png() -> bytes:
    """A colour gradient with a 4-pixel red frame and a one-pixel checkerboard square in the middle."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    rgb = np.stack([x * 255 // (WIDTH - 1), y * 255 // (HEIGHT - 1), np.full_like(x, 160)], axis=-1)
    rgb[(x < 4) | (x >= WIDTH - 4) | (y < 4) | (y >= HEIGHT - 4)] = (255, 0, 0)
    left, top = (WIDTH - CHECKER) // 2, (HEIGHT - CHECKER) // 2
    square = (x >= left) & (x < left + CHECKER) & (y >= top) & (y < top + CHECKER)
    rgb[square] = np.where(((x + y) % 2 == 0)[square, None], 255, 0)
    buffer = io.BytesIO()
    Image.fromarray(rgb.astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()




class HarnessServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, png: bytes) -> None:
        super().__init__(("127.0.0.1", 0), HarnessHandler)
        self.png = png
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def trial_url(self, **params: str) -> str:
        return f"{self.url}/trial?{urlencode(params)}"


class HarnessHandler(BaseHTTPRequestHandler):
    server: HarnessServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        url = urlsplit(self.path)
        if url.path == "/trial":
            self.reply(self.trial_page(parse_qs(url.query)), "text/html; charset=utf-8")
        elif url.path in ("/i/trial.png", "/i/next.png"):
            self.reply(self.server.png, "image/png")
        elif url.path.startswith("/static/") and (
            file := self.static_file(url.path.removeprefix("/static/"))
        ):
            kind = "text/javascript" if file.suffix == ".js" else mimetypes.guess_type(file.name)[0]
            self.reply(file.read_bytes(), kind or "application/octet-stream")
        else:
            self.send_error(404)

    @staticmethod
    def trial_page(query: dict[str, list[str]]) -> bytes:
        def param(name: str, default: str) -> str:
            return query.get(name, [default])[0]

        answer = (
            "continue-link.html" if param("answer", "form") == "continue" else "answer-form.html"
        )
        page = Template((HARNESS / "trial.html").read_text()).substitute(
            image_url=param("image", "/i/trial.png"),
            next_image_url=param("next", ""),
            exposure_ms=param("exposure_ms", ""),
            fixation_ms=param("fixation_ms", "500"),
            window_closed=param("window_closed", "0"),
            answer=(HARNESS / answer).read_text(),
        )
        return page.encode()

    @staticmethod
    def static_file(relative: str) -> Path | None:
        for root in STATIC_ROOTS:
            file = (root / relative).resolve()
            if file.is_relative_to(root) and file.is_file():
                return file
        return None

    def reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass


@pytest.fixture(scope="module")
def harness():
    server = HarnessServer(pattern_png())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def new_page(browser, *, scale: float = 1, viewport: dict | None = None) -> Page:
    context = browser.new_context(viewport=viewport or DESKTOP, device_scale_factor=scale)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: message.type == "error" and errors.append(message.text))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(urlsplit(request.url).path))
    page.js_errors = errors  # checked by the tests' final assertions
    page.requested = requested  # every path the page asked for, in order
    return page


@pytest.fixture
def page(browser):
    page = new_page(browser)
    yield page
    page.context.close()


def settle(page: Page) -> None:
    page.wait_for_function(SETTLED)


def magnification(page: Page) -> float:
    return page.evaluate(MAGNIFICATION)


def capture_answers(page: Page) -> list[dict[str, str]]:
    """Intercept the answer form's POST; each submitted form lands in the returned list."""
    posts: list[dict[str, str]] = []

    def answer(route: Route) -> None:
        posts.append(
            {
                key: values[0]
                for key, values in parse_qs(
                    route.request.post_data or "", keep_blank_values=True
                ).items()
            }
        )
        route.fulfill(
            status=200,
            content_type="text/html",
            body="<!doctype html><title>Answered</title><p>Thanks</p>",
        )

    page.route("**/answer", answer)
    return posts


def answer_with_keyboard(page: Page) -> None:
    for key in ("r", "x", "4"):
        page.keyboard.press(key)
    page.keyboard.press("Enter")
    expect(page).to_have_title("Answered")


def central_pixels(png: bytes, half: int) -> np.ndarray:
    """The grey levels of the 2*half square in the middle of a screenshot."""
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=int)
    row, column = gray.shape[0] // 2, gray.shape[1] // 2
    return gray[row - half : row + half, column - half : column + half]


def assert_one_pixel_checkerboard(png: bytes) -> None:
    """At 1:1 every device pixel shows one image pixel: the checkerboard survives exactly."""
    middle = central_pixels(png, 40)
    white = middle > 127
    assert (np.abs(middle - np.where(white, 255, 0)) < 8).all(), (
        "blurred or resampled pixels at 1:1"
    )
    assert (white[:, 1:] != white[:, :-1]).all() and (white[1:, :] != white[:-1, :]).all(), (
        "not one image pixel per device pixel"
    )


def test_home_fit_keys_toolbar_and_one_to_one(harness, page, artifacts_dir):
    page.goto(harness.trial_url())
    settle(page)
    assert page.evaluate(AT_HOME), "the home view does not show the whole image"
    expect(page.get_by_role("button", name="Next")).to_be_enabled()
    home = magnification(page)
    expect(page.locator(".zoom-level")).to_have_text(f"{home:.2f}x")

    page.keyboard.press("+")
    settle(page)
    assert magnification(page) == pytest.approx(home * 1.5, rel=1e-3)
    page.keyboard.press("-")
    settle(page)
    assert magnification(page) == pytest.approx(home, rel=1e-3)
    page.keyboard.press("=")
    settle(page)
    page.keyboard.press("0")
    settle(page)
    assert page.evaluate(AT_HOME)

    page.get_by_role("button", name="+").click()
    settle(page)
    assert magnification(page) == pytest.approx(home * 1.5, rel=1e-3)
    page.get_by_role("button", name="Fit").click()
    settle(page)
    assert page.evaluate(AT_HOME)

    page.keyboard.press("n")
    settle(page)
    assert magnification(page) == pytest.approx(1.0, abs=1e-3)
    expect(page.locator(".zoom-level")).to_have_text("1.00x")
    screenshot = page.locator("#viewer").screenshot()
    (artifacts_dir / "viewer-harness.png").write_bytes(page.locator("#stage").screenshot())
    assert_one_pixel_checkerboard(screenshot)

    # Arrow keys pan; zoomed in so far that the image overflows the view both ways, nothing clamps.
    page.keyboard.press("+")
    page.keyboard.press("+")
    settle(page)
    magnified = magnification(page)
    assert magnified == pytest.approx(1.5**2, rel=1e-3)
    x0, y0 = page.evaluate(CENTER)
    page.keyboard.press("ArrowRight")
    settle(page)
    x1, y1 = page.evaluate(CENTER)
    assert x1 > x0 and y1 == pytest.approx(y0)
    page.keyboard.press("ArrowDown")
    settle(page)
    x2, y2 = page.evaluate(CENTER)
    assert y2 > y1 and x2 == pytest.approx(x1)
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    settle(page)
    assert page.evaluate(CENTER) == pytest.approx([x0, y0])

    # OpenSeadragon's own keys are off, even with its canvas focused: r and f answer, w/a/s/d do nothing.
    page.locator("#viewer .openseadragon-canvas").click()
    for key in ("r", "R", "f", "w", "a", "s", "d"):
        page.keyboard.press(key)
    settle(page)
    assert page.evaluate(
        "() => [ratingViewer.viewport.getRotation(), ratingViewer.viewport.getFlip()]"
    ) == [0, False]
    assert page.evaluate(CENTER) == pytest.approx([x0, y0])
    assert magnification(page) == pytest.approx(magnified, rel=1e-6)
    expect(page.locator("input[data-key=f]")).to_be_checked()
    assert page.js_errors == []


def test_one_to_one_counts_device_pixels(harness, browser):
    page = new_page(browser, scale=2)
    page.goto(harness.trial_url())
    settle(page)
    page.keyboard.press("N")
    settle(page)
    assert page.evaluate("() => window.devicePixelRatio") == 2
    assert magnification(page) == pytest.approx(1.0, abs=1e-3)
    assert page.evaluate(
        "() => ratingViewer.viewport.viewportToImageZoom(ratingViewer.viewport.getZoom(true))"
    ) == pytest.approx(0.5, abs=1e-3)
    assert_one_pixel_checkerboard(page.locator("#viewer").screenshot(scale="device"))
    page.context.close()


def test_drawn_smaller_than_one_to_one_is_filtered(harness, browser):
    page = new_page(
        browser, viewport={"width": 640, "height": 480}
    )  # stacked layout, a small stage
    page.goto(harness.trial_url())
    settle(page)
    assert magnification(page) < 0.8
    middle = central_pixels(page.locator("#viewer").screenshot(), 30)
    assert ((middle > 60) & (middle < 200)).all(), (
        "the checkerboard should filter to grey, not alias"
    )
    page.keyboard.press("n")
    settle(page)
    assert_one_pixel_checkerboard(page.locator("#viewer").screenshot())
    assert page.js_errors == []
    page.context.close()


def test_wheel_zooms_and_resize_at_home_refits(harness, page):
    page.goto(harness.trial_url())
    settle(page)
    home = magnification(page)

    page.set_viewport_size({"width": 1000, "height": 640})
    page.wait_for_function(f"() => Math.abs(({MAGNIFICATION})() - {home}) > 0.01")
    settle(page)
    assert page.evaluate(AT_HOME), "not re-fitted after the window shrank"
    home = magnification(page)

    box = page.locator("#viewer").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -200)
    settle(page)
    assert magnification(page) > home * 1.1
    page.set_viewport_size(DESKTOP)
    settle(page)
    assert not page.evaluate(AT_HOME), "a zoomed-in view was reset by a resize"
    assert page.js_errors == []


def test_submit_sends_zoom_record_once(harness, page):
    posts = capture_answers(page)
    page.goto(harness.trial_url())
    settle(page)
    home = magnification(page)
    zoom_in = page.get_by_role("button", name="+")
    zoom_in.click()
    expect(zoom_in).not_to_be_focused()  # Enter must still answer
    page.keyboard.press("+")
    settle(page)
    page.wait_for_timeout(300)
    page.keyboard.press("0")
    settle(page)
    page.keyboard.press("r")
    page.keyboard.press("c")
    page.keyboard.press("2")
    page.evaluate(
        "() => { const form = document.getElementById('answer-form'); form.requestSubmit(); form.requestSubmit(); }"
    )
    expect(page).to_have_title("Answered")
    assert len(posts) == 1
    sent = posts[0]
    assert (sent["judged_real"], sent["confidence"], sent["quality"]) == ("real", "3", "2")
    assert float(sent["zoom_max"]) == pytest.approx(home * 1.5**2, rel=1e-2)
    assert 300 <= int(sent["zoomed_ms"]) < int(sent["client_ms"])
    assert int(sent["onscreen_ms"]) == pytest.approx(int(sent["client_ms"]), abs=1)
    assert 0 < int(sent["paint_ms"]) < 30_000  # ms since navigation start
    assert page.js_errors == []


def test_timed_trial_fixation_exposure_mask(harness, page):
    posts = capture_answers(page)
    page.goto(harness.trial_url(exposure_ms="400", fixation_ms="500"))
    expect(page.locator(".fixation")).to_be_visible()
    expect(page.get_by_role("button", name="Next")).to_be_disabled()
    page.wait_for_function("() => window.ratingState.shownAt !== null")
    page.wait_for_function("() => window.ratingState.masked", polling=10)
    expect(page.locator(".fixation")).to_be_hidden()
    expect(page.locator("canvas.mask")).to_be_visible()
    expect(page.get_by_text("The image is hidden. Answer from memory.")).to_be_visible()
    expect(page.get_by_role("button", name="Fit")).to_be_disabled()
    state = page.evaluate(
        "() => ({shownAt: ratingState.shownAt, paintMs: ratingState.paintMs, onscreenMs: ratingState.onscreenMs})"
    )
    assert state["shownAt"] >= 500 and state["shownAt"] >= state["paintMs"]
    assert state["onscreenMs"] == pytest.approx(400, abs=60)
    noise = page.evaluate("""() => {
      const canvas = document.querySelector('canvas.mask');
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      return [canvas.toDataURL(), new Set(data.filter((_, i) => i % 4 === 0)).size];
    }""")
    assert noise[1] > 200, "the mask is not noise"
    assert page.requested.count("/i/trial.png") == 1

    page.keyboard.press("+")  # no zooming behind the mask
    answer_with_keyboard(page)
    sent = posts[0]
    assert int(sent["onscreen_ms"]) == pytest.approx(400, abs=60)
    assert int(sent["client_ms"]) >= int(sent["onscreen_ms"])
    assert sent["zoomed_ms"] == "0"

    page.goto(harness.trial_url(exposure_ms="400", fixation_ms="100"))
    page.wait_for_function("() => window.ratingState.masked")
    assert page.evaluate("() => document.querySelector('canvas.mask').toDataURL()") != noise[0], (
        "the same noise twice"
    )
    assert page.js_errors == []


def test_closed_window_masks_at_once_and_fetches_nothing(harness, page):
    posts = capture_answers(page)
    page.goto(harness.trial_url(exposure_ms="400", window_closed="1"))
    expect(page.locator("canvas.mask")).to_be_visible()
    expect(page.get_by_text("The image is hidden. Answer from memory.")).to_be_visible()
    expect(page.locator(".fixation")).to_be_hidden()
    expect(page.get_by_role("button", name="Next")).to_be_enabled()
    page.wait_for_timeout(700)  # longer than the fixation would have been
    assert not [path for path in page.requested if path.startswith("/i/")]
    answer_with_keyboard(page)
    assert posts[0]["client_ms"] == "" and posts[0]["onscreen_ms"] == ""
    assert page.js_errors == []


def test_untimed_preloads_next_image_after_first_paint(harness, page):
    page.goto(harness.trial_url(next="/i/next.png"))
    settle(page)
    page.wait_for_function(
        "() => performance.getEntriesByName(new URL('/i/next.png', location).href).length === 1"
    )
    started, painted = page.evaluate(
        "() => [performance.getEntriesByName(new URL('/i/next.png', location).href)[0].startTime, ratingState.paintMs]"
    )
    assert started >= painted
    assert page.requested.count("/i/trial.png") == 1 and page.requested.count("/i/next.png") == 1
    assert page.js_errors == []


def test_load_error_keeps_next_disabled(harness, page):
    page.goto(harness.trial_url(image="/i/missing.png"))
    expect(
        page.get_by_text("The image could not be loaded. Please reload the page.")
    ).to_be_visible()
    expect(page.get_by_role("button", name="Next")).to_be_disabled()


def test_feedback_page_viewer_and_enter_follow_continue(harness, page):
    page.route(
        "**/next-trial",
        lambda route: route.fulfill(content_type="text/html", body="<title>Next trial</title>"),
    )
    page.goto(harness.trial_url(answer="continue"))
    settle(page)
    expect(page.locator("#continue")).to_be_focused()
    page.keyboard.press("+")
    settle(page)
    page.locator("#viewer .openseadragon-canvas").click()  # focus leaves the link
    page.keyboard.press("Enter")
    expect(page).to_have_title("Next trial")
    assert page.js_errors == []
