"""Researchers launch, watch, cancel, resume and retry jobs and sweeps from the admin,
and see which workers are alive.

Roles: viewing jobs, experiments and workers needs ``jobs.view_job``; every action
(launch, cancel, resume, retry, checkpoint download, launching and cancelling an
experiment) needs ``jobs.operate_job``. A staff account without either sees nothing.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.forms import ExperimentLaunchForm, config_from_form, launch_form_class
from ratingstudy.jobs.models import Comparison, Experiment, Job
from ratingstudy.jobs.selectors import (
    experiment_comparison,
    queue_unserved_message,
    queue_warnings,
    workers_live,
)
from ratingstudy.jobs.services import (
    experiment_cancel,
    experiment_launch,
    job_cancel,
    job_launch,
    job_resume,
    job_retry,
    jobs_reap_stale,
)

OPERATE_PERMISSION = "jobs.operate_job"
VIEW_PERMISSION = "jobs.view_job"


def can_operate(request: HttpRequest) -> bool:
    return request.user.is_active and request.user.has_perm(OPERATE_PERMISSION)


def operator_required(request: HttpRequest) -> None:
    if not can_operate(request):
        raise PermissionDenied(
            "launching, cancelling, resuming and retrying jobs needs the jobs.operate_job "
            "permission (the Job operator group)"
        )


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    """Sweeps: launched through their own form, shown as a comparison of their models."""

    list_display = ["name", "comparison", "grid_summary", "jobs_summary", "created_at", "cancelled_at"]
    list_filter = ["comparison"]
    change_list_template = "jobs/experiment_change_list.html"

    @admin.display(description="grid")
    def grid_summary(self, experiment: Experiment) -> str:
        return "; ".join(
            f"{axis}: {', '.join(map(str, values))}" for axis, values in experiment.grid.items()
        )

    @admin.display(description="jobs")
    def jobs_summary(self, experiment: Experiment) -> str:
        counts: dict[str, int] = {}
        for status in experiment.jobs.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return ", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "-"

    # Experiments are views over jobs: the job permissions govern them.
    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm(VIEW_PERMISSION) or super().has_view_permission(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # launched through launch_view, which fans the grid out

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "launch/",
                self.admin_site.admin_view(self.launch_view),
                name="jobs_experiment_launch",
            ),
            path(
                "<int:experiment_id>/cancel/",
                self.admin_site.admin_view(self.cancel_view),
                name="jobs_experiment_cancel",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context=None):
        extra = {"can_operate": can_operate(request), **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        experiment = get_object_or_404(Experiment, pk=object_id)
        if not self.has_view_permission(request, experiment):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": f"Experiment {experiment.name}",
            "opts": self.model._meta,
            "comparison": experiment_comparison(experiment=experiment),
            "can_operate": can_operate(request),
        }
        return TemplateResponse(request, "jobs/experiment_detail.html", context)

    def launch_view(self, request: HttpRequest):
        operator_required(request)
        form = ExperimentLaunchForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                experiment = experiment_launch(user=request.user, **form.launch_arguments())
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(
                    request, f"launched {experiment.jobs.count()} train job(s) for {experiment}"
                )
                return HttpResponseRedirect(
                    reverse("admin:jobs_experiment_change", args=[experiment.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Launch an experiment (a sweep over a grid)",
            "form": form,
            "kind": "experiment",
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "jobs/launch.html", context)

    def cancel_view(self, request: HttpRequest, experiment_id: int):
        operator_required(request)
        experiment = get_object_or_404(Experiment, pk=experiment_id)
        target = reverse("admin:jobs_experiment_change", args=[experiment.pk])
        if request.method != "POST":
            return HttpResponseRedirect(target)
        try:
            cancelled = experiment_cancel(experiment=experiment)
        except ApplicationError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, f"cancelled {experiment} and {len(cancelled)} of its job(s)")
        return HttpResponseRedirect(target)


def _apply(request: HttpRequest, jobs, service, verb: str) -> None:
    for job in jobs:
        try:
            service(job=job)
            messages.success(request, f"{verb} job #{job.pk}")
        except ApplicationError as exc:
            messages.error(request, exc.message)


@admin.register(Job)
class JobAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "experiment",
        "progress_summary",
        "device",
        "created_at",
    ]
    list_filter = ["kind", "status", "experiment", "experiment__comparison"]
    actions = ["cancel_jobs", "resume_jobs", "retry_jobs"]
    change_form_template = "jobs/job_change_form.html"
    change_list_template = "jobs/job_change_list.html"
    readonly_fields = [
        "kind",
        "status",
        "experiment",
        "config",
        "input_image_set",
        "parent",
        "cancel_requested",
        "attempts",
        "progress",
        "error",
        "traceback",
        "log_tail",
        "device",
        "worker_host",
        "heartbeat_at",
        "checkpoint",
        "checkpoint_sha256",
        "output_image_set",
        "metric_report",
        "result",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["history"]

    @admin.display(description="progress")
    def progress_summary(self, job: Job) -> str:
        p = job.progress or {}
        if "epoch" not in p:
            return "-"
        eta = p.get("eta_s")
        return format_html(
            "epoch {}/{} · it {} · {} img/s{}",
            p.get("epoch"),
            p.get("total_epochs"),
            p.get("iteration"),
            f"{p.get('images_per_s', 0):.1f}",
            f" · ETA {eta / 60:.0f} min" if eta is not None else "",
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # jobs are launched through the launch forms below

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """The admin actions (cancel, resume, retry) need ``jobs.operate_job``."""
        return can_operate(request)

    def get_urls(self):
        return [
            path(
                "workers/",
                self.admin_site.admin_view(self.workers_view),
                name="jobs_job_workers",
            ),
            path(
                "launch/<str:kind>/",
                self.admin_site.admin_view(self.launch_view),
                name="jobs_job_launch",
            ),
            path(
                "<int:job_id>/do/<str:verb>/",
                self.admin_site.admin_view(self.control_view),
                name="jobs_job_control",
            ),
            *super().get_urls(),
        ]

    def _view_required(self, request: HttpRequest) -> None:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied

    def changelist_view(self, request: HttpRequest, extra_context=None):
        self._view_required(request)
        for job in jobs_reap_stale():
            messages.warning(request, f"job #{job.pk}: {job.error or 'worker lost; re-queued'}")
        for warning in queue_warnings(snapshot=workers_live()):
            messages.warning(request, warning)
        extra = {
            "launch_kinds": Job.Kind.choices,
            "can_operate": can_operate(request),
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=extra)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        self._view_required(request)
        job = Job.objects.filter(pk=object_id).first()
        if job is not None and job.status == Job.Status.QUEUED:
            snapshot = workers_live()
            if snapshot.error:
                messages.warning(request, f"This job is queued, but {snapshot.error}")
            elif job.queue not in snapshot.queues_served:
                waiting = queue_unserved_message(queue=job.queue, waiting=0)
                messages.warning(request, f"This job is queued. {waiting}")
        extra = {"can_operate": can_operate(request), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def workers_view(self, request: HttpRequest):
        """Live workers: their queues, current jobs and devices (Celery remote control)."""
        self._view_required(request)
        snapshot = workers_live()
        context = {
            **self.admin_site.each_context(request),
            "title": "Workers",
            "opts": self.model._meta,
            "snapshot": snapshot,
            "warnings": queue_warnings(snapshot=snapshot),
        }
        return TemplateResponse(request, "jobs/workers.html", context)

    def launch_view(self, request: HttpRequest, kind: str):
        operator_required(request)
        if kind not in Job.Kind.values:
            messages.error(request, f"unknown job kind {kind!r}")
            return HttpResponseRedirect(reverse("admin:jobs_job_changelist"))
        form_class = launch_form_class(kind)
        form = form_class(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                job = job_launch(
                    kind=kind,
                    config=config_from_form(kind, data),
                    user=request.user,
                    input_image_set=data.get("input_image_set"),
                    parent=data.get("parent"),
                    experiment=data.get("experiment"),
                )
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                messages.success(request, f"launched {job}")
                return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[job.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Launch a {kind} job",
            "form": form,
            "kind": kind,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "jobs/launch.html", context)

    def control_view(self, request: HttpRequest, job_id: int, verb: str):
        operator_required(request)
        job = get_object_or_404(Job, pk=job_id)
        target = reverse("admin:jobs_job_change", args=[job.pk])
        if request.method != "POST":
            return HttpResponseRedirect(target)
        services = {
            "cancel": lambda: job_cancel(job=job),
            "resume": lambda: job_resume(job=job),
            "retry": lambda: job_retry(job=job, user=request.user),
        }
        if verb not in services:
            messages.error(request, f"unknown action {verb!r}")
            return HttpResponseRedirect(target)
        try:
            result = services[verb]()
        except ApplicationError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(target)
        messages.success(request, f"{verb}: job #{result.pk}")
        return HttpResponseRedirect(reverse("admin:jobs_job_change", args=[result.pk]))

    @admin.action(description="Cancel selected jobs", permissions=["operate"])
    def cancel_jobs(self, request, queryset):
        _apply(request, queryset, job_cancel, "cancelled")

    @admin.action(
        description="Resume selected jobs from their last checkpoint", permissions=["operate"]
    )
    def resume_jobs(self, request, queryset):
        _apply(request, queryset, job_resume, "resumed")

    @admin.action(
        description="Retry selected jobs from scratch (as new jobs)", permissions=["operate"]
    )
    def retry_jobs(self, request, queryset):
        _apply(request, queryset, lambda job: job_retry(job=job, user=request.user), "retried")
