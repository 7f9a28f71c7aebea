"""Writes: studies, invitations, profiles, stored sessions and the one response per trial."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction

from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Response, Session, Study, Trial
from ratingstudy.studies.sampling import session_seed, trials_draw
from ratingstudy.studies.selectors import session_next_trial, study_pools
from ratingstudy.studies.services import (
    AlreadyAnswered,
    Answer,
    rater_profile_update,
    rater_reinstate,
    rater_revoke,
    raters_create,
    rating_submit,
    session_start,
    study_create,
    trial_mark_shown,
)
from tests.ratingstudy.studies.factories import study_make

ANSWER = Answer(judged_real=True, confidence=None, quality=4, client_ms=1500)


def test_invitation_tokens_are_long_random_and_unique(study):
    raters = raters_create(study=study, count=20)
    tokens = {r.token for r in raters}
    assert len(tokens) == 20
    assert all(len(t) >= 43 for t in tokens)  # 32 random bytes, base64url: 256 bits


def test_session_is_drawn_once_stored_and_reproducible(profiled_rater):
    session = session_start(rater=profiled_rater, user_agent="pytest")
    trials = list(session.trials.order_by("index"))
    assert session.seed == session_seed(study_seed=profiled_rater.study.seed, rater_id=profiled_rater.pk)
    assert len(trials) == 2 + 4 + 1 + 1
    assert [t.index for t in trials] == list(range(len(trials)))
    assert len({t.token for t in trials}) == len(trials)
    # The stored order is exactly the draw from the stored seed (no earlier sessions in this study).
    pool, practice = study_pools(study=session.study)
    plan = trials_draw(design=session.study.design, pool=pool, practice_pool=practice, seed=session.seed)
    assert [(t.image_id, t.is_practice, t.attention_check) for t in trials] == [
        (p.image_id, p.is_practice, p.attention_check) for p in plan
    ]
    repeat = next(t for t in trials if t.attention_check == Trial.AttentionCheck.REPEAT)
    assert repeat.repeat_of.index == next(p.repeat_of for p in plan if p.attention_check == "repeat")
    # A second start (reopened link, restart) returns the same session and trials.
    again = session_start(rater=profiled_rater)
    assert again.pk == session.pk
    assert list(again.trials.order_by("index").values_list("token", flat=True)) == [t.token for t in trials]
    assert Session.objects.count() == 1


def test_database_rejects_a_second_response_to_a_trial(profiled_rater):
    session = session_start(rater=profiled_rater)
    trial = session.trials.first()
    Response.objects.create(trial=trial, judged_real=True, quality=3, server_ms=10)
    with pytest.raises(IntegrityError), transaction.atomic():
        Response.objects.create(trial=trial, judged_real=False, quality=1, server_ms=20)
    assert Response.objects.filter(trial=trial).count() == 1


def test_database_rejects_out_of_range_and_empty_answers(profiled_rater):
    trial = session_start(rater=profiled_rater).trials.first()
    for bad in ({"quality": 6}, {"quality": 0}, {"judged_real": True, "confidence": 7}, {}):
        with pytest.raises(IntegrityError), transaction.atomic():
            Response.objects.create(trial=trial, server_ms=1, **bad)


def test_rating_submit_keeps_the_first_answer_and_times_it(profiled_rater):
    session = session_start(rater=profiled_rater)
    trial = trial_mark_shown(trial=session_next_trial(session=session))
    received = trial.shown_at + timedelta(milliseconds=2345)
    response = rating_submit(trial=trial, answer=ANSWER, received_at=received)
    assert response.server_ms == 2345
    assert response.client_ms == 1500
    with pytest.raises(AlreadyAnswered):
        rating_submit(trial=trial, answer=Answer(judged_real=False, confidence=None, quality=1, client_ms=5))
    response.refresh_from_db()
    assert (response.judged_real, response.quality) == (True, 4)
    assert session_next_trial(session=session).index == trial.index + 1


def test_rating_submit_requires_exactly_what_the_study_asks(profiled_rater):
    session = session_start(rater=profiled_rater)
    trial = session_next_trial(session=session)
    with pytest.raises(ApplicationError, match="quality"):
        rating_submit(trial=trial, answer=Answer(judged_real=True, confidence=None, quality=None, client_ms=None))
    with pytest.raises(ApplicationError, match="real or generated"):
        rating_submit(trial=trial, answer=Answer(judged_real=None, confidence=None, quality=2, client_ms=None))
    with pytest.raises(ApplicationError, match="confident"):
        rating_submit(trial=trial, answer=Answer(judged_real=True, confidence=2, quality=2, client_ms=None))
    assert not Response.objects.exists()


def test_last_answer_completes_the_session(profiled_rater):
    session = session_start(rater=profiled_rater)
    while (trial := session_next_trial(session=session)) is not None:
        session.refresh_from_db()
        assert not session.is_complete
        rating_submit(trial=trial, answer=ANSWER)
    session.refresh_from_db()
    assert session.is_complete
    assert Response.objects.filter(trial__session=session).count() == session.trials.count()


def test_later_sessions_prefer_images_seen_less(db, tmp_path):
    study = study_make(directory=tmp_path, practice_trials=0)
    raters = raters_create(study=study, count=2)
    first, second = (set(session_start(rater=r).trials.filter(is_practice=False, attention_check="")
                         .values_list("image_id", flat=True)) for r in raters)
    # 6 real and 8 generated images, 2 + 2 per session: the second session avoids the first one's images.
    assert not first & second


def test_profile_update_and_consent(study, rater):
    updated = rater_profile_update(rater=rater, role="resident", years_experience=3, specialty=" GI ", consented=False)
    assert (updated.role, updated.years_experience, updated.specialty, updated.has_profile) == ("resident", 3, "GI", True)
    study.consent_text = "You agree."
    study.save()
    with pytest.raises(ApplicationError, match="agree"):
        rater_profile_update(rater=rater, role="resident", years_experience=3, specialty="", consented=False)
    with pytest.raises(ApplicationError, match="role"):
        rater_profile_update(rater=rater, role="wizard", years_experience=3, specialty="", consented=True)
    assert rater_profile_update(rater=rater, role="other", years_experience=0, specialty="", consented=True).consented_at


def test_revoke_and_reinstate(rater):
    rater_revoke(rater=rater)
    rater.refresh_from_db()
    assert rater.revoked and rater.revoked_at is not None
    rater_reinstate(rater=rater)
    rater.refresh_from_db()
    assert not rater.revoked and rater.revoked_at is None


def test_study_create_refuses_designs_the_pool_cannot_fill(study):
    real = study.real_image_sets.get()
    generated = list(study.generated_image_sets.all())
    with pytest.raises(ApplicationError, match="real images are needed"):
        study_create(
            name="too big", instructions="x", real_image_sets=[real], generated_image_sets=generated, images_per_rater=14
        )
    with pytest.raises(ApplicationError, match="listed as real but holds generated images"):
        study_create(name="swapped", instructions="x", real_image_sets=generated, generated_image_sets=[real])
    with pytest.raises(ApplicationError, match="canvas_width"):
        study_create(
            name="huge", instructions="x", real_image_sets=[real], generated_image_sets=generated, canvas_width=10_000
        )
    assert list(Study.objects.values_list("name", flat=True)) == [study.name]  # nothing half-created
