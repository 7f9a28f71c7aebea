"""Torch-free validation of job configurations at the edge (the admin form, services).

The worker validates again with ganlab's typed configs (``TrainConfig``), which
know architecture-specific rules; this layer catches what the web can check
without importing torch: types, ranges, choices and that the inputs exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError

PRESETS = ("cyclegan", "resnet50-cyclegan", "vgg16-cyclegan", "efficientnet-lite0-cyclegan", "demo")
CLASSES = ("benign", "malignant")
ENCODERS = ("efficientnet_lite0", "resnet50", "vgg16")


@dataclass(frozen=True)
class Field:
    type: type
    default: Any
    choices: tuple | None = None
    minimum: float | None = None
    maximum: float | None = None
    help: str = ""


SCHEMAS: dict[str, dict[str, Field]] = {
    "train": {
        "preset": Field(str, "cyclegan", PRESETS, help="network family"),
        "semi_supervised": Field(
            bool, False, help="discriminator also classifies benign/malignant"
        ),
        "encoder_weights": Field(
            str, "imagenet", ("imagenet", "random"), help="pretrained encoder weights"
        ),
        "x_label": Field(str, "benign", CLASSES, help="domain X"),
        "y_label": Field(str, "malignant", CLASSES, help="domain Y"),
        "split": Field(str, "train", ("train", "test", "all"), help="images of the input set used"),
        "ngf": Field(int, 64, minimum=4, maximum=256, help="generator width (64 in the paper)"),
        "ndf": Field(int, 64, minimum=4, maximum=256, help="discriminator width (64 in the paper)"),
        "image_size": Field(int, 128, minimum=32, maximum=1024),
        "load_size": Field(
            int, 0, minimum=0, maximum=1200, help="resize before random crop; 0 = image_size"
        ),
        "batch_size": Field(int, 4, minimum=1, maximum=512),
        "n_epochs": Field(int, 100, minimum=1, maximum=10_000),
        "n_epochs_decay": Field(int, 100, minimum=0, maximum=10_000),
        "label_fraction": Field(float, 1.0, minimum=0.0, maximum=1.0),
        "seed": Field(int, 0, minimum=0),
        "checkpoint_every": Field(int, 5, minimum=1),
        "channels_last": Field(bool, False),
        "compile": Field(bool, False),
    },
    "generate": {
        "direction": Field(str, "AtoB", ("AtoB", "BtoA"), help="AtoB = G: X->Y, BtoA = F: Y->X"),
        "split": Field(str, "test", ("train", "test", "all"), help="source images translated"),
        "batch_size": Field(int, 16, minimum=1, maximum=1024),
    },
    "evaluate": {
        "seed": Field(int, 0, minimum=0),
        "fcn_steps": Field(
            int, 300, minimum=1, maximum=100_000, help="training steps of the FCN-score segmenter"
        ),
        "feature_extractor": Field(
            str,
            "auto",
            ("auto", "inception_v3_fid", "inception_v3_torchvision", "efficientnet_lite0"),
            help="FID/KID features; auto = Inception when its weights are cached, else EfficientNet-Lite0",
        ),
    },
    "classify": {
        "encoder": Field(str, "efficientnet_lite0", ENCODERS),
        "encoder_weights": Field(str, "imagenet", ("imagenet", "random")),
        "image_size": Field(int, 128, minimum=32, maximum=1024),
        "batch_size": Field(int, 16, minimum=1, maximum=512),
        "epochs": Field(int, 10, minimum=1, maximum=10_000),
        "synthetic_image_set": Field(
            int, 0, minimum=0, help="id of a generated set added to training; 0 = none"
        ),
        "seed": Field(int, 0, minimum=0),
    },
}


def _coerce(kind: str, name: str, spec: Field, value: Any) -> Any:
    where = f"{kind} config field {name!r}"
    if spec.type is bool:
        if not isinstance(value, bool):
            raise ApplicationError(f"{where} must be true or false, got {value!r}")
        return value
    if spec.type is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ApplicationError(f"{where} must be an integer, got {value!r}")
    elif spec.type is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ApplicationError(f"{where} must be a number, got {value!r}")
        value = float(value)
    elif not isinstance(value, spec.type):
        raise ApplicationError(f"{where} must be a {spec.type.__name__}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ApplicationError(
            f"{where} must be one of {', '.join(map(str, spec.choices))}, got {value!r}"
        )
    if spec.minimum is not None and value < spec.minimum:
        raise ApplicationError(f"{where} must be at least {spec.minimum}, got {value!r}")
    if spec.maximum is not None and value > spec.maximum:
        raise ApplicationError(f"{where} must be at most {spec.maximum}, got {value!r}")
    return value


def default_config(kind: str) -> dict[str, Any]:
    return {name: spec.default for name, spec in SCHEMAS[kind].items()}


def validate_fields(*, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    """The complete config (defaults filled in), its fields checked against the schema alone."""
    schema = SCHEMAS[kind]
    unknown = sorted(set(config) - set(schema))
    if unknown:
        raise ApplicationError(
            f"{kind} config has unknown field(s) {unknown}; known: {sorted(schema)}"
        )
    return {
        name: _coerce(kind, name, spec, config.get(name, spec.default))
        for name, spec in schema.items()
    }


#: Largest sweep launched at once (each point is a train, a generate and an evaluate job).
GRID_MAX_POINTS = 64


def validate_grid(*, grid: dict[str, list], axes: tuple[str, ...]) -> dict[str, list]:
    """A sweep grid: each axis a train config field with a non-empty list of distinct values.

    Values are checked like the train config field they set; the grid may have at most
    :data:`GRID_MAX_POINTS` points.
    """
    unknown = sorted(set(grid) - set(axes))
    if unknown:
        raise ApplicationError(f"grid axes {unknown} cannot vary; choose among {list(axes)}")
    clean: dict[str, list] = {}
    points = 1
    for axis in axes:
        if axis not in grid:
            continue
        values = grid[axis]
        if not isinstance(values, list | tuple) or not values:
            raise ApplicationError(f"grid axis {axis!r} needs a non-empty list of values")
        checked = [_coerce("train", axis, SCHEMAS["train"][axis], value) for value in values]
        if len(set(checked)) != len(checked):
            raise ApplicationError(f"grid axis {axis!r} lists a value twice: {checked}")
        clean[axis] = checked
        points *= len(checked)
    if points > GRID_MAX_POINTS:
        raise ApplicationError(
            f"the grid has {points} points; at most {GRID_MAX_POINTS} may be launched at once "
            "(split it into several experiments)"
        )
    return clean


def validate_job_config(
    *, kind: str, config: dict[str, Any], input_image_set: ImageSet | None, parent
) -> dict[str, Any]:
    """Return the complete config (defaults filled in) or raise ApplicationError naming the field."""
    clean = validate_fields(kind=kind, config=config)

    if kind in ("train", "classify"):
        if input_image_set is None or input_image_set.kind != ImageSet.Kind.REAL:
            raise ApplicationError(f"a {kind} job needs a real input image set")
    if kind == "train":
        if clean["x_label"] == clean["y_label"]:
            raise ApplicationError("train config: x_label and y_label must differ")
        if clean["load_size"] and clean["load_size"] < clean["image_size"]:
            raise ApplicationError(
                "train config field 'load_size' must be 0 or at least image_size"
            )
        images = input_image_set.images.all()
        if clean["split"] != "all":
            images = images.filter(split=clean["split"])
        for label in (clean["x_label"], clean["y_label"]):
            if not images.filter(label=label).exists():
                raise ApplicationError(
                    f"input set {input_image_set.name!r} has no {label} images in split {clean['split']!r}"
                )
    if kind == "generate":
        if parent is None or parent.kind != "train":
            raise ApplicationError(
                "a generate job needs a train job as its parent (its checkpoint)"
            )
        if not parent.checkpoint:
            raise ApplicationError(f"train job #{parent.pk} has no checkpoint yet")
    if kind == "evaluate" and (
        parent is None or parent.kind != "generate" or parent.output_image_set_id is None
    ):
        raise ApplicationError("an evaluate job needs a finished generate job as its parent")
    if kind == "classify" and clean["synthetic_image_set"]:
        if not ImageSet.objects.filter(
            pk=clean["synthetic_image_set"], kind=ImageSet.Kind.GENERATED
        ).exists():
            raise ApplicationError(
                f"synthetic_image_set {clean['synthetic_image_set']} is not a generated image set"
            )
    return clean
