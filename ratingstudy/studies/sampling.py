"""Drawing a session's trials: a pure function of the design, the image pools and a seed.

Order of a session: practice trials first (with feedback, excluded from
analysis), drawn in random order from a practice pool that is never analysed
(so the answers revealed in practice say nothing about any analysed image, and
the order of real and generated practice images cannot be predicted), then the
analysed trials shuffled together with the attention checks. A corrupted check
shows a visibly damaged copy of one of the session's images; a repeat check
shows an earlier analysed image again, mirrored or turned (so that its bytes
differ from the original's), at least a quarter of the session later, for
intra-rater consistency.

``STRATIFIED`` balance: half the analysed images real, half generated (an odd
one out goes to a side drawn at random); each half is split as evenly as
possible over its strata, real images by label (benign/malignant) and generated
images by (model, label). Within a stratum the images seen by the fewest raters
so far are taken first (ties broken at random), so that coverage of the pool
evens out across sessions (the study's ``raters_per_image`` target).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Study, StudyDesign, Trial


@dataclass(frozen=True)
class PoolImage:
    """What the draw may know about an image (never shown to a rater)."""

    image_id: int
    is_real: bool
    label: str
    model_name: str  # "" for real images

    @property
    def stratum(self) -> tuple[bool, str, str]:
        return (self.is_real, self.model_name, self.label)


@dataclass(frozen=True)
class PlannedTrial:
    """One position of a drawn session; ``repeat_of`` is the position of the original."""

    image_id: int
    is_practice: bool = False
    attention_check: str = Trial.AttentionCheck.NONE
    repeat_of: int | None = None
    variant: str = Trial.Variant.NONE
    is_qualification: bool = False
    pair_image_id: int | None = None  # 2AFC: the real image beside the generated ``image_id``
    real_side: str = ""  # 2AFC: "left" or "right"


REPEAT_VARIANTS = (Trial.Variant.FLIP_H, Trial.Variant.FLIP_V, Trial.Variant.ROT180)


def session_seed(*, study_seed: int, rater_id: int) -> int:
    """A session's seed, derived from the study's seed and the rater so that it can be recomputed."""
    return int(np.random.SeedSequence([study_seed, rater_id]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _least_seen(
    images: Sequence[PoolImage], count: int, seen: Mapping[int, int], rng: np.random.Generator
) -> list[PoolImage]:
    tiebreak = rng.permutation(len(images))
    ranked = sorted(range(len(images)), key=lambda i: (seen.get(images[i].image_id, 0), tiebreak[i]))
    return [images[i] for i in ranked[:count]]


def _split_evenly(sizes: Sequence[int], total: int, rng: np.random.Generator) -> list[int]:
    """Quotas summing to ``total``, as equal as the stratum ``sizes`` allow; extra ones go to random strata."""
    quotas = [0] * len(sizes)
    remaining = total
    while remaining:
        open_strata = [i for i, size in enumerate(sizes) if quotas[i] < size]
        if not open_strata:
            raise ApplicationError(f"cannot draw {total} images from strata of sizes {list(sizes)}")
        share, extra = divmod(remaining, len(open_strata))
        lucky = set(rng.permutation(open_strata)[:extra].tolist())
        for i in open_strata:
            grant = min(share + (i in lucky), sizes[i] - quotas[i])
            quotas[i] += grant
            remaining -= grant
    return quotas


def _draw_stratified(
    images: Sequence[PoolImage], count: int, seen: Mapping[int, int], rng: np.random.Generator
) -> list[PoolImage]:
    strata: dict[tuple[bool, str, str], list[PoolImage]] = defaultdict(list)
    for image in images:
        strata[image.stratum].append(image)
    keys = sorted(strata)
    quotas = _split_evenly([len(strata[k]) for k in keys], count, rng)
    chosen: list[PoolImage] = []
    for key, quota in zip(keys, quotas, strict=True):
        chosen += _least_seen(strata[key], quota, seen, rng)
    return chosen


def _partners(
    generated: Sequence[PoolImage], real: Sequence[PoolImage], seen: Mapping[int, int], rng: np.random.Generator
) -> list[PoolImage]:
    """A real partner for each generated image: same label where one exists, least used first (within this
    session, then across sessions), so a session repeats a real image only when the pool runs out."""
    used: dict[int, int] = {}
    tiebreak = {p.image_id: float(rng.random()) for p in real}
    partners = []
    for image in generated:
        same = [p for p in real if p.label == image.label] or list(real)
        best = min(same, key=lambda p: (used.get(p.image_id, 0), seen.get(p.image_id, 0), tiebreak[p.image_id]))
        used[best.image_id] = used.get(best.image_id, 0) + 1
        partners.append(best)
    return partners


def _sides(count: int, rng: np.random.Generator) -> list[str]:
    """Where the real image goes, counterbalanced: half left, half right (the odd one at random), shuffled."""
    left = count // 2 + (count % 2 and rng.random() < 0.5)
    return [("left" if i < left else "right") for i in rng.permutation(count)]


def _draw_analysed(
    design: StudyDesign, pool: Sequence[PoolImage], seen: Mapping[int, int], rng: np.random.Generator
) -> list[PoolImage]:
    if design.paired:  # every analysed trial shows one generated image (with a real partner)
        return _draw_stratified([p for p in pool if not p.is_real], design.images_per_rater, seen, rng)
    if design.balance == Study.Balance.RANDOM:
        return _least_seen(pool, design.images_per_rater, seen, rng)
    real = [p for p in pool if p.is_real]
    generated = [p for p in pool if not p.is_real]
    n_real = design.images_per_rater // 2
    if design.images_per_rater % 2 and rng.random() < 0.5:
        n_real += 1
    if n_real > len(real) or design.images_per_rater - n_real > len(generated):
        raise ApplicationError(
            f"a balanced session needs {n_real} real and {design.images_per_rater - n_real} generated images; "
            f"the study has {len(real)} real and {len(generated)} generated"
        )
    return _draw_stratified(real, n_real, seen, rng) + _draw_stratified(
        generated, design.images_per_rater - n_real, seen, rng
    )


def design_problems(
    *, design: StudyDesign, n_real: int, n_generated: int, n_practice: int, n_practice_real: int | None = None
) -> list[str]:
    """Why ``design`` cannot be drawn from pools of these sizes (empty when it can).

    ``n_practice_real`` (2AFC): how many of the practice pool's images are real; practice and
    qualification pairs take their generated image from the rest.
    """
    problems = []
    balanced = design.balance == Study.Balance.STRATIFIED and not design.paired
    n_main = design.images_per_rater
    if design.paired:
        if n_generated < n_main:
            problems.append(
                f"{n_main} generated images are needed per rater (one per pair), the generated sets hold "
                f"{n_generated} outside the practice pool"
            )
        if n_real < 1:
            problems.append("pairs need real images, the real sets hold none outside the practice pool")
    if balanced and n_real < (n_main + 1) // 2:
        problems.append(
            f"{(n_main + 1) // 2} real images are needed per rater, the real sets hold {n_real} outside the practice pool"
        )
    if balanced and n_generated < (n_main + 1) // 2:
        problems.append(
            f"{(n_main + 1) // 2} generated images are needed per rater, the generated sets hold {n_generated} "
            "outside the practice pool"
        )
    if not design.paired and n_real + n_generated < n_main:
        problems.append(f"{n_main} analysed images are needed per rater, the sets hold {n_real + n_generated}")
    needed = design.practice_trials + design.qualification_trials
    if design.paired and n_practice_real is not None and needed:
        if n_practice_real < 1:
            problems.append("practice pairs need real images in the practice pool, it holds none")
        n_practice -= n_practice_real  # the generated ones make the pairs
    if n_practice < needed:
        what = f"{design.practice_trials} practice" + (
            f" + {design.qualification_trials} qualification" if design.qualification_trials else ""
        )
        problems.append(
            f"{what} images are needed per rater (never analysed), the practice pool holds {n_practice} "
            "(choose practice image sets, or a larger held-out share)"
        )
    if design.repeat_checks > n_main // 2:
        problems.append(f"at most {n_main // 2} repeat checks fit in {n_main} analysed trials")
    if design.corrupted_checks > n_main:
        problems.append(f"at most {n_main} corrupted checks fit in {n_main} analysed trials")
    return problems


def trials_draw(
    *,
    design: StudyDesign,
    pool: Sequence[PoolImage],
    practice_pool: Sequence[PoolImage] = (),
    seed: int,
    seen: Mapping[int, int] | None = None,
) -> list[PlannedTrial]:
    """Draw a session's trials in order. Same arguments, same result.

    ``pool`` (analysed images) and ``practice_pool`` (never analysed) must be in a
    stable order (the selector sorts by id); ``seen`` maps an image id to how many
    sessions of the study already have it.
    """
    problems = design_problems(
        design=design,
        n_real=sum(p.is_real for p in pool),
        n_generated=sum(not p.is_real for p in pool),
        n_practice=len(practice_pool),
        n_practice_real=sum(p.is_real for p in practice_pool),
    )
    if problems:
        raise ApplicationError("the study design cannot be drawn: " + "; ".join(problems))
    rng = np.random.default_rng(seed)
    seen = seen or {}
    analysed = _draw_analysed(design, pool, seen, rng)
    unanalysed = [practice_pool[i] for i in rng.permutation(len(practice_pool))]
    if design.paired:  # practice and qualification pairs: generated practice images with real ones
        unanalysed = [p for p in unanalysed if not p.is_real]
    practice = unanalysed[: design.practice_trials]
    qualification = unanalysed[design.practice_trials : design.practice_trials + design.qualification_trials]
    pairs: dict[int, tuple[int, str]] = {}  # generated image id -> (real partner id, side of the real image)
    if design.paired:
        for block, partners_from in (
            (practice + qualification, [p for p in practice_pool if p.is_real]),
            (analysed, [p for p in pool if p.is_real]),
        ):
            partners = _partners(block, partners_from, seen, rng)
            for image, partner, side in zip(block, partners, _sides(len(block), rng), strict=True):
                pairs[image.image_id] = (partner.image_id, side)

    # The session after practice, as (kind, index into ``analysed``) pairs.
    order: list[tuple[str, int]] = [("main", i) for i in range(len(analysed))]
    corrupted = rng.choice(len(analysed), size=design.corrupted_checks, replace=False)
    order += [(Trial.AttentionCheck.CORRUPTED, int(i)) for i in sorted(corrupted.tolist())]
    order = [order[i] for i in rng.permutation(len(order))]
    # Each repeat check repeats a distinct analysed image, preferably a quarter of the session later.
    for _ in range(design.repeat_checks):
        gap = max(1, len(order) // 4)
        repeated = {i for kind, i in order if kind == Trial.AttentionCheck.REPEAT}
        candidates = [p for p, (kind, i) in enumerate(order) if kind == "main" and i not in repeated]
        early = [p for p in candidates if p < len(order) - gap]
        original = int(rng.choice(early or candidates))
        position = int(rng.integers(min(original + gap + 1, len(order)), len(order) + 1))
        order.insert(position, (Trial.AttentionCheck.REPEAT, order[original][1]))

    def pair_of(image_id: int, *, swap: bool = False) -> dict:
        if image_id not in pairs:
            return {}
        partner, side = pairs[image_id]
        return {"pair_image_id": partner, "real_side": {"left": "right", "right": "left"}[side] if swap else side}

    planned = [PlannedTrial(image_id=p.image_id, is_practice=True, **pair_of(p.image_id)) for p in practice]
    planned += [PlannedTrial(image_id=p.image_id, is_qualification=True, **pair_of(p.image_id)) for p in qualification]
    main_position = {i: len(planned) + p for p, (kind, i) in enumerate(order) if kind == "main"}
    for kind, i in order:
        variant = Trial.Variant.NONE
        if kind == Trial.AttentionCheck.CORRUPTED:
            variant = Trial.Variant.CORRUPTED
        elif kind == Trial.AttentionCheck.REPEAT:
            variant = REPEAT_VARIANTS[int(rng.integers(len(REPEAT_VARIANTS)))]
        image_id = analysed[i].image_id
        planned.append(
            PlannedTrial(
                image_id=image_id,
                attention_check="" if kind == "main" else kind,
                repeat_of=main_position[i] if kind == Trial.AttentionCheck.REPEAT else None,
                variant=variant,
                # a repeated pair comes back with its sides swapped
                **pair_of(image_id, swap=kind == Trial.AttentionCheck.REPEAT),
            )
        )
    return planned
