"""Forms a rater fills in: the first-visit profile and the answer to a trial."""

from __future__ import annotations

from django import forms

from ratingstudy.studies.models import CONFIDENCE_LABELS, QUALITY_LABELS, Rater, Study
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
    """The questions a study asks about one image; fields it does not ask are removed."""

    judged_real = forms.ChoiceField(label="Is this image real or generated?", choices=REAL_FAKE_CHOICES)
    confidence = forms.TypedChoiceField(
        label="How confident are you?", choices=list(CONFIDENCE_LABELS.items()), coerce=int
    )
    quality = forms.TypedChoiceField(
        label="Image quality", choices=list(QUALITY_LABELS.items()), coerce=int
    )
    client_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    onscreen_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    paint_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)
    zoom_max = forms.FloatField(min_value=0.0, max_value=1000.0, required=False)
    zoomed_ms = forms.IntegerField(min_value=0, max_value=DAY_MS, required=False)

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not study.asks_real_fake:
            del self.fields["judged_real"]
        if not (study.asks_real_fake and study.ask_confidence):
            del self.fields["confidence"]
        if not study.asks_quality:
            del self.fields["quality"]

    def answer(self) -> Answer:
        data = self.cleaned_data
        judged = data.get("judged_real")
        return Answer(
            judged_real=None if judged is None else judged == "real",
            confidence=data.get("confidence"),
            quality=data.get("quality"),
            client_ms=data.get("client_ms"),
            onscreen_ms=data.get("onscreen_ms"),
            paint_ms=data.get("paint_ms"),
            zoom_max=data.get("zoom_max"),
            zoomed_ms=data.get("zoomed_ms"),
        )
