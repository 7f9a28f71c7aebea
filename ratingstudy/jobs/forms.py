"""The admin launch form, built from the job config schemas (one form per kind)."""

from __future__ import annotations

from django import forms

from ratingstudy.catalog.models import ImageSet
from ratingstudy.jobs.configs import SCHEMAS, Field
from ratingstudy.jobs.models import Experiment, Job

_INPUT_SET_KINDS = {"train": ImageSet.Kind.REAL, "classify": ImageSet.Kind.REAL, "generate": None}
_PARENT_KINDS = {"generate": Job.Kind.TRAIN, "evaluate": Job.Kind.GENERATE}


def _form_field(spec: Field) -> forms.Field:
    common = {"initial": spec.default, "help_text": spec.help, "required": spec.type is not bool}
    if spec.choices:
        return forms.ChoiceField(choices=[(c, c) for c in spec.choices], **common)
    if spec.type is bool:
        return forms.BooleanField(**common)
    if spec.type is int:
        return forms.IntegerField(min_value=spec.minimum, max_value=spec.maximum, **common)
    if spec.type is float:
        return forms.FloatField(min_value=spec.minimum, max_value=spec.maximum, **common)
    return forms.CharField(**common)


def launch_form_class(kind: str) -> type[forms.Form]:
    """A form with the inputs this kind needs plus one field per config entry."""
    fields: dict[str, forms.Field] = {
        "experiment": forms.ModelChoiceField(
            Experiment.objects.all(), required=False, help_text="optional chain"
        ),
    }
    if kind in _INPUT_SET_KINDS:
        qs = ImageSet.objects.all()
        if _INPUT_SET_KINDS[kind]:
            qs = qs.filter(kind=_INPUT_SET_KINDS[kind])
        fields["input_image_set"] = forms.ModelChoiceField(
            qs,
            required=kind != "generate",
            help_text="generate: source images (default: the training set)",
        )
    if kind in _PARENT_KINDS:
        fields["parent"] = forms.ModelChoiceField(
            Job.objects.filter(kind=_PARENT_KINDS[kind], status=Job.Status.SUCCEEDED),
            help_text=f"the finished {_PARENT_KINDS[kind]} job to use",
        )
    for name, spec in SCHEMAS[kind].items():
        fields[f"cfg_{name}"] = _form_field(spec)
    return type(f"{kind.title()}LaunchForm", (forms.Form,), fields)


def config_from_form(kind: str, cleaned: dict) -> dict:
    return {name: cleaned[f"cfg_{name}"] for name in SCHEMAS[kind]}
