"""One request per answer: the page's script posts the answer and gets the next trial back.

Query budgets are asserted with a transactional database: inside a test transaction every
``atomic()`` would add SAVEPOINT statements that a real request does not make.
"""

from __future__ import annotations

import os
import re

import pytest
from django.core.files.storage import default_storage
from django.urls import reverse

from ratingstudy.studies.models import Response, Session, Trial
from ratingstudy.studies.services import SERVED_MTIME, rater_consent, session_start
from ratingstudy.studies.views import FRAGMENT_HEADER, LOCATION_HEADER

ANSWER = {"judged_real": "real", "quality": "4", "client_ms": "800"}
FRAGMENT = {"headers": {FRAGMENT_HEADER: "1"}}


def answer_url(rater, trial: Trial) -> str:
    return reverse("studies:answer", kwargs={"token": rater.token, "trial_token": trial.token})


def image_url(rater, trial: Trial) -> str:
    return reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token})


def trial_token_in(html: str) -> str:
    return re.search(r'/t/([^/]+)/answer"', html).group(1)


def trials(rater) -> list[Trial]:
    return list(Trial.objects.filter(session__rater=rater).order_by("index"))


def test_each_answer_is_one_request_that_returns_the_next_trial(client, profiled_rater):
    rater = profiled_rater
    session_start(rater=rater)
    page = client.get(reverse("studies:trial", kwargs={"token": rater.token})).content.decode()
    assert '<div id="trial-root">' in page
    current = trial_token_in(page)
    requests = 0
    while True:
        reply = client.post(
            reverse("studies:answer", kwargs={"token": rater.token, "trial_token": current}), ANSWER, **FRAGMENT
        )
        requests += 1
        trial = Trial.objects.get(token=current)
        assert Response.objects.filter(trial=trial).count() == 1
        if reply.status_code == 204:  # not a trial next: the script goes to this address
            location = reply[LOCATION_HEADER]
            if trial.is_practice:
                assert location == reverse("studies:feedback", kwargs={"token": rater.token, "trial_token": current})
                page = client.get(reverse("studies:trial", kwargs={"token": rater.token})).content.decode()
                current = trial_token_in(page)
                continue
            assert location == reverse("studies:complete", kwargs={"token": rater.token})
            break
        assert reply.status_code == 200 and reply["Vary"] == FRAGMENT_HEADER
        body = reply.content.decode()
        # Only the page's body: no second copy of the layout, scripts or styles.
        assert "<html" not in body and "<script" not in body
        assert 'class="trial-body"' in body and 'data-title="Rating' in body
        following = trial_token_in(body)
        assert following != current
        nxt = Trial.objects.get(token=following)
        assert nxt.index == trial.index + 1 and nxt.shown_at is not None  # marked as sent, as a page GET does
        assert f"Image {nxt.index - 1} of 6" in body  # two practice trials come first
        current = following
    assert requests == 8
    assert Session.objects.get(rater=rater).is_complete
    assert Response.objects.filter(trial__session__rater=rater).count() == 8


def test_plain_form_post_still_redirects(client, profiled_rater):
    session_start(rater=profiled_rater)
    first = trials(profiled_rater)[2]  # a trial of the study proper
    posted = client.post(answer_url(profiled_rater, first), ANSWER)
    assert posted.status_code == 302 and posted["Location"].endswith("/trial/")


def test_a_resent_answer_keeps_the_first_and_moves_on(client, profiled_rater):
    session_start(rater=profiled_rater)
    first = trials(profiled_rater)[2]
    one = client.post(answer_url(profiled_rater, first), ANSWER, **FRAGMENT)
    two = client.post(answer_url(profiled_rater, first), {**ANSWER, "quality": "1"}, **FRAGMENT)
    assert one.status_code == two.status_code == 200
    assert trial_token_in(two.content.decode()) != first.token
    assert Response.objects.get(trial=first).quality == 4


