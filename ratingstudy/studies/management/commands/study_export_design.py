"""``manage.py study_export_design STUDY``: a study's design as JSON, to replicate it elsewhere.

Prints the format ``study_create`` reads (image sets by name, sorted keys, indent
2). Give the copy a new ``name`` (and import image sets of the same names at the
other site); ``study_create`` then makes a study with the same field values,
seed included, so its sessions are drawn the same way.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.studies.management.commands.study_create import DESIGN_FIELDS, SET_FIELDS
from ratingstudy.studies.models import Study


def study_find(reference: str) -> Study:
    """The study named ``reference``, else the one with that id."""
    study = Study.objects.filter(name=reference).first()
    if study is None and reference.isdigit():
        study = Study.objects.filter(pk=int(reference)).first()
    if study is None:
        raise CommandError(
            f"no study is named or numbered {reference!r}; give a study's exact name or its id"
        )
    return study


def study_design_export(study: Study) -> dict:
    """The study's design in ``study_create``'s format (image sets by name, sorted)."""
    design: dict = {key: getattr(study, key) for key in DESIGN_FIELDS}
    for key in SET_FIELDS:
        design[key] = sorted(getattr(study, key).values_list("name", flat=True))
    return design


class Command(BaseCommand):
    help = "Print a study's design (name or id) as the JSON that study_create reads."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="the study's name or id")

    def handle(self, *args, **options) -> None:
        design = study_design_export(study_find(options["study"]))
        self.stdout.write(json.dumps(design, sort_keys=True, indent=2, ensure_ascii=False))
