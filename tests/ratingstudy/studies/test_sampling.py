"""The draw of a session's trials: balance, stratification, checks, reproducibility (no database)."""

from __future__ import annotations

from collections import Counter

import pytest

from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Study, StudyDesign
from ratingstudy.studies.sampling import PoolImage, design_problems, session_seed, trials_draw


def pool_make(*, real_per_label: int = 20, generated_per_model_label: int = 10, models: int = 2) -> list[PoolImage]:
    pool, next_id = [], 1
    for label in ("benign", "malignant"):
        for _ in range(real_per_label):
            pool.append(PoolImage(next_id, True, label, ""))
            next_id += 1
        for model in range(models):
            for _ in range(generated_per_model_label):
                pool.append(PoolImage(next_id, False, label, f"model-{model}"))
                next_id += 1
    return pool


def practice_make(count: int = 8) -> list[PoolImage]:
    """A practice pool (ids from 1000): half real, half generated."""
    return [PoolImage(1000 + i, i % 2 == 0, "benign", "" if i % 2 == 0 else "model-0") for i in range(count)]


PRACTICE = practice_make()
DESIGN = StudyDesign(
    images_per_rater=24, balance=Study.Balance.STRATIFIED, practice_trials=4, corrupted_checks=2, repeat_checks=3
)


def test_stratified_draw_is_half_real_and_even_over_models_and_labels():
    pool = pool_make()
    by_id = {p.image_id: p for p in pool}
    for seed in range(20):
        plan = trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=seed)
        analysed = [by_id[t.image_id] for t in plan if not t.is_practice and not t.attention_check]
        assert len(analysed) == 24
        assert len({p.image_id for p in analysed}) == 24  # no image twice among analysed trials
        strata = Counter(p.stratum for p in analysed)
        assert strata == {
            (True, "", "benign"): 6,
            (True, "", "malignant"): 6,
            (False, "model-0", "benign"): 3,
            (False, "model-0", "malignant"): 3,
            (False, "model-1", "benign"): 3,
            (False, "model-1", "malignant"): 3,
        }


def test_odd_counts_and_small_strata_stay_as_even_as_possible():
    # 5 images per rater: 2 or 3 real; a model with a single malignant image cannot give more.
    pool = [PoolImage(i, True, "benign" if i % 2 else "malignant", "") for i in range(1, 9)]
    pool += [PoolImage(100, False, "malignant", "m")] + [PoolImage(101 + i, False, "benign", "m") for i in range(5)]
    design = StudyDesign(5, Study.Balance.STRATIFIED, 0, 0, 0)
    sides = set()
    for seed in range(30):
        chosen = {p.image_id: p for p in pool}
        picked = [chosen[t.image_id] for t in trials_draw(design=design, pool=pool, seed=seed)]
        n_real = sum(p.is_real for p in picked)
        sides.add(n_real)
        assert Counter(p.label for p in picked if not p.is_real)["malignant"] == 1
        real = Counter(p.label for p in picked if p.is_real)
        assert abs(real["benign"] - real["malignant"]) <= 1
    assert sides == {2, 3}  # the odd image goes to either side


def test_same_seed_same_order_and_other_seed_other_order():
    pool = pool_make()
    first = trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=1234)
    assert trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=1234) == first
    assert trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=1235) != first


def test_session_seed_depends_on_study_seed_and_rater():
    assert session_seed(study_seed=7, rater_id=3) == session_seed(study_seed=7, rater_id=3)
    assert len({session_seed(study_seed=s, rater_id=r) for s in (7, 8) for r in (3, 4)}) == 4
    assert 0 <= session_seed(study_seed=7, rater_id=3) < 2**63


