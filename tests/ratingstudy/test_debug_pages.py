"""Debug pages: never in production; in development only for a browser on this machine.

This module is also the test URLconf: views that fail in the ways Django has a
technical page for, each with a marker that only the technical page would show.
"""

from __future__ import annotations

import pytest
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.test import Client, override_settings
from django.urls import path

from tests.ratingstudy.test_settings import _manage

SECRET = "marker-only-a-debug-page-shows"


def _server_error(request: HttpRequest) -> HttpResponse:
    raise RuntimeError(SECRET)


def _not_found(request: HttpRequest) -> HttpResponse:
    raise Http404(SECRET)


def _suspicious(request: HttpRequest) -> HttpResponse:
    raise SuspiciousOperation(SECRET)


urlpatterns = [
    path("server-error/", _server_error),
    path("not-found/", _not_found),
    path("suspicious/", _suspicious),
]

REMOTE = ["192.0.2.10", "2001:db8::1", "", "not-an-address"]
LOCAL = ["127.0.0.1", "127.0.1.1", "::1", "::ffff:127.0.0.1"]

debug_on = override_settings(DEBUG=True, ROOT_URLCONF=__name__)


def _get(path: str, *, remote_addr: str, **headers: str):
    client = Client(raise_request_exception=False, REMOTE_ADDR=remote_addr)
    return client.get(path, **headers)


def _plain(path: str, **headers: str) -> bytes:
    """The page Django serves for ``path`` with DEBUG off."""
    with override_settings(DEBUG=False):
        return _get(path, remote_addr="127.0.0.1", **headers).content


def _is_technical(response) -> bool:
    body = response.content.decode()
    return SECRET in body or "DEBUG = True" in body or "URLconf" in body


@debug_on
@pytest.mark.parametrize("remote_addr", REMOTE)
@pytest.mark.parametrize(
    ("url", "status", "heading"),
    [("/server-error/", 500, "Server Error (500)"), ("/suspicious/", 400, "Bad Request (400)")],
)
def test_remote_request_gets_the_plain_error_page(remote_addr, url, status, heading):
    response = _get(url, remote_addr=remote_addr)
    assert response.status_code == status
    assert f"<h1>{heading}</h1>" in response.content.decode()
    assert response.content == _plain(url)
    assert not _is_technical(response)


@debug_on
@pytest.mark.parametrize("remote_addr", REMOTE)
@pytest.mark.parametrize("url", ["/not-found/", "/no-such-page/"])
def test_remote_request_gets_the_plain_not_found_page(remote_addr, url):
    response = _get(url, remote_addr=remote_addr)
    assert response.status_code == 404
    assert b"<h1>Not Found</h1>" in response.content
    assert response.content == _plain(url)
    assert not _is_technical(response)
    assert b"server-error" not in response.content  # no list of URL patterns


@debug_on
@pytest.mark.parametrize("remote_addr", LOCAL)
@pytest.mark.parametrize(
    ("url", "status"),
    [("/server-error/", 500), ("/suspicious/", 400), ("/not-found/", 404), ("/no-such-page/", 404)],
)
def test_local_request_still_gets_the_technical_page(remote_addr, url, status):
    response = _get(url, remote_addr=remote_addr)
    assert response.status_code == status
    assert _is_technical(response)


@debug_on
def test_local_request_gets_the_traceback_as_text_when_it_asks_for_text():
    local = _get("/server-error/", remote_addr="127.0.0.1", HTTP_ACCEPT="text/plain")
    remote = _get("/server-error/", remote_addr="192.0.2.10", HTTP_ACCEPT="text/plain")
    assert SECRET in local.content.decode() and "Traceback" in local.content.decode()
    assert remote.status_code == 500 and remote.content == b"Server Error (500)\n"


@debug_on
@pytest.mark.parametrize("header", ["HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP"])
def test_request_through_a_local_proxy_counts_as_remote(header):
    response = _get("/server-error/", remote_addr="127.0.0.1", **{header: "127.0.0.1"})
    assert response.status_code == 500 and response.content == _plain("/server-error/")


@debug_on
def test_disallowed_host_from_another_machine_gets_no_settings_dump():
    """Raised in CommonMiddleware, before any view: no process_exception hook sees it."""
    local = _get("/server-error/", remote_addr="127.0.0.1", HTTP_HOST="lab.attacker.example")
    remote = _get("/server-error/", remote_addr="192.0.2.10", HTTP_HOST="lab.attacker.example")
    assert local.status_code == remote.status_code == 400
    assert "DisallowedHost" in local.content.decode()
    assert remote.content == _plain("/server-error/", HTTP_HOST="lab.attacker.example")
    assert not _is_technical(remote)


PRODUCTION = {
    "DJANGO_ENV": "production",
    "SECRET_KEY": "k" * 10 + "3vQ!x9#Lp0sZrT7@wYb2&nM5^eJ8*uC1(dF4)gH6_iK+oA=lR",
    "ALLOWED_HOSTS": "lab.example.org",
}


def test_production_refuses_to_start_with_debug_on(tmp_path):
    result = _manage(["check"], {**PRODUCTION, "DEBUG": "1"}, tmp_path)
    assert result.returncode != 0
    assert "DEBUG is on with DJANGO_ENV=production" in result.stderr
    assert "unset DEBUG" in result.stderr


def test_production_serves_plain_error_pages_even_to_this_machine(tmp_path):
    script = (
        "from django.conf import settings\n"
        "from django.test import Client, override_settings\n"
        "print('DEBUG', settings.DEBUG)\n"
        "client = Client(raise_request_exception=False, HTTP_HOST='lab.example.org')\n"
        f"with override_settings(ROOT_URLCONF={__name__!r}):\n"
        "    for url in ('/server-error/', '/suspicious/', '/not-found/', '/no-such-page/'):\n"
        "        response = client.get(url, secure=True, REMOTE_ADDR='127.0.0.1')\n"
        "        print(url, response.status_code, response.content.decode().replace('\\n', ' '))\n"
    )
    result = _manage(["shell", "--no-imports", "-c", script], PRODUCTION, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "DEBUG False"
    expected = {
        "/server-error/": "500 <h1>Server Error (500)</h1>",
        "/suspicious/": "400 <h1>Bad Request (400)</h1>",
        "/not-found/": "404 <h1>Not Found</h1>",
        "/no-such-page/": "404 <h1>Not Found</h1>",
    }
    pages = dict(line.split(" ", 1) for line in lines[1:])
    assert set(pages) == set(expected)
    for url, page in pages.items():
        status, heading = expected[url].split(" ", 1)
        assert page.startswith(status) and heading in page
        assert SECRET not in page and "Traceback" not in page and "URLconf" not in page
