"""FCN-score for histology: does a tissue segmenter see the source's tissue in ``G(x)``?

The CycleGAN paper (Zhu et al. 2017, sec. 5.1.1) judges generated street scenes by
running an off-the-shelf FCN (Long et al. 2015) on them and scoring its segmentation
against the labels of the inputs they were generated from. Histology has no such
labels, so this module makes them:

1. **Pseudo-labels by colour deconvolution.** ``skimage.color.rgb2hed`` separates an
   RGB H&E image into haematoxylin (H, binds nuclei), eosin (E, binds stroma and
   cytoplasm) and DAB concentrations (Ruifrok & Johnston 2001). After a Gaussian blur
   of ``smoothing_sigma = 1`` pixel (removes pixel noise), each pixel gets:

   * **2 nuclei**      if ``H >= 0.04``;
   * **1 stroma**      else if ``E >= 0.008``;
   * **0 background/lumen** otherwise (glass, fat, gland lumens: little stain).

   The thresholds are in ``rgb2hed`` units (optical density / log(10^-6) scaling). On
   typical H&E colours nuclei give H of 0.09-0.15, eosin-pink stroma H < 0.01 with E
   about 0.02, and near-white lumen E < 0.003 (see the tests). Change them through
   :class:`HEDThresholds`; every report records the ones used.

2. **A small fully convolutional network** (:class:`TissueFCN`) is trained on real
   images to predict those labels from RGB. It is the judge: it learns what nuclei,
   stroma and lumen look like in *real* tissue, so generated tissue that does not look
   real, or that moved, lost or invented nuclei, is segmented unlike its source.

3. **Scoring.** For each generated image ``G(x)`` the FCN's prediction is compared
   with the pseudo-labels of its source ``x`` (translation must keep the tissue
   layout). The same FCN on the real sources gives the upper bound to read it against.

Scores come from the confusion matrix ``hist[label, prediction]`` (pixel counts),
computed as the CycleGAN/pix2pix ``scripts/eval_cityscapes`` code does (summed over
all images for the dataset figure):

* per-pixel accuracy        = ``sum_k hist[k,k] / sum hist``
* per-class accuracy of k   = ``hist[k,k] / sum_j hist[k,j]``  (recall of class k)
* IoU of k                  = ``hist[k,k] / (sum_j hist[k,j] + sum_j hist[j,k] - hist[k,k])``
* mean class accuracy / mean IoU = the ``nanmean`` over classes.

**Absent classes.** A class absent from the labels has an undefined accuracy (0/0);
absent from both labels and prediction it also has an undefined IoU. As in the FCN
authors' ``score.py``, undefined values are NaN and ``nanmean`` leaves them out, so an
image without lumen is not punished for the lumen it rightly does not show (a class
predicted but absent from the labels still counts, with IoU 0). The CycleGAN script
adds 1e-12 to every denominator, which turns those NaNs into zeros that the
``nanmean`` then averages in; the two agree whenever every class occurs, as it does
in any realistic dataset-level matrix, but differ per image. Reports store undefined
values as ``null``.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from skimage.color import rgb2hed
from torch import nn

CLASS_NAMES = ("background", "stroma", "nuclei")
CHECKPOINT_FORMAT = "ganlab.metrics.tissue_fcn/1"


@dataclass(frozen=True)
class HEDThresholds:
    """Pseudo-label rule on ``rgb2hed`` stain concentrations (see the module docstring)."""

    hematoxylin: float = 0.04
    eosin: float = 0.008
    smoothing_sigma: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def hed_pseudo_labels(rgb: np.ndarray, thresholds: HEDThresholds = HEDThresholds()) -> np.ndarray:
    """``uint8 (H, W, 3)`` RGB -> ``uint8 (H, W)`` labels: 0 background/lumen, 1 stroma, 2 nuclei."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB image, got {rgb.dtype} {rgb.shape}")
    hed = rgb2hed(rgb)
    if thresholds.smoothing_sigma > 0:
        hed = ndimage.gaussian_filter(
            hed, sigma=(thresholds.smoothing_sigma, thresholds.smoothing_sigma, 0)
        )
    labels = np.zeros(rgb.shape[:2], dtype=np.uint8)
    labels[hed[..., 1] >= thresholds.eosin] = 1
    labels[hed[..., 0] >= thresholds.hematoxylin] = 2
    return labels


