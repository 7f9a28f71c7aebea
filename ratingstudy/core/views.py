from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from ratingstudy.catalog.models import ImageSet


def home(request: HttpRequest) -> HttpResponse:
    """Landing page: raters arrive through invitation links, researchers through the admin."""
    context = {"image_sets": ImageSet.objects.all()[:20] if request.user.is_staff else []}
    return render(request, "core/home.html", context)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})

