"""The study tasks: one registry, one module per task (as torchvision keeps one builder per model).

A study is the rating *instrument* (presentation, viewer, blinding, exposure windows,
practice, checks, exclusion; written once, in the rest of this app) plus one *task*,
which says only what differs: how its trials are drawn (one image, or a real/generated
pair), what is asked (its answer fields and their template), whether the exposure adapts
(a staircase), which design options apply, and when an answer is correct (for the
qualification block and the staircase). Each task's analysis lives beside the others in
``ratingstudy.results.analyses``. A new protocol is a new module here, registered below.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

#: Design options of the instrument, shown for every task.
INSTRUMENT_OPTIONS = (
    "images_per_rater", "balance", "raters_per_image", "practice_trials", "practice_holdout", "corrupted_checks",
    "repeat_checks", "exclude_after_failed_checks", "exclude_failed_share", "qualification_trials",
    "qualification_pass", "colour_screen", "seed",
)  # fmt: skip
#: Options that belong to one task or another; a task lists the ones that apply to it.
TASK_OPTIONS = (
    "ask_confidence", "confidence_levels", "exposure_ms", "ask_subtype", "noninferiority_margin",
    "staircase_ladder", "staircase_down", "staircase_up",
)  # fmt: skip


@dataclass(frozen=True)
class StudyTask:
    """What one protocol adds to the instrument (see the module docstring)."""

    name: str
    answer_fields: tuple[str, ...]  # AnswerForm fields the rater must give
    answer_template: str  # the answer controls, under templates/studies/answers/
    options: tuple[str, ...]  # TASK_OPTIONS that apply
    correct: Callable[..., bool | None] = field(compare=False)  # (trial=, response=) -> right?
    paired: bool = False
    adaptive_exposure: bool = False
    export_columns: tuple[str, ...] = ()  # response export columns that carry this task's answers

    @property
    def knows_answers(self) -> bool:
        """Whether an answer can be right or wrong (qualification needs it)."""
        return any(name in self.answer_fields for name in ("judged_real", "choice", "diagnosis"))


_TASKS: dict[str, StudyTask] = {}


def register_task(task: StudyTask) -> StudyTask:
    if task.name in _TASKS:
        raise ValueError(f"a task named {task.name!r} is registered already")
    unknown = set(task.options) - set(TASK_OPTIONS)
    if unknown:
        raise ValueError(f"task {task.name!r}: unknown options {sorted(unknown)}")
    _TASKS[task.name] = task
    return task


def get_task(name: str) -> StudyTask:
    try:
        return _TASKS[name]
    except KeyError:
        raise ValueError(f"unknown study task {name!r}; known: {', '.join(sorted(_TASKS))}") from None


def task_names() -> list[str]:
    return sorted(_TASKS)


from ratingstudy.studies.tasks import diagnosis, paired, single, staircase  # noqa: E402, F401  (they register)
