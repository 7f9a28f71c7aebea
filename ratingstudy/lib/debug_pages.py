"""Django's debug pages, in development, only for a browser on this machine.

With ``DEBUG`` on, Django answers an error with a *technical* page: the 500 page
(traceback, local variables, settings, request headers and cookies, also sent
with status 400 for a bad request or a disallowed Host header) and the 404 page
(every URL pattern of the site). A development server reachable from the
network would show them to anyone. :class:`LocalDebugPagesMiddleware` gives a
request that does not come from a loopback address the page Django serves with
``DEBUG`` off (the project's ``handler400/404/500``, Django's plain ones by
default), with the same status code; a request from ``127.0.0.1`` or ``::1``
still gets the technical page. A request that came through a proxy (it carries
``X-Forwarded-For``, ``Forwarded`` or ``X-Real-IP``) counts as remote: the proxy
is local, its client may not be, and those headers can be forged, so they are
never trusted to prove a client local.

Why a middleware that installs a per-request exception reporter, and not only a
``process_exception`` hook or a site-wide ``DEFAULT_EXCEPTION_REPORTER``:

* ``process_exception`` sees only exceptions raised by views. A disallowed Host
  header (``DisallowedHost``, raised by ``CommonMiddleware``), or any other error in
  a middleware, is turned into a technical page by the handler before any
  middleware hook sees it. ``request.exception_reporter_class`` is read by
  ``technical_500_response`` wherever the exception came from, so a reporter that
  renders the plain page covers all of them. Django keeps logging the error with
  its traceback and sending ``got_request_exception``, as without this middleware.
* A site-wide reporter would also change the reports for local requests, and it
  cannot help with 404s: ``technical_404_response`` uses no reporter. A view's
  ``Http404`` is caught in ``process_exception`` (answered as with ``DEBUG``
  off), and a path that matches no URL pattern is recognised after the response:
  a 404 for a path the URLconf does not resolve.

It sits right after ``SecurityMiddleware`` so that every other middleware runs
inside it. With ``DEBUG`` off (and production refuses ``DEBUG``, see settings) it
does nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import BadRequest, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import Resolver404, get_resolver, get_urlconf, resolve
from django.views.debug import ExceptionReporter

_FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def request_is_local(request: HttpRequest) -> bool:
    """Whether the client is this machine: a loopback ``REMOTE_ADDR``, not through a proxy."""
    if any(header in request.META for header in _FORWARDING_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:  # empty (a Unix socket) or garbage: not known to be local
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1
    return address.is_loopback


def plain_error_response(
    request: HttpRequest, *, status: int, exception: Exception | None = None
) -> HttpResponse:
    """The response Django gives with ``DEBUG`` off for ``status`` (400, 403, 404 or 500)."""
    handler = get_resolver(get_urlconf()).resolve_error_handler(status)
    if status == 500:
        return handler(request)
    return handler(request, exception=exception)


class _PlainPageReporter(ExceptionReporter):
    """Renders the plain 400/500 page where ``technical_500_response`` asks for a traceback."""

    def _plain(self) -> tuple[int, str, str]:
        bad_request = self.exc_type is not None and issubclass(
            self.exc_type, (BadRequest, SuspiciousOperation)
        )
        status, reason = (400, "Bad Request") if bad_request else (500, "Server Error")
        try:
            response = plain_error_response(self.request, status=status, exception=self.exc_value)
            html = response.content.decode(response.charset)
        except Exception:  # a broken error template must not bring the traceback back
            html = f"<h1>{reason} ({status})</h1>"
        return status, reason, html

    def get_traceback_html(self) -> str:
        return self._plain()[2]

    def get_traceback_text(self) -> str:
        status, reason, _ = self._plain()
        return f"{reason} ({status})\n"


def _path_resolves(request: HttpRequest) -> bool:
    try:
        resolve(request.path_info, urlconf=getattr(request, "urlconf", None))
    except Resolver404:
        return False
    return True


class LocalDebugPagesMiddleware:
    """With ``DEBUG`` on, serve the technical error pages to loopback clients only."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def _applies(request: HttpRequest) -> bool:
        return settings.DEBUG and not request_is_local(request)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not self._applies(request):
            return self.get_response(request)
        request.exception_reporter_class = _PlainPageReporter
        response = self.get_response(request)
        if response.status_code == 404 and not _path_resolves(request):
            return plain_error_response(request, status=404, exception=Http404())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if isinstance(exception, Http404) and self._applies(request):
            return plain_error_response(request, status=404, exception=exception)
        return None
