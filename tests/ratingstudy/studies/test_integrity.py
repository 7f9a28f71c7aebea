"""Research integrity: a design with data is locked (a new version takes changes), consent is recorded
by the hash of the text agreed to and asked again when it changes, and raters can withdraw."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.urls import reverse

from ratingstudy.results.export_selectors import response_export_rows
from ratingstudy.results.manifest_selectors import study_manifest
from ratingstudy.studies.models import ConsentRecord, Rater, Response, Study, Withdrawal
from ratingstudy.studies.selectors import session_next_trial
from ratingstudy.studies.services import (
    Answer,
    rater_profile_update,
    raters_create,
    rating_submit,
    session_start,
)
from tests.ratingstudy.studies.factories import study_make
from tests.ratingstudy.studies.test_admin import INLINE

pytestmark = pytest.mark.django_db
ANSWER = Answer(judged_real=True, confidence=None, quality=3, client_ms=900)
CONSENT = "Your answers are stored without your name."


def answered(study: Study, count: int = 2) -> Rater:
    rater = raters_create(study=study, count=1)[0]
    rater_profile_update(rater=rater, role="pathologist", years_experience=7, specialty="breast", consented=True)
    session = session_start(rater=rater)
    for _ in range(count):
        rating_submit(trial=session_next_trial(session=session), answer=ANSWER)
    return rater


def change_post(study: Study, **changes: object) -> dict:
    """The admin change form as it stands, with ``changes``."""
    data = {
        "name": study.name, "description": study.description, "instructions": study.instructions,
        "consent_text": study.consent_text, "withdrawal": study.withdrawal, "task": study.task,
        "images_per_rater": study.images_per_rater, "balance": study.balance, "raters_per_image": study.raters_per_image,
        "practice_trials": study.practice_trials, "practice_holdout": study.practice_holdout,
        "corrupted_checks": study.corrupted_checks, "repeat_checks": study.repeat_checks,
        "exclude_after_failed_checks": study.exclude_after_failed_checks, "exclude_failed_share": study.exclude_failed_share,
        "exposure_ms": study.exposure_ms or "", "seed": study.seed, "initial-seed": study.seed,
        "canvas_width": study.canvas_width,
        "canvas_height": study.canvas_height, "fit": study.fit, "jpeg_quality": study.jpeg_quality or "",
        "real_image_sets": [s.pk for s in study.real_image_sets.all()],
        "generated_image_sets": [s.pk for s in study.generated_image_sets.all()],
        "is_open": "on" if study.is_open else "", "new_invitations": "0", "confidence_levels": study.confidence_levels,
        "noninferiority_margin": study.noninferiority_margin, "staircase_ladder": study.staircase_ladder,
        "staircase_down": study.staircase_down, "staircase_up": study.staircase_up,
        "qualification_trials": study.qualification_trials, "qualification_pass": study.qualification_pass, **INLINE,
    }  # fmt: skip
    data.update(changes)
    return {key: value for key, value in data.items() if value != ""}


def test_design_with_answers_is_locked_and_a_new_version_takes_the_change(admin_client, tmp_path):
    study = study_make(directory=tmp_path, consent_text=CONSENT)
    url = reverse("admin:studies_study_change", args=[study.pk])
    assert admin_client.post(url, change_post(study, exposure_ms=300)).status_code == 302  # no answers yet: editable
    study.refresh_from_db()
    assert study.exposure_ms == 300
    answered(study)

    refused = admin_client.post(url, change_post(study, exposure_ms=1000, images_per_rater=5))
    assert refused.status_code == 200
    text = refused.content.decode()
    assert "design is locked" in text and "images_per_rater, exposure_ms" in text
    study.refresh_from_db()
    assert (study.exposure_ms, study.images_per_rater) == (300, 4)
    # What does not change what raters see may still change.
    assert admin_client.post(url, change_post(study, description="pilot, site 2")).status_code == 302

    admin_client.post(
        reverse("admin:studies_study_changelist"), {"action": "new_design_version", "_selected_action": [study.pk]}
    )
    copy = Study.objects.get(previous_version=study)
    assert (copy.name, copy.design_version, copy.is_open, copy.raters.count()) == (f"{study.name} (v2)", 2, False, 0)
    assert list(copy.real_image_sets.all()) == list(study.real_image_sets.all())
    copy_url = reverse("admin:studies_study_change", args=[copy.pk])
    assert admin_client.post(copy_url, change_post(copy, exposure_ms=1000)).status_code == 302
    copy.refresh_from_db()
    assert copy.exposure_ms == 1000

    rows = list(response_export_rows(study=study))
    assert rows and all(row[1] == 1 for row in rows)  # every export row names its design version
    manifest = json.loads(json.dumps(study_manifest(study=study), default=str))
    assert manifest["design_version"] == 1
    read = manifest["what_raters_read"]
    assert read["consent_sha256"] == hashlib.sha256(CONSENT.encode()).hexdigest()
    assert read["instructions_sha256"] == hashlib.sha256(study.instructions.encode()).hexdigest()


def test_changed_consent_is_asked_again_before_the_next_trial(client, tmp_path):
    study = study_make(directory=tmp_path, consent_text=CONSENT)
    rater = answered(study, count=1)
    first = ConsentRecord.objects.get(rater=rater)
    assert (first.version, first.text_sha256) == (1, hashlib.sha256(CONSENT.encode()).hexdigest())

    study.consent_text = CONSENT + " Answers are kept for ten years."
    study.save()
    assert study.consent_version == 2
    trial_url = reverse("studies:trial", kwargs={"token": rater.token})
    consent_url = reverse("studies:consent", kwargs={"token": rater.token})
    assert client.get(trial_url)["Location"] == consent_url
    pending = session_next_trial(session=rater.session)
    answer_url = reverse("studies:answer", kwargs={"token": rater.token, "trial_token": pending.token})
    assert client.post(answer_url, {"judged_real": "real", "quality": "3"})["Location"] == consent_url
    assert Response.objects.filter(trial__session__rater=rater).count() == 1  # nothing stored meanwhile
    page = client.get(consent_url).content.decode()
    assert "ten years" in page
    assert client.post(consent_url, {}).status_code == 400  # not ticked
    assert client.post(consent_url, {"consent": "on"})["Location"] == trial_url
    assert client.get(trial_url).status_code == 200
    second = ConsentRecord.objects.get(rater=rater, version=2)
    assert second.text_sha256 == study.consent_sha256 and second.agreed_at >= first.agreed_at


def test_consent_added_after_a_rater_started_is_asked_of_them(client, tmp_path):
    study = study_make(directory=tmp_path)
    rater = answered(study, count=1)
    assert not ConsentRecord.objects.exists()
    study.consent_text = CONSENT
    study.save()
    trial_url = reverse("studies:trial", kwargs={"token": rater.token})
    assert client.get(trial_url)["Location"] == reverse("studies:consent", kwargs={"token": rater.token})


def test_withdrawal_deletes_the_answers_and_leaves_a_trace_without_personal_data(client, tmp_path):
    study = study_make(directory=tmp_path, consent_text=CONSENT)
    rater, other = answered(study, count=3), answered(study, count=2)
    url = reverse("studies:withdraw", kwargs={"token": rater.token})
    assert "every answer you have given" in client.get(url).content.decode()
    assert "You have withdrawn" in client.post(url).content.decode()
    assert not Rater.objects.filter(pk=rater.pk).exists()
    assert Response.objects.count() == 2 and Response.objects.filter(trial__session__rater=other).count() == 2
    record = Withdrawal.objects.get()
    assert (record.study, record.mode, record.responses, record.design_version) == (study, "delete", 3, 1)
    assert {f.name for f in Withdrawal._meta.fields} == {"id", "study", "withdrawn_at", "mode", "responses", "design_version"}
    assert client.get(reverse("studies:trial", kwargs={"token": rater.token})).status_code == 404


def test_withdrawal_can_anonymise_instead(client, tmp_path):
    study = study_make(directory=tmp_path, withdrawal=Study.Withdrawal.ANONYMISE)
    rater = answered(study, count=2)
    client.post(reverse("studies:withdraw", kwargs={"token": rater.token}))
    rater.refresh_from_db()
    assert (rater.role, rater.years_experience, rater.specialty, rater.note) == ("", None, "", "")
    assert rater.withdrawn_at is not None and rater.session.user_agent == ""
    assert Response.objects.filter(trial__session__rater=rater).count() == 2
    refused = client.get(reverse("studies:trial", kwargs={"token": rater.token}))
    assert refused.status_code == 403 and "You have withdrawn" in refused.content.decode()
    assert Withdrawal.objects.get().mode == "anonymise"
