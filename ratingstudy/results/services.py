"""Writes of the results app: storing automatic-metric reports, and keeping each study's
results snapshot current.

The snapshot (:class:`~ratingstudy.results.models.ResultsSnapshot`) is what the results page
shows by default. Statistics are recomputed when the data change, never on a page view:

1. the rater answer path calls :func:`schedule_results_refresh` after each answer commits (and
   the page calls it when it finds its snapshot stale): one Redis ``SET NX EX`` per call, and
   for the first call of a burst one ``refresh_study_results`` task on the ``cpu`` queue,
   ``REFRESH_DELAY_SECONDS`` later;
2. the task (:mod:`ratingstudy.results.tasks`) clears the key, then
   :func:`results_snapshot_refresh` reads the data version and computes ``study_results``;
   answers that arrive while it computes schedule the next run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.results.models import ImageMetric, MetricReport, ResultsSnapshot
from ratingstudy.results.reports import json_safe, report_extractor, report_per_image

log = logging.getLogger(__name__)

#: Seconds between the first answer of a burst and the snapshot job (answers meanwhile join it).
REFRESH_DELAY_SECONDS = 5
#: How long the debounce key outlives the delay when its job never clears it (a lost job).
REFRESH_KEY_GRACE_SECONDS = 120
REFRESH_TASK = "ratingstudy.results.tasks.refresh_study_results"
REFRESH_QUEUE = "cpu"

#: Allowed cost fields and their types.
COST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "parameters": int,
    "train_seconds": (int, float),
    "images_per_s": (int, float),
    "peak_gpu_mem_bytes": int,
    "device": str,
}
#: Unmatched per-image keys kept as examples in ``MetricReport.mapping``.
UNMATCHED_EXAMPLES = 20


def _validate_cost(cost: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cost) - set(COST_FIELDS))
    if unknown:
        raise ApplicationError(
            f"unknown cost field(s) {', '.join(unknown)}; allowed: {', '.join(COST_FIELDS)}", extra={"fields": unknown}
        )
    clean: dict[str, Any] = {}
    for key, value in cost.items():
        if value is None:
            clean[key] = None
            continue
        expected = COST_FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ApplicationError(f"cost field {key} must be {_type_name(expected)}, got {value!r}")
        if isinstance(value, int | float) and (not math.isfinite(value) or value < 0):
            raise ApplicationError(f"cost field {key} must be a finite number >= 0, got {value!r}")
        clean[key] = value
    return clean


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({"int": "an integer", "float": "a number", "str": "a string"}[t.__name__] for t in types)


def _normalise(key: str) -> str:
    key = key.replace("\\", "/").strip()
    while key.startswith("./"):
        key = key[2:]
    return key


class _ImageIndex:
    """Finds the catalogue image a report's per-image key refers to.

    Tried in order, for each identity key of a record (``path``, then ``source``...):
    1. the key equals an image's ``source_path`` in the set;
    2. the key equals the ``source_path`` of a generated image's *source image*
       (reports of unpaired translation name each pair by its input);
    3. the key's file name, then its file name without extension, equals that of exactly
       one image (by its own path, then by its source image's path).
    Ambiguous names (two images with the same file name) never match by rule 3.
    """

    def __init__(self, images: Iterable[tuple[int, str, str | None]]) -> None:
        self.exact: dict[str, int] = {}
        self.by_source: dict[str, int] = {}
        self.loose: dict[str, int | None] = {}
        for image_id, path, source_path in images:
            self.exact[_normalise(path)] = image_id
            if source_path:
                self.by_source.setdefault(_normalise(source_path), image_id)
            for candidate in (path, source_path):
                if candidate:
                    for name in self._loose_names(candidate):
                        self.loose[name] = None if self.loose.get(name, image_id) != image_id else image_id

    @staticmethod
    def _loose_names(path: str) -> tuple[str, str]:
        pure = PurePosixPath(_normalise(path))
        return (f"name:{pure.name}", f"stem:{pure.stem}")

    def find(self, keys: Iterable[str]) -> int | None:
        keys = [_normalise(k) for k in keys]
        for key in keys:
            if key in self.exact:
                return self.exact[key]
            if key in self.by_source:
                return self.by_source[key]
        for key in keys:
            for name in self._loose_names(key):
                if self.loose.get(name) is not None:
                    return self.loose[name]
        return None


@transaction.atomic
def metric_report_store(
    *, image_set: ImageSet, report: dict, cost: dict | None = None, job_id: int | None = None
) -> MetricReport:
    """Store a ``ganlab`` evaluation report for ``image_set`` and map its per-image values
    onto the set's catalogue images (see :class:`_ImageIndex` for the matching rules and
    :mod:`ratingstudy.results.reports` for what is read).

    ``model_name`` is the set's ``model_name`` (its name when blank), or ``"real"`` for a
    real set. Idempotent per ``(image_set, job_id)``: a retried evaluation job replaces its
    earlier report and per-image rows instead of adding a second one. Keys that match no
    image are counted, with examples, in ``MetricReport.mapping``; a report whose per-image
    values match no image at all is an error (wrong set, or paths in an unknown layout).
    """
    if not isinstance(report, Mapping):
        raise ApplicationError(f"a metric report must be a JSON object, got {type(report).__name__}")
    clean_cost = _validate_cost(cost or {})
    model_name = "real" if image_set.kind == ImageSet.Kind.REAL else (image_set.model_name or image_set.name)
    safe_report = json_safe(report)

    index = _ImageIndex(
        Image.objects.filter(image_set=image_set).values_list("id", "source_path", "source_image__source_path")
    )
    values: dict[tuple[int, str], float] = {}
    records = matched = 0
    unmatched: list[str] = []
    for keys, metrics in report_per_image(safe_report, model_name):
        records += 1
        image_id = index.find(keys)
        if image_id is None:
            if len(unmatched) < UNMATCHED_EXAMPLES:
                unmatched.append(" | ".join(keys) or "<record without a path>")
            continue
        matched += 1
        for name, value in metrics.items():
            values[(image_id, name[:100])] = value
    if records and not matched:
        raise ApplicationError(
            f"none of the {records} per-image records of the report matches an image of {image_set.name} "
            f"(by source_path, source image path or file name); first keys: {', '.join(unmatched[:3])}"
        )

    fields = {
        "model_name": model_name[:100],
        "extractor": report_extractor(safe_report)[:100],
        "report": safe_report,
        "cost": clean_cost,
        "mapping": {"records": records, "matched": matched, "unmatched": records - matched, "unmatched_examples": unmatched},
    }
    existing = (
        MetricReport.objects.select_for_update().filter(image_set=image_set, job_id=job_id).first()
        if job_id is not None
        else None
    )
    if existing:
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save()
        existing.image_metrics.all().delete()
        stored = existing
    else:
        stored = MetricReport.objects.create(image_set=image_set, job_id=job_id, **fields)
    ImageMetric.objects.bulk_create(
        (ImageMetric(report=stored, image_id=image_id, name=name, value=value) for (image_id, name), value in values.items()),
        batch_size=1000,
    )
    return stored


# ------------------------------------------------------------------ results snapshot


def refresh_key(study_id: int) -> str:
    """The Redis key that marks a snapshot job of ``study_id`` as queued (the debounce)."""
    return f"ganlab:results-refresh:{study_id}"


_redis_clients: dict[str, Any] = {}


def _redis():
    """A Redis client on ``REDIS_URL`` (one per URL and process), or None when none is configured."""
    url = settings.REDIS_URL
    if not url:
        return None
    client = _redis_clients.get(url)
    if client is None:
        import redis

        client = _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    return client


def schedule_results_refresh(*, study_id: int) -> None:
    """Ask for ``study_id``'s results snapshot to be recomputed soon; costs no SQL query.

    Call it whenever something the results show has changed: the rater answer path calls it
    after each answer commits, ``transaction.on_commit(lambda: schedule_results_refresh(study_id=...))``.
    One Redis ``SET NX EX`` on :func:`refresh_key`; only the call that sets the key enqueues
    the ``cpu``-queue task, with a countdown of ``REFRESH_DELAY_SECONDS``, so a burst of
    answers enqueues one job. The task clears the key when it starts, so an answer that
    arrives while it computes enqueues the next one (nothing is missed). The key expires
    by itself ``REFRESH_KEY_GRACE_SECONDS`` after the delay in case the job is lost.

    It never raises: without ``REDIS_URL`` it does nothing (the results page then computes on
    view), and a broker or Redis error is logged and the key released, so that an answer is
    never refused because results could not be scheduled; the page schedules again when it
    finds its snapshot stale.
    """
    client = _redis()
    if client is None:
        return
    key = refresh_key(study_id)
    try:
        # The value is when it was asked for: the page tells how long a refresh has waited for a worker.
        if not client.set(key, repr(time.time()).encode(), nx=True, ex=REFRESH_DELAY_SECONDS + REFRESH_KEY_GRACE_SECONDS):
            return  # a job is queued already: it will read this change too
    except Exception:  # redis.RedisError, OSError
        log.exception("could not schedule a results refresh of study %s (Redis)", study_id)
        return
    from worker.celery import app  # light: imports no torch and not the tasks

    try:
        app.send_task(REFRESH_TASK, kwargs={"study_id": study_id}, queue=REFRESH_QUEUE, countdown=REFRESH_DELAY_SECONDS)
    except Exception:  # kombu OperationalError, socket errors
        log.exception("could not enqueue a results refresh of study %s", study_id)
        with contextlib.suppress(Exception):
            client.delete(key)


def refresh_waiting_seconds(*, study_id: int) -> float | None:
    """How long the study's pending refresh has waited for a worker (None: none pending, or no Redis)."""
    client = _redis()
    if client is None:
        return None
    try:
        asked = client.get(refresh_key(study_id))
        return max(0.0, time.time() - float(asked)) if asked else None
    except Exception:  # redis.RedisError, OSError, a value from an older version
        return None


