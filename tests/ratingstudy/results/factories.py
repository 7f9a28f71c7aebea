"""Rows of real models for results tests: image sets, a study, raters, sessions, answers.

``simulated_study`` builds a small study whose answers follow a known generating model
(each model has its own mean quality and chance of being judged real; raters have a
bias), with practice trials and attention checks, through the studies app's models.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.results.synthetic import pixel_free_image_set
from ratingstudy.studies.models import Rater, Response, Session, Study, Trial


def image_set_create(*, name: str, kind: str = ImageSet.Kind.GENERATED, model_name: str = "", n: int = 4, sources: list[Image] | None = None) -> ImageSet:
    image_set, _ = pixel_free_image_set(name=name, kind=kind, model_name=model_name, n=n, sources=sources, size=64, description="")
    return image_set


def study_create(*, name: str = "study", real: list[ImageSet], generated: list[ImageSet], **design) -> Study:
    study = Study.objects.create(name=name, instructions="Rate each image.", seed=1234, **design)
    study.real_image_sets.set(real)
    study.generated_image_sets.set(generated)
    return study


def rater_create(*, study: Study, role: str = Rater.Role.PATHOLOGIST, years: int | None = 10, specialty: str = "breast") -> Rater:
    rater = Rater.objects.create(study=study, role=role, years_experience=years, specialty=specialty, profile_completed_at=timezone.now())
    Session.objects.create(rater=rater, study=study, seed=rater.pk * 7)
    return rater


def answer(
    *,
    rater: Rater,
    image: Image,
    index: int,
    judged_real: bool | None = None,
    quality: int | None = None,
    confidence: int | None = None,
    is_practice: bool = False,
    attention_check: str = "",
    repeat_of: Trial | None = None,
) -> Trial:
    """One trial of ``rater``'s session at ``index`` with its response."""
    trial = Trial.objects.create(
        session=rater.session,
        index=index,
        image=image,
        is_practice=is_practice,
        attention_check=attention_check,
        repeat_of=repeat_of,
        shown_at=timezone.now(),
    )
    Response.objects.create(
        trial=trial, judged_real=judged_real, quality=quality, confidence=confidence, client_ms=900 + index, server_ms=1000 + index
    )
    return trial


def staff_user(username: str = "staff"):
    """A lab administrator (superuser): sees every study. Roles are tested in tests/ratingstudy/test_roles.py."""
    return get_user_model().objects.create_user(
        username=username, password="pw-123456789", is_staff=True, is_superuser=True
    )


def plain_user(username: str = "member"):
    return get_user_model().objects.create_user(username=username, password="pw-123456789")


@dataclass
class Simulated:
    study: Study
    raters: list[Rater]
    sets: dict[str, ImageSet]
    failing_rater: Rater | None = None
    unrated: list[Image] = field(default_factory=list)


#: Generating model: (mean quality, chance of being judged real) per group.
TRUTH = {"real": (3.9, 0.85), "plain-cyclegan": (3.0, 0.55), "resnet50-cyclegan": (2.6, 0.4), "vgg16-cyclegan": (4.1, 0.75)}


def simulated_study(
    *, n_raters: int = 5, n_images: int = 8, seed: int = 0, with_checks: bool = True, unrated: int = 0
) -> Simulated:
    """Every rater answers every image once (real/fake, quality, confidence); rater 0 also
    does a practice trial; with ``with_checks`` each rater gets a corrupted and a repeat
    check, and the last rater fails both (so the default rule excludes them). ``unrated`` extra real images are
    in the study but never shown."""
    rng = np.random.default_rng(seed)
    real = image_set_create(name="real-set", kind=ImageSet.Kind.REAL, n=n_images + unrated)
    sources = list(real.images.order_by("source_path"))
    sets = {"real": real}
    for model in ("plain-cyclegan", "resnet50-cyclegan", "vgg16-cyclegan"):
        sets[model] = image_set_create(name=f"{model}-set", model_name=model, n=n_images, sources=sources[:n_images])
    study = study_create(real=[real], generated=[sets[m] for m in sets if m != "real"], ask_confidence=True)
    raters = []
    years = [2, 7, 12, 25, None]
    for r in range(n_raters):
        rater = rater_create(study=study, years=years[r % len(years)], role=Rater.Role.PATHOLOGIST if r % 2 == 0 else Rater.Role.RESIDENT)
        raters.append(rater)
        bias = rng.normal(0, 0.4)
        index = 0
        if r == 0:
            answer(rater=rater, image=sources[-1], index=index, judged_real=False, quality=1, is_practice=True)
            index += 1
        first_trial = None
        for group, image_set in sets.items():
            mean_q, p_real = TRUTH[group]
            for image in image_set.images.order_by("source_path")[:n_images]:
                quality = int(np.clip(np.rint(mean_q + bias + rng.normal(0, 0.8)), 1, 5))
                trial = answer(
                    rater=rater, image=image, index=index, judged_real=bool(rng.random() < p_real), quality=quality, confidence=int(rng.integers(1, 4))
                )
                first_trial = first_trial or trial
                index += 1
        if with_checks:
            fails = r == n_raters - 1
            answer(rater=rater, image=sources[0], index=index, judged_real=fails, quality=4 if fails else 1, attention_check=Trial.AttentionCheck.CORRUPTED)
            response = first_trial.response
            answer(
                rater=rater, image=first_trial.image, index=index + 1, judged_real=response.judged_real != fails, quality=response.quality,
                attention_check=Trial.AttentionCheck.REPEAT, repeat_of=first_trial,
            )  # fmt: skip
    return Simulated(
        study=study,
        raters=raters,
        sets=sets,
        failing_rater=raters[-1] if with_checks else None,
        unrated=list(real.images.order_by("source_path")[n_images:]),
    )
