"""Stored metric reports in the admin: read-only (evaluation jobs write them)."""

from __future__ import annotations

from django.contrib import admin

from ratingstudy.results.models import MetricReport


@admin.register(MetricReport)
class MetricReportAdmin(admin.ModelAdmin):
    list_display = ("model_name", "image_set", "extractor", "job_id", "created_at")
    list_filter = ("model_name", "extractor")
    search_fields = ("model_name", "image_set__name")
    readonly_fields = ("image_set", "model_name", "extractor", "report", "cost", "job_id", "mapping", "created_at")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
