"""Researchers launch, watch, cancel, resume and retry jobs from the admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.forms import config_from_form, launch_form_class
from ratingstudy.jobs.models import Comparison, Experiment, Job
from ratingstudy.jobs.services import job_cancel, job_launch, job_resume, job_retry, jobs_reap_stale


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ["name", "comparison", "preset", "semi_supervised", "created_at"]
    list_filter = ["comparison", "preset"]


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
    list_filter = ["kind", "status", "experiment__comparison"]
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

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.is_staff

    def get_urls(self):
        return [
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

    def changelist_view(self, request: HttpRequest, extra_context=None):
        for job in jobs_reap_stale():
            messages.warning(request, f"job #{job.pk}: {job.error or 'worker lost; re-queued'}")
        extra = {"launch_kinds": Job.Kind.choices, **(extra_context or {})}
        return super().changelist_view(request, extra_context=extra)

    def launch_view(self, request: HttpRequest, kind: str):
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

    @admin.action(description="Cancel selected jobs")
    def cancel_jobs(self, request, queryset):
        _apply(request, queryset, job_cancel, "cancelled")

    @admin.action(description="Resume selected jobs from their last checkpoint")
    def resume_jobs(self, request, queryset):
        _apply(request, queryset, job_resume, "resumed")

    @admin.action(description="Retry selected jobs from scratch (as new jobs)")
    def retry_jobs(self, request, queryset):
        _apply(request, queryset, lambda job: job_retry(job=job, user=request.user), "retried")
