"""Who may do what, study by study: every staff URL of the studies and results apps for each role.

alice manages study A (its owner); bob is a viewer and collaborates on A; charlie is staff
with no role; dave manages study B only; erin operates jobs. A staff flag alone opens
nothing, and nobody sees a study they neither own nor collaborate on. (The job URLs are
covered the same way in tests/ratingstudy/jobs.)
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from ratingstudy.core.roles import JOB_OPERATOR, STUDY_MANAGER, VIEWER
from ratingstudy.studies.models import Study
from ratingstudy.studies.services import raters_create
from tests.ratingstudy.studies.factories import study_make

pytestmark = pytest.mark.django_db


def member(username: str, role: str | None) -> Client:
    user = get_user_model().objects.create_user(username=username, password="pw-123456789", is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def world(tmp_path):
    study_a = study_make(directory=tmp_path / "a", name="Study A")
    study_b = study_make(directory=tmp_path / "b", name="Study B")
    raters_create(study=study_a, count=1)
    people = {
        "alice": member("alice", STUDY_MANAGER),
        "bob": member("bob", VIEWER),
        "charlie": member("charlie", None),
        "dave": member("dave", STUDY_MANAGER),
        "erin": member("erin", JOB_OPERATOR),
    }
    Study.objects.filter(pk=study_a.pk).update(owner=people["alice"].user)
    Study.objects.filter(pk=study_b.pk).update(owner=people["dave"].user)
    study_a.collaborators.add(people["bob"].user)
    return study_a, study_b, people


def results_urls(study: Study) -> dict[str, str]:
    urls = {
        "page": reverse("results:study", args=[study.pk]),
        "data": reverse("results:data", args=[study.pk]),
        "manifest": reverse("results:export_manifest", args=[study.pk]),
    }
    for name in ("responses", "images", "models"):
        for fmt in ("csv", "json"):
            urls[f"{name}.{fmt}"] = reverse(f"results:export_{name}", args=[study.pk, fmt])
    return urls


READS = {"page", "data"}
#: Expected status of A's results URLs: reading needs view_results, exports need export_results.
EXPECTED = {
    "alice": lambda name: 200,
    "bob": lambda name: 200 if name in READS else 403,
    "charlie": lambda name: 403,
    "dave": lambda name: 403,
    "erin": lambda name: 403,
}


def test_results_pages_and_every_export_by_role(world):
    study_a, _, people = world
    for person, client in people.items():
        for name, url in results_urls(study_a).items():
            assert client.get(url).status_code == EXPECTED[person](name), (person, name)


def test_results_index_lists_only_the_studies_one_may_read(world):
    study_a, study_b, people = world
    listed = {person: client.get(reverse("results:index")).content.decode() for person, client in people.items()}
    assert "Study A" in listed["alice"] and "Study B" not in listed["alice"]
    assert "Study A" in listed["bob"] and "Study B" not in listed["bob"]
    assert "Study B" in listed["dave"] and "Study A" not in listed["dave"]
    for person in ("charlie", "erin"):
        assert "Study A" not in listed[person] and "Study B" not in listed[person]


def test_admin_shows_each_role_only_its_studies_and_rights(world):
    study_a, study_b, people = world
    change_a = reverse("admin:studies_study_change", args=[study_a.pk])
    change_b = reverse("admin:studies_study_change", args=[study_b.pk])
    changelist = reverse("admin:studies_study_changelist")
    raters = reverse("admin:studies_rater_changelist")
    sessions = reverse("admin:studies_session_changelist")
    add = reverse("admin:studies_study_add")

    alice = people["alice"]
    assert alice.get(change_a).status_code == 200 and 'name="_save"' in alice.get(change_a).content.decode()
    assert alice.get(change_b).status_code == 302  # not hers: "doesn't exist", back to the index
    page = alice.get(changelist).content.decode()
    assert "Study A" in page and "Study B" not in page
    assert alice.get(raters).status_code == 200 and alice.get(sessions).status_code == 200
    assert alice.get(add).status_code == 200

    bob = people["bob"]  # a viewer reads the design, changes nothing, sees no raters
    view = bob.get(change_a)
    assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
    assert bob.post(change_a, {"name": "renamed"}).status_code == 403
    assert bob.get(raters).status_code == 403 and bob.get(add).status_code == 403

    for person in ("charlie", "erin"):  # no study rights: nothing of the studies app
        client = people[person]
        for url in (changelist, change_a, raters, sessions, add):
            assert client.get(url).status_code == 403, (person, url)

    dave = people["dave"]
    assert dave.get(change_a).status_code == 302
    assert "Study A" not in dave.get(changelist).content.decode()
    assert "Study A" not in dave.get(raters).content.decode()
    Study.objects.filter(pk=study_a.pk).update(name="Study A")  # nothing changed it
    assert Study.objects.get(pk=study_a.pk).name == "Study A"


def test_a_new_study_belongs_to_its_creator(world, tmp_path):
    study_a, _, people = world
    from tests.ratingstudy.studies.test_admin import study_post

    created = people["dave"].post(reverse("admin:studies_study_add"), study_post(study_a, name="Dave's new study"))
    assert created.status_code in (200, 302)
    new = Study.objects.get(name="Dave's new study")
    assert new.owner == people["dave"].user
    assert not new.is_visible_to(people["alice"].user)
