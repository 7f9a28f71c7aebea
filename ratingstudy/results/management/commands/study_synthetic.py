"""``manage.py study_synthetic --raters 100 --trials 200``: a complete synthetic study for benchmarks.

Writes image sets (real, four generated models, practice), raters with profiles, and one
completed session per rater, every trial answered (practice trials and attention checks
included), in one transaction: all of it or nothing. Named ``synthetic ...``; see
:mod:`ratingstudy.results.synthetic` for what the answers follow. With ``--snapshot`` the
results snapshot is computed at once, as the refresh job would.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from ratingstudy.errors import ApplicationError
from ratingstudy.results.synthetic import synthetic_study_create


class Command(BaseCommand):
    help = "Create a synthetic rating study (raters x trials responses) for benchmarks; clearly named synthetic."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--raters", type=int, default=100, help="raters, each with one session (default %(default)s)")
        parser.add_argument(
            "--trials", type=int, default=200, help="trials per session, practice and checks included (default %(default)s)"
        )
        parser.add_argument("--seed", type=int, default=0, help="draws every answer (default %(default)s)")
        parser.add_argument("--name", default=None, help='study name (default "synthetic R raters x T trials (seed S)")')
        parser.add_argument("--snapshot", action="store_true", help="compute the results snapshot now")

    def handle(self, *args, raters: int, trials: int, seed: int, name: str | None, snapshot: bool, **options) -> None:
        say = self.stdout.write if options["verbosity"] > 0 else (lambda text: None)
        began = time.perf_counter()
        try:
            study, counts = synthetic_study_create(raters=raters, trials=trials, seed=seed, name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        say(
            f"study {study.pk} {study.name!r}: {counts.raters} raters, {counts.trials} trials, {counts.responses} responses, "
            f"{counts.images} images in {time.perf_counter() - began:.1f} s"
        )
        if snapshot:
            from ratingstudy.results.services import results_snapshot_refresh

            began = time.perf_counter()
            results_snapshot_refresh(study_id=study.pk)
            say(f"results snapshot computed in {time.perf_counter() - began:.1f} s")
        say(f"results page: {reverse('results:study', args=[study.pk])}")
