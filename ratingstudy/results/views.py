"""Staff-only results: the study page, its polled JSON, the exports and plotly.js.

Views are thin: parse the query string into :class:`ResultFilters`, call one selector,
render or stream. Everything here requires a staff login (anyone else is sent to the admin
login), and each study page the role's permission (``studies.view_results`` to read,
``studies.export_results`` for rater-level exports) on a study the user owns or
collaborates on (:func:`study_access`); anything else is a 403.
"""

from __future__ import annotations

import hashlib
import math
from functools import wraps
from pathlib import Path

import numpy as np
from django.contrib.admin.views.decorators import staff_member_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.template.loader import render_to_string
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from ratingstudy.errors import ApplicationError
from ratingstudy.results import export_selectors, protocols, selectors
from ratingstudy.results.analyses import marks_by_group, protocol_answers
from ratingstudy.results.checks import study_check_outcomes
from ratingstudy.results.exports import streaming_response
from ratingstudy.results.manifest_selectors import study_manifest
from ratingstudy.results.services import refresh_waiting_seconds, results_snapshot_current
from ratingstudy.studies.models import Study
from ratingstudy.studies.selectors import studies_visible_to

#: Seconds between two polls of the results page (the page reads it from the markup).
POLL_SECONDS = 10
#: How long computed results are kept (they are also keyed by the data version).
CACHE_SECONDS = 600
FORMATS = ("csv", "json")


def _flag(request: HttpRequest, name: str) -> bool:
    return request.GET.get(name, "").lower() in ("1", "true", "on", "yes")


def _width(request: HttpRequest, name: str, default: float, *, upper: float) -> float:
    raw = request.GET.get(name, "")
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ApplicationError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or not 0 < value <= upper:
        raise ApplicationError(f"{name} must be above 0 and at most {upper:g}, got {raw}")
    return value


def filters_from_request(request: HttpRequest) -> selectors.ResultFilters:
    """``?include_practice=1&include_failed=1&mos_width=0.4&share_width=0.1``."""
    defaults = selectors.ResultFilters()
    return selectors.ResultFilters(
        include_practice=_flag(request, "include_practice"),
        include_failed_checks=_flag(request, "include_failed"),
        mos_width=_width(request, "mos_width", defaults.mos_width, upper=4.0),
        share_width=_width(request, "share_width", defaults.share_width, upper=1.0),
    )


def _results(study: Study, filters: selectors.ResultFilters) -> tuple[str, dict, dict | None]:
    """``(data version, study_results, freshness)``.

    The default view comes from the study's stored snapshot (:func:`results_snapshot_current`:
    recomputed by a ``cpu`` job when the data change, never on a view) with its freshness.
    Other filters are computed on demand and cached until the data version changes; their
    freshness is None (they are always current).
    """
    version = selectors.study_data_version(study=study)
    if filters == selectors.ResultFilters():
        snapshot = results_snapshot_current(study=study, version=version)
        stale = snapshot.data_version != version.key
        waiting = refresh_waiting_seconds(study_id=study.pk) if stale else None
        freshness = selectors.snapshot_freshness(snapshot=snapshot, version=version, now=timezone.now(), waiting_seconds=waiting)
        return snapshot.data_version, snapshot.results, freshness
    options = hashlib.sha256(repr(sorted(filters.as_dict().items())).encode()).hexdigest()[:16]
    key = f"results:{study.pk}:{version.key}:{options}"
    results = cache.get(key)
    if results is None:
        results = selectors.study_results(study=study, filters=filters)
        cache.set(key, results, CACHE_SECONDS)
    return version.key, results, None


def study_access(permission: str):
    """Staff with ``permission`` on a study they may see; the view gets the study instead of its id."""

    def decorate(view):
        @staff_member_required
        @wraps(view)
        def wrapper(request: HttpRequest, study_id: int, **kwargs) -> HttpResponse:
            study = get_object_or_404(Study, pk=study_id)
            if not (request.user.has_perm(permission) and study.is_visible_to(request.user)):
                raise PermissionDenied(f"you have no {permission.split('.')[1].replace('_', ' ')} right on this study")
            return view(request, study, **kwargs)

        return wrapper

    return decorate


def _bad_request(request: HttpRequest, error: ApplicationError, *, json: bool) -> HttpResponse:
    if json:
        return JsonResponse({"error": error.message}, status=400)
    return render(request, "results/error.html", {"message": error.message}, status=400)


@staff_member_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    studies = selectors.study_list().filter(pk__in=studies_visible_to(user=request.user).values("pk"))
    if not request.user.has_perm("studies.view_results"):
        studies = studies.none()
    return render(request, "results/index.html", {"studies": studies})


