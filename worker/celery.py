"""The Celery application.

Imported by the web process to enqueue tasks *by name* (``app.send_task``), so it
must stay light: it imports no torch and not ``worker.tasks``. Workers start with
``celery -A worker.celery worker -Q gpu,cpu --concurrency 1`` and load the tasks
(and the ``lab_status`` monitoring command, and the results snapshot task) through ``include``. Every ``CELERY_*``
Django setting configures it.

The broker is Redis at ``REDIS_URL``. Celery's own default broker is AMQP on
localhost: a web process started without ``REDIS_URL`` would queue jobs there and
nobody would ever run them. :class:`LabCelery` refuses to open any broker
connection without a configured URL instead, with a message that says what to do.

A starting worker sizes torch's CPU thread pools to its share of the cores before its
pool forks (:mod:`worker.threads`), so that CPU jobs never oversubscribe the machine.
"""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import celeryd_after_setup

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")

BROKER_MISSING = (
    "REDIS_URL is not set, so there is no job broker to send jobs through (the lab never falls "
    "back to Celery's default amqp://localhost). Start Redis — `make run` starts an embedded "
    "one, or run `redis-server --port 6379` — and set REDIS_URL=redis://127.0.0.1:6379/0 for "
    "the web process and every worker."
)


class BrokerNotConfigured(RuntimeError):
    """No broker URL is configured (``REDIS_URL`` is unset)."""

    def __init__(self) -> None:
        super().__init__(BROKER_MISSING)


class LabCelery(Celery):
    """Celery that opens no connection to an unconfigured broker (see module docstring)."""

    def broker_required(self) -> str:
        """The configured broker URL; raises :class:`BrokerNotConfigured` when there is none."""
        url = self.conf.broker_url
        if not url:
            raise BrokerNotConfigured
        return url

    def connection_for_read(self, url=None, **kwargs):
        if not (url or self.conf.broker_read_url):
            raise BrokerNotConfigured
        return super().connection_for_read(url, **kwargs)

    def connection_for_write(self, url=None, **kwargs):
        if not (url or self.conf.broker_write_url):
            raise BrokerNotConfigured
        return super().connection_for_write(url, **kwargs)


app = LabCelery("ratingstudy", include=["worker.tasks", "worker.monitor", "ratingstudy.results.tasks"])
app.config_from_object("django.conf:settings", namespace="CELERY")


@celeryd_after_setup.connect
def _torch_threads_configure(sender, instance, **_kwargs) -> None:
    """In a starting worker's main process, before the pool forks (see :mod:`worker.threads`)."""
    from worker.threads import threads_configure

    threads_configure(concurrency=instance.concurrency)
