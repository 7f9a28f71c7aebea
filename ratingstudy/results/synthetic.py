"""A synthetic rating study for benchmarks and demos: realistic shape, known generating model.

:func:`synthetic_study_create` writes one complete study through the studies app's own models
(``bulk_create``, in one transaction: all of it or nothing): a real image set and one
generated set per model (each generated image paired with the real image it was translated
from), a practice set, raters with profiles (role, years of experience, specialty, consent),
and one completed session per rater whose trials are ``practice`` practice trials, then the
study proper with corrupted-image and repeat attention checks mixed in, each answered.

Answers follow a simple generating model, so that the results page has something to find:
each group has a mean quality and a chance of being judged real (:data:`TRUTH`), each image
and each rater a random offset (quality on the 1-5 scale, judged-real on the logit scale),
confidence grows with how far the chance is from a coin toss. About one rater in 25 is
careless: they fail their attention checks, so the default rule excludes them.

Everything is named ``synthetic ...`` so that it cannot be mistaken for real data, and is
drawn from ``seed`` (the same arguments give the same answers).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass

import numpy as np
from django.db import transaction
from django.utils import timezone

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Rater, Response, Session, Study, Trial, token_digest

#: Generating model per group: (mean quality 1-5, chance of being judged real).
TRUTH: dict[str, tuple[float, float]] = {
    "real": (3.9, 0.8),
    "plain-cyclegan": (3.0, 0.5),
    "resnet50-cyclegan": (2.6, 0.35),
    "vgg16-cyclegan": (3.6, 0.65),
    "efficientnet-lite0-cyclegan": (3.3, 0.55),
}
MODELS = tuple(name for name in TRUTH if name != "real")
ROLES = (Rater.Role.PATHOLOGIST, Rater.Role.PATHOLOGIST, Rater.Role.RESIDENT, Rater.Role.CLINICIAN, Rater.Role.SCIENTIST)
SPECIALTIES = ("breast", "general surgical pathology", "cytopathology", "dermatopathology", "")
PRACTICE_TRIALS = 4
CORRUPTED_CHECKS = 2
REPEAT_CHECKS = 2
#: One rater in this many fails their attention checks.
CARELESS_EVERY = 25
REPEAT_VARIANTS = (Trial.Variant.FLIP_H, Trial.Variant.FLIP_V, Trial.Variant.ROT180)


@dataclass(frozen=True)
class SyntheticCounts:
    raters: int
    trials: int
    responses: int
    images: int


def synthetic_study_name(*, raters: int, trials: int, seed: int) -> str:
    return f"synthetic {raters} raters x {trials} trials (seed {seed})"


def pixel_free_image_set(
    *,
    name: str,
    kind: str,
    model_name: str = "",
    n: int,
    sources: list[Image] | None = None,
    size: int = 256,
    description: str = "Synthetic: no pixels behind these rows; made for benchmarks by study_synthetic.",
) -> tuple[ImageSet, list[Image]]:
    """An image set of ``n`` rows with made-up hashes and no files (statistics need no pixels);
    generated images pair with ``sources`` as a generator's output pairs with its input."""
    image_set = ImageSet.objects.create(
        name=name,
        kind=kind,
        source=ImageSet.Source.GENERATED if kind == ImageSet.Kind.GENERATED else ImageSet.Source.DEMO,
        model_name=model_name,
        description=description,
    )
    images = []
    for i in range(n):
        digest = hashlib.sha256(f"{name}/{i}".encode()).hexdigest()
        source = sources[i] if sources else None
        image = Image(
            image_set=image_set,
            sha256=digest,
            original_sha256=digest,
            label=Image.Label.BENIGN if i % 2 == 0 else Image.Label.MALIGNANT,
            source_path=f"{'fake' if source else 'real'}/{model_name or 'real'}/img_{i:04d}.png",
            width=size,
            height=size,
            source_image=source,
            direction=Image.Direction.A_TO_B if source else "",
            checkpoint_sha256=hashlib.sha256(f"{name}/checkpoint".encode()).hexdigest() if source else "",
        )
        image.file.name = f"images/{digest}.png"
        images.append(image)
    return image_set, Image.objects.bulk_create(images)


