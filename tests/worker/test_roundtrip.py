"""A trivial task sent from Django is executed by a real worker process over real Redis."""

from __future__ import annotations

import os

import psutil
import pytest

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_ping_round_trip_through_real_worker(celery_worker):
    from django.db import connection

    from worker.celery import app

    result = app.send_task("worker.tasks.ping", args=["hello"])
    reply = result.get(timeout=60)
    assert reply["token"] == "hello"
    assert reply["database_ok"] is True
    assert reply["database"] == connection.vendor
    # a pool process of the worker subprocess ran it, not this test process
    assert reply["pid"] != os.getpid()
    assert psutil.Process(reply["pid"]).ppid() == celery_worker.process.pid
