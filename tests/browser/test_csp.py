"""Content-Security-Policy on every page, and no page breaks it: the admin, the plotly charts and the rater pages.

Chromium reports every blocked script, style, image or connection as a
``securitypolicyviolation`` event; an init script (run by the browser before any page
script, and not subject to the page's policy) collects them on each page.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from playwright.sync_api import Page, expect

from ratingstudy.jobs.models import Job
from ratingstudy.studies.services import raters_create
from tests.browser.helpers import wait_until
from tests.ratingstudy.results.factories import simulated_study
from tests.ratingstudy.studies.factories import study_make

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COLLECT_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def visit(page: Page, url: str, problems: list[str], ready: str | None = None) -> None:
    response = page.goto(url)
    assert response is not None and response.ok, (url, response and response.status)
    policy = dict(
        (directive.split(" ", 1) + [""])[:2] for directive in response.headers.get("content-security-policy", "").split("; ")
    )
    # Scripts from this origin only (plus the request's nonce where a page uses one): no inline code, no eval.
    assert policy["script-src"].startswith("'self'") and "unsafe" not in policy["script-src"], (url, policy)
    assert policy["object-src"] == "'none'" and policy["frame-ancestors"] == "'none'", (url, policy)
    if ready:
        expect(page.locator(ready).first).to_be_visible()
    page.wait_for_timeout(200)
    problems += [f"{url}: {v}" for v in page.evaluate("window.__cspViolations")]


def test_no_page_violates_its_content_security_policy(live_server, browser, tmp_path):
    sim = simulated_study(n_raters=2, n_images=3)
    study = study_make(directory=tmp_path, name="CSP study")
    job = Job.objects.create(kind=Job.Kind.EVALUATE, config={}, history=[{"step": 1, "losses": {"G": 1.0}}])
    admin = get_user_model().objects.create_superuser("csp-admin", password="pw-123456789")
    client = Client()
    client.force_login(admin)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(COLLECT_VIOLATIONS)
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_server.url}])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    problems: list[str] = []
    base = live_server.url

    visit(page, f"{base}/admin/", problems, "#content")
    visit(page, f"{base}/admin/studies/study/add/", problems, ".selector-available")  # filter_horizontal's script ran
    visit(page, f"{base}/admin/studies/study/{study.pk}/change/", problems, "#study_form")
    visit(page, f"{base}/admin/jobs/job/{job.pk}/change/", problems, "#job-losses .main-svg")  # plotly drew
    visit(page, f"{base}/results/", problems, "main")
    visit(page, f"{base}/results/{sim.study.pk}/", problems, "#chart-scores .main-svg")

    rater_page = context.new_page()
    rater_page.on("pageerror", lambda exc: errors.append(str(exc)))
    link = base + raters_create(study=study, count=1)[0].get_absolute_url()
    visit(rater_page, link, problems, "form.profile")
    rater_page.get_by_label("Other", exact=True).check()
    rater_page.get_by_label("Years of experience in histopathology").fill("1")
    rater_page.get_by_role("button", name="Start").click()
    wait_until(rater_page, "window.ratingState && window.ratingState.shownAt !== null")  # the viewer drew
    rater_page.keyboard.press("r")
    rater_page.keyboard.press("3")
    rater_page.keyboard.press("Enter")
    expect(rater_page.get_by_role("heading", name="Practice feedback")).to_be_visible()
    wait_until(rater_page, "window.ratingState && window.ratingState.shownAt !== null")
    problems += [f"rater pages: {v}" for v in rater_page.evaluate("window.__cspViolations")]
    context.close()
    assert not problems, problems
    assert not errors, errors