def _draw_main_images(rng: np.random.Generator, pools: dict[str, list[Image]], n: int) -> list[tuple[str, Image]]:
    """``n`` distinct images, half real and half generated spread over the models (stratified)."""
    n_real = n // 2
    per_model = np.full(len(MODELS), (n - n_real) // len(MODELS))
    per_model[: (n - n_real) % len(MODELS)] += 1
    drawn = [("real", pools["real"][k]) for k in rng.choice(len(pools["real"]), n_real, replace=False)]
    for model, count in zip(MODELS, per_model, strict=True):
        drawn += [(model, pools[model][k]) for k in rng.choice(len(pools[model]), int(count), replace=False)]
    return [drawn[k] for k in rng.permutation(len(drawn))]


@transaction.atomic
def synthetic_study_create(*, raters: int, trials: int, seed: int = 0, name: str | None = None) -> tuple[Study, SyntheticCounts]:
    """Create a complete synthetic study of ``raters`` raters x ``trials`` trials each (see the
    module docstring); one transaction, so a failure leaves nothing behind.

    ``trials`` counts every trial of a session: the practice trials and the attention checks
    included (``raters * trials`` responses in all). Raises :class:`ApplicationError` when the
    sizes cannot make a study or the name is taken.
    """
    checks = CORRUPTED_CHECKS + REPEAT_CHECKS
    analysed = trials - PRACTICE_TRIALS - checks
    if raters < 2:
        raise ApplicationError(f"a synthetic study needs at least 2 raters, got {raters}")
    if analysed < 2 * len(TRUTH):
        raise ApplicationError(
            f"{trials} trials per rater leave {analysed} analysed after {PRACTICE_TRIALS} practice trials and "
            f"{checks} attention checks; ask for at least {PRACTICE_TRIALS + checks + 2 * len(TRUTH)}"
        )
    name = name or synthetic_study_name(raters=raters, trials=trials, seed=seed)
    if not name.startswith("synthetic"):
        name = f"synthetic {name}"
    if Study.objects.filter(name=name).exists() or ImageSet.objects.filter(name__startswith=f"{name} /").exists():
        raise ApplicationError(f"a study named {name!r} already exists: delete it, or pass another --name or --seed")
    rng = np.random.default_rng(seed)

    # Enough images that each is seen by about 20 raters: real images are half of every session.
    n_real = max(analysed, int(np.ceil(raters * analysed / 2 / 20)))
    n_generated = max(analysed // len(MODELS) + 1, n_real // 2)
    _, real = pixel_free_image_set(name=f"{name} / real", kind=ImageSet.Kind.REAL, n=n_real)
    pools = {"real": real}
    for model in MODELS:
        _, pools[model] = pixel_free_image_set(
            name=f"{name} / {model}", kind=ImageSet.Kind.GENERATED, model_name=model, n=n_generated, sources=real[:n_generated]
        )
    _, practice = pixel_free_image_set(name=f"{name} / practice", kind=ImageSet.Kind.REAL, n=PRACTICE_TRIALS * 2)

    study = Study.objects.create(
        name=name,
        description="Synthetic study made by `manage.py study_synthetic` for benchmarks: not real data.",
        instructions="Is each image real or generated? Then rate its quality from 1 (bad) to 5 (excellent).",
        task=Study.Task.BOTH,
        ask_confidence=True,
        images_per_rater=analysed,
        raters_per_image=20,
        practice_trials=PRACTICE_TRIALS,
        corrupted_checks=CORRUPTED_CHECKS,
        repeat_checks=REPEAT_CHECKS,
        canvas_width=256,
        canvas_height=256,
        seed=seed,
    )
    study.real_image_sets.set([real[0].image_set])
    study.generated_image_sets.set([pools[m][0].image_set for m in MODELS])
    study.practice_image_sets.set([practice[0].image_set])

    # Effects of the generating model: per image (quality, logit of judged real) and per rater.
    image_q = {image.pk: rng.normal(0, 0.4) for pool in pools.values() for image in pool}
    image_logit = {image.pk: rng.normal(0, 0.5) for pool in pools.values() for image in pool}
    started = timezone.now() - dt.timedelta(days=7)
    rater_rows = []
    for r in range(raters):
        rater = Rater(
            study=study,
            note=f"synthetic rater {r + 1}",
            role=ROLES[r % len(ROLES)],
            years_experience=int(min(rng.gamma(2.0, 6.0), 45)),
            specialty=SPECIALTIES[r % len(SPECIALTIES)],
            consented_at=started,
            profile_completed_at=started,
            created_at=started,
        )
        rater.token_hash = token_digest(f"synthetic:{name}:{r}:{rng.random()}")
        rater_rows.append(rater)
    rater_rows = Rater.objects.bulk_create(rater_rows)
    sessions = Session.objects.bulk_create(
        Session(rater=rater, study=study, seed=seed * 100_003 + k, started_at=started + dt.timedelta(minutes=k),
                completed_at=started + dt.timedelta(minutes=k + 40))
        for k, rater in enumerate(rater_rows)
    )  # fmt: skip

    # Trials: practice first, then the study proper with the corrupted checks mixed in;
    # repeats are made in a second pass, once the trials they repeat have ids.
    plan: list[tuple[Trial, str, bool]] = []  # (trial, group, careless)
    repeats: list[tuple[Session, int, int, bool]] = []  # (session, index, position of the original in plan, careless)
    for k, session in enumerate(sessions):
        careless = k % CARELESS_EVERY == CARELESS_EVERY - 1
        shown = session.started_at
        for p in range(PRACTICE_TRIALS):
            image = practice[(k + p) % len(practice)]
            plan.append((Trial(session=session, index=p, image=image, is_practice=True, shown_at=shown), "practice", careless))
        main = _draw_main_images(rng, pools, analysed)
        proper = trials - PRACTICE_TRIALS
        # Checks sit in the later three quarters, so every repeat has earlier trials to repeat.
        slots = rng.choice(np.arange(proper // 4, proper), CORRUPTED_CHECKS + REPEAT_CHECKS, replace=False).tolist()
        corrupted_at, repeat_at = set(slots[:CORRUPTED_CHECKS]), set(slots[CORRUPTED_CHECKS:])
        first_of_session = len(plan) - PRACTICE_TRIALS
        main_iter = iter(main)
        for position in range(proper):
            index = PRACTICE_TRIALS + position
            when = shown + dt.timedelta(seconds=6 * index)
            if position in corrupted_at:
                image = pools["real"][int(rng.integers(len(pools["real"])))]
                plan.append((Trial(session=session, index=index, image=image, attention_check=Trial.AttentionCheck.CORRUPTED,
                                   variant=Trial.Variant.CORRUPTED, shown_at=when), "corrupted", careless))  # fmt: skip
            elif position in repeat_at:
                originals = [j for j in range(first_of_session + PRACTICE_TRIALS, len(plan)) if plan[j][1] in TRUTH]
                repeats.append((session, index, int(rng.choice(originals)), careless))
            else:
                group, image = next(main_iter)
                plan.append((Trial(session=session, index=index, image=image, shown_at=when), group, careless))
    created = Trial.objects.bulk_create([trial for trial, _, _ in plan], batch_size=2000)
    repeat_trials = Trial.objects.bulk_create(
        [
            Trial(session=session, index=index, image=created[j].image, attention_check=Trial.AttentionCheck.REPEAT,
                  repeat_of=created[j], variant=REPEAT_VARIANTS[index % len(REPEAT_VARIANTS)],
                  shown_at=session.started_at + dt.timedelta(seconds=6 * index))
            for session, index, j, _ in repeats
        ],
        batch_size=2000,
    )  # fmt: skip

    # Answers, drawn together.
    bias_q = {s.pk: rng.normal(0, 0.4) for s in sessions}
    bias_logit = {s.pk: rng.normal(0, 0.4) for s in sessions}
    answers: dict[int, tuple[bool, int, int]] = {}
    responses = []
    for trial, group, careless in plan:
        if group in TRUTH:
            mean_q, p_real = TRUTH[group]
            quality = int(np.clip(np.rint(mean_q + image_q[trial.image_id] + bias_q[trial.session_id] + rng.normal(0, 0.8)), 1, 5))
            logit = np.log(p_real / (1 - p_real)) + image_logit[trial.image_id] + bias_logit[trial.session_id]
            chance = 1 / (1 + np.exp(-logit))
            judged_real = bool(rng.random() < chance)
            confidence = int(np.clip(1 + np.floor(abs(chance - 0.5) * 6 + rng.random()), 1, 3))
        elif group == "corrupted":
            judged_real, quality, confidence = (True, 4, 2) if careless else (False, int(rng.integers(1, 3)), 3)
        else:  # practice
            judged_real, quality, confidence = bool(rng.random() < 0.5), int(rng.integers(2, 5)), 1
        answers[trial.pk] = (judged_real, quality, confidence)
        responses.append(_response(trial, judged_real, quality, confidence, rng))
    for trial, (_, _, _, careless) in zip(repeat_trials, repeats, strict=True):
        judged_real, quality, confidence = answers[trial.repeat_of_id]
        if careless:
            judged_real, quality = not judged_real, 1 + (quality + 1) % 5
        else:
            quality = int(np.clip(quality + rng.integers(-1, 2), 1, 5))
        responses.append(_response(trial, judged_real, quality, confidence, rng))
    Response.objects.bulk_create(responses, batch_size=2000)
    n_images = sum(len(pool) for pool in pools.values()) + len(practice)
    return study, SyntheticCounts(raters=raters, trials=len(plan) + len(repeats), responses=len(responses), images=n_images)


def _response(trial: Trial, judged_real: bool, quality: int, confidence: int, rng: np.random.Generator) -> Response:
    client_ms = int(rng.lognormal(8.0, 0.5))
    return Response(
        trial=trial,
        judged_real=judged_real,
        quality=quality,
        confidence=confidence,
        client_ms=client_ms,
        server_ms=client_ms + int(rng.integers(20, 200)),
        onscreen_ms=client_ms,
        paint_ms=int(rng.integers(80, 400)),
        created_at=trial.shown_at + dt.timedelta(milliseconds=client_ms),
    )