def refresh_schedule_clear(*, study_id: int) -> None:
    """Release the debounce key: the refresh job calls this as it starts reading the data."""
    client = _redis()
    if client is not None:
        client.delete(refresh_key(study_id))


def results_snapshot_refresh(*, study_id: int) -> ResultsSnapshot | None:
    """Compute ``study_results`` (default filters) of ``study_id`` and store it as its snapshot,
    with the data version read just before. Idempotent; None when the study is gone.

    Two runs that overlap cannot leave the older data in place: a run stores its result only
    when no snapshot read later than it did is stored already.
    """
    import json

    from ratingstudy.results.selectors import study_data_version, study_results
    from ratingstudy.studies.models import Study

    study = Study.objects.filter(pk=study_id).first()
    if study is None:
        return None
    read_at = timezone.now()
    began = time.perf_counter()
    version = study_data_version(study=study)
    # Through JSON now, so that the page gets the same types from a fresh snapshot as from a stored one.
    results = json.loads(json.dumps(study_results(study=study)))
    fields = {
        "data_version": version.key,
        "responses": version.responses,
        "results": results,
        "read_at": read_at,
        "computed_at": timezone.now(),
        "compute_seconds": time.perf_counter() - began,
    }
    with transaction.atomic():
        stored = ResultsSnapshot.objects.select_for_update().filter(study_id=study_id).first()
        if stored is None:
            return ResultsSnapshot.objects.create(study_id=study_id, **fields)
        if stored.read_at > read_at:
            return stored  # a later run already stored newer data
        for name, value in fields.items():
            setattr(stored, name, value)
        stored.save()
        return stored


def results_snapshot_current(*, study, version) -> ResultsSnapshot:
    """The snapshot the results page shows for ``study`` whose data are at ``version``
    (a :class:`~ratingstudy.results.selectors.DataVersion`).

    * none yet (a study's first view): computed now, in the request, and stored;
    * stale: returned as it is (the page says how stale) and a refresh is scheduled, unless no
      broker is configured (``REDIS_URL`` unset: nothing would ever recompute it), where it
      is recomputed now instead;
    * current: returned as it is.
    """
    snapshot = ResultsSnapshot.objects.filter(study=study).first()
    if snapshot is None or (snapshot.data_version != version.key and not settings.REDIS_URL):
        return results_snapshot_refresh(study_id=study.pk)
    if snapshot.data_version != version.key:
        schedule_results_refresh(study_id=study.pk)
    return snapshot
