from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from ratingstudy.catalog.models import ImageSet
from ratingstudy.core.selectors import demo_status


def home(request: HttpRequest) -> HttpResponse:
    """Landing page: raters arrive through invitation links, researchers through the admin."""
    context = {
        "image_sets": ImageSet.objects.all()[:20] if request.user.is_staff else [],
        "demo": demo_status(),  # what the first-run demo GAN is doing
    }
    return render(request, "core/home.html", context)


def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})

