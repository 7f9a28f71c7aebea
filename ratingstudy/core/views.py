from __future__ import annotations

from functools import cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.cache import cache_control

from ratingstudy.catalog.models import ImageSet


def home(request: HttpRequest) -> HttpResponse:
    """Landing page: raters arrive through invitation links, researchers through the admin."""
    context = {"image_sets": ImageSet.objects.all()[:20] if request.user.is_staff else []}
    return render(request, "core/home.html", context)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@cache
def _plotly_js() -> bytes:
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_bytes()


@cache_control(public=True, max_age=86400)
def plotly_js(request: HttpRequest) -> HttpResponse:
    """plotly.js from the installed plotly package: charts work offline, no CDN."""
    return HttpResponse(_plotly_js(), content_type="text/javascript; charset=utf-8")
