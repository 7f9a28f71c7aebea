"""Adaptive exposure for HYPE-time studies: a transformed up-down staircase (Levitt 1971,
"Transformed up-down methods in psychoacoustics", JASA 49:467-477).

The ladder is the caller's: level ``0 .. n_levels - 1`` indexes exposures in increasing
order (e.g. 100, 200, ..., 1000 ms), so a lower level is a shorter exposure and a harder
trial. The staircase starts at the top (the longest exposure, the easiest trial), moves
one level down (harder) after ``down`` consecutive correct answers and one level up
(easier) after ``up`` consecutive wrong answers, and never leaves the ladder. The
3-down-1-up rule settles where ``P(correct)^3 = 1/2``, i.e. at about 79.4% correct.

Pure functions, no Django: the server keeps the answers and recomputes the level with
:func:`staircase_replay`; ``ratingstudy.results.protocols.staircase_threshold`` turns the
track of exposures into a threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

#: ``last_direction`` values.
DOWN, NONE, UP = -1, 0, 1


@dataclass(frozen=True)
class StaircaseState:
    """Where one staircase stands before its next trial.

    * ``level``: ladder index of the next trial (0 = shortest exposure);
    * ``correct_streak`` / ``wrong_streak``: consecutive correct / wrong answers since the
      level last changed or the other kind of answer broke the run;
    * ``reversals``: changes of direction so far, counted on actual moves (a move blocked at
      the end of the ladder neither reverses nor sets the direction), so that they are the
      reversals ``staircase_threshold`` finds in the track of exposures;
    * ``last_direction``: ``-1`` down (harder), ``+1`` up (easier), ``0`` no move yet.
    """

    level: int
    correct_streak: int
    reversals: int
    last_direction: int
    wrong_streak: int = 0


def _check(*, n_levels: int, down: int = 1, up: int = 1) -> None:
    if n_levels < 1:
        raise ValueError(f"a staircase needs at least one exposure level, got n_levels={n_levels}")
    if down < 1 or up < 1:
        raise ValueError(f"down and up must be at least 1, got down={down}, up={up}")


def staircase_start(*, n_levels: int) -> StaircaseState:
    """The first trial: at the top of the ladder (``n_levels - 1``, the longest exposure and
    the easiest trial), no streak, no reversal, no direction."""
    _check(n_levels=n_levels)
    return StaircaseState(level=n_levels - 1, correct_streak=0, reversals=0, last_direction=NONE)


def staircase_step(
    *, state: StaircaseState, correct: bool, n_levels: int, down: int = 3, up: int = 1
) -> StaircaseState:
    """The state after one answer at ``state.level`` (``down``-down-``up``-up rule).

    A correct answer extends the correct run and ends the wrong run; at ``down`` in a row
    the level drops by one (clamped at 0) and the run restarts. A wrong answer does the
    same the other way with ``up`` (clamped at ``n_levels - 1``). A move opposite to the
    previous move is a reversal.
    """
    _check(n_levels=n_levels, down=down, up=up)
    if correct:
        state = replace(state, correct_streak=state.correct_streak + 1, wrong_streak=0)
        if state.correct_streak < down:
            return state
        direction = DOWN
    else:
        state = replace(state, correct_streak=0, wrong_streak=state.wrong_streak + 1)
        if state.wrong_streak < up:
            return state
        direction = UP
    state = replace(state, correct_streak=0, wrong_streak=0)
    level = min(max(state.level + direction, 0), n_levels - 1)
    if level == state.level:
        return state
    reversed_ = state.last_direction not in (NONE, direction)
    return replace(state, level=level, reversals=state.reversals + int(reversed_), last_direction=direction)


def staircase_replay(*, answers: Sequence[bool], n_levels: int, down: int, up: int) -> list[int]:
    """The level of every trial given the answers before it: ``len(answers) + 1`` levels,
    ``levels[i]`` the level at which ``answers[i]`` was given and ``levels[-1]`` the level
    of the next trial (so ``staircase_replay(answers=[], ...) == [n_levels - 1]``)."""
    state = staircase_start(n_levels=n_levels)
    levels = [state.level]
    for correct in answers:
        state = staircase_step(state=state, correct=bool(correct), n_levels=n_levels, down=down, up=up)
        levels.append(state.level)
    return levels


__all__ = ["StaircaseState", "staircase_replay", "staircase_start", "staircase_step"]
