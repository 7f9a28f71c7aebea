"""Checkpoints travel through storage, so that any worker on any machine can resume a job.

A training worker keeps its run folder (``JOBS_DIR/job-N``) on local disk, where
ganlab writes ``latest.pt`` after every epoch and on cancel. :class:`CheckpointSync`
watches that file from a thread and uploads each new version to storage
(``checkpoints/job-N/<sha256>.pt``, content-addressed), recording it on the job row
and deleting the version it replaces. A worker that picks the job up later, on this
machine or another, calls :func:`checkpoint_restore` first: the row's checkpoint is
authoritative, and it is downloaded (and its sha256 verified) unless the local file
is that very checkpoint.

With ``STORAGE_BACKEND=s3`` this is what lets workers share no disk; on a shared
filesystem it costs one copy per epoch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from django.core.files import File
from django.core.files.storage import default_storage

from ratingstudy.jobs.models import Job
from ratingstudy.jobs.services import job_checkpoint_record

log = logging.getLogger(__name__)
CHUNK = 1 << 20
#: How often the sync thread looks at ``latest.pt`` (a stat call; uploads happen only on change).
SYNC_POLL_SECONDS = 1.0


def checkpoint_name(job_id: int, sha256: str) -> str:
    return f"checkpoints/job-{job_id}/{sha256}.pt"


def _sha256_of(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := fh.read(CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256_of(fh)


def checkpoint_store(*, job_id: int, path: Path) -> tuple[str, str]:
    """Upload the checkpoint at ``path`` unless storage already holds it whole; returns (name, sha256).

    The file is opened once, hashed and uploaded from the same descriptor, so an atomic
    replace of ``path`` by the trainer meanwhile cannot mix two checkpoints. A stored object
    of the wrong size (an upload cut short by a killed worker) is replaced.
    """
    with open(path, "rb") as fh:
        sha256 = _sha256_of(fh)
        size = os.fstat(fh.fileno()).st_size
        name = checkpoint_name(job_id, sha256)
        if default_storage.exists(name):
            if default_storage.size(name) == size:
                return name, sha256
            default_storage.delete(name)
        fh.seek(0)
        saved = default_storage.save(name, File(fh))
    if saved != name:
        raise RuntimeError(f"storage saved checkpoint {name} as {saved}; expected the exact name")
    return name, sha256


def checkpoint_superseded(*, job_id: int, previous: str, current: str) -> None:
    """Delete the job's previous stored checkpoint once the row points at a newer one."""
    if previous and previous != current and previous.startswith(f"checkpoints/job-{job_id}/"):
        default_storage.delete(previous)


@dataclass(frozen=True)
class Restored:
    """Where the checkpoint a job resumes from came from."""

    downloaded: bool  # from storage (else the local file, already that checkpoint)
    sha256: str = ""

    def describe(self) -> str:
        if not self.sha256:
            return "local copy; none was stored yet"
        where = "downloaded from storage" if self.downloaded else "local copy"
        return f"checkpoint {self.sha256[:12]}, {where}"


def checkpoint_restore(*, job: Job, path: Path) -> Restored | None:
    """Put the job's stored checkpoint at ``path`` before training resumes.

    Returns where it came from, or ``None`` when the job has no checkpoint at all and
    there is no local file: training starts from scratch.
    """
    if not job.checkpoint:
        return Restored(downloaded=False) if path.exists() else None
    if path.exists() and sha256_file(path) == job.checkpoint_sha256:
        return Restored(downloaded=False, sha256=job.checkpoint_sha256)
    if not default_storage.exists(job.checkpoint):
        raise RuntimeError(
            f"job #{job.pk}: its checkpoint {job.checkpoint} is missing from storage and this "
            "machine has no copy; retry the job to train from scratch"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".download")
    digest = hashlib.sha256()
    with default_storage.open(job.checkpoint, "rb") as src, open(partial, "wb") as dst:
        while chunk := src.read(CHUNK):
            digest.update(chunk)
            dst.write(chunk)
    if digest.hexdigest() != job.checkpoint_sha256:
        partial.unlink()
        raise RuntimeError(
            f"job #{job.pk}: the stored checkpoint {job.checkpoint} has sha256 "
            f"{digest.hexdigest()}, not {job.checkpoint_sha256} as recorded; the stored copy is "
            "damaged: retry the job to train from scratch"
        )
    os.replace(partial, path)
    return Restored(downloaded=True, sha256=job.checkpoint_sha256)


class CheckpointSync:
    """Uploads ``path`` to storage each time it changes, from a thread (see module docstring)."""

    def __init__(self, job_id: int, path: Path, *, poll_seconds: float = SYNC_POLL_SECONDS) -> None:
        self.job_id = job_id
        self.path = path
        self.poll_seconds = poll_seconds
        self._seen: tuple[int, int, int] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"checkpoint-sync-{job_id}", daemon=True
        )

    def sync(self) -> bool:
        """Upload the file if it changed since the last upload; returns whether it did."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return False
        signature = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        if signature == self._seen:
            return False
        name, sha256 = checkpoint_store(job_id=self.job_id, path=self.path)
        previous = job_checkpoint_record(job_id=self.job_id, name=name, sha256=sha256)
        checkpoint_superseded(job_id=self.job_id, previous=previous, current=name)
        self._seen = signature
        return True

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(self.poll_seconds):
                try:
                    self.sync()
                except Exception:  # storage hiccup: the next change (or the final store) retries
                    log.exception("job %s: checkpoint upload failed", self.job_id)
        finally:
            connection.close()

    def __enter__(self) -> CheckpointSync:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=600)

