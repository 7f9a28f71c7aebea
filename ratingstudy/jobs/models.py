"""Jobs run by Celery workers: training, generation, evaluation, classification.

An :class:`Experiment` chains train -> generate -> evaluate for one model; a
:class:`Comparison` groups experiments (the founding study's three models) so that
their results line up in one table.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone


class Comparison(models.Model):
    """Several experiments whose results are compared side by side."""

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Experiment(models.Model):
    """One model's chain of jobs: train -> generate -> evaluate."""

    name = models.CharField(max_length=200, unique=True)
    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments"
    )
    preset = models.CharField(max_length=64)
    semi_supervised = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Job(models.Model):
    class Kind(models.TextChoices):
        TRAIN = "train", "Train"
        GENERATE = "generate", "Generate"
        EVALUATE = "evaluate", "Evaluate"
        CLASSIFY = "classify", "Classify"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    #: Kinds that need a GPU worker (the ``gpu`` queue); the rest run on ``cpu``.
    GPU_KINDS = frozenset({Kind.TRAIN, Kind.GENERATE, Kind.CLASSIFY})
    FINISHED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.CANCELLED})

    kind = models.CharField(max_length=16, choices=Kind.choices)
    experiment = models.ForeignKey(
        Experiment, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    config = models.JSONField(default=dict, help_text="validated job configuration")
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveIntegerField(default=0, help_text="times a worker started this job")
    # Inputs
    input_image_set = models.ForeignKey(
        "catalog.ImageSet",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="input_of_jobs",
    )
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
        help_text="the job whose output this one uses (train for generate, generate for evaluate)",
    )
    # Progress
    progress = models.JSONField(default=dict, blank=True)
    history = models.JSONField(default=list, blank=True, help_text="loss curve points")
    log_tail = models.TextField(blank=True)
    error = models.TextField(blank=True)
    traceback = models.TextField(blank=True)
    device = models.CharField(max_length=64, blank=True)
    worker_host = models.CharField(max_length=200, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Outputs
    checkpoint = models.CharField(
        max_length=500, blank=True, help_text="storage name of the latest checkpoint"
    )
    checkpoint_sha256 = models.CharField(max_length=64, blank=True)
    output_image_set = models.ForeignKey(
        "catalog.ImageSet",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="output_of_jobs",
    )
    metric_report = models.ForeignKey(
        "results.MetricReport",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
    )
    result = models.JSONField(default=dict, blank=True)
    # Timestamps
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} job #{self.pk}"

    @property
    def queue(self) -> str:
        return "gpu" if self.kind in self.GPU_KINDS else "cpu"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def is_stale(self, *, now=None, after_seconds: int | None = None) -> bool:
        """Running, but its worker has not sent a heartbeat for too long."""
        if self.status != self.Status.RUNNING:
            return False
        limit = timedelta(seconds=after_seconds or settings.JOB_STALE_SECONDS)
        last = self.heartbeat_at or self.started_at or self.created_at
        return (now or timezone.now()) - last > limit
