"""The admin launch form, built from the job config schemas (one form per kind)."""

from __future__ import annotations

from django import forms

from ratingstudy.catalog.models import ImageSet
from ratingstudy.jobs.configs import SCHEMAS, Field
from ratingstudy.jobs.models import Comparison, Experiment, Job

_INPUT_SET_KINDS = {"train": ImageSet.Kind.REAL, "classify": ImageSet.Kind.REAL, "generate": None}
_PARENT_KINDS = {"generate": Job.Kind.TRAIN, "evaluate": Job.Kind.GENERATE}
#: What the input image set is for: each form explains only its own kind's.
_INPUT_SET_HELP = {
    "train": "the real images to train on (the split chosen below)",
    "classify": "real images: the classifier trains on their training split and is scored on "
    "their test split",
    "generate": "the images to translate (default: the train job's input set)",
}
_EXPERIMENT_HELP = {
    "train": "optional: the experiment this job belongs to; when it succeeds, the experiment's "
    "chain launches the generate and then the evaluate job",
}
#: The label each config field shows, by job kind (not "Cfg n epochs").
LABELS: dict[str, dict[str, str]] = {
    "train": {
        "preset": "Network family (preset)",
        "semi_supervised": "Semi-supervised class head",
        "encoder_weights": "Encoder weights",
        "x_label": "Domain X (class)",
        "y_label": "Domain Y (class)",
        "split": "Images used (split)",
        "ngf": "Generator width (filters)",
        "ndf": "Discriminator width (filters)",
        "image_size": "Image size (px)",
        "load_size": "Resize before the random crop (px)",
        "batch_size": "Batch size",
        "n_epochs": "Epochs at the starting learning rate",
        "n_epochs_decay": "Epochs of learning-rate decay",
        "label_fraction": "Share of labels used",
        "seed": "Random seed",
        "checkpoint_every": "Keep a checkpoint every N epochs",
        "channels_last": "Channels-last memory format",
        "compile": "Compile with torch.compile",
    },
    "generate": {
        "direction": "Direction",
        "split": "Source images (split)",
        "batch_size": "Images per forward pass",
    },
    "evaluate": {
        "seed": "Random seed",
        "fcn_steps": "FCN-score training steps",
        "feature_extractor": "FID/KID feature extractor",
    },
    "classify": {
        "encoder": "Encoder",
        "encoder_weights": "Encoder weights",
        "image_size": "Image size (px)",
        "batch_size": "Batch size",
        "epochs": "Epochs",
        "synthetic_image_set": "Generated image set added to training (id)",
        "seed": "Random seed",
    },
}


def _form_field(spec: Field, *, label: str) -> forms.Field:
    common = {
        "initial": spec.default,
        "help_text": spec.help,
        "required": spec.type is not bool,
        "label": label,
    }
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
            Experiment.objects.all(),
            required=False,
            help_text=_EXPERIMENT_HELP.get(kind, "optional: the experiment this job belongs to"),
        ),
    }
    if kind in _INPUT_SET_KINDS:
        qs = ImageSet.objects.all()
        if _INPUT_SET_KINDS[kind]:
            qs = qs.filter(kind=_INPUT_SET_KINDS[kind])
        fields["input_image_set"] = forms.ModelChoiceField(
            qs,
            required=kind != "generate",
            help_text=_INPUT_SET_HELP[kind],
        )
    if kind in _PARENT_KINDS:
        fields["parent"] = forms.ModelChoiceField(
            Job.objects.filter(kind=_PARENT_KINDS[kind], status=Job.Status.SUCCEEDED),
            help_text=f"the finished {_PARENT_KINDS[kind]} job to use",
        )
    for name, spec in SCHEMAS[kind].items():
        fields[f"cfg_{name}"] = _form_field(spec, label=LABELS[kind][name])
    return type(f"{kind.title()}LaunchForm", (forms.Form,), fields)


def config_from_form(kind: str, cleaned: dict) -> dict:
    return {name: cleaned[f"cfg_{name}"] for name in SCHEMAS[kind]}


def _number_list(text: str, parse, what: str) -> list:
    values = [item.strip() for item in text.split(",") if item.strip()]
    if not values:
        raise forms.ValidationError(f"give at least one {what}, separated by commas")
    try:
        return [parse(value) for value in values]
    except ValueError:
        raise forms.ValidationError(
            f"{text!r} is not a comma-separated list of {what}s (e.g. 0, 1, 2)"
        ) from None


class ExperimentLaunchForm(forms.Form):
    """A sweep: the grid's values per axis, the shared train settings (``cfg_``), and the
    settings of the generate (``gen_``) and evaluate (``eval_``) jobs of the chain."""

    name = forms.CharField(max_length=80, help_text="models are named after it")
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    comparison = forms.ModelChoiceField(Comparison.objects.all(), required=False)
    input_image_set = forms.ModelChoiceField(
        ImageSet.objects.filter(kind=ImageSet.Kind.REAL),
        help_text="real images every train job uses; generate jobs translate its test split",
    )
    grid_preset = forms.MultipleChoiceField(
        choices=[(p, p) for p in SCHEMAS["train"]["preset"].choices],
        initial=["cyclegan"],
        widget=forms.CheckboxSelectMultiple,
        label="Presets",
    )
    grid_semi_supervised = forms.MultipleChoiceField(
        choices=[("no", "no"), ("yes", "yes")],
        initial=["no"],
        widget=forms.CheckboxSelectMultiple,
        label="Semi-supervised",
    )
    grid_label_fraction = forms.CharField(
        initial="1.0", label="Label fractions", help_text="comma-separated, e.g. 1.0, 0.5, 0.1"
    )
    grid_seed = forms.CharField(initial="0", label="Seeds", help_text="comma-separated, e.g. 0, 1, 2")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for kind, prefix in (("train", "cfg"), ("generate", "gen"), ("evaluate", "eval")):
            for name, spec in SCHEMAS[kind].items():
                if kind == "train" and name in Experiment.GRID_AXES:
                    continue
                label = f"{kind.title()}: {LABELS[kind][name]}"
                self.fields[f"{prefix}_{name}"] = _form_field(spec, label=label)

    def clean_grid_label_fraction(self) -> list[float]:
        return _number_list(self.cleaned_data["grid_label_fraction"], float, "number")

    def clean_grid_seed(self) -> list[int]:
        return _number_list(self.cleaned_data["grid_seed"], int, "whole number")

    def launch_arguments(self) -> dict:
        """The keyword arguments of ``experiment_launch`` (without ``user``)."""
        data = self.cleaned_data

        def section(kind: str, prefix: str) -> dict:
            return {
                name: data[f"{prefix}_{name}"]
                for name in SCHEMAS[kind]
                if f"{prefix}_{name}" in data
            }

        return {
            "name": data["name"],
            "description": data["description"],
            "comparison": data["comparison"],
            "input_image_set": data["input_image_set"],
            "grid": {
                "preset": data["grid_preset"],
                "semi_supervised": [choice == "yes" for choice in data["grid_semi_supervised"]],
                "label_fraction": data["grid_label_fraction"],
                "seed": data["grid_seed"],
            },
            "train_config": section("train", "cfg"),
            "generate_config": section("generate", "gen"),
            "evaluate_config": section("evaluate", "eval"),
        }
