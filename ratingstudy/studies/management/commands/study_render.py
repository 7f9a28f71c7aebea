"""``manage.py study_render STUDY``: make every render a study serves, before raters arrive."""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Study
from ratingstudy.studies.services import study_canvas_resolve, study_check, study_render


class Command(BaseCommand):
    help = (
        "Render every image of a study for its presentation (canvas, fit, JPEG quality) into storage, so that no "
        "rater request ever renders. Saving an open study in the admin does the same."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="study name or id")

    def handle(self, *args, **options) -> None:
        key = options["study"]
        study = Study.objects.filter(name=key).first() or (
            Study.objects.filter(pk=int(key)).first() if key.isdigit() else None
        )
        if study is None:
            raise CommandError(
                f"no study named {key!r} (or with that id); see the admin for study names"
            )
        started = time.perf_counter()
        try:
            study_canvas_resolve(study=study)
            study_check(study=study)
            made = study_render(study=study)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"study {study.name!r}: rendered {made} image(s) at {study.canvas_width}x{study.canvas_height} "
                f"({study.fit}) in {time.perf_counter() - started:.1f} s; the rest were rendered already"
            )
        )
