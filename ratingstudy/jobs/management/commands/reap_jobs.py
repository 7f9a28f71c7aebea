"""Find running jobs whose worker vanished; resume them or mark them failed (cron-friendly)."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from ratingstudy.jobs.services import jobs_reap_stale


class Command(BaseCommand):
    help = "Re-queue (or fail, after JOB_MAX_ATTEMPTS) running jobs with no heartbeat for JOB_STALE_SECONDS."

    def handle(self, *args, **options):
        reaped = jobs_reap_stale()
        for job in reaped:
            self.stdout.write(
                f"job #{job.pk}: {job.status} ({job.error or 'resumed from its checkpoint'})"
            )
        self.stdout.write(f"{len(reaped)} lost job(s) handled")
