"""The results snapshot: computed when the data change (a debounced cpu-queue job), served on
every view with how fresh it is; scheduling it costs the answer path no SQL query."""

from __future__ import annotations

import time

import pytest
import redis
from django.urls import reverse

from ratingstudy.results import services
from ratingstudy.results.models import ResultsSnapshot
from ratingstudy.results.tasks import refresh_study_results
from tests.ratingstudy.results.factories import answer, simulated_study, staff_user


@pytest.fixture
def staff_client(client):
    client.force_login(staff_user())
    return client


@pytest.fixture
def sent(monkeypatch):
    """Tasks sent to the broker, recorded instead of sent."""
    from worker.celery import app

    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: calls.append((name, kwargs)))
    return calls


@pytest.fixture
def with_redis(settings, redis_url):
    settings.REDIS_URL = redis_url
    redis.Redis.from_url(redis_url).delete(*[services.refresh_key(i) for i in range(1, 200)])
    return redis_url


def _data(client, study_id: int) -> dict:
    response = client.get(reverse("results:data", args=[study_id]))
    assert response.status_code == 200
    return response.json()


def _new_answer(sim) -> None:
    trial = sim.raters[0].session.trials.order_by("index").first()
    answer(rater=sim.raters[0], image=trial.image, index=500, judged_real=True, quality=5)


@pytest.mark.django_db
def test_schedule_costs_no_sql_query_and_a_burst_enqueues_one_job(with_redis, sent, django_assert_num_queries):
    with django_assert_num_queries(0):
        for _ in range(50):
            services.schedule_results_refresh(study_id=7)
    assert sent == [
        (services.REFRESH_TASK, {"kwargs": {"study_id": 7}, "queue": "cpu", "countdown": services.REFRESH_DELAY_SECONDS})
    ]
    ttl = redis.Redis.from_url(with_redis).ttl(services.refresh_key(7))
    assert services.REFRESH_DELAY_SECONDS < ttl <= services.REFRESH_DELAY_SECONDS + services.REFRESH_KEY_GRACE_SECONDS
    services.schedule_results_refresh(study_id=8)  # another study has its own key
    assert len(sent) == 2
    services.refresh_schedule_clear(study_id=7)  # the job starts: the next answer enqueues the next job
    services.schedule_results_refresh(study_id=7)
    assert len(sent) == 3


def test_schedule_never_raises(settings, sent):
    settings.REDIS_URL = None
    services.schedule_results_refresh(study_id=1)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    services.schedule_results_refresh(study_id=1)
    assert sent == []


@pytest.mark.django_db
def test_first_view_computes_the_snapshot_then_serves_it(staff_client, sent, django_assert_max_num_queries):
    sim = simulated_study(n_raters=3, n_images=4)
    first = _data(staff_client, sim.study.pk)
    snapshot = ResultsSnapshot.objects.get(study=sim.study)
    assert snapshot.responses == first["results"]["counts"]["responses"]
    assert first["freshness"]["stale"] is False and first["freshness"]["text"].endswith("up to date")
    assert first["results"] == snapshot.results
    # A view of a current snapshot reads it and the data version; no statistics.
    with django_assert_max_num_queries(12):
        again = _data(staff_client, sim.study.pk)
    assert again["results"] == first["results"] and sent == []


@pytest.mark.django_db
def test_stale_snapshot_is_shown_with_its_age_and_recomputed_by_the_job(staff_client, with_redis, sent):
    sim = simulated_study(n_raters=3, n_images=4)
    before = _data(staff_client, sim.study.pk)
    _new_answer(sim)
    stale = _data(staff_client, sim.study.pk)
    assert stale["results"] == before["results"]  # not recomputed on view
    assert stale["freshness"]["stale"] and stale["freshness"]["newer_responses"] == 1
    assert "1 newer response, recomputing…" in stale["freshness"]["text"]
    page = staff_client.get(reverse("results:study", args=[sim.study.pk])).content.decode()
    assert "1 newer response, recomputing…" in page
    assert [kwargs["kwargs"] for _, kwargs in sent] == [{"study_id": sim.study.pk}]  # two views, one job
    refresh_study_results(study_id=sim.study.pk)  # what the worker runs
    fresh = _data(staff_client, sim.study.pk)
    assert not fresh["freshness"]["stale"] and fresh["version"] != before["version"]
    assert fresh["results"]["counts"]["responses"] == before["results"]["counts"]["responses"] + 1


