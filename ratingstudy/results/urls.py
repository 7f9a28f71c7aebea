"""Staff-only results URLs, under ``/results/``."""

from __future__ import annotations

from django.urls import include, path

from ratingstudy.results import views

app_name = "results"
urlpatterns = [
    path("", views.study_list, name="index"),
    path("plotly.min.js", views.plotly_js, name="plotly"),
    path("founding/", include("ratingstudy.results.founding_urls")),  # founding-study runs
    path("<int:study_id>/", views.study_page, name="study"),
    path("<int:study_id>/data.json", views.study_data, name="data"),
    path("<int:study_id>/responses.<str:fmt>", views.export_responses, name="export_responses"),
    path("<int:study_id>/images.<str:fmt>", views.export_images, name="export_images"),
    path("<int:study_id>/models.<str:fmt>", views.export_models, name="export_models"),
    path("<int:study_id>/manifest.json", views.export_manifest, name="export_manifest"),
    path("<int:study_id>/marks.<str:fmt>", views.export_marks, name="export_marks"),
    path("<int:study_id>/marks/<str:group>.png", views.marks_heatmap, name="marks_heatmap"),
]
