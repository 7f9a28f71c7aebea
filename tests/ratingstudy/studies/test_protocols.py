"""The study protocols on the shared instrument: 2AFC pairs, diagnosis, marks, staircase, qualification,
the colour screen and ROC, from the draw to the results page and the exports."""

from __future__ import annotations

import io
import json
import re
from collections import Counter

import pytest
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.urls import reverse
from PIL import Image as PILImage

from ratingstudy.catalog.models import ImageSet
from ratingstudy.results.export_selectors import RESPONSE_COLUMNS, response_export_rows
from ratingstudy.results.selectors import study_results
from ratingstudy.studies import colour_screen
from ratingstudy.studies.models import Rater, Study, Trial
from ratingstudy.studies.sampling import session_seed
from ratingstudy.studies.selectors import session_next_trial
from ratingstudy.studies.services import (
    Answer,
    rater_profile_update,
    raters_create,
    rating_submit,
    session_start,
    trial_mark_shown,
)
from tests.ratingstudy.results.factories import staff_user
from tests.ratingstudy.studies.factories import image_set_make, study_make

pytestmark = pytest.mark.django_db


def started(study: Study) -> tuple[Rater, list[Trial]]:
    rater = raters_create(study=study, count=1)[0]
    rater_profile_update(rater=rater, role="pathologist", years_experience=5, specialty="", consented=False)
    session = session_start(rater=rater)
    return rater, list(session.trials.select_related("image__image_set", "pair_image__image_set").order_by("index"))


def answer_all(rater: Rater, make_answer) -> None:
    session = rater.session
    while (trial := session_next_trial(session=session)) is not None:
        trial = trial_mark_shown(trial=Trial.objects.select_related("image__image_set", "session__study").get(pk=trial.pk))
        rating_submit(trial=trial, answer=make_answer(trial))


def test_2afc_pairs_a_generated_image_with_a_real_one_of_its_label_sides_counterbalanced(client, tmp_path):
    study = study_make(directory=tmp_path, task="2afc", images_per_rater=6, practice_trials=2, corrupted_checks=1,
                       repeat_checks=1)  # fmt: skip
    rater, trials = started(study)
    main = [t for t in trials if not t.is_practice and not t.attention_check]
    assert len(main) == 6
    for trial in trials:
        assert trial.image.image_set.kind == ImageSet.Kind.GENERATED and trial.pair_image.image_set.kind == "real"
        if not trial.is_practice:  # the analysed real images hold both labels: a pair shares its stratum
            assert trial.pair_image.label == trial.image.label
        assert trial.real_side in ("left", "right") and trial.render and trial.render_right
    assert Counter(t.real_side for t in main) == {"left": 3, "right": 3}  # counterbalanced within the rater
    repeat = next(t for t in trials if t.attention_check == "repeat")
    assert repeat.real_side != repeat.repeat_of.real_side  # the repeated pair comes back swapped
    # The left and right URLs serve the two renders, each the same length.
    first = main[0]
    urls = {side: reverse(f"studies:{name}", kwargs={"token": rater.token, "trial_token": first.token})
            for side, name in (("left", "image"), ("right", "image_right"))}  # fmt: skip
    bodies = {side: b"".join(client.get(url).streaming_content) for side, url in urls.items()}
    for side, name in (("left", first.render), ("right", first.render_right)):
        with default_storage.open(name, "rb") as fh:
            assert bodies[side] == fh.read()
    assert len(bodies["left"]) == len(bodies["right"])
    page = client.get(reverse("studies:trial", kwargs={"token": rater.token})).content.decode()
    assert 'id="stage-left"' in page and 'id="stage-right"' in page and "Which one is real?" in page

    # Fooled on two of six pairs: the fooling rate, its tests and the export columns.
    fooled = {t.pk for t in main[:2]}
    answer_all(rater, lambda t: Answer(
        judged_real=None, confidence=None, quality=None, client_ms=500,
        choice=({"left": "right", "right": "left"}[t.real_side] if t.pk in fooled else t.real_side),
    ))  # fmt: skip
    section = study_results(study=study)["protocol"][0]
    assert section["title"].startswith("Paired") and section["chart"]["id"] == "chart-2afc"
    by_model = {row[0]: row for row in section["table"]["rows"]}
    for model in ("model-a", "model-b"):
        mine = [t for t in main if t.image.image_set.model_name == model]
        assert by_model[model][1:3] == [len(mine), sum(t.pk in fooled for t in mine)]
    rows = [dict(zip(RESPONSE_COLUMNS, r, strict=True)) for r in response_export_rows(study=study)]
    analysed = [r for r in rows if not r["is_practice"] and not r["attention_check"]]
    assert sum(r["chose_real"] is False for r in analysed) == 2
    assert all(r["task"] == "2afc" and r["real_side"] in ("left", "right") and r["pair_image_id"] for r in rows)


