"""No log line holds an invitation token: a real gunicorn, as runlab and the documented deployment start it.

A rater walks through a study over HTTP (with a Referer holding the link, a mistyped page
and an unknown link for Django's "Not Found" warnings); then every log is read.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from ratingstudy.lib.processes import free_port, stop_process
from ratingstudy.lib.redact import redact
from ratingstudy.studies.services import raters_create
from tests.ratingstudy.studies.factories import study_make

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_redact_replaces_the_token_in_paths_and_referers():
    line = '127.0.0.1 "GET /r/AbC-d_e1234567890/trial/ HTTP/1.1" 200 "http://h/r/AbC-d_e1234567890/"'
    assert redact(line) == '127.0.0.1 "GET /r/<token>/trial/ HTTP/1.1" 200 "http://h/r/<token>/"'
    assert redact("/results/12/") == "/results/12/"


@pytest.mark.slow
def test_gunicorn_and_django_logs_never_hold_a_token(database_url, tmp_path):
    study = study_make(directory=tmp_path / "images")
    rater = raters_create(study=study, count=1)[0]
    token = rater.token
    logs = tmp_path / "logs"
    logs.mkdir()
    port = free_port()
    env = {
        "DATABASE_URL": database_url,
        "MEDIA_ROOT": settings.MEDIA_ROOT,
        "VAR_DIR": str(tmp_path / "var"),
        "SECRET_KEY": settings.SECRET_KEY,
        "PATH": "/usr/bin:/bin",
    }
    with open(logs / "stderr.log", "wb") as stderr:
        web = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "ratingstudy.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "1",
                "--access-logfile", str(logs / "access.log"), "--error-logfile", str(logs / "error.log"),
                "--logger-class", "ratingstudy.lib.gunicorn_logging.Logger", "--capture-output",
            ],
            cwd=PROJECT_ROOT, env=env, stdout=stderr, stderr=subprocess.STDOUT,
            start_new_session=True,  # stop_process signals the process group: master and worker
        )  # fmt: skip
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    requests.get(f"{base}/health", timeout=5)
                    break
                except requests.RequestException:  # not listening yet, or its worker still booting
                    if time.monotonic() > deadline or web.poll() is not None:
                        raise
                    time.sleep(0.2)
            http = requests.Session()
            link = f"{base}/r/{token}/"
            welcome = http.get(link, headers={"Referer": link})
            assert welcome.status_code == 200 and welcome.headers["Referrer-Policy"] == "no-referrer"
            data = {"role": "pathologist", "years_experience": "3"}
            trial = http.post(link, data=data, headers={"Referer": link, "Origin": "null"})  # as a no-referrer page sends
            assert trial.status_code == 200 and "answer-form" in trial.text, trial.text[:300]
            image = re.search(r'data-image-url="([^"]+)"', trial.text).group(1)
            assert http.get(base + image, headers={"Referer": trial.url}).status_code == 200
            assert http.get(f"{link}nope", headers={"Referer": link}).status_code == 404
            assert http.get(f"{base}/r/{token[:-4]}abcd/", headers={"Referer": link}).status_code == 404
        finally:
            stop_process(web)
    text = "\n".join(path.read_text(errors="replace") for path in logs.iterdir())
    assert "/r/<token>/trial/" in text  # the requests were logged, redacted
    assert "Not Found: /r/<token>/nope" in text  # Django's request logger, redacted too
    assert token not in text and token[:-4] not in text
