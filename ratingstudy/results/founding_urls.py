"""URLs of founding-study runs, included under ``/results/founding/`` (names in the results namespace)."""

from __future__ import annotations

from django.urls import path

from ratingstudy.results import founding_views

urlpatterns = [
    path("", founding_views.founding_index, name="founding_index"),
    path("launch/", founding_views.founding_launch_view, name="founding_launch"),
    path("<int:comparison_id>/", founding_views.founding_page, name="founding"),
    path("<int:comparison_id>/report.csv", founding_views.founding_csv, name="founding_csv"),
    path("<int:comparison_id>/report.md", founding_views.founding_md, name="founding_md"),
]