def test_diagnosis_asks_the_subtype_and_reports_accuracy_and_noninferiority(tmp_path):
    study = study_make(directory=tmp_path, task="diagnosis", ask_subtype=True, practice_trials=0,
                       corrupted_checks=0, repeat_checks=0, images_per_rater=6)  # fmt: skip
    raters = [started(study)[0] for _ in range(3)]
    for number, rater in enumerate(raters):
        def diagnose(trial, number=number):
            right = trial.image.label if trial.index % 3 or number else ("benign" if trial.image.label == "malignant" else "malignant")
            subtype = {"benign": "adenosis", "malignant": "ductal_carcinoma"}[right]
            return Answer(judged_real=None, confidence=None, quality=None, client_ms=700, diagnosis=right, subtype=subtype)

        answer_all(rater, diagnose)
    sections = study_results(study=study)["protocol"]
    assert [s["title"] for s in sections][0] == "Diagnostic reading"
    assert sections[0]["table"]["rows"][0][0] == "real images"
    assert sections[1]["title"].startswith("Non-inferiority") and sections[1]["table"]["rows"]
    rows = [dict(zip(RESPONSE_COLUMNS, r, strict=True)) for r in response_export_rows(study=study)]
    assert {r["subtype"] for r in rows} <= {"adenosis", "ductal_carcinoma"} and all(r["diagnosis"] for r in rows)
    with pytest.raises(Exception, match="subtype"):
        rater = started(study)[0]
        trial = trial_mark_shown(trial=session_next_trial(session=rater.session))
        rating_submit(trial=trial, answer=Answer(judged_real=None, confidence=None, quality=None, client_ms=1,
                                                 diagnosis="benign", subtype="ductal_carcinoma"))  # fmt: skip


def test_marks_go_with_generated_answers_into_a_heatmap_and_a_csv(client, tmp_path):
    study = study_make(directory=tmp_path, task="mark", practice_trials=0, corrupted_checks=0, repeat_checks=0)
    rater, _ = started(study)
    box = {"type": "box", "x": 0.1, "y": 0.2, "w": 0.3, "h": 0.3}
    answer_all(rater, lambda t: Answer(judged_real=False, confidence=None, quality=None, client_ms=900,
                                       marks=[{"type": "point", "x": 0.25, "y": 0.5}, box]))  # fmt: skip
    client.force_login(staff_user())
    section = study_results(study=study)["protocol"][0]
    assert section["title"].startswith("Why it looks generated")
    heatmap = client.get(section["images"][0]["src"])
    assert heatmap.status_code == 200 and heatmap["Content-Type"] == "image/png"
    assert PILImage.open(io.BytesIO(heatmap.content)).size == (study.canvas_width, study.canvas_height)
    csv_text = b"".join(client.get(section["links"][0]["href"]).streaming_content).decode()
    assert csv_text.count("\n") == 1 + 2 * 4 and "box" in csv_text and "0.25" in csv_text
    trial = trial_mark_shown(trial=session_next_trial(session=started(study)[0].session))
    with pytest.raises(Exception, match="Marks go with the answer 'generated'"):
        rating_submit(trial=trial, answer=Answer(judged_real=True, confidence=None, quality=None, client_ms=1, marks=[box]))


def test_staircase_shortens_the_exposure_after_three_right_answers_per_model(client, tmp_path):
    study = study_make(directory=tmp_path, task="staircase", practice_trials=0, corrupted_checks=0, repeat_checks=0,
                       images_per_rater=8, staircase_ladder="100,200,400,800")  # fmt: skip
    assert study.is_timed
    rater, trials = started(study)
    seen: dict[str, list[int]] = {}
    session = rater.session
    while (trial := session_next_trial(session=session)) is not None:
        page = client.get(reverse("studies:trial", kwargs={"token": rater.token})).content.decode()
        trial.refresh_from_db()
        assert f'data-exposure-ms="{trial.exposure_ms}"' in page
        group = trial.image.image_set.model_name or "real"
        seen.setdefault(group, []).append(trial.exposure_ms)
        truth = trial.image.image_set.kind == "real"
        rating_submit(trial=Trial.objects.select_related("session__study", "image__image_set").get(pk=trial.pk),
                      answer=Answer(judged_real=truth, confidence=None, quality=None, client_ms=800))  # fmt: skip
    for group, exposures in seen.items():  # every group starts at the top and steps down after three right
        assert exposures[0] == 800
        if len(exposures) > 3:
            assert exposures[3] == 400, (group, exposures)
    section = study_results(study=study)["protocol"][0]
    assert section["title"].startswith("HYPE-time") and section["chart"]["traces"]
    rows = [dict(zip(RESPONSE_COLUMNS, r, strict=True)) for r in response_export_rows(study=study)]
    assert all(r["exposure_ms"] in (100, 200, 400, 800) and r["staircase_level"] is not None for r in rows)


