"""CycleGAN training: one optimisation step, the epoch loop, checkpoints, resume, cancel.

Objective (Zhu et al. 2017, eq. 3, plus the identity term of section 5.2), with the
reference names G_A = G: X->Y, G_B = F: Y->X, D_A = D_Y, D_B = D_X::

    L(G, F, D_X, D_Y) = L_GAN(G, D_Y, X, Y) + L_GAN(F, D_X, Y, X)
                        + lambda * (|F(G(x)) - x|_1 + |G(F(y)) - y|_1)
                        + 0.5 * lambda * (|G(y) - y|_1 + |F(x) - x|_1)

and, when semi-supervised, lambda_class * CE(class head of D, label) over the labelled
real images of both domains (each discriminator learns both classes; a supervised class
head beside the patch head, not Odena's K+1-class SGAN, see
:class:`~ganlab.models.networks.SemiSupervisedPatchDiscriminator`). LSGAN by default;
generators and discriminators each have one Adam (2e-4, beta1 0.5; fused kernels by
default); the discriminators see generated images through a 50-image history pool kept
on the training device; the LR follows the reference's linear schedule
(:meth:`~ganlab.train.config.TrainConfig.lr_factor`): constant, then down to exactly 0
in the last epoch.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

import ganlab
from ganlab.data.dataset import (
    UNLABELLED,
    ImageDataset,
    UnalignedDataset,
    expand_sources,
    select_labelled,
)
from ganlab.models.cyclegan import CLASS_NAMES, NETWORK_NAMES, PAPER_NAMES, CycleGAN
from ganlab.models.weights import sha256_file
from ganlab.train.checkpoints import CYCLEGAN_KIND
from ganlab.train.config import CUDA_GRAPH_MODES, RESUMABLE_CHANGES, TrainConfig
from ganlab.train.losses import ImagePool, gan_loss
from ganlab.train.runtime import (
    ProgressCallback,
    Throughput,
    autocast,
    autocast_dtype,
    load_checkpoint,
    peak_memory_bytes,
    report,
    rng_state,
    save_atomic,
    seed_everything,
    select_device,
    set_rng_state,
)

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = 1
LATEST = "latest.pt"


def _set_requires_grad(modules: Iterable[nn.Module], flag: bool, frozen: set[int]) -> None:
    for module in modules:
        for p in module.parameters():
            p.requires_grad_(flag and id(p) not in frozen)


class CycleGANTrainer:
    """Networks, optimisers and pools of one run; :meth:`step` is one iteration.

    Used by :func:`train` and by ``benchmarks/train_step.py``, so the benchmark times
    exactly the code that trains.
    """

    def __init__(
        self, config: TrainConfig, device: torch.device, *, load_weights: bool = True
    ) -> None:
        assert config.model is not None
        self.config = config
        self.device = device
        self.model = CycleGAN(config.model, load_weights=load_weights).to(device)
        self.memory_format = (
            torch.channels_last if config.channels_last else torch.contiguous_format
        )
        if config.channels_last:
            self.model.to(memory_format=torch.channels_last)
        m = self.model
        adam = {"lr": config.lr, "betas": (config.beta1, 0.999), "fused": config.fused_adam or None}
        self.opt_G = torch.optim.Adam([*m.G_A.parameters(), *m.G_B.parameters()], **adam)
        self.opt_D = torch.optim.Adam([*m.D_A.parameters(), *m.D_B.parameters()], **adam)
        # pool of generated A images (for D_B) and of generated B images (for D_A)
        self.pool_A = ImagePool(config.pool_size, seed=config.seed * 2 + 1)
        self.pool_B = ImagePool(config.pool_size, seed=config.seed * 2 + 2)
        self.amp_dtype = autocast_dtype(config.amp, device)
        self.semi_supervised = config.model.semi_supervised
        self.frozen: set[int] = set()
        # CUDA-graph modes reuse their output memory at every replay; marking each step's
        # start tells torch that no output of the previous step is still needed.
        self.cuda_graphs = config.compile and config.compile_mode in CUDA_GRAPH_MODES
        if config.compile:
            for net in (m.G_A, m.G_B, m.D_A, m.D_B):
                net.compile(mode=config.compile_mode)
        self.model.train()

    def begin_epoch(self, epoch: int) -> float:
        """Apply epoch's learning rate and encoder freeze state; return the LR."""
        lr = self.config.lr * self.config.lr_factor(epoch)
        for optimizer in (self.opt_G, self.opt_D):
            for group in optimizer.param_groups:
                group["lr"] = lr
        freeze = epoch < self.config.freeze_encoder_epochs
        self.frozen = (
            {id(p) for enc in self.model.pretrained_encoders() for p in enc.parameters()}
            if freeze
            else set()
        )
        _set_requires_grad(self.model.generators, True, self.frozen)
        return lr

    def _to_device(self, images: torch.Tensor) -> torch.Tensor:
        return images.to(self.device, non_blocking=True).contiguous(
            memory_format=self.memory_format
        )

    def _discriminator_loss(
        self,
        net: nn.Module,
        real: torch.Tensor,
        fake: torch.Tensor,
        other_real: torch.Tensor,
        labels: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """0.5 * (L_GAN(real, 1) + L_GAN(fake, 0)), and the class cross-entropy if semi-supervised.

        One forward pass over [real, (other domain's real,) fake]; instance norm makes
        every sample independent, so batching them changes nothing but speed. The class
        head sees the real images of both domains; ``labels`` (for [real, other_real])
        holds :data:`UNLABELLED` where a label is hidden, and only labelled images count.
        """
        batch = real.shape[0]
        with autocast(self.device, self.amp_dtype):
            if self.semi_supervised:
                patch, logits = net(torch.cat([real, other_real, fake]))
            else:
                patch, logits = net(torch.cat([real, fake])), None
        mode = self.config.gan_mode
        loss_adv = 0.5 * (
            gan_loss(patch[:batch], True, mode) + gan_loss(patch[-batch:], False, mode)
        )
        if logits is None:
            return loss_adv, None
        # summed then divided by the labelled count: no host sync, and 0 when none is labelled
        ce = F.cross_entropy(
            logits[: 2 * batch].float(), labels, ignore_index=UNLABELLED, reduction="sum"
        )
        return loss_adv, ce / (labels != UNLABELLED).sum().clamp(min=1)

    def step(self, batch: dict[str, Any]) -> dict[str, float]:
        """One iteration on a batch from :class:`UnalignedDataset`; returns the losses.

        First the generators (discriminators fixed), then the discriminators on real
        images and on generated ones drawn through the history pools.
        """
        cfg = self.config
        m = self.model
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        real_A, real_B = self._to_device(batch["A"]), self._to_device(batch["B"])
        lambda_idt = cfg.lambda_cycle * cfg.lambda_identity

        # generators: G_A (G) and G_B (F), discriminators fixed
        _set_requires_grad(m.discriminators, False, self.frozen)
        self.opt_G.zero_grad(set_to_none=True)
        with autocast(self.device, self.amp_dtype):
            fake_B = m.G_A(real_A)  # G(x)
            rec_A = m.G_B(fake_B)  # F(G(x))
            fake_A = m.G_B(real_B)  # F(y)
            rec_B = m.G_A(fake_A)  # G(F(y))
            pred_fake_B = m.D_A(fake_B)  # D_Y(G(x))
            pred_fake_A = m.D_B(fake_A)  # D_X(F(y))
            if lambda_idt > 0:
                idt_A = m.G_A(real_B)  # G(y) ~ y
                idt_B = m.G_B(real_A)  # F(x) ~ x
        if self.semi_supervised:  # (patch, class logits): the generators face the patch head
            pred_fake_B, pred_fake_A = pred_fake_B[0], pred_fake_A[0]
        losses = {
            "G_A": gan_loss(pred_fake_B, True, cfg.gan_mode),
            "G_B": gan_loss(pred_fake_A, True, cfg.gan_mode),
            "cycle_A": F.l1_loss(rec_A.float(), real_A) * cfg.lambda_cycle,
            "cycle_B": F.l1_loss(rec_B.float(), real_B) * cfg.lambda_cycle,
        }
        if lambda_idt > 0:
            losses["idt_A"] = F.l1_loss(idt_A.float(), real_B) * lambda_idt
            losses["idt_B"] = F.l1_loss(idt_B.float(), real_A) * lambda_idt
        sum(losses.values()).backward()
        self.opt_G.step()

        # discriminators: D_A (D_Y) on real B vs pooled G_A(A); D_B (D_X) on real A vs pooled G_B(B)
        _set_requires_grad(m.discriminators, True, self.frozen)
        self.opt_D.zero_grad(set_to_none=True)
        labels_A = batch["A_label"].to(self.device)
        labels_B = batch["B_label"].to(self.device)
        losses["D_A"], cls_A = self._discriminator_loss(
            m.D_A, real_B, self.pool_B.query(fake_B), real_A, torch.cat([labels_B, labels_A])
        )
        losses["D_B"], cls_B = self._discriminator_loss(
            m.D_B, real_A, self.pool_A.query(fake_A), real_B, torch.cat([labels_A, labels_B])
        )
        d_total = losses["D_A"] + losses["D_B"]
        if cls_A is not None and cls_B is not None:
            losses["cls_A"], losses["cls_B"] = cls_A, cls_B
            d_total = d_total + cfg.lambda_class * (cls_A + cls_B)
        d_total.backward()
        self.opt_D.step()
        values = torch.stack([v.detach().float() for v in losses.values()]).tolist()  # one sync
        return dict(zip(losses, values, strict=True))

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "networks": {name: getattr(m, name).state_dict() for name in NETWORK_NAMES},
            "optimizers": {"G": self.opt_G.state_dict(), "D": self.opt_D.state_dict()},
            "pools": {"A": self.pool_A.state_dict(), "B": self.pool_B.state_dict()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, weights in state["networks"].items():
            getattr(self.model, name).load_state_dict(weights)
        self.opt_G.load_state_dict(state["optimizers"]["G"])
        self.opt_D.load_state_dict(state["optimizers"]["D"])
        self.pool_A.load_state_dict(state["pools"]["A"], self.device)
        self.pool_B.load_state_dict(state["pools"]["B"], self.device)


def build_training_data(config: TrainConfig) -> UnalignedDataset:
    """The unpaired dataset of ``config``: expanded domains, labels, label fraction, augmentation."""

    def domain(sources: list[str], default_label: str | None, what: str) -> ImageDataset:
        paths = expand_sources(sources, what=f"TrainConfig.{what}")
        names = [config.labels.get(str(p), default_label) for p in paths]
        labels = [CLASS_NAMES.index(n) if n is not None else UNLABELLED for n in names]
        return ImageDataset(
            paths,
            labels,
            image_size=config.image_size,
            load_size=config.load_size,
            flip=config.flip,
            seed=config.seed,
        )

    x = domain(config.domain_x, config.x_label, "domain_x")
    y = domain(config.domain_y, config.y_label, "domain_y")
    # one draw over both domains so the fraction holds per class across the whole set
    kept = select_labelled(x.labels + y.labels, config.label_fraction, config.seed)
    x.labels, y.labels = kept[: len(x)], kept[len(x) :]
    data = UnalignedDataset(x, y, seed=config.seed)
    last = len(data) % config.batch_size
    assert config.model is not None
    problem = last and config.model.image_size_problem(config.image_size, batch_size=last)
    if problem:
        raise ValueError(
            f"TrainConfig.batch_size: the last batch of every epoch holds {last} of the "
            f"{len(data)} image pairs, and {problem}; or choose a batch_size that divides {len(data)}"
        )
    return data


@dataclass
class TrainResult:
    """What a :func:`train` call produced.

    ``checkpoint`` is ``out_dir/latest.pt`` (resumable, usable for generation);
    ``epochs_done`` and ``global_step`` count the whole run, resumed parts included;
    ``final_losses`` are the mean losses of the last completed epoch (or of the partial
    epoch when cancelled before any epoch ended); ``images_per_s`` and
    ``train_seconds`` cover this call only; ``parameter_counts`` are per network.
    """

    checkpoint: Path
    checkpoint_sha256: str
    cancelled: bool
    epochs_done: int
    global_step: int
    final_losses: dict[str, float]
    images_per_s: float
    device: str
    peak_gpu_mem_bytes: int
    parameter_counts: dict[str, int]
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (paths as strings)."""
        data = dataclasses.asdict(self)
        data["checkpoint"] = str(self.checkpoint)
        return data


def _check_resumable(saved: dict[str, Any], config: TrainConfig, path: Path) -> None:
    current = config.to_dict()
    changed = sorted(
        k
        for k in current.keys() | saved.keys()
        if k not in RESUMABLE_CHANGES and saved.get(k) != current.get(k)
    )
    if changed:
        raise ValueError(
            f"cannot resume {path}: the config differs in {changed} (only {sorted(RESUMABLE_CHANGES)} may change). "
            "Use another out_dir, or resume=False to start over."
        )


def _mean_losses(sums: dict[str, float], count: int) -> dict[str, float]:
    return {k: v / max(count, 1) for k, v in sums.items()}


def train(
    config: TrainConfig,
    *,
    out_dir: Path,
    on_progress: ProgressCallback | None = None,
    resume: bool = True,
    stop_event: threading.Event | None = None,
) -> TrainResult:
    """Train (or resume) a CycleGAN-family model; checkpoints go to ``out_dir``.

    Args:
        config: validated :class:`TrainConfig` (saved in every checkpoint).
        out_dir: run folder; holds ``latest.pt`` (after every epoch and on cancel) and
            ``epoch_NNNN.pt`` every ``checkpoint_every`` epochs.
        on_progress: called with a :class:`Progress` after every iteration; returning
            ``True`` requests cancellation.
        resume: continue from ``out_dir/latest.pt`` if present: networks, optimisers,
            pools, RNG states, epoch and iteration; the LR schedule continues where it was.
            On CPU the result is bit-identical to an uninterrupted run; on CUDA, even with
            ``deterministic``, a few backward kernels (reflection padding) accumulate with
            atomics, so runs agree only to rounding.
        stop_event: setting it requests cancellation, like ``on_progress`` returning True.

    Cancellation is honoured after the current iteration: ``latest.pt`` is written at
    that exact point and the result has ``cancelled=True``.
    """
    out_dir = Path(out_dir)
    device = select_device(config.device)
    data = build_training_data(config)
    latest = out_dir / LATEST
    saved = load_checkpoint(latest) if resume and latest.is_file() else None
    if saved is not None:
        _check_resumable(saved["config"], config, latest)
    seed_everything(config.seed, deterministic=config.deterministic)
    trainer = CycleGANTrainer(config, device, load_weights=saved is None)
    epoch, start_iter, global_step = 0, 0, 0
    sums: dict[str, float] = {}
    history: list[dict[str, float]] = []
    if saved is not None:
        trainer.load_state_dict(saved)
        set_rng_state(saved["rng"])
        epoch, start_iter, global_step = saved["epoch"], saved["iteration"], saved["global_step"]
        sums, history = dict(saved["epoch_loss_sums"]), list(saved["history"])
        if epoch < config.total_epochs:
            log.info("resuming %s at epoch %d, iteration %d", latest, epoch + 1, start_iter)
        else:
            log.info("%s already finished all %d epochs", latest, config.total_epochs)

    iters_per_epoch = math.ceil(len(data) / config.batch_size)
    total_steps = iters_per_epoch * config.total_epochs
    counts = trainer.model.parameter_counts()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    loader_generator = torch.Generator()  # DataLoader seeds from this, not the global RNG
    images_seen = 0
    meter = Throughput()
    cancelled = False
    sha = ""

    def checkpoint(next_epoch: int, next_iter: int, complete: bool) -> str:
        payload = {
            "kind": CYCLEGAN_KIND,
            "format": CHECKPOINT_FORMAT,
            "ganlab_version": ganlab.__version__,
            "torch_version": str(torch.__version__),
            "paper_names": PAPER_NAMES,
            "class_names": list(CLASS_NAMES),
            "config": config.to_dict(),
            "epoch": next_epoch,
            "iteration": next_iter,
            "global_step": global_step,
            "complete": complete,
            "schedule": {
                "policy": "linear",
                "n_epochs": config.n_epochs,
                "n_epochs_decay": config.n_epochs_decay,
            },
            "lr": config.lr * config.lr_factor(min(next_epoch, config.total_epochs - 1)),
            "epoch_loss_sums": sums,
            "history": history,
            "parameter_counts": counts,
            "rng": rng_state(),
            **trainer.state_dict(),
        }
        return save_atomic(payload, latest)

    iteration = start_iter
    while epoch < config.total_epochs:
        lr = trainer.begin_epoch(epoch)
        data.set_epoch(epoch)
        loader = DataLoader(
            data,
            batch_size=config.batch_size,
            sampler=range(start_iter * config.batch_size, len(data)),
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
            generator=loader_generator,
        )
        for iteration, batch in enumerate(loader, start=start_iter + 1):
            losses = trainer.step(batch)
            global_step += 1
            images_seen += batch["A"].shape[0]
            for k, v in losses.items():
                sums[k] = sums.get(k, 0.0) + v
            progress = meter.progress(
                batch["A"].shape[0],
                global_step=global_step,
                total_steps=total_steps,
                batch_size=config.batch_size,
                epoch=epoch + 1,
                total_epochs=config.total_epochs,
                iteration=iteration,
                iterations_per_epoch=iters_per_epoch,
                losses=losses,
                lr=lr,
            )
            if report(progress, on_progress, stop_event):
                cancelled = True
                break
        if iteration < iters_per_epoch:  # cancelled inside the epoch: save the exact point
            sha = checkpoint(epoch, iteration, complete=False)
            break
        history.append(_mean_losses(sums, iters_per_epoch))
        sums = {}
        epoch += 1
        start_iter = 0
        sha = checkpoint(epoch, 0, complete=epoch >= config.total_epochs)
        if epoch % config.checkpoint_every == 0:
            shutil.copyfile(latest, out_dir / f"epoch_{epoch:04d}.pt")
        if cancelled:
            break

    cancelled = cancelled and epoch < config.total_epochs
    if not sha:  # resumed a finished run: nothing was trained
        sha = sha256_file(latest)
    elapsed = meter.elapsed_s
    return TrainResult(
        checkpoint=latest,
        checkpoint_sha256=sha,
        cancelled=cancelled,
        epochs_done=epoch,
        global_step=global_step,
        final_losses=history[-1] if history else _mean_losses(sums, iteration),
        images_per_s=images_seen / elapsed if elapsed > 0 else 0.0,
        device=str(device),
        peak_gpu_mem_bytes=peak_memory_bytes(device),
        parameter_counts=counts,
        train_seconds=elapsed,
    )
