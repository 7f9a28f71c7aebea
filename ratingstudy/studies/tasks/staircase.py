"""HYPE-time (Zhou et al. 2019): real or generated at an exposure that adapts per rater and per model
(real images keep their own staircase), k-down-1-up over a ladder (default 3-down-1-up, Levitt 1971,
100-1000 ms); the analysis gives each model's threshold exposure."""

from __future__ import annotations

from ratingstudy.studies.tasks import StudyTask, register_task
from ratingstudy.studies.tasks.single import judged_right

register_task(
    StudyTask(
        name="staircase",
        answer_fields=("judged_real",),
        answer_template="studies/answers/real_fake.html",
        options=("ask_confidence", "confidence_levels", "staircase_ladder", "staircase_down", "staircase_up"),
        correct=judged_right,
        adaptive_exposure=True,
        export_columns=("exposure_ms", "staircase_level"),
    )
)