@pytest.mark.django_db
def test_a_refresh_that_no_worker_starts_is_explained_on_the_page(staff_client, with_redis, sent):
    sim = simulated_study(n_raters=3, n_images=4)
    _data(staff_client, sim.study.pk)
    _new_answer(sim)
    waiting = _data(staff_client, sim.study.pk)["freshness"]
    assert waiting["refresh_waiting_seconds"] < 5 and "not started" not in waiting["text"]
    # As if it had been asked for a minute ago and no worker took it (nothing consumes the queue here).
    key = services.refresh_key(sim.study.pk)
    redis.Redis.from_url(with_redis).set(key, repr(time.time() - 60).encode(), xx=True)
    overdue = _data(staff_client, sim.study.pk)["freshness"]
    assert overdue["refresh_waiting_seconds"] >= 60
    assert "not started: no worker serves the cpu queue, or all are busy" in overdue["text"]
    assert len(sent) == 1  # still the one job: the page does not pile more on


@pytest.mark.django_db
def test_a_changed_exclusion_rule_makes_the_snapshot_stale(staff_client, with_redis, sent):
    sim = simulated_study(n_raters=3, n_images=4)
    assert _data(staff_client, sim.study.pk)["results"]["counts"]["raters_excluded"] == 1
    sim.study.exclude_after_failed_checks, sim.study.exclude_failed_share = 0, 1.0
    sim.study.save()
    stale = _data(staff_client, sim.study.pk)["freshness"]
    assert stale["stale"] and stale["newer_responses"] == 0 and "analysis settings changed" in stale["text"]
    refresh_study_results(study_id=sim.study.pk)
    assert _data(staff_client, sim.study.pk)["results"]["counts"]["raters_excluded"] == 0


@pytest.mark.django_db
def test_without_a_broker_a_stale_snapshot_is_recomputed_on_view(staff_client, sent):
    sim = simulated_study(n_raters=2, n_images=4)
    before = _data(staff_client, sim.study.pk)
    _new_answer(sim)
    after = _data(staff_client, sim.study.pk)
    assert after["results"]["counts"]["responses"] == before["results"]["counts"]["responses"] + 1
    assert not after["freshness"]["stale"] and sent == []


@pytest.mark.django_db
def test_an_older_run_never_replaces_a_newer_snapshot():
    sim = simulated_study(n_raters=2, n_images=4)
    newer = services.results_snapshot_refresh(study_id=sim.study.pk)
    ResultsSnapshot.objects.filter(pk=newer.pk).update(read_at=newer.read_at.replace(year=newer.read_at.year + 1))
    _new_answer(sim)
    kept = services.results_snapshot_refresh(study_id=sim.study.pk)
    assert kept.responses == newer.responses
    assert services.results_snapshot_refresh(study_id=10**9) is None  # a deleted study: nothing to do


@pytest.mark.django_db
def test_filtered_views_are_computed_on_demand(staff_client, sent):
    sim = simulated_study(n_raters=3, n_images=4)
    data = staff_client.get(reverse("results:data", args=[sim.study.pk]), {"include_practice": "1"}).json()
    assert data["freshness"] is None and data["results"]["filters"]["include_practice"]
    assert not ResultsSnapshot.objects.exists()


def test_a_real_worker_recomputes_after_a_burst(
    transactional_db, celery_worker, redis_url, settings, staff_client, monkeypatch
):
    settings.REDIS_URL = redis_url
    monkeypatch.setattr(services, "REFRESH_DELAY_SECONDS", 1)
    sim = simulated_study(n_raters=3, n_images=4)
    before = _data(staff_client, sim.study.pk)
    for index in range(500, 505):  # a burst of answers, each scheduling as the answer path does
        trial = sim.raters[1].session.trials.order_by("index").first()
        answer(rater=sim.raters[1], image=trial.image, index=index, judged_real=False, quality=2)
        services.schedule_results_refresh(study_id=sim.study.pk)
    assert _data(staff_client, sim.study.pk)["freshness"]["newer_responses"] == 5
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = _data(staff_client, sim.study.pk)
        if not data["freshness"]["stale"]:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the worker did not recompute the snapshot in 60 s; log:\n{celery_worker.log_text()}")
    assert data["results"]["counts"]["responses"] == before["results"]["counts"]["responses"] + 5
    assert "refresh_study_results" in celery_worker.log_text()
