"""2AFC (the CycleGAN paper's perceptual study, Zhu et al. 2017, after Isola et al. 2017): a real and a
generated image side by side, from the same stratum where one exists; "Which one is real?". Sides are
counterbalanced within each rater."""

from __future__ import annotations

from ratingstudy.studies.tasks import StudyTask, register_task


def chose_real(*, trial, response) -> bool | None:
    return None if not response.choice else response.choice == trial.real_side


register_task(
    StudyTask(
        name="2afc",
        answer_fields=("choice",),
        answer_template="studies/answers/paired.html",
        options=("exposure_ms",),
        correct=chose_real,
        paired=True,
        export_columns=("choice", "real_side", "pair_image_id"),
    )
)
