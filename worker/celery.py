"""The Celery application.

Imported by the web process to enqueue tasks *by name* (``app.send_task``), so it
must stay light: it imports no torch and not ``worker.tasks``. Workers start with
``celery -A worker.celery worker -Q gpu,cpu --concurrency 1`` and load the tasks
through ``include``. Every ``CELERY_*`` Django setting configures it.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")

app = Celery("ratingstudy", include=["worker.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")