def test_failed_qualification_ends_politely_and_the_rater_is_not_analysed(client, tmp_path):
    study = study_make(directory=tmp_path, task="real_fake", practice_trials=1, qualification_trials=2,
                       qualification_pass=1.0, practice_holdout=0.4)  # fmt: skip
    rater, trials = started(study)
    assert [t.is_qualification for t in trials[:3]] == [False, True, True]
    for trial in trials[:3]:  # the practice trial right, the qualification trials wrong on purpose
        truth = trial.image.image_set.kind == "real"
        answer_url = reverse("studies:answer", kwargs={"token": rater.token, "trial_token": trial.token})
        client.get(reverse("studies:trial", kwargs={"token": rater.token}))
        client.post(answer_url, {"judged_real": "real" if truth != trial.is_qualification else "generated", "quality": "3"})
    rater.refresh_from_db()
    assert rater.screened_out.startswith("qualification:")
    page = client.get(reverse("studies:trial", kwargs={"token": rater.token}))
    assert page.status_code == 200 and "Thank you for your time" in page.content.decode()
    results = study_results(study=study)
    assert results["counts"]["raters_excluded"] == 1
    assert results["raters"][0]["exclusion_reason"].startswith("qualification:")


def test_colour_screen_comes_first_and_a_failed_one_screens_out(client, tmp_path):
    study = study_make(directory=tmp_path, colour_screen=True)
    good, bad = (raters_create(study=study, count=1)[0] for _ in range(2))
    for rater, right in ((good, True), (bad, False)):
        rater_profile_update(rater=rater, role="pathologist", years_experience=5, specialty="", consented=False)
        trial_url = reverse("studies:trial", kwargs={"token": rater.token})
        screen_url = reverse("studies:screen", kwargs={"token": rater.token})
        assert client.get(trial_url)["Location"] == screen_url
        plates = colour_screen.colour_plates(seed=session_seed(study_seed=study.seed, rater_id=rater.pk))
        page = client.get(screen_url).content.decode()
        assert page.count('class="patch"') == 4 * len(plates) and "not a medical colour-vision test" in page
        answers = {f"plate_{i}": str(p.odd if right else (p.odd + 1) % 4) for i, p in enumerate(plates)}
        assert client.post(screen_url, answers)["Location"] == trial_url
        rater.refresh_from_db()
        assert rater.colour_screen_score == (len(plates) if right else 0)
        assert bool(rater.screened_out) is not right


def test_roc_from_a_six_level_confidence_scale(tmp_path):
    study = study_make(directory=tmp_path, task="real_fake", ask_confidence=True, confidence_levels=6,
                       practice_trials=0, corrupted_checks=0, repeat_checks=0)  # fmt: skip
    for number in range(3):
        rater, _ = started(study)
        answer_all(rater, lambda t, number=number: Answer(
            judged_real=(t.image.image_set.kind == "real") != (t.index == number), confidence=1 + (t.index + number) % 6,
            quality=None, client_ms=1,
        ))  # fmt: skip
    section = study_results(study=study)["protocol"][-1]
    assert section["title"].startswith("ROC") and section["table"]["rows"][0][0] == "pooled"
    assert section["chart"]["traces"][0]["name"] == "pooled"


@pytest.mark.parametrize("task", ["2afc", "diagnosis", "mark", "staircase"])
def test_each_task_is_created_from_json(tmp_path, task):
    image_set_make(directory=tmp_path, name="real", kind=ImageSet.Kind.REAL, per_label=4)
    image_set_make(directory=tmp_path, name="gan", kind=ImageSet.Kind.GENERATED, model_name="g", per_label=4, seed=2)
    design = {
        "name": f"{task} study", "instructions": "x", "task": task, "real_image_sets": ["real"],
        "generated_image_sets": ["gan"], "images_per_rater": 4, "practice_trials": 1, "corrupted_checks": 0,
        "repeat_checks": 0, "qualification_trials": 1, "practice_holdout": 0.3,
    }  # fmt: skip
    path = tmp_path / "design.json"
    path.write_text(json.dumps(design))
    out = io.StringIO()
    call_command("study_create", str(path), "--raters", "1", stdout=out)
    study = Study.objects.get(name=f"{task} study")
    assert study.task == task and out.getvalue().splitlines()[0] == str(study.pk)


@pytest.mark.parametrize("task", ["2afc", "diagnosis", "mark", "staircase"])
def test_each_task_is_created_through_the_admin_with_its_own_options(admin_client, tmp_path, task):
    from tests.ratingstudy.studies.test_admin import study_post

    template = study_make(directory=tmp_path, name="template")
    page = admin_client.get(reverse("admin:studies_study_add")).content.decode()
    assert "studies/design_form.js" in page and "data-task-options" in page
    options = json.loads(re.search(r'data-task-options="([^"]+)"', page).group(1).replace("&quot;", '"'))
    assert "noninferiority_margin" in options["diagnosis"] and "noninferiority_margin" not in options["2afc"]
    assert "staircase_ladder" in options["staircase"] and "exposure_ms" not in options["staircase"]
    created = admin_client.post(
        reverse("admin:studies_study_add"),
        study_post(template, name=f"admin {task}", task=task, new_invitations=0, practice_trials=0,
                   corrupted_checks=0, repeat_checks=0),  # fmt: skip
    )
    assert created.status_code == 302, created.content.decode()[:2000]
    assert Study.objects.get(name=f"admin {task}").task == task
