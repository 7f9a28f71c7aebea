"""The documented deployment: nginx in front, sending the rater images itself (X-Accel-Redirect).

A real nginx (Debian's package; .ci/run installs it) proxies to Django's live server; the
blinding audit fetches every image through it as a browser would.
"""

from __future__ import annotations

import pytest
import requests
from django.core.files.storage import default_storage
from django.urls import reverse

from ratingstudy.lib.nginx import ACCEL_PREFIX, Nginx, site_config
from ratingstudy.lib.processes import free_port
from ratingstudy.studies.blinding import blinding_audit
from ratingstudy.studies.models import Trial
from ratingstudy.studies.services import rater_profile_update, raters_create, session_start
from tests.ratingstudy.studies.factories import breakhis_like_sources, breakhis_like_study


@pytest.fixture
def nginx(live_server, settings, tmp_path):
    settings.RATER_IMAGE_ACCEL_PREFIX = ACCEL_PREFIX
    proxy = Nginx(
        run_dir=tmp_path / "nginx",
        port=free_port(),
        upstream=live_server.url.removeprefix("http://"),
        media_root=settings.MEDIA_ROOT,
        static_root=settings.STATIC_ROOT,
    ).start()
    yield proxy
    proxy.stop()


def test_behind_nginx_images_come_from_nginx_and_still_tell_nothing(nginx, tmp_path):
    study = breakhis_like_study(breakhis_like_sources(tmp_path / "sources"))
    rater = raters_create(study=study, count=1)[0]
    rater_profile_update(rater=rater, role="pathologist", years_experience=3, specialty="", consented=True)
    session_start(rater=rater)
    http = requests.Session()
    headers = []
    for trial in Trial.objects.filter(session__rater=rater).order_by("index")[:6]:
        url = nginx.url + reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token})
        served = http.get(url, timeout=30)
        assert served.status_code == 200 and served.headers["Server"] == "nginx"
        with default_storage.open(trial.render, "rb") as stored:
            assert served.content == stored.read()
        assert "X-Accel-Redirect" not in served.headers  # nginx acts on it and drops it
        assert served.headers["Content-Type"] == "image/png" and served.headers["Content-Disposition"] == "inline"
        assert served.headers["X-Content-Type-Options"] == "nosniff" and served.headers["Referrer-Policy"] == "no-referrer"
        assert "ETag" not in served.headers
        headers.append({k: v for k, v in served.headers.items() if k not in ("Date",)})
    # One set of headers for every image, Last-Modified included (every served file has one date).
    assert all(h == headers[0] for h in headers), headers
    # The files themselves cannot be asked for by name: the location is internal.
    assert http.get(nginx.url + ACCEL_PREFIX + trial.render, timeout=10).status_code == 404

    report = blinding_audit(study=study, base_url=nginx.url)
    assert report.n_real and report.n_generated
    assert not report.flagged, [cue.name for cue in report.flagged]


def test_printed_site_config_names_the_internal_location(tmp_path):
    config = site_config(listen="8080", upstream="127.0.0.1:8000", media_root=tmp_path / "m", static_root=tmp_path / "s")
    assert f"location {ACCEL_PREFIX} {{\n            internal;" in config
    assert f"alias {(tmp_path / 'm').resolve()}/;" in config and "proxy_pass http://ganlab;" in config
