"""Reproducing the founding study (shared/FOUNDING_STUDY.txt) in one go: the services.

A *run* is a :class:`~ratingstudy.jobs.models.Comparison` whose description starts with
:data:`FOUNDING_MARKER` and records its :class:`FoundingSettings`. :func:`founding_launch`

1. imports BreakHis at 400X with the deck's split (100 + 100 training, 10 + 10 test
   images, by patient; ``import_breakhis``),
2. launches one experiment per model of the deck (:data:`MODELS`: Simple CycleGAN,
   VGG-16 CycleGAN and ResNet-50 CycleGAN, the transfer-learning ones semi-supervised where
   the deck used TL-S-GAN); each experiment's chain trains, translates the test split's
   benign images to malignant (``AtoB``) and evaluates them (SSIM/PSNR/MSE, FCN-score,
   FID/KID, and the class head's classification for the semi-supervised ones),
3. launches the baseline classifier on the real training images alone.

:func:`founding_advance` (called by ``reproduce_founding_study`` while it waits, and by the
report page for job operators) does what the experiment chains do not: for every trained
model it translates the test split the other way (so that the rating study shows generated
images of both classes, as the real ones are), translates the *training* split's benign
images and trains a classifier on the real training images plus those (never on anything
made from test images), and, once every model's test images are translated, creates the
rating study: the real test images resized to the models' square input exactly as the
generators saw them, beside every model's translations.

What a run is and how it is read back: :mod:`ratingstudy.results.founding_selectors`; the
report: :mod:`ratingstudy.results.founding_report`. No torch here.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import transaction

from ganlab.data.imageio import decode_image, encode_png, resize
from ratingstudy.catalog.models import ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Comparison, Job
from ratingstudy.jobs.services import broker_check, experiment_launch, job_launch
from ratingstudy.results.founding_selectors import (
    FOUNDING_MARKER,
    MODEL_BY_PRESET,
    FoundingSettings,
    FoundingStatus,
    classify_job,
    founding_models,
    founding_rated_set_name,
    founding_real_set_name,
    founding_settings_of,
    founding_status,
    founding_study_name,
    generate_job,
)
from ratingstudy.studies.models import Study
from ratingstudy.studies.services import study_create

PRACTICE_HOLDOUT = 0.1  # the studies app's default share of each group held out for practice


def _import_breakhis(settings: FoundingSettings) -> ImageSet:
    name = founding_real_set_name(settings.name)
    existing = ImageSet.objects.filter(name=name).first()
    if existing is not None:
        return existing
    try:
        call_command(
            "import_breakhis",
            settings.breakhis_root,
            magnification="400X",
            train_per_class=settings.train_per_class,
            test_per_class=settings.test_per_class,
            min_test_patients=settings.min_test_patients,
            seed=settings.seed,
            name=name,
            verbosity=0,
        )
    except CommandError as exc:
        raise ApplicationError(f"importing BreakHis from {settings.breakhis_root}: {exc}") from exc
    return ImageSet.objects.get(name=name)


def founding_launch(*, settings: FoundingSettings, user=None) -> Comparison:
    """Import, then launch every model's experiment and the baseline classifier (see module docstring).

    Refused before anything is written when the settings cannot run (missing ImageNet
    weights included), when there is no job broker, or when a run of that name exists.
    """
    problems = settings.problems()
    if problems:
        raise ApplicationError(
            "the founding study cannot run:\n  " + "\n  ".join(problems), extra={"problems": problems}
        )
    broker_check()
    if Comparison.objects.filter(name=settings.name).exists():
        raise ApplicationError(
            f"a run named {settings.name!r} exists already; open its report, or choose another name"
        )
    real = _import_breakhis(settings)
    with transaction.atomic():
        comparison = Comparison.objects.create(
            name=settings.name,
            description=f"{FOUNDING_MARKER} (shared/FOUNDING_STUDY.txt): BreakHis 400X, "
            f"{settings.train_per_class}+{settings.train_per_class} training and "
            f"{settings.test_per_class}+{settings.test_per_class} test images by patient.\n"
            f"settings: {settings.to_json()}",
        )
        for preset in settings.presets:
            model = MODEL_BY_PRESET[preset]
            experiment_launch(
                name=f"{settings.name}: {model.label}",
                comparison=comparison,
                description=f"The founding study's {model.label}"
                + (" (semi-supervised class head)" if model.semi_supervised else ""),
                input_image_set=real,
                grid={"preset": [model.preset], "semi_supervised": [model.semi_supervised]},
                train_config=settings.train_config(),
                generate_config={"direction": "AtoB", "split": "test"},
                evaluate_config={"fcn_steps": settings.fcn_steps, "seed": settings.seed},
                user=user,
            )
        job_launch(
            kind=Job.Kind.CLASSIFY,
            config=settings.classifier_config(None),
            user=user,
            input_image_set=real,
        )
    return comparison


def _rated_real_set(*, settings: FoundingSettings, real: ImageSet) -> ImageSet:
    """The real test images as the generators saw them: bicubic-resized to the square input.

    Generation squeezes each 700x460 field into ``image_size`` x ``image_size``; real
    images shown at their own shape beside them would give the answer away, so raters see
    the real test fields through the same resize.
    """
    name = founding_rated_set_name(settings.name)
    existing = ImageSet.objects.filter(name=name).first()
    if existing is not None:
        return existing
    size = settings.image_size
    with tempfile.TemporaryDirectory(prefix="founding-rated-") as tmp:
        entries = []
        for image in real.images.filter(split="test").order_by("source_path"):
            with default_storage.open(image.file.name, "rb") as fh:
                pixels = decode_image(fh.read(), path=image.file.name).pixels
            path = Path(tmp) / f"{image.pk}.png"
            path.write_bytes(encode_png(resize(pixels, size)))
            entries.append(
                ImageEntry(
                    path=path,
                    source_path=image.source_path,
                    label=image.label,
                    split="test",
                    domain=image.label,
                    patient_id=image.patient_id,
                    magnification=image.magnification,
                    subtype=image.subtype,
                )
            )
        return image_set_import(
            name=name,
            kind=ImageSet.Kind.REAL,
            source=ImageSet.Source.BREAKHIS,
            entries=entries,
            description=f"The test split of {real.name}, bicubic-resized to {size}x{size} as the "
            "generators' input, for the rating study",
            import_params={"from": real.name, "split": "test", "resize": size, "filter": "bicubic"},
        )


def _study_design(n_real: int, generated: dict[str, int]) -> dict:
    """A design every run can draw: half real, half generated, from the pools left after the
    studies app holds out 10% of each group (real images, each model) for practice, at most
    40 images per rater."""
    groups = [n_real, *generated.values()]
    held_out = [math.ceil(PRACTICE_HOLDOUT * n) for n in groups]
    pool_real = n_real - held_out[0]
    pool_generated = sum(generated.values()) - sum(held_out[1:])
    per_rater = 2 * min(pool_real, pool_generated, 20)
    return {
        "images_per_rater": per_rater,
        "practice_trials": min(4, sum(held_out)),
        "corrupted_checks": 2 if per_rater >= 20 else 1,
        "repeat_checks": 2 if per_rater >= 20 else 1,
    }


def _study_create(*, settings: FoundingSettings, real: ImageSet, generated: list[ImageSet]) -> Study:
    rated = _rated_real_set(settings=settings, real=real)
    per_model: dict[str, int] = {}
    for image_set in generated:
        key = image_set.model_name or image_set.name
        per_model[key] = per_model.get(key, 0) + image_set.images.count()
    design = _study_design(rated.images.count(), per_model)
    return study_create(
        name=founding_study_name(settings.name),
        instructions=(
            "You will see breast tissue (BreakHis, 400X, H&E). Some images are real "
            "micrographs; others were generated by computer models. For each image, say "
            "whether you think it is real or generated, and rate its quality as a histology "
            "image from 1 (bad) to 5 (excellent)."
        ),
        description=f"The founding study's rating table, reproduced by run {settings.name!r}.",
        real_image_sets=[rated],
        generated_image_sets=generated,
        task=Study.Task.BOTH,
        is_open=True,
        **design,
    )


def founding_advance(*, comparison: Comparison) -> FoundingStatus:
    """Launch whatever has become possible (see module docstring); idempotent, cheap to poll."""
    settings = founding_settings_of(comparison)
    real = ImageSet.objects.get(name=founding_real_set_name(settings.name))
    test_sets: list[ImageSet] = []
    ready = True
    for _model, experiment, train in founding_models(comparison):
        if train is None or train.status != Job.Status.SUCCEEDED or experiment.is_cancelled:
            ready = False
            continue
        user = train.created_by
        for direction, split in (("BtoA", "test"), ("AtoB", "train")):
            if generate_job(train, direction=direction, split=split) is None:
                job_launch(
                    kind=Job.Kind.GENERATE,
                    config={"direction": direction, "split": split},
                    user=user,
                    input_image_set=real,
                    parent=train,
                )
        augment = generate_job(train, direction="AtoB", split="train")
        if augment is not None and augment.status == Job.Status.SUCCEEDED:
            if classify_job(real, augment.output_image_set) is None:
                job_launch(
                    kind=Job.Kind.CLASSIFY,
                    config=settings.classifier_config(augment.output_image_set),
                    user=user,
                    input_image_set=real,
                )
        for direction in ("AtoB", "BtoA"):
            job = generate_job(train, direction=direction, split="test")
            if job is None or job.status != Job.Status.SUCCEEDED:
                ready = False
            else:
                test_sets.append(job.output_image_set)
    if ready and not Study.objects.filter(name=founding_study_name(settings.name)).exists():
        with transaction.atomic():
            _study_create(settings=settings, real=real, generated=test_sets)
    return founding_status(comparison=comparison)
