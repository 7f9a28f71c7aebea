"""Runs one job: loads the row, calls ganlab with a progress callback that writes to
the row, and registers what it produced through ratingstudy services.

This is the only place where Django and PyTorch meet. Inputs come from storage and
outputs go back to it (checkpoints through :mod:`worker.checkpoints`), so the job's
local folder under ``JOBS_DIR`` is a cache that no other machine needs.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
import traceback
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.jobs.models import Job
from ratingstudy.jobs.services import (
    job_claim,
    job_finish,
    job_heartbeat,
    job_log,
    job_progress_record,
)
from worker.checkpoints import (
    CHUNK,
    CheckpointSync,
    checkpoint_restore,
    checkpoint_store,
    checkpoint_superseded,
)
from worker.threads import torch_threads_apply

log = logging.getLogger(__name__)
PROGRESS_WRITE_SECONDS = 1.0  # latest progress on the row
HISTORY_POINT_SECONDS = 10.0  # loss-curve points (and every epoch's last iteration)


class JobCancelled(Exception):
    pass


def job_dir(job: Job) -> Path:
    path = Path(settings.JOBS_DIR) / f"job-{job.pk}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_copy(name: str, target: Path) -> Path:
    """A local file for a storage name: the file itself on disk storage, else a cached download
    to ``target`` (remote storage such as S3, when workers do not share a disk)."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_name(target.name + ".download")
            with default_storage.open(name, "rb") as src, open(partial, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
            os.replace(partial, target)  # a killed download never passes for a whole file
        return target


def local_image_path(image: Image, folder: Path) -> Path:
    return local_copy(image.file.name, folder / "inputs" / f"{image.sha256}.png")


class Heartbeat:
    """Beats for the job from a thread while it runs, so a long step does not look like a dead worker."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.cancel = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id}", daemon=True)

    def _run(self) -> None:
        from django.db import connection

        try:
            while not self._stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                if job_heartbeat(job_id=self.job_id):
                    self.cancel.set()
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


def _progress_writer(job: Job, device: str):
    """The ganlab progress callback: progress at most once a second, a loss-curve point every
    ten seconds and at each epoch's end; it checks for cancellation on every iteration."""
    last = last_point = float("-inf")

    def on_progress(progress) -> bool:
        nonlocal last, last_point
        now = time.monotonic()
        epoch_end = progress.iteration == progress.iterations_per_epoch
        if now - last < PROGRESS_WRITE_SECONDS and not epoch_end:
            return Job.objects.filter(pk=job.pk, cancel_requested=True).exists()
        last = now
        point = None
        if epoch_end or now - last_point >= HISTORY_POINT_SECONDS:
            last_point = now
            point = {
                "step": progress.global_step,
                "epoch": progress.epoch,
                "losses": progress.losses,
            }
        data = progress.to_dict() if hasattr(progress, "to_dict") else dict(vars(progress))
        return job_progress_record(job_id=job.pk, progress=data, history_point=point, device=device)

    return on_progress


def _split_images(image_set: ImageSet, split: str, label: str | None = None):
    images = image_set.images.order_by("source_path")
    if split != "all":
        images = images.filter(split=split)
    if label is not None:
        images = images.filter(label=label)
    return images


def train_config_for(job: Job, folder: Path) -> Any:
    """The ganlab TrainConfig of a train job (validated again, with architecture rules)."""
    from ganlab.train import TrainConfig

    cfg = job.config
    image_set = job.input_image_set
    domains = {}
    for side in ("x", "y"):
        images = _split_images(image_set, cfg["split"], cfg[f"{side}_label"])
        domains[side] = [str(local_image_path(image, folder)) for image in images]
    return TrainConfig.from_dict(
        {
            "domain_x": domains["x"],
            "domain_y": domains["y"],
            "x_label": cfg["x_label"],
            "y_label": cfg["y_label"],
            "preset": cfg["preset"],
            "semi_supervised": cfg["semi_supervised"],
            "model": {
                "encoder_weights": cfg["encoder_weights"],
                "ngf": cfg["ngf"],
                "ndf": cfg["ndf"],
            },
            "label_fraction": cfg["label_fraction"],
            "image_size": cfg["image_size"],
            "load_size": cfg["load_size"] or cfg["image_size"],
            "batch_size": cfg["batch_size"],
            "n_epochs": cfg["n_epochs"],
            "n_epochs_decay": cfg["n_epochs_decay"],
            "seed": cfg["seed"],
            "checkpoint_every": cfg["checkpoint_every"],
            "channels_last": cfg["channels_last"],
            "compile": cfg["compile"],
        }
    )


def rebase_checkpoint_inputs(path: Path, config: Any) -> bool:
    """Point a checkpoint written on another machine at this machine's copies of its inputs.

    A training config names its input images by local path (``JOBS_DIR/job-N/inputs/``),
    which differs between machines, and ganlab refuses to resume a run whose inputs
    changed. The copies are named by their content's sha256, so when the file names match
    one for one the inputs are the same images and only the folder moved: the checkpoint's
    paths are rewritten. Different images are left for ganlab to refuse. Returns whether
    the checkpoint was rewritten.
    """
    from ganlab.train.runtime import load_checkpoint, save_atomic

    saved = load_checkpoint(path)
    current = config.to_dict()
    moved = {}
    for key in ("domain_x", "domain_y"):
        before, now = saved["config"].get(key) or [], current[key]
        if before == now:
            continue
        if [Path(p).name for p in before] != [Path(p).name for p in now]:
            return False
        moved[key] = now
    if not moved:
        return False
    saved["config"].update(moved)
    save_atomic(saved, path)
    return True


def run_train(job: Job, heartbeat: Heartbeat) -> None:
    from ganlab.train import train
    from ganlab.train.runtime import select_device

    folder = job_dir(job)
    config = train_config_for(job, folder)
    device = str(select_device(config.device))
    latest = folder / "latest.pt"
    restored = checkpoint_restore(job=job, path=latest)
    if restored is not None:
        note = restored.describe()
        if restored.downloaded and rebase_checkpoint_inputs(latest, config):
            note += "; its input paths now point at this machine's copies"
        job_log(
            job_id=job.pk,
            line=f"attempt {job.attempts} on {job.worker_host}: resuming from {latest.name} ({note})",
        )
    elif job.attempts > 1:
        job_log(
            job_id=job.pk,
            line=f"attempt {job.attempts} on {job.worker_host}: no checkpoint was written yet; "
            "starting from scratch",
        )
    with CheckpointSync(job.pk, latest):
        result = train(
            config,
            out_dir=folder,
            on_progress=_progress_writer(job, device),
            resume=True,
            stop_event=heartbeat.cancel,
        )
    stored, sha256 = checkpoint_store(job_id=job.pk, path=result.checkpoint)
    previous = Job.objects.values_list("checkpoint", flat=True).get(pk=job.pk)
    job_log(
        job_id=job.pk,
        line=f"{'cancelled' if result.cancelled else 'finished'} after {result.epochs_done} epoch(s); checkpoint {sha256[:12]}",
    )
    job_finish(
        job_id=job.pk,
        status=Job.Status.CANCELLED if result.cancelled else Job.Status.SUCCEEDED,
        result=result.to_dict(),
        checkpoint=stored,
        checkpoint_sha256=sha256,
        device=result.device,
    )
    checkpoint_superseded(job_id=job.pk, previous=previous, current=stored)


def local_checkpoint(job: Job, folder: Path) -> Path:
    """The train job's stored checkpoint as a local file."""
    return local_copy(job.checkpoint, folder / f"checkpoint-{job.checkpoint_sha256}.pt")


def generated_model_name(train_job: Job) -> str:
    """How a generated set is grouped in results: the experiment's model (its name, plus the
    grid values that set this model apart in a sweep), else the preset (+ '-ss')."""
    if train_job.experiment_id:
        return train_job.experiment.model_name_for(train_job.config)
    cfg = train_job.config
    return cfg["preset"] + ("-ss" if cfg.get("semi_supervised") else "")


def run_generate(job: Job, heartbeat: Heartbeat) -> None:
    from ganlab.train import generate
    from ratingstudy.catalog.services import ImageEntry, images_add

    train_job, cfg = job.parent, job.config
    folder = job_dir(job)
    direction = cfg["direction"]
    x_label, y_label = train_job.config["x_label"], train_job.config["y_label"]
    source_label, target_label = (x_label, y_label) if direction == "AtoB" else (y_label, x_label)
    source_set = job.input_image_set or train_job.input_image_set
    sources = {
        local_image_path(image, folder).resolve(): image
        for image in _split_images(source_set, cfg["split"], source_label)
    }
    if not sources:
        raise ValueError(
            f"image set {source_set.name!r} has no {source_label} images in split {cfg['split']!r}"
        )
    records = generate(
        local_checkpoint(train_job, folder),
        list(sources),
        out_dir=folder / "generated",
        direction=direction,
        batch_size=cfg["batch_size"],
        reconstructions=True,
    )
    if heartbeat.cancel.is_set():
        raise JobCancelled
    out, _ = ImageSet.objects.get_or_create(
        name=f"generated-job{job.pk}",
        defaults={
            "kind": ImageSet.Kind.GENERATED,
            "source": ImageSet.Source.GENERATED,
            "model_name": generated_model_name(train_job),
            "description": f"{direction} translations of {source_set.name} ({cfg['split']}) by train job #{train_job.pk}",
            "import_params": {"job": job.pk, "train_job": train_job.pk, "direction": direction},
        },
    )
    entries, reconstructions = [], {}
    for record in records:
        source = sources[Path(record["source"]).resolve()]
        output = Path(record["output"])
        if record["kind"] == "reconstruction":
            name = f"generated/job-{job.pk}/reconstructions/{output.name}"
            if not default_storage.exists(name):
                with open(output, "rb") as fh:
                    name = default_storage.save(name, File(fh))
            reconstructions[str(source.pk)] = name
            continue
        entries.append(
            ImageEntry(
                path=output,
                source_path=output.name,
                label=target_label,
                split=source.split,
                domain=target_label,
                patient_id=source.patient_id,
                magnification=source.magnification,
                subtype=source.subtype,
                source_image_id=source.pk,
                direction=direction,
                checkpoint_sha256=record["checkpoint_sha256"],
            )
        )
    images_add(image_set=out, entries=entries)  # idempotent: a retried job adds nothing twice
    job_finish(
        job_id=job.pk,
        status=Job.Status.SUCCEEDED,
        output_image_set=out,
        checkpoint_sha256=train_job.checkpoint_sha256,
        result={
            "translations": len(entries),
            "reconstructions": reconstructions,
            "direction": direction,
        },
    )


def _link(target: Path, link: Path) -> Path:
    """A symlink named as the catalogue names the image (so reports key by that name)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)
    return link


def _predictions_csv(checkpoint: Path, images, folder: Path, path: Path) -> Path:
    """P(malignant) of a classifier (or a semi-supervised CycleGAN) for real test images."""
    import csv

    from ganlab.train import predict

    images = [image for image in images if image.label in ("benign", "malignant")]
    probabilities = predict(checkpoint, [local_image_path(image, folder) for image in images])
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["image", "label", "prob_malignant"])
        for image, p in zip(images, probabilities, strict=True):
            writer.writerow([image.source_path, image.label, f"{float(p):.6f}"])
    return path


def _progress_stage(job: Job):
    def progress(stage: str, done: int, total: int) -> None:
        job_progress_record(job_id=job.pk, progress={"stage": stage, "done": done, "total": total})

    return progress


def run_evaluate(job: Job, heartbeat: Heartbeat) -> None:
    """Every automatic metric of one generated set, stored per model and per image."""
    import csv

    from ganlab.metrics import evaluate
    from ganlab.train.runtime import select_device
    from ratingstudy.results.services import metric_report_store

    generate_job, cfg = job.parent, job.config
    train_job = generate_job.parent
    generated = generate_job.output_image_set
    folder = job_dir(job) / "inputs"
    reconstructions = generate_job.result.get("reconstructions", {})
    manifest = folder / "manifest.csv"
    folder.mkdir(parents=True, exist_ok=True)
    with open(manifest, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["generated", "source", "reconstruction"])
        for image in generated.images.select_related("source_image").order_by("source_path"):
            source = image.source_image
            gen = _link(local_image_path(image, folder), folder / image.source_path)
            src = _link(local_image_path(source, folder), folder / "sources" / f"{source.pk}.png")
            rec = ""
            if str(source.pk) in reconstructions:
                name = reconstructions[str(source.pk)]
                rec_path = local_copy(name, folder / "reconstructions-cache" / Path(name).name)
                rec = str(
                    _link(rec_path, folder / "reconstructions" / f"{source.pk}.png").relative_to(
                        folder
                    )
                )
            writer.writerow([gen.relative_to(folder), src.relative_to(folder), rec])
    # Real images: the FCN-score segmenter trains on the training split; FID/KID compare
    # the translations with real images of the target class (test split when it has any).
    real_set = train_job.input_image_set
    for image in real_set.images.filter(split="train"):
        _link(local_image_path(image, folder), folder / "real_train" / f"{image.pk}.png")
    target = generated.images.values_list("label", flat=True).first()
    reference = real_set.images.filter(label=target, split="test")
    if not reference.exists():
        reference = real_set.images.filter(label=target)
    for image in reference:
        _link(local_image_path(image, folder), folder / "reference" / f"{image.pk}.png")
    classifiers = {}
    if train_job.config.get("semi_supervised"):
        test_images = real_set.images.filter(split="test")
        classifiers[generated.model_name] = _predictions_csv(
            local_checkpoint(train_job, folder), test_images, folder, folder / "predictions.csv"
        )
    device = "cuda" if select_device("auto").type == "cuda" else "cpu"
    report = evaluate(
        output=job_dir(job) / "report.json",
        models={generated.model_name: {"manifest": manifest, "reference": folder / "reference"}},
        real_images=folder / "real_train",
        classifiers=classifiers or None,
        fcn_steps=cfg["fcn_steps"],
        feature_extractor=cfg["feature_extractor"],
        seed=cfg["seed"],
        device=device,
        progress=_progress_stage(job),
    )
    trained = train_job.result
    cost = {
        "parameters": sum(trained.get("parameter_counts", {}).values()),
        "train_seconds": trained.get("train_seconds"),
        "images_per_s": trained.get("images_per_s"),
        "peak_gpu_mem_bytes": trained.get("peak_gpu_mem_bytes"),
        "device": trained.get("device", ""),
    }
    stored = metric_report_store(image_set=generated, report=report, cost=cost, job_id=job.pk)
    summary = report["models"][generated.model_name]
    job_finish(
        job_id=job.pk,
        status=Job.Status.SUCCEEDED,
        metric_report=stored,
        result={
            "ssim_translation": summary["translation"]["ssim"]["mean"],
            "kid": summary.get("kid"),
            "fid": summary.get("fid"),
            "extractor": (report["settings"].get("feature_extractor") or {}).get("name"),
        },
    )


def run_classify(job: Job, heartbeat: Heartbeat) -> None:
    """A standalone classifier on real (plus synthetic) training images, scored on the real test split."""
    from ganlab.metrics import evaluate
    from ganlab.train import ClassifierConfig, train_classifier

    cfg, real_set = job.config, job.input_image_set
    folder = job_dir(job)
    real = {
        label: [
            str(local_image_path(i, folder))
            for i in real_set.images.filter(split="train", label=label)
        ]
        for label in ("benign", "malignant")
    }
    synthetic = {}
    if cfg["synthetic_image_set"]:
        generated = ImageSet.objects.get(pk=cfg["synthetic_image_set"])
        for label in ("benign", "malignant"):
            paths = [str(local_image_path(i, folder)) for i in generated.images.filter(label=label)]
            if paths:
                synthetic[label] = paths
    config = ClassifierConfig(
        real=real,
        synthetic=synthetic,
        encoder=cfg["encoder"],
        encoder_weights=cfg["encoder_weights"],
        image_size=cfg["image_size"],
        batch_size=cfg["batch_size"],
        epochs=cfg["epochs"],
        seed=cfg["seed"],
    )
    from ganlab.train.runtime import select_device

    device = str(select_device(config.device))
    result = train_classifier(
        config,
        out_dir=folder,
        on_progress=_progress_writer(job, device),
        stop_event=heartbeat.cancel,
    )
    if result.cancelled:
        raise JobCancelled
    name = f"classifier-job{job.pk}"
    predictions = _predictions_csv(
        result.checkpoint, real_set.images.filter(split="test"), folder, folder / "predictions.csv"
    )
    report = evaluate(
        output=folder / "report.json", classifiers={name: predictions}, seed=cfg["seed"]
    )
    stored, _ = checkpoint_store(job_id=job.pk, path=result.checkpoint)
    scores = {
        k: report["classifiers"][name][k]
        for k in ("accuracy", "precision", "recall", "f1", "specificity", "roc_auc")
    }
    job_finish(
        job_id=job.pk,
        status=Job.Status.SUCCEEDED,
        checkpoint=stored,
        checkpoint_sha256=result.checkpoint_sha256,
        device=result.device,
        result={"training": result.to_dict(), "test": scores, "positive_class": "malignant"},
    )


def _failure_message(exc: BaseException, job: Job) -> str:
    """Specific, actionable text for the admin (CUDA out-of-memory says what to change)."""
    import torch

    if isinstance(exc, torch.cuda.OutOfMemoryError):
        cfg = job.config
        return (
            f"CUDA out of memory on {job.device or 'the GPU'} "
            f"(batch_size={cfg.get('batch_size')}, image_size={cfg.get('image_size')}): "
            "resume with a smaller batch_size or image_size, or free the GPU"
        )
    return f"{type(exc).__name__}: {exc}"


def run_job(job_id: int, *, worker_host: str) -> str:
    """Run job ``job_id`` to a final status; returns that status (or 'skipped').

    ``worker_host`` is the Celery node name (``gpu0@host``), which the worker monitor
    and the job's log show.
    """
    job = job_claim(job_id=job_id, worker_host=worker_host)
    if job is None:
        return "skipped"
    threads = torch_threads_apply()
    job_log(
        job_id=job.pk,
        line=f"attempt {job.attempts} on {worker_host}: {threads} torch CPU thread(s)",
    )
    try:
        with Heartbeat(job.pk) as heartbeat:
            RUNNERS[job.kind](job, heartbeat)
    except JobCancelled:
        job_finish(job_id=job_id, status=Job.Status.CANCELLED, error="cancelled by a researcher")
    except Exception as exc:  # any failure is recorded on the row, with its traceback
        log.exception("job %s failed", job_id)
        job_finish(
            job_id=job_id,
            status=Job.Status.FAILED,
            error=_failure_message(exc, job),
            traceback=traceback.format_exc(),
        )
    return Job.objects.values_list("status", flat=True).get(pk=job_id)


RUNNERS = {
    Job.Kind.TRAIN: run_train,
    Job.Kind.GENERATE: run_generate,
    Job.Kind.EVALUATE: run_evaluate,
    Job.Kind.CLASSIFY: run_classify,
}
