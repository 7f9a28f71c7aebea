"""A rater reaches only their own session; refused links are answered politely; POSTs need CSRF."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from ratingstudy.studies import urls as study_urls
from ratingstudy.studies.models import Rater, Response
from ratingstudy.studies.services import (
    rater_profile_update,
    rater_revoke,
    raters_create,
    session_start,
)

ANSWER = {"judged_real": "real", "quality": "3"}


@pytest.fixture
def two_sessions(study) -> tuple[Rater, Rater]:
    """An owner and an outsider, both with started sessions in the same study."""
    raters = raters_create(study=study, count=2)
    for rater in raters:
        rater_profile_update(rater=rater, role="pathologist", years_experience=5, specialty="", consented=False)
        session_start(rater=rater)
    return raters[0], raters[1]


def rater_urls(rater: Rater, trial_token: str) -> dict[str, str]:
    """Every rater URL, by route name."""
    urls = {}
    for pattern in study_urls.urlpatterns:
        kwargs = {"token": rater.token}
        if "<str:trial_token>" in str(pattern.pattern):
            kwargs["trial_token"] = trial_token
        urls[pattern.name] = reverse(f"studies:{pattern.name}", kwargs=kwargs)
    return urls


def test_another_raters_trials_and_images_are_404(client, two_sessions):
    owner, outsider = two_sessions
    theirs = outsider.session.trials.first()
    mine = owner.session.trials.first()
    urls = rater_urls(owner, theirs.token)
    assert client.get(urls["image"]).status_code == 404
    assert client.get(urls["feedback"]).status_code == 404
    assert client.post(urls["answer"], ANSWER).status_code == 404
    assert not Response.objects.exists()
    # The same URLs with the owner's own trial work.
    own = rater_urls(owner, mine.token)
    assert client.get(own["image"]).status_code == 200
    assert client.post(own["answer"], ANSWER).status_code == 302


def test_unknown_tokens_are_404_everywhere(client, two_sessions):
    owner, _ = two_sessions
    trial = owner.session.trials.first()
    forged = Rater()
    forged.token = owner.token[:-2] + ("AA" if not owner.token.endswith("AA") else "BB")
    for name, url in rater_urls(forged, trial.token).items():
        response = client.post(url, ANSWER) if name == "answer" else client.get(url)
        assert response.status_code == 404, name
    assert client.get(rater_urls(owner, "x" * 22)["image"]).status_code == 404


@pytest.mark.parametrize("refusal", ["revoked", "closed"])
def test_revoked_link_and_closed_study_are_refused_politely(client, two_sessions, refusal):
    owner, outsider = two_sessions
    if refusal == "revoked":
        rater_revoke(rater=owner)
        expected = "has been withdrawn"
    else:
        owner.study.is_open = False
        owner.study.save()
        expected = "not open at the moment"
    trial = owner.session.trials.first()
    for name, url in rater_urls(owner, trial.token).items():
        response = client.post(url, ANSWER) if name == "answer" else client.get(url)
        assert response.status_code == 403, name
        html = response.content.decode()
        assert expected in html and "<h1>This link cannot be used right now</h1>" in html
    assert not Response.objects.exists()
    # The other rater is unaffected by a revocation.
    other = client.get(reverse("studies:trial", kwargs={"token": outsider.token})).status_code
    assert other == (200 if refusal == "revoked" else 403)


def test_rater_posts_need_the_capability_link_not_a_csrf_cookie(study, two_sessions):
    """Rater pages send no Referer, so browsers post with ``Origin: null``; the unguessable token
    in the URL, not a CSRF cookie, is what a forged request would lack."""
    owner, _ = two_sessions
    newcomer = raters_create(study=study, count=1)[0]
    strict = Client(enforce_csrf_checks=True, HTTP_ORIGIN="null")
    profile = {"role": "pathologist", "years_experience": "3"}
    assert strict.post(newcomer.get_absolute_url(), profile).status_code == 302
    trial = owner.session.trials.first()
    assert strict.post(rater_urls(owner, trial.token)["answer"], ANSWER).status_code == 302
    assert Response.objects.count() == 1
    forged = Rater()
    forged.token = "x" * 43
    assert strict.post(rater_urls(forged, trial.token)["answer"], ANSWER).status_code == 404
    assert strict.get(newcomer.get_absolute_url()).cookies.get("csrftoken") is None  # raters get no cookie
    assert Response.objects.count() == 1


def test_staff_pages_need_a_staff_login(client, admin_client, study):
    url = reverse("admin:studies_study_change", args=[study.pk])
    assert client.get(url).status_code == 302
    assert admin_client.get(url).status_code == 200
