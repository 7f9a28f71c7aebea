"""The results page in headless Chromium: charts draw with no network beyond this site,
and the page refreshes itself when a new answer arrives."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.test import Client
from playwright.sync_api import expect

from ratingstudy.results import views
from ratingstudy.studies.models import Response
from tests.ratingstudy.results.factories import answer, simulated_study, staff_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]



def test_charts_draw_offline_and_page_follows_new_answers(live_server, browser, monkeypatch, artifacts_dir):
    monkeypatch.setattr(views, "POLL_SECONDS", 1)
    sim = simulated_study(n_raters=3, n_images=4)
    client = Client()
    client.force_login(staff_user())
    host = urlparse(live_server.url).hostname
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    foreign: list[str] = []

    def only_this_site(route):
        if urlparse(route.request.url).hostname != host:
            foreign.append(route.request.url)
            return route.abort()
        return route.continue_()

    context.route("**/*", only_this_site)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{live_server.url}/results/{sim.study.pk}/")

    for chart in ("chart-scores", "chart-distribution", "chart-agreement", "chart-scatter"):
        expect(page.locator(f"#{chart} .main-svg").first).to_be_visible()
    assert page.locator("#chart-scores .bars path").count() >= 4  # a bar per model
    page.screenshot(path=str(artifacts_dir / "results-page.png"), full_page=True)

    answered = Response.objects.filter(trial__session__study=sim.study).count()
    first = Response.objects.filter(trial__session__rater=sim.raters[0]).first().trial
    answer(rater=sim.raters[0], image=first.image, index=900, judged_real=True, quality=5)
    expect(page.locator(".counts")).to_contain_text(f"of {answered + 1} responses", timeout=10_000)
    assert not errors, errors
    assert not foreign, foreign
    context.close()
