"""Middleware that plants one server-side cue for generated images (blinding audit tests only)."""

from __future__ import annotations

import time

from django.urls import resolve

from ratingstudy.catalog.models import ImageSet
from ratingstudy.studies.models import Trial


def _is_generated_image(request) -> bool:
    match = resolve(request.path_info)
    if match.view_name != "studies:image":
        return False
    trial = Trial.objects.select_related("image__image_set").get(token=match.kwargs["trial_token"])
    return trial.image.image_set.kind == ImageSet.Kind.GENERATED


class HeaderCue:
    """Tags generated images with a header, as a misconfigured proxy or debug toolbar might."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if _is_generated_image(request):
            response["X-Served-By"] = "render-cache-miss"
        return response


class TimingCue:
    """Answers generated images later, as rendering them on the first request did."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if _is_generated_image(request):
            time.sleep(0.03)
        return self.get_response(request)
