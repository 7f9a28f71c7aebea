"""``manage.py reproduce_founding_study BREAKHIS_ROOT``: the founding study, in one command.

Imports BreakHis at 400X with the deck's split, launches the deck's three models (see
:mod:`ratingstudy.results.founding`), then, as their jobs finish, generation, evaluation,
the classifiers and the rating study; prints where the report is. By default it waits,
moving the run on and printing progress, until every job is done (Ctrl-C stops waiting,
not the jobs); ``--no-wait`` returns at once and the report page moves the run on when an
operator opens it. Running it again with the same ``--name`` waits on that run.
Workers (``make run``, or ``celery -A worker.celery worker -Q gpu,cpu``) do the work.

ImageNet weights of VGG-16 and ResNet-50 are never downloaded: without them the command
says which file goes where, or trains from scratch with ``--encoder-weights random``.
"""

from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.urls import reverse

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Comparison
from ratingstudy.jobs.selectors import queue_warnings, workers_live
from ratingstudy.results.founding import founding_advance, founding_launch
from ratingstudy.results.founding_selectors import DECK_PRESETS, MODEL_BY_PRESET, FoundingSettings

POLL_SECONDS = 5.0


class Command(BaseCommand):
    help = "Reproduce the founding study's four tables: import BreakHis, train, generate, evaluate, classify, rate."

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = FoundingSettings(breakhis_root="")
        parser.add_argument("breakhis_root", help="the BreaKHis_v1 folder, as distributed")
        parser.add_argument("--name", default=defaults.name, help="run name (default %(default)s)")
        parser.add_argument(
            "--presets",
            nargs="+",
            default=list(DECK_PRESETS),
            choices=list(MODEL_BY_PRESET),
            help="models to train (default: the deck's three)",
        )
        parser.add_argument("--epochs", type=int, default=defaults.epochs, help="whole schedule (default %(default)s)")
        parser.add_argument("--image-size", type=int, default=defaults.image_size, help="square side, a multiple of 32 (default %(default)s)")
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size, help="default %(default)s, as the reference")
        parser.add_argument(
            "--encoder-weights",
            choices=("imagenet", "random"),
            default=defaults.encoder_weights,
            help="imagenet: torchvision's files from $TORCH_HOME/hub/checkpoints (never downloaded); "
            "random: train VGG-16 and ResNet-50 from scratch",
        )
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--train-per-class", type=int, default=defaults.train_per_class)
        parser.add_argument("--test-per-class", type=int, default=defaults.test_per_class)
        parser.add_argument("--min-test-patients", type=int, default=defaults.min_test_patients)
        parser.add_argument("--classifier-epochs", type=int, default=defaults.classifier_epochs)
        parser.add_argument("--fcn-steps", type=int, default=defaults.fcn_steps)
        parser.add_argument("--no-wait", action="store_true", help="launch (or look up) the run and return")
        parser.add_argument(
            "--timeout", type=float, default=None, help="stop waiting after this many minutes (exit 1)"
        )  # fmt: skip

    def handle(self, *args, **options) -> str:
        settings = FoundingSettings(
            breakhis_root=options["breakhis_root"],
            name=options["name"],
            presets=tuple(options["presets"]),
            epochs=options["epochs"],
            image_size=options["image_size"],
            batch_size=options["batch_size"],
            encoder_weights=options["encoder_weights"],
            seed=options["seed"],
            train_per_class=options["train_per_class"],
            test_per_class=options["test_per_class"],
            min_test_patients=options["min_test_patients"],
            classifier_epochs=options["classifier_epochs"],
            fcn_steps=options["fcn_steps"],
        )
        comparison = Comparison.objects.filter(name=settings.name).first()
        if comparison is None:
            try:
                comparison = founding_launch(settings=settings)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"launched run {comparison.name!r}: {', '.join(settings.presets)}")
        else:
            self.stdout.write(f"run {comparison.name!r} exists: following it (its own settings apply)")
        report = reverse("results:founding", args=[comparison.pk])
        self.stdout.write(f"report: {report} (CSV: {report}report.csv, Markdown: {report}report.md)")
        if options["no_wait"]:
            return report
        self._wait(comparison, options["timeout"])
        return report

    def _wait(self, comparison: Comparison, timeout: float | None) -> None:
        deadline = time.monotonic() + timeout * 60 if timeout else None
        last, warned = "", False
        while True:
            try:
                status = founding_advance(comparison=comparison)
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
            if status.message != last:
                self.stdout.write(status.message)
                last = status.message
            if status.complete:
                self.stdout.write(self.style.SUCCESS("the founding study's tables are complete"))
                return
            if status.failed:
                raise CommandError(status.message)
            if not warned and status.counts.get("queued") and not status.counts.get("running"):
                for warning in queue_warnings(snapshot=workers_live()):
                    self.stderr.write(warning)
                warned = True
            if deadline is not None and time.monotonic() > deadline:
                raise CommandError(f"stopped waiting after {timeout:g} min: {status.message}")
            time.sleep(POLL_SECONDS)
