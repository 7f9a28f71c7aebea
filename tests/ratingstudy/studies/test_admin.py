"""Staff design studies, create invitation links and revoke them in the admin."""

from __future__ import annotations

from django.urls import reverse

from ratingstudy.studies.models import Rater, Study

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


def test_study_is_created_with_invitations_and_links_are_shown_and_revocable(admin_client, study):
    created = admin_client.post(reverse("admin:studies_study_add"), study_post(study))
    assert created.status_code == 302
    new = Study.objects.get(name="Admin study")
    raters = list(new.raters.all())
    assert len(raters) == 3
    change = admin_client.get(reverse("admin:studies_study_change", args=[new.pk])).content.decode()
    for rater in raters:
        assert f"http://testserver{rater.get_absolute_url()}" in change
    assert "raters are needed" in change
    admin_client.post(
        reverse("admin:studies_rater_changelist"),
        {"action": "revoke", "_selected_action": [raters[0].pk]},
    )
    assert list(Rater.objects.filter(study=new, revoked=True)) == [raters[0]]
