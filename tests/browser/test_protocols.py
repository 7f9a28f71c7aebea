"""A scripted rater completes each protocol in Chromium, on the same instrument, and the results page
draws that protocol's analysis."""

from __future__ import annotations

import re

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from ratingstudy.studies.models import Response, Session
from ratingstudy.studies.services import raters_create
from tests.browser.helpers import wait_until
from tests.ratingstudy.results.factories import staff_user
from tests.ratingstudy.studies.factories import study_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOWN = "window.ratingState && window.ratingState.shownAt !== null"
SMALL = {"practice_trials": 0, "corrupted_checks": 0, "repeat_checks": 0, "images_per_rater": 4}


def start(page: Page, link: str) -> None:
    page.goto(link)
    page.get_by_label("Pathologist", exact=True).check()
    page.get_by_label("Years of experience in histopathology").fill("8")
    page.get_by_role("button", name="Start").click()


def each_trial(page: Page, count: int, answer) -> None:
    for position in range(1, count + 1):
        expect(page.locator("#progress-label")).to_have_text(f"Image {position} of {count}")
        answer(page, position)
        page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()


def drag_box(page: Page) -> None:
    box = page.locator("#stage .viewer").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x - 250, y - 200)
    page.mouse.down()
    page.mouse.move(x - 50, y - 20, steps=8)
    page.mouse.up()


