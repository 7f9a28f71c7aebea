"""``manage.py study_create DESIGN.json [--raters N]``: a study from a design file, and its invitations.

The design is a JSON object of :class:`~ratingstudy.studies.models.Study` fields,
with the image sets given by name::

    {"name": "Pathologists 2025", "instructions": "Rate each image.",
     "real_image_sets": ["breakhis-400X-100+10-seed0"],
     "generated_image_sets": ["generated-job12"], "images_per_rater": 40}

``manage.py study_export_design STUDY`` writes the same format, so another site
can replicate a study. Every problem in the file (unknown or missing keys, wrong
types, unknown image sets or sets of the wrong kind) is reported at once; a
well-formed design is then checked by the study service, which reports every
problem of the design itself. Nothing is created unless everything is right.
Prints the study id, then one invitation URL per rater.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import models, transaction

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import DESIGN_FIELDS, Study
from ratingstudy.studies.services import raters_create, study_create

#: The study's image sets, given by name; the kind each must have (None: any kind).
SET_FIELDS: dict[str, str | None] = {
    "real_image_sets": ImageSet.Kind.REAL,
    "generated_image_sets": ImageSet.Kind.GENERATED,
    "practice_image_sets": None,
}
REQUIRED = ("name", "instructions", "real_image_sets")


def design_read(path: Path) -> dict:
    """The JSON object in ``path``; a missing, unreadable or non-object file is one clear error."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CommandError(f"{path}: no such design file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"{path}: cannot read the design file: {exc}") from exc
    try:
        design = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    if not isinstance(design, dict):
        raise CommandError(
            f"{path}: the design must be a JSON object of study fields "
            f'({{"name": ..., "instructions": ..., "real_image_sets": [...]}}), '
            f"got a JSON {type(design).__name__}"
        )
    return design


def _type_problem(key: str, value: object) -> str | None:
    """Why ``value`` cannot be the study field ``key`` (None when its type fits)."""
    field = Study._meta.get_field(key)
    if value is None:
        return None if field.null else f"{key}: must not be null"
    if isinstance(field, models.BooleanField):
        fits, expected = isinstance(value, bool), "true or false"
    elif isinstance(field, models.IntegerField):
        fits = isinstance(value, int) and not isinstance(value, bool)
        expected = "a whole number" + (" or null" if field.null else "")
    elif isinstance(field, models.FloatField):
        fits = isinstance(value, int | float) and not isinstance(value, bool)
        expected = "a number"
    else:
        fits, expected = isinstance(value, str), "a string"
        choices = [str(choice) for choice, _ in field.choices or ()]
        if fits and choices and value not in choices:
            fits, expected = False, f"one of {', '.join(choices)}"
    return None if fits else f"{key}: must be {expected}, got {json.dumps(value)}"


def _sets_resolve(design: dict, problems: list[str]) -> dict[str, list[ImageSet]]:
    """The image sets named under each set key; every unknown or wrong-kind name is a problem."""
    resolved: dict[str, list[ImageSet]] = {}
    all_names: list[str] | None = None
    for key, kind in SET_FIELDS.items():
        names = design.get(key, [])
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            problems.append(f"{key}: must be a list of image set names, got {json.dumps(names)}")
            continue
        found = {s.name: s for s in ImageSet.objects.filter(name__in=names)}
        for name in dict.fromkeys(names):
            image_set = found.get(name)
            if image_set is None:
                if all_names is None:
                    all_names = list(ImageSet.objects.values_list("name", flat=True))
                close = difflib.get_close_matches(name, all_names, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "; import it first"
                problems.append(f"{key}: no image set named {name!r} exists{hint}")
            elif kind is not None and image_set.kind != kind:
                problems.append(
                    f"{key}: {name!r} is a {image_set.kind} image set, not a {kind} one; "
                    f"list it under {image_set.kind}_image_sets"
                )
        resolved[key] = [found[n] for n in dict.fromkeys(names) if n in found]
    return resolved


def design_problems(design: dict) -> tuple[list[str], dict[str, list[ImageSet]]]:
    """Every problem of the file itself, and the image sets it names."""
    allowed = set(DESIGN_FIELDS) | set(SET_FIELDS)
    problems = [
        f"unknown key {key!r}; the allowed keys are {', '.join(sorted(allowed))}"
        for key in design
        if key not in allowed
    ]
    problems += [f"missing required key {key!r}" for key in REQUIRED if key not in design]
    problems += [
        problem
        for key in DESIGN_FIELDS
        if key in design and (problem := _type_problem(key, design[key])) is not None
    ]
    image_sets = _sets_resolve(design, problems)
    return problems, image_sets


def _refused(path: Path, problems: list[str]) -> CommandError:
    return CommandError(
        f"{path}: {len(problems)} problem(s) in the design; nothing was created:\n"
        + "\n".join(problems)
    )


class Command(BaseCommand):
    help = (
        "Create a study from a JSON design (sets by name; see study_export_design) and N "
        "invitations; prints the study id, then one invitation URL per line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("design", type=Path, help="the design, a JSON object of study fields")
        parser.add_argument(
            "--raters", type=int, default=0, help="invitations to create (default 0)"
        )
        parser.add_argument(
            "--base-url",
            default="http://127.0.0.1:8000",
            help="origin the invitation URLs start with",
        )

    def handle(self, *args, **options) -> None:
        path: Path = options["design"]
        if options["raters"] < 0:
            raise CommandError(f"--raters must be 0 or more, got {options['raters']}")
        design = design_read(path)
        problems, image_sets = design_problems(design)
        if problems:
            raise _refused(path, problems)
        fields = {key: design[key] for key in DESIGN_FIELDS if key in design}
        try:
            with transaction.atomic():  # the study and its raters, or nothing
                study = study_create(**fields, **image_sets)
                raters = (
                    raters_create(study=study, count=options["raters"]) if options["raters"] else []
                )
        except ApplicationError as exc:
            raise _refused(path, exc.extra.get("problems") or [exc.message]) from exc
        base = options["base_url"].rstrip("/")
        self.stdout.write(str(study.pk))
        for rater in raters:
            self.stdout.write(base + rater.get_absolute_url())
