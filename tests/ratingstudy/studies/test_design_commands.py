"""study_create and study_export_design: designs as JSON files, every problem at once, round trip."""

from __future__ import annotations

import io
import json
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import resolve

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.management.commands import study_create as study_create_command
from ratingstudy.studies.management.commands.study_create import DESIGN_FIELDS, SET_FIELDS
from ratingstudy.studies.models import Rater, Study, token_digest
from tests.ratingstudy.studies.factories import image_set_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def image_sets(tmp_path) -> dict[str, ImageSet]:
    """Two real sets (one for practice) and two models' generated sets, 64 px demo tiles."""
    made = [
        image_set_make(directory=tmp_path, name="real-a", kind=ImageSet.Kind.REAL, per_label=3),
        image_set_make(
            directory=tmp_path, name="real-practice", kind=ImageSet.Kind.REAL, per_label=2, seed=3
        ),
        image_set_make(
            directory=tmp_path,
            name="gen-a",
            kind=ImageSet.Kind.GENERATED,
            model_name="model-a",
            per_label=2,
            seed=1,
        ),
        image_set_make(
            directory=tmp_path,
            name="gen-b",
            kind=ImageSet.Kind.GENERATED,
            model_name="model-b",
            per_label=2,
            seed=2,
        ),
    ]
    return {s.name: s for s in made}


def design_write(directory: Path, design: object, name: str = "design.json") -> Path:
    path = directory / name
    path.write_text(json.dumps(design), encoding="utf-8")
    return path


def run(*args: object) -> str:
    out = io.StringIO()
    call_command(*[str(a) for a in args], stdout=out)
    return out.getvalue()


SMALL_DESIGN = {
    "name": "Replication 1",
    "instructions": "Say whether each image is real or generated.",
    "real_image_sets": ["real-a"],
    "generated_image_sets": ["gen-a", "gen-b"],
    "images_per_rater": 4,
    "practice_trials": 2,
    "corrupted_checks": 1,
    "repeat_checks": 1,
}


def test_good_design_creates_the_study_and_prints_invitations(tmp_path, image_sets):
    path = design_write(tmp_path, {**SMALL_DESIGN, "task": "real_fake", "seed": 77})
    lines = run(
        "study_create", path, "--raters", 3, "--base-url", "https://lab.example.org/"
    ).splitlines()
    study = Study.objects.get(pk=int(lines[0]))
    assert (study.name, study.task, study.seed, study.images_per_rater) == (
        "Replication 1",
        "real_fake",
        77,
        4,
    )
    assert list(study.real_image_sets.all()) == [image_sets["real-a"]]
    assert sorted(s.name for s in study.generated_image_sets.all()) == ["gen-a", "gen-b"]
    urls = lines[1:]
    assert len(urls) == 3
    tokens = set()
    for url in urls:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == "https://lab.example.org"
        match = resolve(parts.path)
        assert match.view_name == "studies:invitation"
        tokens.add(match.kwargs["token"])
    assert {token_digest(t) for t in tokens} == set(study.raters.values_list("token_hash", flat=True))


def test_no_raters_prints_only_the_study_id(tmp_path, image_sets):
    output = run("study_create", design_write(tmp_path, SMALL_DESIGN))
    assert output.splitlines() == [str(Study.objects.get().pk)]
    assert Rater.objects.count() == 0


def test_every_problem_in_the_file_is_reported_and_nothing_is_created(tmp_path, image_sets):
    run("study_create", design_write(tmp_path, SMALL_DESIGN, "first.json"), "--raters", 1)
    before = (Study.objects.count(), Rater.objects.count())
    design = {
        "name": "Broken",
        "real_image_sets": ["real-a"],
        "generated_image_sets": ["gen-a", "real-practice", "gen-a2"],
        "images_per_rater": "40",
        "task": "guess",
        "colour": "blue",
    }
    path = design_write(tmp_path, design)
    with pytest.raises(CommandError) as excinfo:
        run("study_create", path, "--raters", 2)
    lines = str(excinfo.value).splitlines()
    assert lines[0] == f"{path}: 6 problem(s) in the design; nothing was created:"
    problems = lines[1:]
    assert len(problems) == 6
    assert problems[0].startswith("unknown key 'colour'; the allowed keys are ")
    assert "images_per_rater" in problems[0] and "practice_image_sets" in problems[0]
    assert problems[1:] == [
        "missing required key 'instructions'",
        'task: must be one of real_fake, quality, both, 2afc, diagnosis, mark, staircase, got "guess"',
        'images_per_rater: must be a whole number, got "40"',
        "generated_image_sets: 'real-practice' is a real image set, not a generated one; "
        "list it under real_image_sets",
        "generated_image_sets: no image set named 'gen-a2' exists; did you mean 'gen-a'?",
    ]
    assert (Study.objects.count(), Rater.objects.count()) == before


