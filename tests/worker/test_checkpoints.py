"""Checkpoints through storage, without a worker: upload on change, restore, damaged copies,
and moving a checkpoint's input paths to another machine's copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ratingstudy.jobs.models import Job
from worker.checkpoints import (
    CheckpointSync,
    checkpoint_name,
    checkpoint_restore,
    checkpoint_store,
)

pytestmark = pytest.mark.django_db


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_bytes(name: str) -> bytes:
    with default_storage.open(name, "rb") as fh:
        return fh.read()


def test_sync_uploads_each_new_version_records_it_and_drops_the_old(tmp_path):
    job = Job.objects.create(kind="train", config={})
    latest = tmp_path / "latest.pt"
    sync = CheckpointSync(job.pk, latest)
    assert sync.sync() is False  # nothing written yet
    latest.write_bytes(b"epoch 1")
    assert sync.sync() is True and sync.sync() is False  # unchanged: not uploaded again
    job.refresh_from_db()
    first = job.checkpoint
    assert first == checkpoint_name(job.pk, sha(b"epoch 1")) and stored_bytes(first) == b"epoch 1"

    partial = latest.with_suffix(".tmp")  # as ganlab writes: a new file, then a rename
    partial.write_bytes(b"epoch 2")
    partial.replace(latest)
    assert sync.sync() is True
    job.refresh_from_db()
    assert job.checkpoint_sha256 == sha(b"epoch 2") and stored_bytes(job.checkpoint) == b"epoch 2"
    assert not default_storage.exists(first)


def test_a_cut_short_upload_is_replaced(tmp_path):
    path = tmp_path / "latest.pt"
    path.write_bytes(b"the whole checkpoint")
    name = checkpoint_name(7, sha(b"the whole checkpoint"))
    default_storage.save(name, ContentFile(b"the who"))  # a worker killed mid-upload
    assert checkpoint_store(job_id=7, path=path) == (name, sha(b"the whole checkpoint"))
    assert stored_bytes(name) == b"the whole checkpoint"


def job_with_checkpoint(data: bytes) -> Job:
    name = default_storage.save(checkpoint_name(1, sha(data)), ContentFile(data))
    return Job.objects.create(
        kind="train", config={}, checkpoint=name, checkpoint_sha256=sha(data)
    )


def test_restore_downloads_the_stored_checkpoint_unless_the_local_file_is_it(tmp_path):
    latest = tmp_path / "job-1" / "latest.pt"
    assert checkpoint_restore(job=Job.objects.create(kind="train", config={}), path=latest) is None

    job = job_with_checkpoint(b"epoch 3")
    restored = checkpoint_restore(job=job, path=latest)
    assert restored.downloaded and latest.read_bytes() == b"epoch 3"
    assert "downloaded from storage" in restored.describe()
    again = checkpoint_restore(job=job, path=latest)
    assert not again.downloaded and "local copy" in again.describe()
    # a local file that is not the recorded checkpoint (older, or another machine's) is replaced
    latest.write_bytes(b"epoch 2")
    assert checkpoint_restore(job=job, path=latest).downloaded
    assert latest.read_bytes() == b"epoch 3"


def test_damaged_or_missing_stored_checkpoint_is_an_error_that_says_what_to_do(tmp_path):
    latest = tmp_path / "latest.pt"
    job = job_with_checkpoint(b"epoch 3")
    Job.objects.filter(pk=job.pk).update(checkpoint_sha256=sha(b"something else"))
    job.refresh_from_db()
    with pytest.raises(RuntimeError, match="damaged: retry the job"):
        checkpoint_restore(job=job, path=latest)
    assert not latest.exists() and not list(tmp_path.iterdir())  # no partial file left
    default_storage.delete(job.checkpoint)
    with pytest.raises(RuntimeError, match="missing from storage and this machine has no copy"):
        checkpoint_restore(job=job, path=latest)


class _Config:
    def __init__(self, x: list[str], y: list[str]) -> None:
        self.x, self.y = x, y

    def to_dict(self) -> dict:
        return {"domain_x": self.x, "domain_y": self.y, "seed": 0}


def test_inputs_of_another_machine_are_rebased_only_when_they_are_the_same_files(tmp_path: Path):
    from worker.runner import rebase_checkpoint_inputs

    path = tmp_path / "latest.pt"
    elsewhere = {"domain_x": ["/a/job-1/inputs/aa.png"], "domain_y": ["/a/job-1/inputs/bb.png"]}
    torch.save({"kind": "cyclegan", "config": {**elsewhere, "seed": 0}}, path)
    here = _Config(["/b/job-1/inputs/aa.png"], ["/b/job-1/inputs/bb.png"])
    assert rebase_checkpoint_inputs(path, here) is True
    saved = torch.load(path, weights_only=True)
    assert saved["config"] == here.to_dict()
    assert rebase_checkpoint_inputs(path, here) is False  # already here: left alone

    other_images = _Config(["/b/job-1/inputs/cc.png"], ["/b/job-1/inputs/bb.png"])
    assert rebase_checkpoint_inputs(path, other_images) is False
    assert torch.load(path, weights_only=True)["config"] == here.to_dict()
