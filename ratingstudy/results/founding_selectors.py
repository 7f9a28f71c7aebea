"""What a founding-study run is, and reading one back (the services are in
:mod:`ratingstudy.results.founding`, the report in :mod:`ratingstudy.results.founding_report`).

A run is a :class:`~ratingstudy.jobs.models.Comparison` whose description starts with
:data:`FOUNDING_MARKER` and records its :class:`FoundingSettings`; it has one experiment per
model (:data:`MODELS`). Every other row of the run is found from those: the jobs by their
parent and config, the imported set, the rated set and the study by name.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields

from ganlab.weight_files import missing_imagenet_files
from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.configs import ENCODERS
from ratingstudy.jobs.models import Comparison, Experiment, Job
from ratingstudy.studies.models import Study

FOUNDING_MARKER = "Reproduction of the founding study"
#: The reference CycleGAN resizes to 286 before its random 256 crop.
LOAD_RATIO = 286 / 256


@dataclass(frozen=True)
class FoundingModel:
    """A model of the deck's tables: the name the deck prints and how the lab trains it."""

    label: str
    preset: str
    semi_supervised: bool
    encoder: str | None  # the ImageNet encoder it needs, if any
    in_deck: bool = True


MODELS = (
    FoundingModel("Simple CycleGAN", "cyclegan", False, None),
    FoundingModel("VGG-16 CycleGAN", "vgg16-cyclegan", True, "vgg16"),
    FoundingModel("ResNet-50 CycleGAN", "resnet50-cyclegan", True, "resnet50"),
    FoundingModel(
        "EfficientNet-Lite0 CycleGAN", "efficientnet-lite0-cyclegan", True, "efficientnet_lite0", False
    ),
)
MODEL_BY_PRESET = {model.preset: model for model in MODELS}
DECK_PRESETS = tuple(model.preset for model in MODELS if model.in_deck)


