"""Thin Celery tasks: ids in, results written through ratingstudy services.

Heavy imports (torch, ganlab training) happen inside the task bodies so that a
worker starts fast and the web process, which only sends tasks by name, never
loads them.
"""

from __future__ import annotations

import os
import socket
import sys

from worker.celery import app


@app.task(name="worker.tasks.ping")
def ping(token: str) -> dict:
    """Round-trip check: proves the broker, a worker process and its database."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {
        "token": token,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "database": connection.vendor,
        "database_ok": one == 1,
        "torch_loaded": "torch" in sys.modules,
    }
