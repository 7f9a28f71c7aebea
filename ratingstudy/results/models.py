"""Stored automatic-metric reports, joined with human ratings on the results page.

A :class:`MetricReport` is the JSON report that ``ganlab`` evaluation wrote for one
image set (a generated set, or a real set for the "real images" row), kept whole,
plus the cost of the model that made the set. Its per-image values are also stored
as :class:`ImageMetric` rows on catalogue images so that selectors can correlate them
with per-image human scores in SQL. ``ratingstudy.results.services.metric_report_store``
is the only writer.
"""

from __future__ import annotations

from django.db import models

from ratingstudy.catalog.models import Image, ImageSet


class MetricReport(models.Model):
    image_set = models.ForeignKey(ImageSet, on_delete=models.CASCADE, related_name="metric_reports")
    model_name = models.CharField(max_length=100, help_text='the model that made the set, or "real"')
    extractor = models.CharField(
        max_length=100, blank=True, help_text="feature extractor of FID/KID; numbers from different extractors never compare"
    )
    report = models.JSONField(help_text="the ganlab evaluation report, as written (NaN/inf stored as null)")
    cost = models.JSONField(
        default=dict, blank=True, help_text="parameters, train_seconds, images_per_s, peak_gpu_mem_bytes, device"
    )
    # A plain integer, not a foreign key: the jobs app depends on results, not the reverse.
    job_id = models.PositiveBigIntegerField(null=True, blank=True, db_index=True)
    mapping = models.JSONField(
        default=dict, blank=True, help_text="how per-image keys were matched to catalogue images (counts, unmatched examples)"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True, help_text="changes when a retried job replaces the report")

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["image_set", "-created_at"])]

    def __str__(self) -> str:
        return f"metrics of {self.model_name} on {self.image_set}"


class ImageMetric(models.Model):
    report = models.ForeignKey(MetricReport, on_delete=models.CASCADE, related_name="image_metrics")
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=100, help_text='dotted metric name, e.g. "ssim" or "translation.ssim"')
    value = models.FloatField()

    class Meta:
        ordering = ["report_id", "image_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["report", "image", "name"], name="imagemetric_unique_per_report"),
        ]

    def __str__(self) -> str:
        return f"{self.name}={self.value:g} on image {self.image_id}"


class ResultsSnapshot(models.Model):
    """A study's results as the page shows them by default, computed from one version of its data.

    Written by ``ratingstudy.results.services.results_snapshot_refresh`` (a debounced ``cpu``
    job after responses change, or the first page view); the page serves it and says how
    fresh it is instead of recomputing the statistics on every view. Kept in the database,
    not a per-process cache, so every web process and worker sees the same one.
    """

    study = models.OneToOneField("studies.Study", on_delete=models.CASCADE, related_name="results_snapshot")
    data_version = models.CharField(max_length=64, help_text="the data version (selectors.study_data_version) it was computed from")
    responses = models.PositiveIntegerField(help_text="responses of the study in that version")
    results = models.JSONField(help_text="study_results with the default filters, as JSON")
    read_at = models.DateTimeField(help_text="when the data version was read, just before computing")
    computed_at = models.DateTimeField()
    compute_seconds = models.FloatField()

    def __str__(self) -> str:
        return f"results of study {self.study_id} from {self.responses} responses"