@pytest.mark.parametrize("task", ["2afc", "diagnosis", "mark", "staircase"])
def test_a_rater_completes_the_protocol_and_its_analysis_is_drawn(live_server, browser, tmp_path, artifacts_dir, task):
    design = dict(SMALL)
    if task == "diagnosis":
        design["ask_subtype"] = True
    if task == "staircase":
        design.update(staircase_ladder="100,200", images_per_rater=6)
    study = study_make(directory=tmp_path, task=task, **design)
    rater = raters_create(study=study, count=1)[0]
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    start(page, live_server.url + rater.get_absolute_url())

    def paired(page: Page, position: int) -> None:
        wait_until(page, SHOWN)
        assert page.locator(".stage").count() == 2
        if position == 1:
            page.screenshot(path=str(artifacts_dir / "protocol-2afc.png"))
        page.keyboard.press("f" if position % 2 else "j")

    def diagnosis(page: Page, position: int) -> None:
        wait_until(page, SHOWN)
        page.keyboard.press("m" if position % 2 else "b")
        expect(page.locator("fieldset.subtypes:not([hidden])")).to_have_count(1)
        page.keyboard.press("2")

    def mark(page: Page, position: int) -> None:
        wait_until(page, SHOWN)
        if position == 1:
            page.keyboard.press("f")
            expect(page.locator("#marks-tools")).to_be_visible()
            page.keyboard.press("p")
            box = page.locator("#stage .viewer").bounding_box()
            page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            wait_until(page, "JSON.parse(document.querySelector('input[name=marks]').value || '[]').length === 1")
            page.keyboard.press("b")
            expect(page.get_by_role("button", name="Box")).to_have_attribute("aria-pressed", "true")
            drag_box(page)
            wait_until(page, "JSON.parse(document.querySelector('input[name=marks]').value || '[]').length === 2")
            page.screenshot(path=str(artifacts_dir / "protocol-mark.png"))
        else:
            page.keyboard.press("r")
            expect(page.locator("#marks-tools")).to_be_hidden()

    def staircase(page: Page, position: int) -> None:
        wait_until(page, "window.ratingState && window.ratingState.masked === true", timeout=5000)
        page.keyboard.press("r")

    answer = {"2afc": paired, "diagnosis": diagnosis, "mark": mark, "staircase": staircase}[task]
    count = design["images_per_rater"]
    each_trial(page, count, answer)
    responses = list(Response.objects.filter(trial__session=Session.objects.get(rater=rater)).order_by("trial__index"))
    assert len(responses) == count
    if task == "2afc":
        assert [r.choice for r in responses] == ["left", "right"] * (count // 2)
    elif task == "diagnosis":
        assert all(r.subtype in ("lobular_carcinoma", "fibroadenoma") for r in responses)
    elif task == "mark":
        assert responses[0].judged_real is False and [m["type"] for m in responses[0].marks] == ["point", "box"]
        point, box = responses[0].marks
        assert point["x"] == pytest.approx(0.5, abs=0.02) and point["y"] == pytest.approx(0.5, abs=0.02)
        assert 0 <= box["x"] < box["x"] + box["w"] <= 1 and box["w"] > 0.05
        assert all(r.marks == [] for r in responses[1:])
    else:
        assert {r.trial.exposure_ms for r in responses} <= {100, 200}

    # The results page draws this protocol's analysis.
    client = Client()
    client.force_login(staff_user())
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page.goto(f"{live_server.url}/results/{study.pk}/")
    if task == "mark":
        heatmap = page.locator(".heatmap img").first
        expect(heatmap).to_be_visible()
        wait_until(page, "document.querySelector('.heatmap img').naturalWidth > 0")
    else:
        chart = {"2afc": "chart-2afc", "diagnosis": "chart-diagnosis", "staircase": "chart-staircase"}[task]
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    expect(page.locator("section.protocol h2").first).to_have_text(re.compile(r"\w"))
    page.screenshot(path=str(artifacts_dir / f"results-{task}.png"), full_page=True)
    assert not errors, errors
    context.close()


def test_screen_qualification_and_a_six_level_confidence_feed_the_roc(live_server, browser, tmp_path):
    from ratingstudy.studies import colour_screen
    from ratingstudy.studies.sampling import session_seed

    study = study_make(
        directory=tmp_path, task="real_fake", ask_confidence=True, confidence_levels=6, colour_screen=True,
        practice_trials=1, qualification_trials=2, qualification_pass=0.5, practice_holdout=0.4, **{
            k: v for k, v in SMALL.items() if k != "practice_trials"
        },
    )  # fmt: skip
    rater = raters_create(study=study, count=1)[0]
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    start(page, live_server.url + rater.get_absolute_url())

    # The colour screen: the odd patch of every plate.
    expect(page.get_by_role("heading", name="A short colour check")).to_be_visible()
    plates = colour_screen.colour_plates(seed=session_seed(study_seed=study.seed, rater_id=rater.pk))
    for number, plate in enumerate(plates):
        page.locator(f"input[name=plate_{number}][value='{plate.odd}']").check()
    page.get_by_role("button", name="Continue").click()

    # Practice (with feedback), then the qualification block, answered right from the truth.
    trials = list(Session.objects.get(rater=rater).trials.select_related("image__image_set").order_by("index"))
    labels = ["Practice 1 of 1", "Qualification 1 of 2", "Qualification 2 of 2"] + [f"Image {n} of 4" for n in range(1, 5)]
    for trial, label in zip(trials, labels, strict=True):
        expect(page.locator("#progress-label")).to_have_text(label)
        wait_until(page, SHOWN)
        truth = trial.image.image_set.kind == "real"
        page.keyboard.press("r" if truth != (trial.index == 4) else "f")  # one main answer wrong
        page.keyboard.press(str(1 + trial.index % 6))  # confidence 1-6 by digit
        page.keyboard.press("Enter")
        if trial.is_practice:
            expect(page.get_by_role("heading", name="Practice feedback")).to_be_visible()
            page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible()
    rater.refresh_from_db()
    assert rater.colour_screen_score == len(plates) and not rater.screened_out
    responses = Response.objects.filter(trial__session__rater=rater).order_by("trial__index")
    assert [r.confidence for r in responses] == [1 + t.index % 6 for t in trials]

    client = Client()
    client.force_login(staff_user())
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page.goto(f"{live_server.url}/results/{study.pk}/")
    expect(page.locator("#chart-roc .main-svg").first).to_be_visible()
    assert not errors, errors
    page.close()
