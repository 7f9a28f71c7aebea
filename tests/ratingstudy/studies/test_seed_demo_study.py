"""``seed_demo_study``: idempotent, clearly labelled placeholder images, a working invitation link."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.management import call_command

from ratingstudy.catalog.models import ImageSet
from ratingstudy.studies.models import Rater, Study
from ratingstudy.studies.services import rater_revoke
from tests.ratingstudy.studies.factories import image_set_make


def seed_small_demo_tiles() -> None:
    call_command("seed_demo", train_per_class=8, test_per_class=4, size=64, verbosity=0)


def test_seed_demo_study_is_idempotent_and_its_link_works(db, client):
    seed_small_demo_tiles()
    earlier = call_command("seed_demo_study", base_url="http://lab.example:8000/")
    # Only token hashes are stored: a second run re-issues the same rater's link, the old one stops working.
    first = call_command("seed_demo_study", base_url="http://lab.example:8000")
    assert first.startswith("http://lab.example:8000/r/") and first != earlier
    assert client.get(urlsplit(earlier).path).status_code == 404
    assert Study.objects.count() == 1 and Rater.objects.count() == 1
    study = Study.objects.get()
    placeholder = study.generated_image_sets.get()
    assert placeholder.name == "demo-placeholder-generated" and placeholder.kind == ImageSet.Kind.GENERATED
    assert "NOT GAN OUTPUT" in placeholder.description and "NOT GAN OUTPUT" in study.description
    assert placeholder.images.count() == 32 and placeholder.images.first().width == 64
    assert list(study.real_image_sets.values_list("name", flat=True)) == ["demo-tiles"]
    assert study.is_open
    page = client.get(urlsplit(first).path)
    assert page.status_code == 200 and "About you" in page.content.decode()
    # A revoked demo link is replaced by a fresh one; nothing else is duplicated.
    rater_revoke(rater=Rater.objects.get())
    fresh = call_command("seed_demo_study")
    assert fresh.startswith("http://127.0.0.1:8000/r/") and urlsplit(fresh).path != urlsplit(first).path
    assert Study.objects.count() == 1 and ImageSet.objects.count() == 2


def test_existing_generated_images_are_used_instead_of_placeholders(db, tmp_path):
    seed_small_demo_tiles()
    gan = image_set_make(directory=tmp_path, name="cyclegan-run", kind=ImageSet.Kind.GENERATED, model_name="cg", per_label=6)
    call_command("seed_demo_study")
    study = Study.objects.get()
    assert list(study.generated_image_sets.all()) == [gan]
    assert not ImageSet.objects.filter(name="demo-placeholder-generated").exists()