def test_practice_first_and_checks_are_placed_and_flagged():
    pool = pool_make()
    for seed in range(20):
        plan = trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=seed)
        assert len(plan) == 4 + 24 + 2 + 3
        assert [t.is_practice for t in plan[:4]] == [True] * 4
        assert not any(t.is_practice for t in plan[4:])
        practice_ids = {t.image_id for t in plan[:4]}
        assert practice_ids <= {p.image_id for p in PRACTICE}  # practice comes from its own, never analysed pool
        assert not practice_ids & {t.image_id for t in plan[4:]}  # feedback never spoils a later trial
        analysed_ids = {t.image_id for t in plan[4:] if not t.attention_check}
        corrupted = [t for t in plan if t.attention_check == "corrupted"]
        assert len(corrupted) == 2 and all(t.image_id in analysed_ids for t in corrupted)
        repeats = [(i, t) for i, t in enumerate(plan) if t.attention_check == "repeat"]
        assert len(repeats) == 3
        assert len({t.repeat_of for _, t in repeats}) == 3
        for position, trial in repeats:
            original = plan[trial.repeat_of]
            assert original.image_id == trial.image_id and original.attention_check == ""
            assert trial.variant in ("flip_h", "flip_v", "rot180")  # not the original's bytes
            # At least a quarter of the 26 trials after practice lie between the two showings.
            assert position - trial.repeat_of >= 26 // 4 + 1
        assert all(t.variant == "corrupted" for t in corrupted)
        assert all(t.variant == "" for t in plan if not t.attention_check)


def test_practice_order_is_random_not_alternating():
    by_id = {p.image_id: p for p in PRACTICE}
    patterns = Counter(
        tuple(by_id[t.image_id].is_real for t in trials_draw(design=DESIGN, pool=pool_make(), practice_pool=PRACTICE, seed=seed)[:4])
        for seed in range(60)
    )
    # Knowing the first practice answers does not tell the next ones: runs of one kind happen, and many orders occur.
    assert any(kinds[0] == kinds[1] for kinds in patterns)
    assert len(patterns) >= 8


def test_least_seen_images_come_first():
    pool = pool_make(real_per_label=4, generated_per_model_label=2)
    design = StudyDesign(8, Study.Balance.STRATIFIED, 0, 0, 0)
    first = trials_draw(design=design, pool=pool, seed=1)
    seen = Counter(t.image_id for t in first)
    second = trials_draw(design=design, pool=pool, seed=1, seen=seen)
    assert not {t.image_id for t in first} & {t.image_id for t in second}


def test_random_balance_ignores_strata():
    pool = pool_make(real_per_label=30, generated_per_model_label=1, models=1)
    design = StudyDesign(10, Study.Balance.RANDOM, 0, 0, 0)
    counts = Counter(
        p.is_real
        for seed in range(20)
        for t in trials_draw(design=design, pool=pool, seed=seed)
        for p in pool
        if p.image_id == t.image_id
    )
    assert counts[True] > 0.8 * sum(counts.values())


def test_design_that_does_not_fit_the_pool_is_refused_with_reasons():
    pool = pool_make(real_per_label=2, generated_per_model_label=1, models=1)  # 4 real, 2 generated
    problems = design_problems(design=DESIGN, n_real=4, n_generated=2, n_practice=1)
    assert any("12 real images" in p for p in problems)
    assert any("generated" in p for p in problems)
    assert any("4 practice images are needed per rater (never analysed), the practice pool holds 1" in p for p in problems)
    with pytest.raises(ApplicationError, match="cannot be drawn"):
        trials_draw(design=DESIGN, pool=pool, practice_pool=PRACTICE, seed=0)
    assert design_problems(design=StudyDesign(4, Study.Balance.STRATIFIED, 2, 1, 1), n_real=3, n_generated=3, n_practice=2) == []
    too_many_repeats = StudyDesign(4, Study.Balance.STRATIFIED, 0, 0, 3)
    assert design_problems(design=too_many_repeats, n_real=3, n_generated=3, n_practice=0) == [
        "at most 2 repeat checks fit in 4 analysed trials"
    ]
