"""``manage.py blinding_audit STUDY``: report every cue that tells real images from generated ones."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.errors import ApplicationError
from ratingstudy.studies.blinding import blinding_audit
from ratingstudy.studies.models import Study


class Command(BaseCommand):
    help = (
        "Fetch every served image of a study through the URL raters use and compare real and generated images "
        "on byte length, headers, PNG chunks, dimensions, first-request time, colour statistics, sharpness and "
        "JPEG blockiness. Exits with an error if any cue separates them."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="study name or id")
        parser.add_argument(
            "--threshold",
            type=float,
            default=0.9,
            help="separability (0.5 none .. 1.0 perfect) at which a cue is flagged (default 0.9)",
        )
        parser.add_argument(
            "--max-per-group",
            type=int,
            default=500,
            help="images measured per group (seeded sample)",
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="seed of the sample and of the fetch order"
        )
        parser.add_argument(
            "--base-url",
            help="fetch from this running server (e.g. http://127.0.0.1:8000) instead of in-process; "
            "it must share this database",
        )

    def handle(self, *args, **options) -> None:
        key = options["study"]
        study = Study.objects.filter(name=key).first() or (
            Study.objects.filter(pk=int(key)).first() if key.isdigit() else None
        )
        if study is None:
            raise CommandError(
                f"no study named {key!r} (or with that id); see the admin for study names"
            )
        if not 0.5 < options["threshold"] <= 1.0:
            raise CommandError(f"--threshold must be in (0.5, 1.0], got {options['threshold']}")
        try:
            report = blinding_audit(
                study=study,
                threshold=options["threshold"],
                max_per_group=options["max_per_group"],
                seed=options["seed"],
                base_url=options["base_url"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            f"Blinding audit of {report.study!r}: {report.n_real} real and {report.n_generated} generated images; "
            f"separability 0.5 = no cue, 1.0 = perfect cue; flagged at >= {report.threshold}"
        )
        for cue in report.cues:
            mark = "CUE" if cue.flagged else "ok "
            p_value = "" if cue.p_value is None else f"  p={cue.p_value:.2g}"
            self.stdout.write(
                f"  {mark} {cue.name:<18} {cue.separability:.2f}{p_value}   real: {cue.real}   generated: {cue.generated}"
            )
        if report.flagged:
            names = ", ".join(cue.name for cue in report.flagged)
            raise CommandError(
                f"{len(report.flagged)} cue(s) separate real from generated images: {names}. "
                "Check the study's presentation (canvas, fit, jpeg_quality), re-render it with "
                "`manage.py study_render`, or re-import the images so that both groups share size, format and processing."
            )
        self.stdout.write(self.style.SUCCESS("No cue separates real from generated images."))
