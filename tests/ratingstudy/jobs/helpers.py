"""Helpers for the job tests: a CPU-sized training config and polling the job rows."""

from __future__ import annotations

import time

from ratingstudy.jobs.models import Job

#: A CPU-sized training: narrow networks, 32x32 crops, two images per step.
TINY_TRAIN = {
    "cfg_preset": "cyclegan",
    "cfg_encoder_weights": "random",
    "cfg_x_label": "benign",
    "cfg_y_label": "malignant",
    "cfg_split": "train",
    "cfg_ngf": 8,
    "cfg_ndf": 8,
    "cfg_image_size": 32,
    "cfg_load_size": 32,
    "cfg_batch_size": 2,
    "cfg_n_epochs": 1,
    "cfg_n_epochs_decay": 1,
    "cfg_label_fraction": 1.0,
    "cfg_seed": 0,
    "cfg_checkpoint_every": 1,
}


def wait_for(predicate, *, timeout: float = 180, what: str = "condition", worker=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    log = worker.log_text() if worker else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{log}")


def wait_status(job_id: int, statuses: set[str], *, worker=None, timeout: float = 180) -> Job:
    def check():
        job = Job.objects.get(pk=job_id)
        return job if job.status in statuses else None

    return wait_for(check, timeout=timeout, what=f"job {job_id} to reach {statuses}", worker=worker)


def staff_with(username: str, *permissions: str):
    """A staff account holding exactly ``permissions`` (``"jobs.operate_job"`` style)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Permission

    user = get_user_model().objects.create_user(username, password="pw-123456", is_staff=True)
    for dotted in permissions:
        app_label, codename = dotted.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return user


#: alice operates jobs, bob may only look at them, charlie is staff with no permission.
OPERATOR_PERMISSIONS = ("jobs.operate_job", "jobs.view_job")
VIEWER_PERMISSIONS = ("jobs.view_job",)
