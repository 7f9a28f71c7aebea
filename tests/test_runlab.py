"""`make run` (manage.py runlab) end to end: real Redis, worker, web server, the demo GAN, Ctrl-C.

The demo's training budget is cut to one epoch (``--demo-minutes``) so that its whole chain,
trained by the lab's own worker, opens the demo study within the test.
"""

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


def read_until(proc: subprocess.Popen, text: str, *, timeout: float, output: str = "") -> str:
    """The lab's output up to and including the line holding ``text``."""
    deadline = time.monotonic() + timeout
    while text not in output:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"runlab never printed {text!r}:\n{output}")
        output += line
    return output


def start_lab(var: Path, port: int) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"VAR_DIR": str(var), "PYTHONUNBUFFERED": "1"})
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runlab", "--port", str(port), "--web-workers", "1",
         "--demo-minutes", "0.01"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    output = read_until(proc, "Press Ctrl-C", timeout=120)
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
        broker = re.search(r"broker: (\S+)", output).group(1)
        # the first run hands the demo GAN to the worker; no placeholder study, no link yet
        assert "rater invitation:" not in output and "demo: " in output
        assert re.search(r"watch it at http://127\.0\.0\.1:\d+/admin/jobs/job/\d+/change/", output)
        home = requests.get(base + "/")
        assert home.status_code == 200 and "demo CycleGAN" in home.text
        # the worker trains, generates both directions; the lab opens the study and prints a link
        output = read_until(proc, "rater invitation:", timeout=600, output=output)
        assert "demo study open" in output
        invitation = re.search(r"rater invitation: (\S+)", output).group(1)
        assert requests.get(invitation).status_code == 200
        assert "The demo study is open" in requests.get(base + "/").text
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
        assert "demo: The demo study is open" in output and "watch it at" not in output
        # Only token hashes are stored: the demo rater's link is re-issued, and the old one stops working.
        reissued = re.search(r"rater invitation: (\S+)", output).group(1)
        assert reissued != invitation
        assert requests.get(reissued).status_code == 200
        assert requests.get(invitation).status_code == 404
    finally:
        stop_lab(proc)