@dataclass(frozen=True)
class FoundingSettings:
    """Everything a run depends on (defaults: the deck's data and the reference recipe).

    ``epochs`` is the whole schedule: the first half at constant learning rate, then the
    reference's linear decay. ``encoder_weights='random'`` trains the VGG-16 and ResNet-50
    encoders from scratch (no ImageNet files needed; not the deck's transfer learning).
    """

    breakhis_root: str
    name: str = "founding-study"
    presets: tuple[str, ...] = DECK_PRESETS
    epochs: int = 200
    image_size: int = 256
    batch_size: int = 1
    encoder_weights: str = "imagenet"
    seed: int = 0
    train_per_class: int = 100
    test_per_class: int = 10
    min_test_patients: int = 3
    classifier_encoder: str = "efficientnet_lite0"
    classifier_epochs: int = 10
    fcn_steps: int = 300

    def problems(self) -> list[str]:
        """Every reason the settings cannot run, each saying what to change."""
        found = []
        unknown = [p for p in self.presets if p not in MODEL_BY_PRESET]
        if unknown or not self.presets:
            found.append(f"presets must be some of {', '.join(MODEL_BY_PRESET)}, got {list(self.presets)}")
        if len(set(self.presets)) != len(self.presets):
            found.append(f"presets lists a preset twice: {list(self.presets)}")
        if not self.name or len(self.name) > 60:
            found.append("name must be 1 to 60 characters (experiments are named after it)")
        if self.image_size < 64 or self.image_size % 32 or self.image_size > 1024:
            found.append(
                f"image_size must be a multiple of 32 from 64 to 1024 (the ResNet-50 U-Net's "
                f"stride; 64 keeps BatchNorm defined at one image per batch), got {self.image_size}"
            )
        for name in ("epochs", "batch_size", "train_per_class", "test_per_class", "min_test_patients",
                     "classifier_epochs", "fcn_steps"):  # fmt: skip
            if getattr(self, name) < 1:
                found.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.encoder_weights not in ("imagenet", "random"):
            found.append(f"encoder_weights must be imagenet or random, got {self.encoder_weights!r}")
        if self.classifier_encoder not in ENCODERS:
            found.append(f"classifier_encoder must be one of {', '.join(ENCODERS)}")
        if self.encoder_weights == "imagenet" and not unknown:
            needed = [MODEL_BY_PRESET[p].encoder for p in self.presets]
            for encoder, path in missing_imagenet_files(e for e in needed if e).items():
                found.append(
                    f"the ImageNet weights of {encoder} are not on this machine and the lab never "
                    f"downloads them: put {path.name} (torchvision's IMAGENET1K_V1 file, from "
                    f"https://download.pytorch.org/models/{path.name}) at {path}, or run with "
                    "--encoder-weights random to train the encoders from scratch"
                )
        if self.classifier_encoder in missing_imagenet_files([self.classifier_encoder]):
            found.append(
                f"the classifier's encoder {self.classifier_encoder} has no ImageNet weights "
                "here; use --classifier-encoder efficientnet_lite0 (its weights ship with the lab)"
            )
        return found

    def to_json(self) -> str:
        data = asdict(self)
        data["presets"] = list(self.presets)
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FoundingSettings:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in data.items() if k in known}
        data["presets"] = tuple(data.get("presets", DECK_PRESETS))
        return cls(**data)

    def schedule(self) -> tuple[int, int]:
        constant = math.ceil(self.epochs / 2)
        return constant, self.epochs - constant

    def train_config(self) -> dict:
        n_epochs, n_epochs_decay = self.schedule()
        return {
            "encoder_weights": self.encoder_weights,
            "image_size": self.image_size,
            "load_size": max(self.image_size, round(self.image_size * LOAD_RATIO)),
            "batch_size": self.batch_size,
            "n_epochs": n_epochs,
            "n_epochs_decay": n_epochs_decay,
            "seed": self.seed,
            "split": "train",
            "checkpoint_every": max(1, self.epochs // 4),
        }

    def classifier_config(self, synthetic: ImageSet | None) -> dict:
        return {
            "encoder": self.classifier_encoder,
            "encoder_weights": "imagenet",
            "image_size": self.image_size,
            "batch_size": 16,
            "epochs": self.classifier_epochs,
            "synthetic_image_set": synthetic.pk if synthetic is not None else 0,
            "seed": self.seed,
        }


def founding_settings_of(comparison: Comparison) -> FoundingSettings:
    """The settings a run was launched with; ``ApplicationError`` for another comparison."""
    head, _, settings = comparison.description.partition("\nsettings: ")
    if not head.startswith(FOUNDING_MARKER) or not settings:
        raise ApplicationError(f"comparison {comparison.name!r} is not a founding-study run")
    return FoundingSettings.from_json(settings.splitlines()[0])


def founding_real_set_name(name: str) -> str:
    return f"{name}-breakhis-400X"


def founding_rated_set_name(name: str) -> str:
    return f"{name}-real-test-rated"


def founding_study_name(name: str) -> str:
    return f"Founding study reproduction ({name})"


def founding_model_of(experiment: Experiment) -> FoundingModel:
    return MODEL_BY_PRESET[experiment.grid["preset"][0]]


def latest_job(jobs) -> Job | None:
    """The newest job, preferring one that succeeded (a retry supersedes a failure)."""
    jobs = list(jobs)
    succeeded = [j for j in jobs if j.status == Job.Status.SUCCEEDED]
    return max(succeeded or jobs, key=lambda j: j.pk, default=None)


def generate_job(train: Job, *, direction: str, split: str) -> Job | None:
    return latest_job(
        j
        for j in train.children.filter(kind=Job.Kind.GENERATE)
        if j.config.get("direction") == direction and j.config.get("split") == split
    )


def classify_job(real: ImageSet, synthetic: ImageSet | None) -> Job | None:
    wanted = synthetic.pk if synthetic is not None else 0
    return latest_job(
        j
        for j in Job.objects.filter(kind=Job.Kind.CLASSIFY, input_image_set=real)
        if j.config.get("synthetic_image_set") == wanted
    )


def _first_line(text: str) -> str:
    return text.splitlines()[0][:200] if text else "no error recorded"


@dataclass(frozen=True)
class FoundingStatus:
    """How far a run is: every job it needs (by status), the study, and what failed."""

    comparison: Comparison
    expected: int
    counts: dict[str, int]
    failed: list[Job]
    study: Study | None

    @property
    def complete(self) -> bool:
        return self.study is not None and self.counts.get(Job.Status.SUCCEEDED, 0) == self.expected

    @property
    def message(self) -> str:
        if self.complete:
            return "Every model is trained, translated, evaluated and classified; the study is open."
        done = self.counts.get(Job.Status.SUCCEEDED, 0)
        parts = [f"{done} of {self.expected} jobs done"]
        for status in (Job.Status.RUNNING, Job.Status.QUEUED):
            if self.counts.get(status):
                parts.append(f"{self.counts[status]} {status}")
        if self.failed:
            parts.append(
                "stopped: "
                + "; ".join(f"{job} {job.status}: {_first_line(job.error)}" for job in self.failed)
                + " (resume them in the admin)"
            )
        parts.append("study open" if self.study else "study not created yet")
        return ", ".join(parts) + "."


def founding_models(comparison: Comparison) -> list[tuple[FoundingModel, Experiment, Job | None]]:
    """Each model of the run in the deck's order, with its experiment and (latest) train job."""
    rows = []
    for experiment in comparison.experiments.order_by("pk"):
        model = founding_model_of(experiment)
        train = latest_job(experiment.jobs.filter(kind=Job.Kind.TRAIN))
        rows.append((model, experiment, train))
    order = [m.preset for m in MODELS]
    return sorted(rows, key=lambda row: order.index(row[0].preset))


def founding_jobs(comparison: Comparison) -> tuple[int, list[Job]]:
    """``(how many jobs a complete run has, the latest job of each that exists)``."""
    settings = founding_settings_of(comparison)
    real = ImageSet.objects.get(name=founding_real_set_name(settings.name))
    jobs: list[Job | None] = [classify_job(real, None)]
    for _model, _experiment, train in founding_models(comparison):
        jobs.append(train)
        if train is None:
            continue
        chained = generate_job(train, direction="AtoB", split="test")
        evaluate = latest_job(chained.children.filter(kind=Job.Kind.EVALUATE)) if chained else None
        augment = generate_job(train, direction="AtoB", split="train")
        synthetic = augment.output_image_set if augment is not None else None
        jobs += [
            chained,
            evaluate,
            generate_job(train, direction="BtoA", split="test"),
            augment,
            classify_job(real, synthetic) if synthetic is not None else None,
        ]
    expected = 1 + 6 * len(settings.presets)
    return expected, [j for j in jobs if j is not None]


def founding_status(*, comparison: Comparison) -> FoundingStatus:
    settings = founding_settings_of(comparison)
    expected, jobs = founding_jobs(comparison)
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.status] = counts.get(job.status, 0) + 1
    return FoundingStatus(
        comparison=comparison,
        expected=expected,
        counts=counts,
        failed=[j for j in jobs if j.status in (Job.Status.FAILED, Job.Status.CANCELLED)],
        study=Study.objects.filter(name=founding_study_name(settings.name)).first(),
    )
