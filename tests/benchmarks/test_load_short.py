"""CI form of the load benchmark (20 raters, whole 10-trial sessions against gunicorn), and
the exactly-once check it relies on, fed with lost, unexpected and altered answers."""

from __future__ import annotations

import pytest
from load.stack import answers_check

from ratingstudy.studies.models import Response, Trial
from ratingstudy.studies.services import (
    Answer,
    rater_profile_update,
    raters_create,
    rating_submit,
    session_start,
)
from tests.ratingstudy.studies.factories import study_make


@pytest.mark.slow
def test_twenty_raters_every_answer_stored_exactly_once(run_script):
    code, output, figures = run_script("load/run.py", "--short", "--time-limit", "60", timeout=240)
    assert code == 0, output[-4000:]
    assert figures["raters"] == 20 and figures["sessions_completed"] == 20, output[-3000:]
    sent = figures["answers"]["sent"]
    assert sent == 20 * figures["trials_per_session"] == figures["answers"]["stored"], output[-3000:]
    assert figures["exactly_once"] and figures["http"]["failed"] == 0, output[-3000:]
    assert figures["ops"]["submit-and-next"]["count"] > 0 and figures["ops"]["submit-and-next"]["p95_ms"] > 0


def _sent(trial: Trial, client_id: int, *, confirmed: bool = True, quality: int = 3) -> dict:
    return {"rater": trial.session.rater.token, "trial": trial.token, "client_id": client_id,
            "judged_real": True, "quality": quality, "confidence": None, "confirmed": confirmed, "attempts": 1}  # fmt: skip


def _store(trial: Trial, client_id: int, quality: int = 3) -> None:
    rating_submit(trial=trial, answer=Answer(judged_real=True, confidence=None, quality=quality, client_ms=client_id))


def test_answers_check_tells_lost_unexpected_and_altered_answers(db, tmp_path):
    study = study_make(directory=tmp_path)
    raters = raters_create(study=study, count=2)
    for rater in raters:
        rater_profile_update(rater=rater, role="pathologist", years_experience=3, specialty="", consented=True)
        session_start(rater=rater)
    first, second = (list(Trial.objects.filter(session__rater=r).select_related("session__rater").order_by("index"))
                     for r in raters)  # fmt: skip
    tokens = [r.token for r in raters]

    clean = [_sent(t, 100 + i) for i, t in enumerate(first)]
    for i, trial in enumerate(first):
        _store(trial, 100 + i)
    result = {"answers": clean, "completed": [raters[0].token], "rater_failures": []}
    check = answers_check(study_id=study.pk, results=[result], tokens=tokens[:1])
    assert check.exactly_once and check.all_completed and check.stored == len(first)

    _store(second[0], 200)  # stored as sent
    _store(second[1], 201, quality=5)  # stored, but not what the rater sent
    _store(second[2], 202)  # stored, but no rater sent it
    answers = clean + [_sent(second[0], 200), _sent(second[1], 201, quality=4),
                       _sent(second[3], 203), _sent(second[4], 204, confirmed=False)]  # fmt: skip
    result = {"answers": answers, "completed": tokens, "rater_failures": []}
    check = answers_check(study_id=study.pk, results=[result], tokens=tokens)
    assert not check.exactly_once
    assert check.lost == [second[3].token]  # confirmed to the rater, not in the database
    assert check.mismatched == [second[1].token]
    assert check.unexpected == [second[2].token]
    assert check.unconfirmed_missing == [second[4].token]  # never confirmed: not counted as lost
    assert not check.all_completed and "not complete" in check.rater_failures[0]
    assert Response.objects.filter(trial__session__study=study).count() == check.stored == len(first) + 3
    assert any(line.startswith("FAIL every answer") for line in check.lines())
