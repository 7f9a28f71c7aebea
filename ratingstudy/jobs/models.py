"""Jobs run by Celery workers: training, generation, evaluation, classification.

An :class:`Experiment` is a sweep: a grid of training configurations (preset x
semi-supervised x label fraction x seed), each trained and then, through the job
chain, translated and evaluated (train -> generate -> evaluate). A one-point grid is
one model. A :class:`Comparison` groups experiments (the founding study's three
models) so that their results line up in one table.
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
    """A grid of train jobs, each followed by a generate and an evaluate job (see module docstring)."""

    #: The axes a sweep may vary, in the order model names list them.
    GRID_AXES = ("preset", "semi_supervised", "label_fraction", "seed")

    name = models.CharField(max_length=200, unique=True)
    comparison = models.ForeignKey(
        Comparison, null=True, blank=True, on_delete=models.SET_NULL, related_name="experiments"
    )
    description = models.TextField(blank=True)
    input_image_set = models.ForeignKey(
        "catalog.ImageSet",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="experiments",
        help_text="the real set every train job of the grid uses",
    )
    grid = models.JSONField(
        default=dict, blank=True, help_text="axis -> values; one train job per combination"
    )
    train_config = models.JSONField(
        default=dict, blank=True, help_text="train config shared by every grid point"
    )
    generate_config = models.JSONField(
        default=dict, blank=True, help_text="config of the generate job after each train job"
    )
    evaluate_config = models.JSONField(
        default=dict, blank=True, help_text="config of the evaluate job after each generate job"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    created_at = models.DateTimeField(auto_now_add=True)
    cancelled_at = models.DateTimeField(
        null=True, blank=True, help_text="set when cancelled: its chain launches nothing more"
    )

    def __str__(self) -> str:
        return self.name

    @property
    def is_cancelled(self) -> bool:
        return self.cancelled_at is not None

    def varying_axes(self) -> list[str]:
        """The axes with more than one value (the ones that tell its models apart)."""
        return [axis for axis in self.GRID_AXES if len(self.grid.get(axis, [])) > 1]

    def point_of(self, config: dict) -> dict:
        """The grid point a train config belongs to: its value on every axis of the grid."""
        return {axis: config.get(axis) for axis in self.GRID_AXES if axis in self.grid}

    def model_name_for(self, config: dict) -> str:
        """How results name the model a train job of this experiment made.

        The experiment's name for a one-point grid; otherwise the name followed by the
        values of the axes that vary, e.g. ``"sweep-1 semi_supervised=yes seed=1"``.
        """
        parts = []
        for axis in self.varying_axes():
            value = config.get(axis)
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, float):
                value = f"{value:g}"
            parts.append(f"{axis}={value}")
        return " ".join([self.name, *parts])


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
    QUEUES = ("gpu", "cpu")
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
        permissions = [("operate_job", "Can launch, cancel, resume and retry jobs")]

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
