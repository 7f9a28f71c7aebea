"""The transformed up-down staircase (Levitt 1971): hand-worked tracks and a simulated
observer that must settle where Levitt says it does."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from ratingstudy.results.protocols import staircase_threshold
from ratingstudy.studies.staircase import (
    StaircaseState,
    staircase_replay,
    staircase_start,
    staircase_step,
)

C, W = True, False
#: 3-down-1-up on a 5-level ladder, worked by hand (level before each answer, then the next):
#: CCC down, CCC down, W up (reversal 1), CCC down (2), C W up (3), W up, W blocked at the
#: top (no move, no reversal), CCC down (4).
ANSWERS = [C, C, C, C, C, C, W, C, C, C, C, W, W, W, C, C, C]
LEVELS = [4, 4, 4, 3, 3, 3, 2, 3, 3, 3, 2, 2, 3, 4, 4, 4, 4, 3]


def test_start_is_the_top_of_the_ladder():
    assert staircase_start(n_levels=10) == StaircaseState(level=9, correct_streak=0, reversals=0, last_direction=0, wrong_streak=0)
    with pytest.raises(ValueError, match="at least one"):
        staircase_start(n_levels=0)


def test_replay_follows_the_hand_worked_track():
    assert staircase_replay(answers=ANSWERS, n_levels=5, down=3, up=1) == LEVELS
    assert staircase_replay(answers=[], n_levels=5, down=3, up=1) == [4]


def test_step_by_step_state():
    state = staircase_start(n_levels=5)
    states = []
    for correct in ANSWERS:
        state = staircase_step(state=state, correct=correct, n_levels=5)
        states.append(state)
    assert [s.level for s in states] == LEVELS[1:]
    assert [s.reversals for s in states] == [0] * 6 + [1] * 3 + [2] * 2 + [3] * 5 + [4]
    assert states[1] == StaircaseState(level=4, correct_streak=2, reversals=0, last_direction=0)
    assert states[6].last_direction == 1 and states[-1].last_direction == -1
    assert states[-1] == StaircaseState(level=3, correct_streak=0, reversals=4, last_direction=-1)


def test_reversals_match_the_analysis_of_the_exposure_track():
    ladder_ms = [100, 200, 300, 400, 500]
    rng = np.random.default_rng(3)
    for _ in range(20):
        answers = (rng.random(60) < 0.75).tolist()
        levels = staircase_replay(answers=answers, n_levels=5, down=3, up=1)
        state = staircase_start(n_levels=5)
        for correct in answers:
            state = staircase_step(state=state, correct=correct, n_levels=5)
        analysis = staircase_threshold(levels_ms=[ladder_ms[i] for i in levels])
        assert len(analysis["reversals"]) == state.reversals
    hand = staircase_threshold(levels_ms=[100 * (i + 1) for i in LEVELS], skip_first=2)
    assert hand["reversals"] == [300, 400, 300, 500]
    assert hand["threshold_ms"] == pytest.approx(400) and "only 2" in hand["reason"]


def test_clamped_at_the_bottom_and_two_up():
    state = StaircaseState(level=0, correct_streak=2, reversals=0, last_direction=-1)
    state = staircase_step(state=state, correct=True, n_levels=4)
    assert (state.level, state.correct_streak, state.last_direction) == (0, 0, -1)
    # 2-up: one wrong answer waits, a correct one breaks the wrong run, two in a row move up.
    state = staircase_step(state=state, correct=False, n_levels=4, down=3, up=2)
    assert (state.level, state.wrong_streak) == (0, 1)
    state = staircase_step(state=state, correct=True, n_levels=4, down=3, up=2)
    assert (state.level, state.wrong_streak, state.correct_streak) == (0, 0, 1)
    for _ in range(2):
        state = staircase_step(state=state, correct=False, n_levels=4, down=3, up=2)
    assert (state.level, state.reversals, state.last_direction) == (1, 1, 1)
    # ... and a wrong answer that does not move still breaks the correct run.
    state = staircase_start(n_levels=4)
    for correct in (C, C, W, C):
        state = staircase_step(state=state, correct=correct, n_levels=4, down=3, up=2)
    assert (state.level, state.correct_streak, state.wrong_streak) == (3, 1, 0)
    with pytest.raises(ValueError, match="down and up"):
        staircase_step(state=state, correct=True, n_levels=4, down=0)


def _simulated_thresholds(*, down: int, runs: int = 150, trials: int = 200) -> tuple[np.ndarray, Callable[[float], float]]:
    """Thresholds of a simulated 2AFC observer, ``P(correct) = 0.5 + 0.5 logistic((ms - 400)
    / 80)``, on a 100..1000 ms ladder in 30 ms steps; seeded, so deterministic. The walk
    down from 1000 ms takes ~60 trials at 3-down, hence 200 trials a run: with 100 the
    last reversals still carry the start and the mean sits ~15 ms high."""
    ladder = np.arange(100, 1001, 30)

    def p_correct(ms: float) -> float:
        return 0.5 + 0.5 / (1 + math.exp(-(ms - 400.0) / 80.0))

    thresholds = []
    for seed in range(runs):
        rng = np.random.default_rng(seed)
        state = staircase_start(n_levels=ladder.size)
        track = []
        for _ in range(trials):
            track.append(int(ladder[state.level]))
            correct = bool(rng.random() < p_correct(ladder[state.level]))
            state = staircase_step(state=state, correct=correct, n_levels=ladder.size, down=down, up=1)
        threshold = staircase_threshold(levels_ms=track, reversals_used=6, skip_first=2)["threshold_ms"]
        if threshold is not None:
            thresholds.append(threshold)
    return np.array(thresholds), p_correct


@pytest.mark.parametrize(("down", "target"), [(3, 0.5 ** (1 / 3)), (2, 0.5 ** (1 / 2))])
def test_simulated_observer_converges_to_levitts_point(down, target):
    """k-down-1-up settles where ``P(correct)^k = 1/2``: 79.4% for 3-down, 70.7% for 2-down."""
    thresholds, p_correct = _simulated_thresholds(down=down)
    assert thresholds.size >= 140
    # The exposure where P(correct) = target, from the inverse of the logistic.
    share = 2 * target - 1
    target_ms = 400.0 + 80.0 * math.log(share / (1 - share))
    mean = float(thresholds.mean())
    assert abs(mean - target_ms) < 15  # half a ladder step; the mean's standard error is ~4 ms
    assert p_correct(mean) == pytest.approx(target, abs=0.015)
