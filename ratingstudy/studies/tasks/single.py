"""One image per trial: real or generated (HYPE-infinity style), quality 1-5 (ITU-R BT.500 ACR), or both."""

from __future__ import annotations

from ratingstudy.studies.tasks import StudyTask, register_task


def judged_right(*, trial, response) -> bool | None:
    """The real/generated answer matches the image (None when the task does not ask it)."""
    if response.judged_real is None:
        return None
    return response.judged_real == (trial.image.image_set.kind == "real")


def no_right_answer(*, trial, response) -> None:
    return None


register_task(
    StudyTask(
        name="real_fake",
        answer_fields=("judged_real",),
        answer_template="studies/answers/real_fake.html",
        options=("ask_confidence", "confidence_levels", "exposure_ms"),
        correct=judged_right,
    )
)
register_task(
    StudyTask(
        name="quality",
        answer_fields=("quality",),
        answer_template="studies/answers/real_fake.html",
        options=("exposure_ms",),
        correct=no_right_answer,
    )
)
register_task(
    StudyTask(
        name="both",
        answer_fields=("judged_real", "quality"),
        answer_template="studies/answers/real_fake.html",
        options=("ask_confidence", "confidence_levels", "exposure_ms"),
        correct=judged_right,
    )
)
register_task(
    StudyTask(
        name="mark",
        answer_fields=("judged_real",),
        answer_template="studies/answers/real_fake.html",
        options=("ask_confidence", "confidence_levels", "exposure_ms"),
        correct=judged_right,
        export_columns=("marks",),
    )
)
