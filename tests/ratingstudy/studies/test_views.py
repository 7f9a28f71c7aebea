"""Rater pages through Django's test client: the flow, resuming, feedback and blinding of the HTML."""

from __future__ import annotations

import re

from django.urls import reverse

from ratingstudy.studies.models import Response, Trial
from ratingstudy.studies.selectors import session_next_trial
from ratingstudy.studies.services import session_start

PROFILE = {"role": "pathologist", "years_experience": "12", "specialty": "Breast pathology"}


def answer_url(rater, trial: Trial) -> str:
    return reverse("studies:answer", kwargs={"token": rater.token, "trial_token": trial.token})


def test_first_visit_asks_profile_then_starts_the_session(client, rater):
    url = rater.get_absolute_url()
    page = client.get(url)
    assert page.status_code == 200
    html = page.content.decode()
    assert "Rate each image." in html and "About you" in html and 'name="years_experience"' in html
    assert "2 practice images" in html and "Then 6 images" in html
    bad = client.post(url, {**PROFILE, "years_experience": "-1"})
    assert bad.status_code == 200 and "field-error" in bad.content.decode()
    done = client.post(url, PROFILE)
    assert done.status_code == 302 and done["Location"] == reverse("studies:trial", kwargs={"token": rater.token})
    rater.refresh_from_db()
    assert (rater.role, rater.years_experience, rater.specialty) == ("pathologist", 12, "Breast pathology")
    assert rater.session.trials.count() == 8
    # Coming back with the link skips the profile.
    assert client.get(url)["Location"].endswith("/trial/")


def test_consent_is_required_when_the_study_has_consent_text(client, rater):
    rater.study.consent_text = "Your answers are stored pseudonymously."
    rater.study.save()
    page = client.get(rater.get_absolute_url()).content.decode()
    assert "stored pseudonymously" in page and 'name="consent"' in page
    assert client.post(rater.get_absolute_url(), PROFILE).status_code == 200
    assert client.post(rater.get_absolute_url(), {**PROFILE, "consent": "on"}).status_code == 302


def test_whole_session_practice_feedback_resume_and_completion(client, profiled_rater):
    rater = profiled_rater
    trial_page = reverse("studies:trial", kwargs={"token": rater.token})
    answered = 0
    while True:
        page = client.get(trial_page)
        if page.status_code == 302:
            break
        html = page.content.decode()
        trial = session_next_trial(session=rater.session)
        assert trial.token in html
        assert trial.shown_at is not None
        if trial.is_practice:
            assert f"Practice {answered + 1} of 2" in html
        else:
            assert f"Image {answered - 1} of 6" in html
        # The page can be reloaded any number of times: same trial (resume after closing the browser).
        assert trial.token in client.get(trial_page).content.decode()
        posted = client.post(answer_url(rater, trial), {"judged_real": "generated", "quality": "2", "client_ms": "900"})
        answered += 1
        assert posted.status_code == 302
        if trial.is_practice:
            feedback = client.get(posted["Location"]).content.decode()
            was_real = trial.image.image_set.kind == "real"
            assert f"This image was <strong>{'real' if was_real else 'generated'}</strong>" in feedback
            assert ("Correct." in feedback) == (not was_real)
            assert ("last practice image" in feedback) == (answered == 2)
        else:
            assert posted["Location"] == trial_page
            # Feedback is never given for a trial of the study proper.
            assert client.get(posted["Location"].replace("/trial/", f"/t/{trial.token}/feedback")).status_code == 404
    assert page["Location"] == reverse("studies:complete", kwargs={"token": rater.token})
    done = client.get(page["Location"]).content.decode()
    assert "Thank you" in done and "all 6 images" in done
    assert answered == 8
    rater.session.refresh_from_db()
    assert rater.session.is_complete
    assert set(Response.objects.values_list("client_ms", flat=True)) == {900}


def test_double_submit_refresh_and_back_keep_one_answer(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    client.get(reverse("studies:trial", kwargs={"token": profiled_rater.token}))
    trial = session_next_trial(session=session)
    first = client.post(answer_url(profiled_rater, trial), {"judged_real": "real", "quality": "5"})
    again = client.post(answer_url(profiled_rater, trial), {"judged_real": "generated", "quality": "1"})
    assert first.status_code == again.status_code == 302
    assert again["Location"].endswith("/trial/")
    response = Response.objects.get(trial=trial)
    assert (response.judged_real, response.quality) == (True, 5)


def test_incomplete_answer_is_shown_again_with_an_error(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    trial = session_next_trial(session=session)
    page = client.post(answer_url(profiled_rater, trial), {"judged_real": "real"})
    assert page.status_code == 400
    assert "Please answer every question." in page.content.decode()
    assert not Response.objects.exists()


def test_trial_html_reveals_nothing_about_the_image(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    study = session.study
    truths = {"gen A", "gen B", "model-a", "model-b", "benign", "malignant", "corrupt", "repeat", ".png", "/media/"}
    truths |= {s.name for s in study.real_image_sets.all()} | {s.name for s in study.generated_image_sets.all()}
    pages, kinds = set(), set()
    for trial in session.trials.order_by("index").select_related("image__image_set"):
        html = client.get(reverse("studies:trial", kwargs={"token": profiled_rater.token})).content.decode()
        assert trial.token in html
        if not trial.is_practice:
            truths |= {trial.image.sha256, trial.image.source_path}
            kinds.add((trial.image.image_set.kind, trial.attention_check))
            # Two trial pages differ only in the trial token, the next trial's token (to preload its image),
            # the position and the CSRF token.
            normalised = re.sub(r'value="[^"]{30,}"', "", html.replace(trial.token, "TOKEN"))
            normalised = re.sub(r'data-next-image-url="[^"]*"', "", normalised)
            normalised = re.sub(r'Image \d+ of|value="\d+">\d+%', "POSITION", normalised)
            pages.add(normalised)
        client.post(answer_url(profiled_rater, trial), {"judged_real": "real", "quality": "3"})
    assert {kind for kind, _ in kinds} == {"real", "generated"}
    assert {check for _, check in kinds} == {"", "corrupted", "repeat"}
    assert len(pages) == 1
    page = pages.pop()
    for truth in truths:
        assert truth not in page, truth
    # "real" appears only in the question, its field name and its answer button.
    for allowed in ('name="judged_real"', 'value="real"', ">Real<", "real or generated"):
        page = page.replace(allowed, "")
    assert "real" not in page.lower()
