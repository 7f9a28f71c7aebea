"""A rater in headless Chromium: profile, practice with feedback, mouse and keyboard, resume, finish.

Playwright drives Debian's ``/usr/bin/chromium`` (it cannot download browsers here).
"""

from __future__ import annotations

import re

import pytest
from django.core.files.storage import default_storage
from playwright.sync_api import Page, expect

from ratingstudy.studies.models import WINDOW_GRACE_MS, Response, Session
from ratingstudy.studies.services import raters_create, study_mask_name
from tests.browser.helpers import wait_until
from tests.ratingstudy.studies.factories import study_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 1024, "height": 768}


def progress_label(page: Page) -> str:
    return page.locator("#progress-label").inner_text()


def wait_for_image(page: Page) -> None:
    """Wait until the trial image is drawn in the viewer (the page accepts no answer before)."""
    wait_until(page, "window.ratingState && window.ratingState.shownAt !== null")
    expect(page.get_by_role("button", name=re.compile("^Next"))).to_be_enabled()


def answer_with_keyboard(page: Page, real_key: str, quality_key: str) -> None:
    page.keyboard.press(real_key)
    page.keyboard.press(quality_key)
    page.keyboard.press("Enter")
    page.wait_for_load_state()


def test_rater_completes_a_session_with_mouse_and_keyboard_and_resumes(live_server, browser, tmp_path, artifacts_dir):
    study = study_make(directory=tmp_path, canvas_width=96, canvas_height=96, consent_text="Answers are stored without your name.")
    rater = raters_create(study=study, count=1)[0]
    link = live_server.url + rater.get_absolute_url()

    context = browser.new_context(viewport=TABLET)
    page = context.new_page()
    page.goto(link)
    expect(page.get_by_role("heading", name="About you")).to_be_visible()
    page.get_by_label("Pathologist", exact=True).check()
    page.get_by_label("Years of experience in histopathology").fill("14")
    page.get_by_label("Specialty or subspecialty (optional)").fill("Breast pathology")
    page.get_by_label("I have read the information above and agree to take part.").check()
    page.get_by_role("button", name="Start").click()

    # Practice 1, with the mouse; feedback follows.
    expect(page.locator("#progress-label")).to_have_text("Practice 1 of 2")
    wait_for_image(page)
    expect(page.locator(".practice-tag")).to_be_visible()
    page.locator("label.choice", has_text="Real").click()
    page.locator("label.choice", has_text="Good").click()
    page.get_by_role("button", name=re.compile("^Next")).click()
    expect(page.get_by_role("heading", name="Practice feedback")).to_be_visible()
    expect(page.locator(".verdict")).to_contain_text(re.compile(r"This image was (real|generated)"))
    wait_until(page, "window.ratingState && window.ratingState.shownAt !== null")  # shown again with the verdict
    page.keyboard.press("Enter")  # the continue link has the focus

    # Practice 2, with the keyboard; a missing answer blocks Enter until it is given.
    expect(page.locator("#progress-label")).to_have_text("Practice 2 of 2")
    wait_for_image(page)
    page.keyboard.press("f")
    page.keyboard.press("Enter")
    expect(page.locator("#progress-label")).to_have_text("Practice 2 of 2")  # the browser asked for the quality
    page.keyboard.press("2")
    page.keyboard.press("Enter")
    expect(page.get_by_text("That was the last practice image.")).to_be_visible()
    page.get_by_role("link", name=re.compile("Start the study")).click()

    # The study proper: no feedback, the progress bar moves, the keyboard selects the answers.
    expect(page.locator("#progress-label")).to_have_text("Image 1 of 6")
    expect(page.locator(".practice-tag")).to_have_count(0)
    main_checks = list(
        Session.objects.get(rater=rater).trials.filter(is_practice=False).values_list("attention_check", flat=True)
    )
    screenshot_at = main_checks.index("") + 1  # an ordinary trial, not the corrupted attention check

    def screenshot_if_due(position: int) -> None:
        if position == screenshot_at:
            page.screenshot(path=str(artifacts_dir / "rating-trial-page.png"), full_page=True)

    wait_for_image(page)
    screenshot_if_due(1)
    page.keyboard.press("r")
    expect(page.locator("input[value=real]")).to_be_checked()
    page.keyboard.press("4")
    expect(page.locator("input[name=quality][value='4']")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#progress-label")).to_have_text("Image 2 of 6")
    assert int(page.eval_on_selector("progress", "p => p.value")) == 38  # 3 of 8 trials answered
    wait_for_image(page)
    screenshot_if_due(2)
    page.locator("label.choice", has_text="Generated").click()
    page.locator("label.choice", has_text="Poor").click()
    page.get_by_role("button", name=re.compile("^Next")).dblclick()  # a double click stores one answer
    expect(page.locator("#progress-label")).to_have_text("Image 3 of 6")
    context.close()  # the rater closes the browser mid-way

    session = Session.objects.get(rater=rater)
    assert Response.objects.filter(trial__session=session).count() == 4

    # Reopening the link resumes at the first unanswered trial, without asking the profile again.
    context = browser.new_context(viewport=TABLET)
    page = context.new_page()
    page.goto(link)
    expect(page.locator("#progress-label")).to_have_text("Image 3 of 6")
    for position in range(3, 7):
        expect(page.locator("#progress-label")).to_have_text(f"Image {position} of 6")
        wait_for_image(page)
        screenshot_if_due(position)
        answer_with_keyboard(page, "f" if position % 2 else "r", str(position - 1))
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    expect(page.get_by_text("You have rated all 6 images.")).to_be_visible()
    context.close()

    session.refresh_from_db()
    assert session.is_complete
    responses = list(Response.objects.filter(trial__session=session).order_by("trial__index"))
    assert len(responses) == session.trials.count() == 8
    assert [r.quality for r in responses] == [4, 2, 4, 2, 2, 3, 4, 5]
    assert [r.judged_real for r in responses] == [True, False, True, False, False, True, False, True]
    assert all(r.client_ms is not None and r.client_ms > 0 for r in responses), [r.client_ms for r in responses]
    # The server interval (page sent -> answer received) contains the browser one (image shown -> sent).
    assert all(r.server_ms + 5 >= r.client_ms for r in responses)
    assert session.rater.years_experience == 14 and session.rater.consented_at is not None


def test_exposure_fixation_then_image_then_mask_and_the_server_refuses_after_the_window(
    live_server, browser, tmp_path
):
    study = study_make(directory=tmp_path, canvas_width=96, canvas_height=96, practice_trials=0, exposure_ms=400)
    rater = raters_create(study=study, count=1)[0]
    page = browser.new_page(viewport=TABLET)
    page.goto(live_server.url + rater.get_absolute_url())
    expect(page.get_by_text("is shown for 400 ms")).to_be_visible()
    page.get_by_label("Other", exact=True).check()
    page.get_by_label("Years of experience in histopathology").fill("2")
    page.get_by_role("button", name="Start").click()
    expect(page.locator(".fixation")).to_be_visible()  # HYPE: a fixation cross first
    wait_until(page, "window.ratingState && window.ratingState.masked === true", timeout=5000)
    expect(page.locator("canvas.mask")).to_be_visible()  # then the backward noise mask
    expect(page.get_by_text("The image is hidden. Answer from memory.")).to_be_visible()
    answer_with_keyboard(page, "r", "3")
    expect(page.locator("#progress-label")).to_have_text("Image 2 of 6")
    first = Response.objects.get(trial__session__rater=rater)
    assert 300 <= first.onscreen_ms <= 600, first.onscreen_ms  # measured on screen, beside the 400 ms asked

    # Trial 2: the rater lets the window pass, then tries to see the image again.
    wait_until(page, "window.ratingState && window.ratingState.masked === true", timeout=5000)
    image_url = page.locator("#stage").get_attribute("data-image-url")
    trial = Session.objects.get(rater=rater).trials.get(index=1)
    with default_storage.open(trial.render, "rb") as fh:
        image_bytes = fh.read()
    with default_storage.open(study_mask_name(study=study), "rb") as fh:
        mask_bytes = fh.read()
    page.wait_for_timeout(WINDOW_GRACE_MS + 200)  # the server's window (fixation + exposure + grace) closes
    fetched = page.request.get(live_server.url + image_url).body()  # a second fetch, as devtools would do
    assert fetched == mask_bytes != image_bytes and len(fetched) == len(image_bytes)
    page.reload()  # a reload shows the mask at once and asks for nothing
    expect(page.locator("#stage")).to_have_attribute("data-window-closed", "1")
    wait_until(page, "window.ratingState && window.ratingState.masked === true")
    answer_with_keyboard(page, "f", "2")
    expect(page.locator("#progress-label")).to_have_text("Image 3 of 6")
    second = Response.objects.get(trial=trial)
    assert not second.onscreen_ms  # the reloaded page never showed the image
    page.close()


def test_a_lost_reply_falls_back_to_the_plain_post_and_keeps_one_answer(live_server, browser, tmp_path):
    """The answer's one request fails (the reply is lost): the page posts the form the plain way,
    the server keeps the first answer it got, and the rater lands on the next trial."""
    study = study_make(directory=tmp_path, canvas_width=96, canvas_height=96, practice_trials=0)
    rater = raters_create(study=study, count=1)[0]
    context = browser.new_context(viewport=TABLET)
    page = context.new_page()
    page.goto(live_server.url + rater.get_absolute_url())
    page.get_by_label("Pathologist", exact=True).check()
    page.get_by_label("Years of experience in histopathology").fill("3")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#progress-label")).to_have_text("Image 1 of 6")
    wait_for_image(page)

    lost = []

    def lose_the_reply(route) -> None:
        if route.request.headers.get("x-rating-fragment") == "1" and not lost:
            route.fetch()  # the server stores the answer ...
            lost.append(route.request.url)
            route.abort("connectionreset")  # ... and the reply never reaches the page
        else:
            route.continue_()

    page.route("**/answer", lose_the_reply)
    with page.expect_navigation():  # the fallback is a plain form post: a page load
        answer_with_keyboard(page, "r", "4")
    expect(page.locator("#progress-label")).to_have_text("Image 2 of 6")
    assert len(lost) == 1
    responses = list(Response.objects.filter(trial__session__rater=rater))
    assert len(responses) == 1 and responses[0].quality == 4
    # The next answers go one request each again.
    wait_for_image(page)
    answer_with_keyboard(page, "f", "2")
    expect(page.locator("#progress-label")).to_have_text("Image 3 of 6")
    assert Response.objects.filter(trial__session__rater=rater).count() == 2
    context.close()
