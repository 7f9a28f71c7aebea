"""Forms a rater fills in: the first-visit profile and the answer to a trial."""

from __future__ import annotations

from django import forms

from ratingstudy.studies.models import QUALITY_LABELS, SUBTYPES, Rater, Study
from ratingstudy.studies.services import Answer

REAL_FAKE_CHOICES = [("real", "Real"), ("generated", "Generated")]
DAY_MS = 24 * 3600 * 1000


class ProfileForm(forms.Form):
    """Role, experience and specialty; a consent box when the study has consent text."""

    role = forms.ChoiceField(choices=Rater.Role.choices, widget=forms.RadioSelect)
    years_experience = forms.IntegerField(
        label="Years of experience in histopathology", min_value=0, max_value=70
    )
    specialty = forms.CharField(
        label="Specialty or subspecialty (optional)", max_length=200, required=False
    )
    consent = forms.BooleanField(label="I have read the information above and agree to take part.")

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not study.consent_text:
            del self.fields["consent"]


class AnswerForm(forms.Form):
    """The questions a study's task asks about one trial; fields it does not ask are removed."""

    judged_real = forms.ChoiceField(label="Is this image real or generated?", choices=REAL_FAKE_CHOICES)
    confidence = forms.TypedChoiceField(label="How confident are you?", choices=[], coerce=int)
    quality = forms.TypedChoiceField(
        label="Image quality", choices=list(QUALITY_LABELS.items()), coerce=int
    )
    choice = forms.ChoiceField(label="Which one is real?", choices=[("left", "Left"), ("right", "Right")])
    diagnosis = forms.ChoiceField(label="Diagnosis", choices=[("benign", "Benign"), ("malignant", "Malignant")])
    subtype = forms.ChoiceField(label="Subtype", choices=[(s, s) for group in SUBTYPES.values() for s in group])
    marks = forms.JSONField(required=False)
    client_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    onscreen_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    paint_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    zoom_max = forms.FloatField(min_value=0.0, max_value=1000.0, required=False)
    zoomed_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        asked = set(study.protocol.answer_fields)
        if study.asks_confidence:
            asked.add("confidence")
            self.fields["confidence"].choices = list(enumerate(study.confidence_labels, start=1))
        if "diagnosis" in asked and study.ask_subtype:
            asked.add("subtype")
        if study.task == Study.Task.MARK:
            asked.add("marks")
        for name in ("judged_real", "confidence", "quality", "choice", "diagnosis", "subtype", "marks"):
            if name not in asked:
                del self.fields[name]

    def clean_marks(self) -> list:
        return marks_validate(self.cleaned_data.get("marks") or [])

    def answer(self) -> Answer:
        data = self.cleaned_data
        judged = data.get("judged_real")
        return Answer(
            judged_real=None if judged is None else judged == "real",
            confidence=data.get("confidence"),
            quality=data.get("quality"),
            choice=data.get("choice") or "",
            diagnosis=data.get("diagnosis") or "",
            subtype=data.get("subtype") or "",
            marks=data.get("marks") or [],
            client_ms=data.get("client_ms"),
            onscreen_ms=data.get("onscreen_ms"),
            paint_ms=data.get("paint_ms"),
            zoom_max=data.get("zoom_max"),
            zoomed_ms=data.get("zoomed_ms"),
        )


MAX_MARKS = 50


def marks_validate(marks: object) -> list[dict]:
    """Points and boxes in normalised image coordinates, as the marking tool sends them."""
    if not isinstance(marks, list) or len(marks) > MAX_MARKS:
        raise forms.ValidationError(f"marks must be a list of at most {MAX_MARKS} points or boxes")
    clean = []
    for mark in marks:
        keys = {"point": ("x", "y"), "box": ("x", "y", "w", "h")}.get(mark.get("type") if isinstance(mark, dict) else None)
        if keys is None or set(mark) != {"type", *keys}:
            raise forms.ValidationError(f"a mark is a point {{type, x, y}} or a box {{type, x, y, w, h}}, got {mark!r}")
        values = {key: mark[key] for key in keys}
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1 for v in values.values()):
            raise forms.ValidationError(f"mark coordinates are fractions of the image (0 to 1), got {mark!r}")
        if mark["type"] == "box" and (values["x"] + values["w"] > 1.0001 or values["y"] + values["h"] > 1.0001):
            raise forms.ValidationError(f"a box must lie inside the image, got {mark!r}")
        clean.append({"type": mark["type"], **{k: round(float(v), 4) for k, v in values.items()}})
    return clean
