"""The web process stays light: loading every URL and view never imports torch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import sys, django
django.setup()
from django.urls import get_resolver
import ratingstudy.urls, ratingstudy.wsgi  # noqa
import worker.celery  # the web process sends tasks through it
resolver = get_resolver()
resolver.url_patterns  # imports every included URLconf and its views
import django.contrib.admin
django.contrib.admin.autodiscover()
bad = sorted(m for m in sys.modules if m == "torch" or m.startswith(("torch.", "torchvision")))
print("TORCH:" + ",".join(bad[:5]))
"""


def test_urlconf_admin_and_celery_app_do_not_import_torch():
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "ratingstudy.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "TORCH:\n" in result.stdout, result.stdout


@pytest.mark.django_db
def test_home_and_health(client):
    assert client.get("/").status_code == 200
    assert client.get("/health").json() == {"status": "ok"}
