"""``make run``: migrate, seed the demo, start Redis (embedded unless REDIS_URL is set),
a Celery worker and the web server; Ctrl-C stops them all.

Running it again reuses the database, the demo data and the admin account.
"""

from __future__ import annotations

import io
import os
import secrets
import signal
import subprocess
import sys
import time

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand

from ratingstudy.lib.processes import (
    PROJECT_ROOT,
    redis_answers,
    start_celery_worker,
    start_embedded_redis,
    stop_process,
)


class Command(BaseCommand):
    help = "Start the whole lab (Redis, a Celery worker, the web server) with a seeded demo."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--web-workers", type=int, default=2)

    def _ensure_admin(self) -> str | None:
        User = get_user_model()
        if User.objects.filter(username="admin").exists():
            return None
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        return password

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        call_command("seed_demo")
        invitation = None
        if "seed_demo_study" in get_commands():
            invitation = call_command(
                "seed_demo_study",
                base_url=f"http://{options['host']}:{options['port']}",
                stdout=io.StringIO(),  # the link is printed once, below
            )
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
        if invitation:
            self.stdout.write(f"  rater invitation: {invitation}")
        self.stdout.write(f"  broker: {redis_url}   logs: {log_dir}")
        self.stdout.write("Press Ctrl-C to stop everything.\n")

        stopping = False

        def _stop(signum, frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, _stop)
        signal.signal(signal.SIGTERM, _stop)
        try:
            while not stopping:
                for name, proc in children:
                    if proc.poll() is not None:
                        self.stderr.write(
                            f"{name} exited with code {proc.returncode}; stopping (see {log_dir})"
                        )
                        stopping = True
                time.sleep(0.5)
        finally:
            for name, proc in reversed(children):
                stop_process(proc)
                self.stdout.write(f"stopped {name}")
