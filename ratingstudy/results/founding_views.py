"""Staff pages of founding-study runs: the list, the launch form, the report and its downloads.

Reading a run needs ``studies.view_results`` (and, once its rating study exists, a study
the user may see); launching needs ``jobs.operate_job``. When an operator opens a report,
the run is moved on (:func:`~ratingstudy.results.founding.founding_advance`), as the admin
job list re-queues lost jobs when it loads.
"""

from __future__ import annotations

import csv
import io

from django import forms
from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.cache import never_cache

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Comparison
from ratingstudy.results.founding import founding_advance, founding_launch
from ratingstudy.results.founding_report import (
    founding_cells,
    founding_csv_rows,
    founding_markdown,
    founding_report,
)
from ratingstudy.results.founding_selectors import (
    DECK_PRESETS,
    FOUNDING_MARKER,
    MODELS,
    FoundingSettings,
    founding_settings_of,
)

VIEW_PERMISSION = "studies.view_results"
OPERATE_PERMISSION = "jobs.operate_job"
#: Seconds between reloads of an unfinished run's report.
RELOAD_SECONDS = 30


class FoundingLaunchForm(forms.Form):
    """The ``reproduce_founding_study`` options, for the admin's experiment template."""

    breakhis_root = forms.CharField(
        label="BreakHis folder on the server",
        help_text="the BreaKHis_v1 folder (or its histology_slides/breast), as distributed",
    )
    name = forms.CharField(initial="founding-study", max_length=60, label="Run name")
    presets = forms.MultipleChoiceField(
        choices=[(m.preset, m.label + ("" if m.in_deck else " (not in the deck)")) for m in MODELS],
        initial=list(DECK_PRESETS),
        widget=forms.CheckboxSelectMultiple,
        label="Models",
    )
    encoder_weights = forms.ChoiceField(
        choices=[("imagenet", "ImageNet (the deck's transfer learning)"), ("random", "random (from scratch)")],
        label="Encoder weights",
        help_text="ImageNet files are never downloaded: put them in $TORCH_HOME/hub/checkpoints",
    )
    epochs = forms.IntegerField(min_value=1, initial=200, label="Epochs")
    image_size = forms.IntegerField(min_value=64, max_value=1024, initial=256, label="Image size (px)")
    batch_size = forms.IntegerField(min_value=1, initial=1, label="Batch size")
    seed = forms.IntegerField(min_value=0, initial=0, label="Seed")
    train_per_class = forms.IntegerField(min_value=1, initial=100, label="Training images per class")
    test_per_class = forms.IntegerField(min_value=1, initial=10, label="Test images per class")
    min_test_patients = forms.IntegerField(min_value=1, initial=3, label="Test patients per class, at least")
    classifier_epochs = forms.IntegerField(min_value=1, initial=10, label="Classifier epochs")
    fcn_steps = forms.IntegerField(min_value=1, initial=300, label="FCN-score training steps")

    def settings(self) -> FoundingSettings:
        data = dict(self.cleaned_data)
        data["presets"] = tuple(data["presets"])
        return FoundingSettings(**data)


def _require(request: HttpRequest, permission: str) -> None:
    if not request.user.has_perm(permission):
        raise PermissionDenied(f"this page needs the {permission} permission")


def _run(request: HttpRequest, comparison_id: int) -> tuple[Comparison, dict]:
    """The run and its report, if the user may read it (404 for a comparison that is not a run)."""
    _require(request, VIEW_PERMISSION)
    comparison = get_object_or_404(Comparison, pk=comparison_id, description__startswith=FOUNDING_MARKER)
    if request.user.has_perm(OPERATE_PERMISSION):
        founding_advance(comparison=comparison)
    report = founding_report(comparison=comparison)
    study = report["status"].study
    if study is not None and not study.is_visible_to(request.user):
        raise PermissionDenied("you may not see this run's rating study")
    return comparison, report


@staff_member_required
def founding_index(request: HttpRequest) -> HttpResponse:
    _require(request, VIEW_PERMISSION)
    runs = Comparison.objects.filter(description__startswith=FOUNDING_MARKER).order_by("-created_at")
    context = {
        "runs": [(run, founding_settings_of(run)) for run in runs],
        "can_operate": request.user.has_perm(OPERATE_PERMISSION),
    }
    return render(request, "results/founding_index.html", context)


@staff_member_required
def founding_launch_view(request: HttpRequest) -> HttpResponse:
    _require(request, OPERATE_PERMISSION)
    form = FoundingLaunchForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            comparison = founding_launch(settings=form.settings(), user=request.user)
        except ApplicationError as exc:
            for problem in exc.extra.get("problems", [exc.message]):
                form.add_error(None, problem)
        else:
            return HttpResponseRedirect(reverse("results:founding", args=[comparison.pk]))
    return render(request, "results/founding_launch.html", {"form": form})


@staff_member_required
@never_cache
def founding_page(request: HttpRequest, comparison_id: int) -> HttpResponse:
    _comparison, report = _run(request, comparison_id)
    context = {
        "report": report,
        "tables": [{**table, "cells": founding_cells(table)} for table in report["tables"]],
        "reload_seconds": None if report["status"].complete else RELOAD_SECONDS,
    }
    return render(request, "results/founding.html", context)


@staff_member_required
def founding_csv(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison, report = _run(request, comparison_id)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(founding_csv_rows(report))
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="founding-{comparison.pk}.csv"'
    return response


@staff_member_required
def founding_md(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison, report = _run(request, comparison_id)
    response = HttpResponse(founding_markdown(report), content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="founding-{comparison.pk}.md"'
    return response