def test_problems_the_service_finds_are_reported_and_nothing_is_created(tmp_path, image_sets):
    run("study_create", design_write(tmp_path, SMALL_DESIGN, "first.json"), "--raters", 1)
    before = (Study.objects.count(), Rater.objects.count())
    # well-formed, but 40 images per rater cannot be drawn from 6 real and 8 generated images
    path = design_write(tmp_path, {**SMALL_DESIGN, "name": "Too big", "images_per_rater": 40})
    with pytest.raises(CommandError) as excinfo:
        run("study_create", path, "--raters", 2)
    message = str(excinfo.value)
    assert "nothing was created" in message
    assert "20 real images are needed per rater, the real sets hold" in message
    assert (Study.objects.count(), Rater.objects.count()) == before


def test_study_and_invitations_are_created_together_or_not_at_all(
    tmp_path, image_sets, monkeypatch
):
    def refuse(**kwargs):
        raise ApplicationError("invitations are switched off")

    monkeypatch.setattr(study_create_command, "raters_create", refuse)
    with pytest.raises(CommandError, match="nothing was created:\ninvitations are switched off"):
        run("study_create", design_write(tmp_path, SMALL_DESIGN), "--raters", 2)
    assert Study.objects.count() == 0 and Rater.objects.count() == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such design file"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "the design must be a JSON object of study fields"),
    ],
)
def test_a_file_that_is_not_a_design_is_one_clear_error(tmp_path, content, message):
    path = tmp_path / "design.json"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(CommandError, match=message):
        run("study_create", path)
    assert Study.objects.count() == 0


def test_export_then_create_reproduces_the_design(tmp_path, image_sets):
    original_design = {
        **SMALL_DESIGN,
        "description": "pilot at site A",
        "task": "both",
        "ask_confidence": True,
        "consent_text": "I agree to take part.",
        "balance": "random",
        "raters_per_image": 2,
        "practice_image_sets": ["real-practice"],
        "practice_holdout": 0.2,
        "exposure_ms": 800,
        "seed": 4242,
        "is_open": True,
        "canvas_width": 64,
        "canvas_height": 48,
        "fit": "crop",
        "jpeg_quality": 90,
        "exclude_after_failed_checks": 1,
        "exclude_failed_share": 0.25,
    }
    original = Study.objects.get(
        pk=int(run("study_create", design_write(tmp_path, original_design)))
    )
    exported = run("study_export_design", original.name)
    assert run("study_export_design", original.pk) == exported
    design = json.loads(exported)
    assert exported == json.dumps(design, sort_keys=True, indent=2) + "\n"
    assert set(design) == set(DESIGN_FIELDS) | set(SET_FIELDS)
    assert design["generated_image_sets"] == ["gen-a", "gen-b"]

    copy = Study.objects.get(
        pk=int(
            run("study_create", design_write(tmp_path, {**design, "name": "Site B"}, "copy.json"))
        )
    )
    assert copy.pk != original.pk and copy.name == "Site B"
    for field in DESIGN_FIELDS:
        if field != "name":
            assert getattr(copy, field) == getattr(original, field), field
            assert getattr(copy, field) == original_design.get(field, getattr(copy, field))
    for key in SET_FIELDS:
        assert sorted(getattr(copy, key).values_list("name", flat=True)) == design[key]


def test_export_of_an_unknown_study_says_what_to_give():
    with pytest.raises(CommandError, match="give a study's exact name or its id"):
        run("study_export_design", "no such study")
