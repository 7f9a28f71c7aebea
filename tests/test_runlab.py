"""`make run` (manage.py runlab) end to end: real Redis, worker, web server, demo, Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from ratingstudy.lib.processes import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def start_lab(var: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runlab", "--port", str(port), "--web-workers", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output = ""
    deadline = time.monotonic() + 120
    while "Press Ctrl-C" not in output:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"runlab did not start:\n{output}")
        output += line
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/health", timeout=10).status_code == 200:
                break
        except (requests.ConnectionError, requests.Timeout):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"web server did not answer:\n{output}")
        time.sleep(0.2)
    return proc, output


def stop_lab(proc: subprocess.Popen) -> str:
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=90)
    gone, alive = psutil.wait_procs(children, timeout=30)
    assert not alive, f"children left running: {alive}"
    return rest


def test_make_run_serves_site_admin_worker_and_stops_cleanly(tmp_path):
    port = free_port()
    proc, output = start_lab(tmp_path, port)
    base = f"http://127.0.0.1:{port}"
    try:
        password = re.search(r"password: (\S+)", output).group(1)
        invitation = re.search(r"rater invitation: (\S+)", output).group(1)
        broker = re.search(r"broker: (\S+)", output).group(1)
        assert requests.get(base + "/").status_code == 200
        assert requests.get(invitation).status_code == 200
        # the admin login works with the printed password
        browser = requests.Session()
        login = browser.get(base + "/admin/login/")
        csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text).group(1)
        page = browser.post(
            base + "/admin/login/?next=/admin/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": csrf},
            headers={"Referer": base + "/admin/login/"},
        )
        assert page.status_code == 200 and "Site administration" in page.text
        # a Celery round trip through the embedded Redis and the lab's worker
        from celery import Celery

        client = Celery(broker=broker, backend=broker)
        reply = client.send_task("worker.tasks.ping", args=["from-test"], queue="cpu").get(
            timeout=60
        )
        assert reply["token"] == "from-test" and reply["database_ok"]
    finally:
        rest = stop_lab(proc)
    assert "stopped web" in rest and "stopped worker" in rest and "stopped redis" in rest

    # a second run reuses everything: no new password, the demo is not duplicated
    proc, output = start_lab(tmp_path, port)
    try:
        assert "password: set on first run" in output
        assert "already exists; kept as is" in output
        # Only token hashes are stored: the demo rater's link is re-issued, and the old one stops working.
        reissued = re.search(r"rater invitation: (\S+)", output).group(1)
        assert reissued != invitation
        assert requests.get(reissued).status_code == 200
        assert requests.get(invitation).status_code == 404
    finally:
        stop_lab(proc)
