"""A rater in headless Chromium: profile, practice with feedback, mouse and keyboard, resume, finish.

Playwright drives Debian's ``/usr/bin/chromium`` (it cannot download browsers here).
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from ratingstudy.studies.models import Response, Session
from ratingstudy.studies.services import raters_create
from tests.ratingstudy.studies.factories import study_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TABLET = {"width": 1024, "height": 768}


def progress_label(page: Page) -> str:
    return page.locator("#progress-label").inner_text()


def wait_for_image(page: Page) -> None:
    """Wait until the trial image is on screen (the page accepts no answer before)."""
    page.wait_for_function("document.getElementById('trial-image').naturalWidth === 96")
    expect(page.get_by_role("button", name=re.compile("^Next"))).to_be_enabled()


def answer_with_keyboard(page: Page, real_key: str, quality_key: str) -> None:
    page.keyboard.press(real_key)
    page.keyboard.press(quality_key)
    page.keyboard.press("Enter")
    page.wait_for_load_state()


def test_rater_completes_a_session_with_mouse_and_keyboard_and_resumes(live_server, browser, tmp_path, artifacts_dir):
    study = study_make(directory=tmp_path, image_size=96, consent_text="Answers are stored without your name.")
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


def test_exposure_limit_hides_the_image_but_not_the_question(live_server, browser, tmp_path):
    study = study_make(directory=tmp_path, image_size=96, practice_trials=0, exposure_ms=400)
    rater = raters_create(study=study, count=1)[0]
    page = browser.new_page(viewport=TABLET)
    page.goto(live_server.url + rater.get_absolute_url())
    expect(page.get_by_text("is shown for 400 ms")).to_be_visible()
    page.get_by_label("Other", exact=True).check()
    page.get_by_label("Years of experience in histopathology").fill("2")
    page.get_by_role("button", name="Start").click()
    expect(page.locator("#trial-image")).to_be_hidden(timeout=5000)
    expect(page.get_by_text("The image is hidden. Answer from memory.")).to_be_visible()
    page.wait_for_timeout(300)  # answering takes as long as the rater needs
    answer_with_keyboard(page, "r", "3")
    expect(page.locator("#progress-label")).to_have_text("Image 2 of 6")
    response = Response.objects.get(trial__session__rater=rater)
    assert response.client_ms >= 700
    page.close()