@study_access("studies.view_results")
@require_GET
@never_cache
def study_page(request: HttpRequest, study: Study) -> HttpResponse:
    try:
        filters = filters_from_request(request)
    except ApplicationError as exc:
        return _bad_request(request, exc, json=False)
    version, results, freshness = _results(study, filters)
    context = {
        "study": study,
        "version": version,
        "results": results,
        "freshness": freshness,
        "filters": filters,
        "query": request.GET.urlencode(),
        "poll_seconds": POLL_SECONDS,
    }
    return render(request, "results/study.html", context)


@study_access("studies.view_results")
@require_GET
@never_cache
def study_data(request: HttpRequest, study: Study) -> JsonResponse:
    """The page's data, polled: the results plus the tables rendered as HTML."""
    try:
        filters = filters_from_request(request)
    except ApplicationError as exc:
        return _bad_request(request, exc, json=True)
    version, results, freshness = _results(study, filters)
    tables = render_to_string("results/_tables.html", {"results": results, "study": study}, request=request)
    return JsonResponse({"version": version, "results": results, "freshness": freshness, "tables_html": tables})


@study_access("studies.export_results")
@require_GET
def export_responses(request: HttpRequest, study: Study, fmt: str) -> HttpResponse:
    """Every response of the study as one tidy row (all trials, flagged; nothing filtered)."""
    _export_format(fmt)
    return streaming_response(
        filename=f"study-{study.pk}-responses",
        header=list(export_selectors.RESPONSE_COLUMNS),
        rows=export_selectors.response_export_rows(study=study),
        fmt=fmt,
    )


@study_access("studies.export_results")
@require_GET
def export_images(request: HttpRequest, study: Study, fmt: str) -> HttpResponse:
    _export_format(fmt)
    try:
        filters = filters_from_request(request)
    except ApplicationError as exc:
        return _bad_request(request, exc, json=fmt == "json")
    header, rows = export_selectors.image_aggregate_rows(study=study, filters=filters)
    return streaming_response(filename=f"study-{study.pk}-images", header=header, rows=rows, fmt=fmt)


@study_access("studies.export_results")
@require_GET
def export_models(request: HttpRequest, study: Study, fmt: str) -> HttpResponse:
    _export_format(fmt)
    try:
        filters = filters_from_request(request)
    except ApplicationError as exc:
        return _bad_request(request, exc, json=fmt == "json")
    header, rows = export_selectors.model_summary_rows(results=_results(study, filters)[1])
    return streaming_response(filename=f"study-{study.pk}-models", header=header, rows=rows, fmt=fmt)


@study_access("studies.export_results")
@require_GET
def export_manifest(request: HttpRequest, study: Study) -> JsonResponse:
    try:
        filters = filters_from_request(request)
    except ApplicationError as exc:
        return _bad_request(request, exc, json=True)
    response = JsonResponse(study_manifest(study=study, filters=filters), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-manifest.json"'
    return response


@study_access("studies.view_results")
@require_GET
def marks_heatmap(request: HttpRequest, study: Study, group: str) -> HttpResponse:
    """Where raters marked a group's images as giving themselves away, over the group's mean image (PNG)."""
    excluded = set() if _flag(request, "include_failed") else set(study_check_outcomes(study=study)[1])
    answers = protocol_answers(study=study, excluded=excluded, include_practice=_flag(request, "include_practice"))
    marked = marks_by_group(answers)
    mean = selectors.study_group_mean_image(study=study, group=group)
    if mean is None:
        raise Http404(f"no images of {group!r} in this study")
    points, boxes = marked.get(group, (np.zeros((0, 2)), np.zeros((0, 4))))
    density = protocols.marks_density(points=points, boxes=boxes)
    response = HttpResponse(protocols.heatmap_png(density=density, mean_image=mean), content_type="image/png")
    response["Content-Disposition"] = f'inline; filename="study-{study.pk}-marks-{group}.png"'
    return response


@study_access("studies.export_results")
@require_GET
def export_marks(request: HttpRequest, study: Study, fmt: str) -> HttpResponse:
    """Every mark of the study, one row each."""
    _export_format(fmt)
    return streaming_response(
        filename=f"study-{study.pk}-marks", header=export_selectors.MARK_COLUMNS, rows=export_selectors.marks_export_rows(study=study), fmt=fmt
    )


def _export_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise Http404(f"exports come as {' or '.join(FORMATS)}")


def plotly_path() -> Path:
    """The minified plotly.js shipped inside the installed ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@staff_member_required
@require_GET
def plotly_js(request: HttpRequest) -> FileResponse:
    """plotly.js from the installed package, so charts work without any network."""
    path = plotly_path()
    if not path.exists():
        raise Http404("plotly.min.js is missing from the installed plotly package; reinstall plotly")
    response = FileResponse(path.open("rb"), content_type="text/javascript; charset=utf-8")
    response["Cache-Control"] = "private, max-age=86400"
    return response
