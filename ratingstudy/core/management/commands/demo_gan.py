"""``manage.py demo_gan [--minutes M]``: the first-run demo chain, synchronously, in this process.

The same chain that ``make run`` hands to its worker (:mod:`ratingstudy.core.services`):
train the ``demo`` CycleGAN, generate from the held-out demo tiles, evaluate, open the
demo study, print an invitation link. Each job is launched through the jobs app (so it
needs the job broker, ``REDIS_URL``, and shows in the admin) and then run here, like a
worker would run it; a job that a running worker claims first is waited for instead.
Running it again continues an unfinished demo or, when it is done, only prints a link.
"""

from __future__ import annotations

import socket
import threading
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.db.models import Q

from ganlab.recipes import DEMO
from ratingstudy.core.selectors import DEMO_EXPERIMENT, demo_status
from ratingstudy.core.services import demo_advance, demo_invitation, demo_launch
from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Experiment, Job

#: Seconds between progress lines while a job runs, and between looks at other workers' jobs.
REPORT_SECONDS = 15.0
POLL_SECONDS = 1.0
#: Polls without any job to run or wait for before the chain counts as stuck.
STUCK_POLLS = 30


def chain_jobs(experiment: Experiment):
    """Every job of the demo chain: the experiment's and the generate/evaluate jobs after them."""
    return Job.objects.filter(
        Q(experiment=experiment)
        | Q(parent__experiment=experiment)
        | Q(parent__parent__experiment=experiment)
    ).order_by("pk")


class _Reporter(threading.Thread):
    """Writes the demo's status line every :data:`REPORT_SECONDS` while a job runs here."""

    def __init__(self, write, name: str) -> None:
        super().__init__(daemon=True, name="demo-gan-reporter")
        self.write, self.demo, self.stop = write, name, threading.Event()

    def run(self) -> None:
        try:
            while not self.stop.wait(REPORT_SECONDS):
                self.write(demo_status(name=self.demo).message)
        finally:
            connection.close()


class Command(BaseCommand):
    help = (
        "Train the demo CycleGAN, generate, evaluate and open the demo study, in this process; "
        "prints an invitation link."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=float,
            default=None,
            help=f"training time on the reference 2-core CPU (default {DEMO.minutes:g}); it sets "
            "the number of epochs, so a faster machine finishes sooner",
        )
        parser.add_argument(
            "--name", default=DEMO_EXPERIMENT, help="experiment name (default: the lab's demo)"
        )
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="origin of the link")

    def handle(self, *args, **options) -> str:
        name = options["name"]
        try:
            known = Experiment.objects.filter(name=name).exists()
            experiment = demo_launch(minutes=options["minutes"], name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        if known and options["minutes"] is not None:
            self.stderr.write(
                f"experiment {name!r} exists already: continuing it, --minutes is ignored "
                "(use --name for a new demo)"
            )
        host = f"demo_gan@{socket.gethostname()}"
        idle = 0
        while True:
            status = demo_advance(name=name)
            if status.stage == "failed":
                raise CommandError(status.message)
            jobs = chain_jobs(experiment)
            queued = jobs.filter(status=Job.Status.QUEUED).first()
            if queued is not None:
                idle = 0
                self._run(queued, host, name)
                continue
            if status.stage == "ready" and status.evaluation not in (
                Job.Status.QUEUED,
                Job.Status.RUNNING,
            ):
                break
            if jobs.filter(status=Job.Status.RUNNING).exists():
                idle = 0  # a worker elsewhere has it: wait
            else:
                idle += 1
                if idle > STUCK_POLLS:
                    raise CommandError(f"the demo chain is stuck: {status.message}")
            time.sleep(POLL_SECONDS)
        if status.evaluation and status.evaluation != Job.Status.SUCCEEDED:
            raise CommandError(
                f"the demo study is open, but its evaluation (job #{status.job.pk}) "
                f"{status.evaluation}: {status.job.error}"
            )
        try:
            link = demo_invitation(base_url=options["base_url"], name=name)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(self.style.SUCCESS(status.message))
        self.stdout.write(f"rater invitation: {link}")
        return link

    def _run(self, job: Job, host: str, name: str) -> None:
        from worker.runner import run_job  # torch loads here, in this command only

        self.stdout.write(f"running {job} ({job.kind}) here...")
        reporter = _Reporter(self.stdout.write, name)
        reporter.start()
        try:
            outcome = run_job(job.pk, worker_host=host)
        finally:
            reporter.stop.set()
            reporter.join()
        job.refresh_from_db()
        if outcome == "skipped":
            self.stdout.write(f"{job} was taken by another worker; waiting for it")
        else:
            self.stdout.write(f"{job}: {job.status}")
