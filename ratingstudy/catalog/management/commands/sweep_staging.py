"""Remove what killed imports left in the storage's staging folder.

Every import already does this when it starts; run it by hand (or from cron) after
a crash, or on a machine that imports rarely::

    manage.py sweep_staging
    manage.py sweep_staging --max-age-hours 2   # folders whose owner this machine cannot check

A folder is removed when its import is known to have ended (same machine, its
process gone), or, when its owner runs on another machine sharing the storage,
once it is older than ``--max-age-hours``. Files an import had already moved into
``images/`` are removed too unless a committed row uses them (see
:mod:`ratingstudy.catalog.staging`).
"""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.catalog.staging import DEFAULT_MAX_AGE, staging_sweep


class Command(BaseCommand):
    help = "Remove the staging folders (and unreferenced published files) of imports that died."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--max-age-hours",
            type=float,
            default=DEFAULT_MAX_AGE.total_seconds() / 3600,
            help="sweep folders whose owner cannot be checked from this machine once they are "
            "this old (default %(default)g); folders of imports known to be dead go at once",
        )

    def handle(self, *args, **options) -> None:
        hours = options["max_age_hours"]
        if hours <= 0:
            raise CommandError(f"--max-age-hours must be more than 0, got {hours:g}")
        report = staging_sweep(max_age=timedelta(hours=hours))
        for import_id in report.removed:
            self.stdout.write(f"removed staging/{import_id}")
        for import_id in report.kept:
            self.stdout.write(f"kept staging/{import_id} (its import is running or too recent)")
        if report.failed:
            listed = "\n  ".join(f"staging/{i}: {reason}" for i, reason in report.failed.items())
            raise CommandError(
                f"{len(report.failed)} staging folder(s) could not be removed:\n  {listed}\n"
                "fix the storage error (permissions, connectivity) and run sweep_staging again"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"swept {len(report.removed)} staging folder(s) of dead imports, deleted "
                f"{report.published_files_deleted} published file(s) no row uses; "
                f"kept {len(report.kept)}"
            )
        )
