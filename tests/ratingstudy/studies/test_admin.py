"""Staff design studies, create invitation links and revoke them in the admin."""

from __future__ import annotations

import base64
import csv
import io
import re

from django.db import connection
from django.urls import reverse

from ratingstudy.studies.models import Rater, Study, token_digest
from ratingstudy.studies.services import raters_create

INLINE = {"raters-TOTAL_FORMS": "0", "raters-INITIAL_FORMS": "0", "raters-MIN_NUM_FORMS": "0", "raters-MAX_NUM_FORMS": "1000"}


def study_post(study: Study, **overrides: object) -> dict:
    data = {
        "name": "Admin study",
        "instructions": "Rate.",
        "real_image_sets": [s.pk for s in study.real_image_sets.all()],
        "generated_image_sets": [s.pk for s in study.generated_image_sets.all()],
        "task": "both",
        "images_per_rater": "4",
        "balance": "stratified",
        "raters_per_image": "2",
        "practice_trials": "2",
        "corrupted_checks": "1",
        "repeat_checks": "1",
        "fit": "fit",
        "withdrawal": "delete",
        "confidence_levels": "3",
        "noninferiority_margin": "0.1",
        "staircase_ladder": "100,150,200,300,400,500,700,1000",
        "staircase_down": "3",
        "staircase_up": "1",
        "qualification_trials": "0",
        "qualification_pass": "0.8",
        "practice_holdout": "0.1",
        "exclude_after_failed_checks": "2",
        "exclude_failed_share": "0.5",
        "seed": "7",
        "new_invitations": "3",
        **INLINE,
    }
    data.update({key: str(value) for key, value in overrides.items()})
    return data


def test_design_that_the_pool_cannot_fill_is_refused_in_the_form(admin_client, study):
    page = admin_client.post(reverse("admin:studies_study_add"), study_post(study, images_per_rater=40))
    assert page.status_code == 200
    assert "20 real images are needed per rater, the real sets hold 5" in page.content.decode()
    assert not Study.objects.filter(name="Admin study").exists()


def test_study_is_created_with_invitations_shown_once_and_stored_only_as_hashes(admin_client, study, client):
    created = admin_client.post(reverse("admin:studies_study_add"), study_post(study, is_open="on"))
    assert created.status_code == 200  # the one page that shows the new links
    page = created.content.decode()
    new = Study.objects.get(name="Admin study")
    raters = list(new.raters.all())
    links = re.findall(r'value="(http://testserver/r/[^"]+/)"', page)
    assert len(raters) == len(links) == 3
    assert "cannot be shown again" in page
    csv_url = re.search(r'id="issued-links-csv" href="data:text/csv;base64,([^"]+)"', page).group(1)
    rows = list(csv.reader(io.StringIO(base64.b64decode(csv_url).decode())))
    assert [row[2] for row in rows[1:]] == links
    tokens = [link.rstrip("/").rsplit("/", 1)[1] for link in links]
    assert {token_digest(t) for t in tokens} == {r.token_hash for r in raters}
    for link in links:
        assert client.get(link).status_code == 200
    # Nothing shows a link again: not the study, not the rater pages, not the database.
    change = admin_client.get(reverse("admin:studies_study_change", args=[new.pk])).content.decode()
    rater_page = admin_client.get(reverse("admin:studies_rater_change", args=[raters[0].pk])).content.decode()
    with connection.cursor() as cursor:
        dump = "\n".join(connection.introspection.table_names())
        cells = []
        for table in ("studies_rater", "django_session"):
            cursor.execute(f"SELECT * FROM {table}")
            cells += [str(cell) for row in cursor.fetchall() for cell in row]
    for token in tokens:
        assert token not in change and token not in rater_page and not any(token in cell for cell in cells), dump
    assert "raters are needed" in change


def test_reissue_revokes_the_old_link_and_shows_the_new_one_once(admin_client, study, client):
    rater = raters_create(study=study, count=1)[0]
    old_link = rater.get_absolute_url()
    assert client.get(old_link).status_code == 200
    page = admin_client.post(
        reverse("admin:studies_rater_changelist"), {"action": "reissue", "_selected_action": [rater.pk]}
    ).content.decode()
    new_link = re.search(r'value="http://testserver(/r/[^"]+/)"', page).group(1)
    assert new_link != old_link
    assert client.get(old_link).status_code == 404
    assert client.get(new_link).status_code == 200


def test_revoke(admin_client, study):
    raters = raters_create(study=study, count=2)
    admin_client.post(
        reverse("admin:studies_rater_changelist"),
        {"action": "revoke", "_selected_action": [raters[0].pk]},
    )
    assert list(Rater.objects.filter(study=study, revoked=True)) == [raters[0]]
