"""Diagnostic reading (visual Turing tests in medical imaging, e.g. Chuquicusma et al. 2018): the rater
classifies each image as benign or malignant (optionally with the BreakHis subtype) without being told
whether it is real; generated images are scored against the class the generator was asked to produce."""

from __future__ import annotations

from ratingstudy.studies.tasks import StudyTask, register_task


def diagnosed_right(*, trial, response) -> bool | None:
    label = trial.image.label
    if not response.diagnosis or label not in ("benign", "malignant"):
        return None
    return response.diagnosis == label


register_task(
    StudyTask(
        name="diagnosis",
        answer_fields=("diagnosis",),
        answer_template="studies/answers/diagnosis.html",
        options=("exposure_ms", "ask_subtype", "noninferiority_margin"),
        correct=diagnosed_right,
        export_columns=("diagnosis", "subtype"),
    )
)