def test_an_incomplete_answer_comes_back_as_the_same_trial_with_its_error(client, profiled_rater):
    session_start(rater=profiled_rater)
    first = trials(profiled_rater)[2]
    reply = client.post(answer_url(profiled_rater, first), {"judged_real": "real"}, **FRAGMENT)
    assert reply.status_code == 400
    assert trial_token_in(reply.content.decode()) == first.token and "Please answer every question." in reply.content.decode()
    assert not Response.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_answer_costs_at_most_four_queries(client, profiled_rater, django_assert_max_num_queries):
    rater = profiled_rater
    study = rater.study
    study.consent_text = "Answers are stored without your name."
    study.save()
    rater_consent(rater=rater)  # the consent check is part of every answer
    session_start(rater=rater)
    every = trials(rater)
    # Both practice trials answered: the next answers are the study proper.
    for trial in every[:2]:
        client.post(answer_url(rater, trial), ANSWER, **FRAGMENT)
    client.get(reverse("studies:trial", kwargs={"token": rater.token}))
    for trial in every[2:5]:
        with django_assert_max_num_queries(4):
            reply = client.post(answer_url(rater, trial), ANSWER, **FRAGMENT)
        assert reply.status_code == 200
    # The last answer also marks the session complete: one more.
    for trial in every[5:-1]:
        client.post(answer_url(rater, trial), ANSWER, **FRAGMENT)
    with django_assert_max_num_queries(4):
        reply = client.post(answer_url(rater, every[-1]), ANSWER, **FRAGMENT)
    assert reply.status_code == 204 and Session.objects.get(rater=rater).is_complete


@pytest.mark.django_db(transaction=True)
def test_an_image_costs_one_query(client, profiled_rater, django_assert_num_queries):
    session_start(rater=profiled_rater)
    trial = trials(profiled_rater)[2]
    with django_assert_num_queries(1):
        served = client.get(image_url(profiled_rater, trial))
    assert served.status_code == 200
    with default_storage.open(trial.render, "rb") as stored:
        assert b"".join(served.streaming_content) == stored.read()


def test_behind_nginx_python_sends_only_the_file_name(client, profiled_rater, settings):
    settings.RATER_IMAGE_ACCEL_PREFIX = "/_renders/"
    session_start(rater=profiled_rater)
    trial = trials(profiled_rater)[2]
    served = client.get(image_url(profiled_rater, trial))
    assert served.status_code == 200 and served.content == b""
    assert served["X-Accel-Redirect"] == "/_renders/" + trial.render
    assert served["Content-Type"] == "image/png" and served["Content-Disposition"] == "inline"
    assert "private" in served["Cache-Control"]
    # The mask, once answered, the same way.
    client.post(answer_url(profiled_rater, trial), ANSWER)
    assert client.get(image_url(profiled_rater, trial))["X-Accel-Redirect"].endswith("/mask.png")


def test_every_served_file_has_one_modification_time(profiled_rater):
    """A web server sending the files itself dates them (Last-Modified, ETag): all the same date."""
    session_start(rater=profiled_rater)
    names = {trial.render for trial in trials(profiled_rater)}
    assert len(names) > 4
    assert {os.stat(default_storage.path(name)).st_mtime for name in names} == {SERVED_MTIME}


def test_a_completion_missed_by_racing_answers_is_mended(client, profiled_rater):
    session_start(rater=profiled_rater)
    for trial in trials(profiled_rater):
        Response.objects.create(trial=trial, judged_real=True, quality=3, server_ms=1)
    assert not Session.objects.get(rater=profiled_rater).is_complete
    page = client.get(reverse("studies:trial", kwargs={"token": profiled_rater.token}))
    assert page["Location"] == reverse("studies:complete", kwargs={"token": profiled_rater.token})
    assert Session.objects.get(rater=profiled_rater).is_complete
    assert client.get(page["Location"]).status_code == 200