def _conv_block(c_in: int, c_out: int, *, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class TissueFCN(nn.Module):
    """A small fully convolutional segmenter: RGB tile -> logits for the 3 tissue classes.

    A full-resolution stem, a half-resolution trunk with dilated 3x3 convolutions
    (receptive field ~45 px, enough to tell a nucleus from a dark stroma fibre), then
    bilinear upsampling fused with the stem features (a one-skip U-Net/FCN-8s style
    decoder). Any input size works; the output has the input's size.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.width = width
        self.stem = _conv_block(3, width)
        self.trunk = nn.Sequential(
            _conv_block(width, 2 * width, stride=2),
            _conv_block(2 * width, 2 * width, dilation=2),
            _conv_block(2 * width, 2 * width, dilation=4),
        )
        self.fuse = _conv_block(3 * width, width)
        self.classify = nn.Conv2d(width, len(CLASS_NAMES), 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` uint8 or [0, 255] floats -> logits ``(B, 3, H, W)``."""
        x = images.float() / 127.5 - 1.0  # [-1, 1]
        fine = self.stem(x)  # (B, w, H, W)
        coarse = self.trunk(fine)  # (B, 2w, H/2, W/2)
        up = F.interpolate(coarse, size=fine.shape[-2:], mode="bilinear", align_corners=False)
        return self.classify(self.fuse(torch.cat((fine, up), dim=1)))  # (B, 3, H, W)


@dataclass
class TrainedFCN:
    """A trained :class:`TissueFCN` with the pseudo-label rule and training facts it goes with."""

    model: TissueFCN
    thresholds: HEDThresholds
    training: dict

    def save(self, path: Path | str) -> Path:
        """Write a self-describing checkpoint (loadable with ``torch.load(weights_only=True)``)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "width": self.model.width,
                "state_dict": self.model.state_dict(),
                "thresholds": self.thresholds.as_dict(),
                "classes": list(CLASS_NAMES),
                "training": self.training,
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: Path | str, *, device: torch.device | str = "cpu") -> TrainedFCN:
        path = Path(path)
        if not path.is_file():
            raise ValueError(f"FCN checkpoint {path} does not exist")
        try:
            checkpoint = torch.load(path, map_location=device, weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
            raise ValueError(f"{path} is not a tissue FCN checkpoint: {exc}") from exc
        if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(
                f"{path} is not a tissue FCN checkpoint (expected format {CHECKPOINT_FORMAT!r})"
            )
        model = TissueFCN(width=checkpoint["width"]).to(device)
        model.load_state_dict(checkpoint["state_dict"])
        model.eval()
        return cls(model, HEDThresholds(**checkpoint["thresholds"]), checkpoint["training"])

    @torch.no_grad()
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """``uint8 (H, W, 3)`` -> predicted labels ``int64 (H, W)``."""
        self.model.eval()
        device = next(self.model.parameters()).device
        batch = torch.tensor(rgb).permute(2, 0, 1)[None].to(device)  # (1, 3, H, W) uint8
        return self.model(batch).argmax(dim=1)[0].cpu().numpy().astype(np.int64)


def _random_crops(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    *,
    batch_size: int,
    crop: int,
    rng: np.random.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random ``crop x crop`` patches with random flips and 90-degree turns."""
    xs, ys = [], []
    for index in rng.integers(0, len(images), size=batch_size):
        image, label = images[index], labels[index]
        h, w = label.shape
        top = int(rng.integers(0, h - crop + 1))
        left = int(rng.integers(0, w - crop + 1))
        x = image[top : top + crop, left : left + crop]
        y = label[top : top + crop, left : left + crop]
        turns = int(rng.integers(0, 4))
        x, y = np.rot90(x, turns), np.rot90(y, turns)
        if rng.random() < 0.5:
            x, y = x[:, ::-1], y[:, ::-1]
        xs.append(x)
        ys.append(y)
    return torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2), torch.from_numpy(np.stack(ys)).long()


