"""``make run``: migrate, start Redis (embedded unless REDIS_URL is set), a Celery worker
and the web server, and hand the worker the demo; Ctrl-C stops them all.

The demo (:mod:`ratingstudy.core.services`): on the first run the worker trains a small
CycleGAN on the demo tiles, generates from the held-out ones and evaluates them, and
this process opens the demo study from their output and prints a rater invitation link
as soon as it exists. Running it again reuses the database, the demo and the admin
account (an unfinished demo continues where it stopped).
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from ganlab.recipes import DEMO
from ratingstudy.core.services import demo_advance, demo_image_set, demo_invitation, demo_launch
from ratingstudy.errors import ApplicationError
from ratingstudy.lib.processes import (
    PROJECT_ROOT,
    redis_answers,
    start_celery_worker,
    start_embedded_redis,
    stop_process,
)

#: How often the running lab moves the demo on (opens its study once the GAN's images exist).
DEMO_CHECK_SECONDS = 2.0


class Command(BaseCommand):
    help = "Start the whole lab (Redis, a Celery worker, the web server) and its demo GAN."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)
        parser.add_argument(
            "--demo-minutes",
            type=float,
            default=DEMO.minutes,
            help="training time of the demo GAN on a 2-core CPU, when it is first launched "
            f"(default {DEMO.minutes:g}; it sets the number of epochs)",
        )

    def _ensure_admin(self) -> str | None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return None
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        return password

    def _use_broker(self, url: str) -> None:
        """This process launches the demo's jobs: point its Celery app at the lab's Redis."""
        from worker.celery import app  # light: imports no torch

        settings.REDIS_URL = url
        app.conf.broker_url = url
        app.conf.result_backend = url

    def _demo_start(self, base: str, minutes: float) -> bool:
        """Launch the demo unless it exists; print its link or what it is doing.

        Returns whether the running lab should keep moving it on.
        """
        try:
            demo_launch(minutes=minutes)
            status = demo_advance()
        except ApplicationError as exc:
            self.stderr.write(f"  demo: could not launch it: {exc.message}")
            return False
        self.stdout.write(f"  demo: {status.message}")
        if status.study is not None:
            self.stdout.write(f"  rater invitation: {demo_invitation(base_url=base)}")
            return False
        if status.job is not None:
            self.stdout.write(f"          watch it at {base}/admin/jobs/job/{status.job.pk}/change/")
        if status.stage == "failed":
            return False
        self.stdout.write("          the rater invitation link is printed here when the demo study opens")
        return True

    def _demo_advance(self, base: str) -> bool:
        """One step of the demo; prints the link when its study opens. Whether to keep going."""
        try:
            status = demo_advance()
            if status.study is not None:
                self.stdout.write(self.style.SUCCESS(f"demo study open: {status.message}"))
                self.stdout.write(f"  rater invitation: {demo_invitation(base_url=base)}")
                return False
        except Exception as exc:  # the lab keeps running; the demo only stops advancing
            self.stderr.write(f"demo: stopped advancing it ({type(exc).__name__}: {exc})")
            return False
        if status.stage == "failed":
            self.stderr.write(f"demo: {status.message}")
            return False
        return True

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        demo_image_set()
        password = self._ensure_admin()

        children: list[tuple[str, subprocess.Popen]] = []
        redis_url = settings.REDIS_URL
        if redis_url:
            if not redis_answers(redis_url):
                self.stderr.write(
                    f"REDIS_URL={redis_url} does not answer; start it or unset REDIS_URL"
                )
                sys.exit(1)
        else:
            redis = start_embedded_redis(
                settings.VAR_DIR / "redis", port=int(os.environ.get("REDIS_PORT", "0")) or None
            )
            redis_url = redis.url
            children.append(("redis", redis.process))
        self._use_broker(redis_url)
        env = {"REDIS_URL": redis_url, "PYTHONUNBUFFERED": "1"}
        log_dir = settings.VAR_DIR / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        children.append(("worker", start_celery_worker(env=env, log_file=log_dir / "worker.log")))
        web = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "ratingstudy.wsgi",
                "--bind",
                f"{options['host']}:{options['port']}",
                "--workers",
                str(options["web_workers"]),
                "--access-logfile",
                str(log_dir / "access.log"),
                "--logger-class",
                "ratingstudy.lib.gunicorn_logging.Logger",
                "--error-logfile",
                str(log_dir / "web.log"),
            ],
            cwd=PROJECT_ROOT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        children.append(("web", web))

        base = f"http://{options['host']}:{options['port']}"
        self.stdout.write(self.style.SUCCESS(f"\nGAN rating lab running at {base}/"))
        self.stdout.write(f"  admin:  {base}/admin/  user: admin")
        if password:
            self.stdout.write(
                f"          password: {password}   (shown once; change with manage.py changepassword admin)"
            )
        else:
            self.stdout.write(
                "          password: set on first run (reset with: .venv/bin/python manage.py changepassword admin)"
            )
        demo = self._demo_start(base, options["demo_minutes"])
        self.stdout.write(f"  broker: {redis_url}   logs: {log_dir}")
        self.stdout.write("Press Ctrl-C to stop everything.\n")

        stopping = False

        def _stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            next_demo_check = time.monotonic()
            while not stopping:
                for name, proc in children:
                    if proc.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with code {proc.returncode}; stopping (see {log_dir})"
                        )
                        stopping = True
                if demo and time.monotonic() >= next_demo_check:
                    demo = self._demo_advance(base)
                    next_demo_check = time.monotonic() + DEMO_CHECK_SECONDS
                time.sleep(0.5)
        finally:
            for name, proc in reversed(children):
                stop_process(proc)
                self.stdout.write(f"stopped {name}")