def train_tissue_fcn(
    images: Sequence[np.ndarray],
    *,
    thresholds: HEDThresholds = HEDThresholds(),
    steps: int = 400,
    batch_size: int = 8,
    crop: int = 64,
    learning_rate: float = 2e-3,
    width: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Callable[[int, int], None] | None = None,
) -> TrainedFCN:
    """Train a :class:`TissueFCN` on real ``uint8 (H, W, 3)`` images to predict their pseudo-labels.

    Adam on pixel-wise cross-entropy over random crops (flips and 90-degree turns as
    augmentation); the same ``seed`` and images give the same network on the same
    device. ``progress(step, steps)`` is called after every step.
    """
    if not images:
        raise ValueError("no real images to train the FCN on")
    if steps < 1 or batch_size < 1 or crop < 8:
        raise ValueError(
            f"need steps >= 1, batch_size >= 1 and crop >= 8, got {steps}, {batch_size}, {crop}"
        )
    crop = min(crop, *(min(image.shape[:2]) for image in images))
    labels = [hed_pseudo_labels(image, thresholds) for image in images]
    rng = np.random.default_rng(seed)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(seed)
        model = TissueFCN(width=width).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    loss = torch.tensor(math.nan)
    for step in range(1, steps + 1):
        x, y = _random_crops(images, labels, batch_size=batch_size, crop=crop, rng=rng)
        loss = F.cross_entropy(model(x.to(device)), y.to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(step, steps)
    model.eval()
    training = {
        "n_images": len(images),
        "steps": steps,
        "batch_size": batch_size,
        "crop": crop,
        "learning_rate": learning_rate,
        "seed": seed,
        "final_loss": float(loss.detach()),
    }
    return TrainedFCN(model, thresholds, training)


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, n_classes: int = len(CLASS_NAMES)
) -> np.ndarray:
    """``hist[k, j]`` = number of pixels with label ``k`` predicted as ``j`` (int64, ``n x n``).

    Pixels whose label is outside ``[0, n_classes)`` are ignored, as in the reference code.
    """
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    if labels.shape != predictions.shape:
        raise ValueError(
            f"label map {labels.shape} and prediction {predictions.shape} differ in size"
        )
    labels, predictions = labels.ravel().astype(np.int64), predictions.ravel().astype(np.int64)
    if ((predictions < 0) | (predictions >= n_classes)).any():
        raise ValueError(
            f"predictions must lie in [0, {n_classes}), got values in [{predictions.min()}, {predictions.max()}]"
        )
    keep = (labels >= 0) & (labels < n_classes)
    return np.bincount(
        n_classes * labels[keep] + predictions[keep], minlength=n_classes**2
    ).reshape(n_classes, n_classes)


def segmentation_scores(hist: np.ndarray, class_names: Sequence[str] = CLASS_NAMES) -> dict:
    """Per-pixel accuracy, mean class accuracy, mean IoU and per-class values of a confusion matrix.

    Undefined values (0/0, see the module docstring) are NaN in the per-class arrays and
    left out of the means; a mean over no defined class is NaN.
    """
    hist = np.asarray(hist, dtype=np.float64)
    if hist.ndim != 2 or hist.shape[0] != hist.shape[1] or hist.shape[0] != len(class_names):
        raise ValueError(
            f"expected a {len(class_names)}x{len(class_names)} confusion matrix, got shape {hist.shape}"
        )
    diag = np.diag(hist)
    label_counts, predicted_counts = hist.sum(axis=1), hist.sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        pixel_accuracy = diag.sum() / hist.sum()
        class_accuracy = diag / label_counts
        iou = diag / (label_counts + predicted_counts - diag)
    return {
        "pixel_accuracy": float(pixel_accuracy),
        "mean_class_accuracy": _nanmean(class_accuracy),
        "mean_iou": _nanmean(iou),
        "per_class_accuracy": dict(zip(class_names, map(float, class_accuracy), strict=True)),
        "per_class_iou": dict(zip(class_names, map(float, iou), strict=True)),
    }


def _nanmean(values: np.ndarray) -> float:
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else math.nan
