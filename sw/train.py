"""Training loop: seeded, resumable bit for bit, with per-epoch metrics (JSON) and an accuracy plot.

`train(config, out_dir)` writes into out_dir:
  checkpoint.pt  the last epoch (model, optimizer, RNG state, history) and the best-validation snapshot,
                 loadable with torch.load(weights_only=True) (no pickle of arbitrary objects);
  metrics.json   one entry per epoch (train loss, validation and test strict / lenient / first-spike,
                 no-spike rate, median first output spike bin, seconds, samples/s);
  accuracy.png   the accuracy curves (and loss, median first output spike bin per epoch);
  spike_bins.png, confusion.png, hidden_activity.png   the exported (best-validation) network on the test
                 split: spike bins per layer, confusion matrix, dead / always-firing hidden neurons.
"""
from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numba
import numpy as np
import torch
import torch.nn.functional as F

from . import datasets, kernels, reference, scoring
from .model import BS4NN, ClippedAdam
from .semantics import T_MAX

CHECKPOINT_FORMAT = "bs4nn-checkpoint"
CHECKPOINT_VERSION = 1
RULES = ("decision", "s4nn")


# Defaults of rule "decision" that differ per 28x28 dataset (chosen on validation-split runs, docs/training.md).
# Fashion-MNIST's bright, filled silhouettes fire many inputs early: a higher hidden threshold, a larger logit
# scale (later, better-informed decisions) and no shifts (the garments are centred) did better there.
# MNIST: small affine warps (rotation +-5 degrees, zoom +-5 %) and 60 epochs; Fashion-MNIST: a wider surrogate
# (half-width 24: its potentials spread wider), a larger margin and faster hidden thresholds, each worth several
# tenths of a point, 60 epochs, and an output threshold raised after training where the validation split says
# that a later decision is a better one (docs/training.md, sections 2 and 8).
DATASET_DEFAULTS = {
    "mnist": {"logit_scale": 0.3, "ema": 0.999, "shift": 1, "rotate": 5.0, "scale": 0.05, "epochs": 60},
    "fashion-mnist": {"logit_scale": 1.0, "ema": 0.999, "shift": 0, "hidden_threshold": 40.0, "surrogate_width": 24.0,
                      "margin": 8.0, "threshold_lr_scale": 100.0, "epochs": 60, "output_threshold_search": 16},
}


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters. None means "the default for this rule and dataset" (see `resolved`)."""

    dataset: str = "digits"  # digits | mnist | fashion-mnist
    hidden: tuple[int, ...] = (100,)  # hidden layer sizes; the paper's 784-600-10 is hidden=(600,)
    epochs: int | None = None  # default: 60 on MNIST, 30 otherwise (also the length of the lr schedule)
    rule: str = "decision"  # "decision" (default) or "s4nn" (the paper's temporal rule, the baseline)
    seed: int = 0
    batch_size: int | None = None  # decision: 64; s4nn: 16
    lr: float | None = None  # decision: Adam 1e-3 decaying to lr_final; s4nn: SGD 0.1
    lr_final: float | None = None  # decision: 1e-5 (cosine); s4nn: = lr
    val_fraction: float = 1 / 12  # held out from the training split to choose the exported epoch
    shift: int | None = None  # random +-shift pixel translations (decision: 1 on 28x28, 0 on small images)
    flip: bool | None = None  # random left-right mirror images (garments are symmetric, digits are not)
    rotate: float | None = None  # random rotations of up to +-rotate degrees (with scale: affine warps, bilinear)
    scale: float | None = None  # random zoom 1 +- scale (decision: 5 degrees and 0.05 on MNIST, else 0)
    elastic: float | None = None  # strength alpha (pixels) of elastic distortions, smoothed random fields (0: off)
    # rule "decision"
    logit_scale: float | None = None  # decision: 0.3 (fashion-mnist: 1.0)
    margin: float | None = None  # decision: 4 (fashion-mnist: 8)
    fire_weight: float = 0.1
    output_threshold: int | None = None  # fixed integer; default round(0.1 * n_in of the output layer)
    output_threshold_search: int | None = None  # after training: raise the exported network's output threshold
    # by the offset 0 .. this that scores best (strict) on the validation split with at most max_no_spike of
    # its images without an output spike (0: off; default 16 on fashion-mnist, else 0)
    max_no_spike: float = 0.005
    hidden_threshold: float | None = None  # initial per-neuron hidden threshold; default 0.03 * n_in
    init_scale: float = 0.05
    init_positive: tuple[float, ...] = (0.65, 0.60)  # fraction of positive initial weights, per layer
    surrogate_width: float | None = None  # half-width of the triangle surrogate of "hidden neuron fired by b*"
    threshold_lr_scale: float | None = None  # hidden thresholds learn at this multiple of the weights' lr (10; fashion-mnist: 100)
    ema: float | None = None  # decay per step of an exponential average of the latent parameters (0: off;
    # default 0.999 for "decision" on 28x28 images, else 0); when on, the averaged network is the one
    # evaluated, chosen and exported
    # rule "s4nn"
    thr: float = 100.0
    gamma: int = 1
    lr_fact: float = 0.01
    per_neuron_fact: bool = False

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}: choose one of {', '.join(RULES)}")
        if (self.epochs is not None and self.epochs < 1) or not self.hidden or min(int(h) for h in self.hidden) < 1:
            raise ValueError(f"epochs must be >= 1 and hidden sizes >= 1 (got {self.epochs}, {self.hidden})")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if self.ema is not None and not 0 <= self.ema < 1:
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if self.output_threshold_search is not None and self.output_threshold_search < 0:
            raise ValueError(f"output_threshold_search must be >= 0, got {self.output_threshold_search}")
        if not 0 <= self.max_no_spike <= 1:
            raise ValueError(f"max_no_spike must be in [0, 1], got {self.max_no_spike}")

    def resolved(self, input_pixels: int, image_side: int) -> "TrainConfig":
        s4nn = self.rule == "s4nn"
        small = image_side < 16  # 8x8 digits: few, coarse pixels, so later and fuller decisions pay
        sizes = [input_pixels, *self.hidden, 10]
        pick = lambda value, default: default if value is None else value  # noqa: E731
        tuned = {} if s4nn or small else DATASET_DEFAULTS.get(self.dataset, {})
        return replace(
            self,
            hidden=tuple(int(h) for h in self.hidden),
            epochs=pick(self.epochs, tuned.get("epochs", 30)),
            logit_scale=pick(self.logit_scale, tuned.get("logit_scale", 0.3)),
            ema=pick(self.ema, tuned.get("ema", 0.0)),
            margin=pick(self.margin, tuned.get("margin", 4.0)),
            threshold_lr_scale=pick(self.threshold_lr_scale, tuned.get("threshold_lr_scale", 10.0)),
            batch_size=pick(self.batch_size, 16 if s4nn or small else 64),
            lr=pick(self.lr, 0.1 if s4nn else 1e-3),
            lr_final=pick(self.lr_final, pick(self.lr, 0.1) if s4nn else 1e-5),
            shift=pick(self.shift, tuned.get("shift", 0 if s4nn or small else 1)),
            flip=pick(self.flip, tuned.get("flip", False)),
            rotate=pick(self.rotate, tuned.get("rotate", 0.0)),
            scale=pick(self.scale, tuned.get("scale", 0.0)),
            elastic=pick(self.elastic, tuned.get("elastic", 0.0)),
            surrogate_width=pick(self.surrogate_width, tuned.get("surrogate_width", 4.0)),
            output_threshold=pick(self.output_threshold, max(1, round((0.3 if small else 0.1) * sizes[-2]))),
            output_threshold_search=pick(self.output_threshold_search, tuned.get("output_threshold_search", 0)),
            hidden_threshold=pick(self.hidden_threshold, tuned.get("hidden_threshold", max(1.0, (0.125 if small else 0.03) * input_pixels))),
        )


@dataclass
class TrainResult:
    checkpoint: Path
    metrics: list[dict] = field(default_factory=list)
    config: TrainConfig | None = None  # as resolved (or restored on resume) and trained
    output_threshold_offset: int | None = None  # chosen on the validation split (None: not searched)


def split_train_val(n: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded hold-out of the training split: (train indices, validation indices)."""
    order = np.random.default_rng(seed + 7919).permutation(n)
    n_val = int(round(n * fraction))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def build_model(config: TrainConfig, n_in: int, generator: torch.Generator) -> BS4NN:
    sizes = [n_in, *config.hidden, 10]
    if config.rule == "s4nn":
        # the paper's start: positive real weights U(0, 5) hidden and U(0, 48) output; fact set so that the
        # initial integer thresholds are the configured hidden and output thresholds
        model = BS4NN(sizes, rule="s4nn", thr=config.thr, fact_init=1.0, per_neuron_fact=config.per_neuron_fact)
        with torch.no_grad():
            for k, w in enumerate(model.weights):
                top = 48.0 if k == len(model.weights) - 1 else 5.0
                w.copy_(torch.rand(w.shape, generator=generator) * top)
                theta = config.output_threshold if k == len(model.weights) - 1 else config.hidden_threshold * sizes[k] / n_in
                model.facts[k].fill_(config.thr / max(0.5, theta - 0.5))
        model.refresh_thresholds()
        return model
    hidden_thresholds = [config.hidden_threshold * n / n_in for n in sizes[:-2]]
    model = BS4NN(sizes, rule="decision", hidden_thresholds=hidden_thresholds,
                  output_threshold=config.output_threshold)
    model.surrogate_half_width = float(config.surrogate_width)
    with torch.no_grad():
        for k, w in enumerate(model.weights):
            positive = config.init_positive[min(k, len(config.init_positive) - 1)]
            sign = torch.where(torch.rand(w.shape, generator=generator) < positive, 1.0, -1.0)
            w.copy_(sign * config.init_scale * (0.5 + torch.rand(w.shape, generator=generator)))
    model.refresh_thresholds()
    return model


def make_optimizer(model: BS4NN, config: TrainConfig):
    if config.rule == "s4nn":
        return torch.optim.SGD([{"params": list(model.weights), "lr": config.lr},
                                {"params": list(model.facts), "lr": config.lr_fact}])
    # one numba pass per parameter for the Adam update and the clip of the latent weights to [-1, 1]
    return ClippedAdam([{"params": list(model.weights), "clip": 1.0},
                        {"params": list(model.threshold_params), "lr": config.lr * config.threshold_lr_scale,
                         "clip": None}], lr=config.lr)


def learning_rate(config: TrainConfig, epoch: int) -> float:
    """Cosine decay from lr to lr_final over the epochs (constant when they are equal)."""
    progress = epoch / max(1, config.epochs - 1)
    return float(config.lr_final + 0.5 * (config.lr - config.lr_final) * (1 + np.cos(np.pi * progress)))


def random_offsets(n: int, shift: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image integer offsets (dy, dx), each uniform in 0 .. 2 * shift (dy drawn first)."""
    dy = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * shift + 1, (n,), generator=generator)
    return dy, dx


def shift_images(images: torch.Tensor, shift: int, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """Translate each (h, w) image by a random offset in -shift .. shift on both axes, filling with 0; with
    flip, mirror each one left-right with probability 1/2 (drawn after the offsets)."""
    n, h, w = images.shape
    if shift:
        padded = F.pad(images, (shift, shift, shift, shift))
        dy, dx = random_offsets(n, shift, generator)
        rows = (dy[:, None] + torch.arange(h)[None, :])[:, :, None].expand(n, h, w)
        cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, :].expand(n, h, w)
        images = padded[torch.arange(n)[:, None, None], rows, cols]
    if flip:
        mirror = torch.rand(n, generator=generator) < 0.5
        images = torch.where(mirror[:, None, None], images.flip(2), images)
    return images


def shifted_input_bins(images: torch.Tensor, shift: int, generator: torch.Generator, flip: bool = False) -> torch.Tensor:
    """`shift_images` (the same random draws from `generator`) fused with flattening and the input
    coding: (B, h * w) int16 bins 255 - p, in one numba pass."""
    n, h, w = images.shape
    dy, dx = random_offsets(n, shift, generator) if shift else (torch.zeros(n, dtype=torch.int64),) * 2
    mirror = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
    out = np.empty((n, h * w), np.int16)
    kernels.shifted_bins(np.ascontiguousarray(images.numpy()), dy.numpy(), dx.numpy(), int(shift), mirror.numpy(), out)
    return torch.from_numpy(out)


def warp_matrices(n: int, shift: int, rotate: float, scale: float, generator: torch.Generator,
                  flip: bool = False) -> torch.Tensor:
    """Random affine maps (n, 2, 3) float32 for `kernels.warped_bins`: integer offsets in -shift .. shift
    (`random_offsets`), a rotation uniform in +-rotate degrees and a zoom uniform in
    1 +- scale, about the image centre; with flip, a left-right mirror with probability 1/2 (drawn last)."""
    dy, dx = random_offsets(n, shift, generator)
    dy, dx = dy - shift, dx - shift
    angle = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * np.deg2rad(rotate)
    zoom = 1 + (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * scale
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom  # output -> source: the inverse map
    mirror = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0).double() if flip else torch.ones(n).double()
    rows = [torch.stack([cos, -sin * mirror, dy.double()], 1), torch.stack([sin, cos * mirror, dx.double()], 1)]
    return torch.stack(rows, 1).float().contiguous()


ELASTIC_SIGMA = 4.0  # pixels: the smoothing of the random displacement fields (Simard et al. 2003)
ELASTIC_FIELDS = 2048  # fields in a run's bank


@functools.lru_cache(maxsize=4)
def elastic_fields(alpha: float, h: int, w: int, seed: int) -> np.ndarray:
    """A seeded bank (ELASTIC_FIELDS, 2, h, w) float32 of smooth random displacements in pixels: uniform
    noise in -1 .. 1, Gaussian-smoothed (sigma ELASTIC_SIGMA), times alpha. alpha 0: one zero field."""
    if not alpha:
        return np.zeros((1, 2, h, w), np.float32)
    generator = torch.Generator().manual_seed(seed + 3571)
    noise = torch.rand((ELASTIC_FIELDS * 2, 1, h, w), generator=generator) * 2 - 1
    radius = int(3 * ELASTIC_SIGMA)
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=torch.float32) / ELASTIC_SIGMA) ** 2)
    taps = taps / taps.sum()
    smooth = F.conv2d(F.pad(noise, (radius, radius, 0, 0)), taps.view(1, 1, 1, -1))
    smooth = F.conv2d(F.pad(smooth, (0, 0, radius, radius)), taps.view(1, 1, -1, 1))
    return (alpha * smooth).reshape(ELASTIC_FIELDS, 2, h, w).numpy().astype(np.float32)


def augmented_input_bins(images: torch.Tensor, config, generator: torch.Generator) -> torch.Tensor:
    """The training inputs of a batch: integer shifts (and mirrors) by `shifted_input_bins`, or, with a
    rotation, zoom or elastic distortion configured, random warps (`warp_matrices` plus a field of the run's
    `elastic_fields` bank, drawn last; bilinear resampling)."""
    elastic = config.elastic or 0.0
    if not (config.rotate or config.scale or elastic):
        return shifted_input_bins(images, config.shift, generator, bool(config.flip))
    n, h, w = images.shape
    matrices = warp_matrices(n, config.shift, config.rotate, config.scale, generator, bool(config.flip))
    fields = elastic_fields(float(elastic), h, w, int(config.seed))
    field_of = torch.randint(0, len(fields), (n,), generator=generator) if elastic else torch.zeros(n, dtype=torch.int64)
    out = np.empty((n, h * w), np.int16)
    kernels.warped_bins(np.ascontiguousarray(images.numpy()), matrices.numpy(), fields, field_of.numpy(), out)
    return torch.from_numpy(out)


def s4nn_loss(t_out: torch.Tensor, labels: torch.Tensor, gamma: int) -> torch.Tensor:
    """Squared temporal error against the S4NN relative targets; its gradient wrt t_out is
    (t - target) / T_MAX, which the layer's backward normalises per image."""
    with torch.no_grad():
        t_star = t_out.min(dim=1, keepdim=True).values
        label_mask = F.one_hot(labels, t_out.shape[1]).bool()
        near = (t_out - t_star) < gamma
        target = torch.where(near, torch.clamp(t_star + gamma, max=T_MAX), t_out)
        target = torch.where(label_mask, t_star, target)
        silent = (t_star >= T_MAX).expand_as(t_out)
        target = torch.where(silent, torch.where(label_mask, float(T_MAX - gamma), float(T_MAX)), target)
    return 0.5 * ((t_out - target) ** 2).sum() / T_MAX


def decision_loss(logits, t_star, labels, config: TrainConfig, output_threshold: int) -> torch.Tensor:
    """Cross-entropy on the scaled decision potentials, margin off the label, plus a fire term."""
    one_hot = F.one_hot(labels, logits.shape[1]).float()
    loss = F.cross_entropy(config.logit_scale * (logits - config.margin * one_hot), labels)
    silent = t_star >= T_MAX
    if silent.any():
        label_potential = (logits * one_hot).sum(dim=1)[silent]
        loss = loss + config.fire_weight * config.logit_scale * F.relu(output_threshold - label_potential).mean()
    return loss


def train_step(model: BS4NN, optimizer, config: TrainConfig, images: torch.Tensor, labels: torch.Tensor,
               generator: torch.Generator) -> float:
    """One full step on a batch of (B, h, w) uint8 images: shift, exact forward, loss of the rule,
    backward, update, clamp (weights for "decision", facts for "s4nn"), integer thresholds refreshed."""
    times, logits, t_star = model(augmented_input_bins(images, config, generator))
    if config.rule == "s4nn":
        loss = s4nn_loss(times[-1], labels, config.gamma)
    else:
        loss = decision_loss(logits, t_star, labels, config, int(model.output_threshold))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    with torch.no_grad():
        if config.rule == "s4nn":
            for f in model.facts:
                f.clamp_(min=1e-3)
        # rule "decision": ClippedAdam keeps the latent weights inside [-1, 1]
    model.refresh_thresholds()
    return float(loss.detach())


TRAIN_THREADS_ENV = "BS4NN_TRAIN_THREADS"


@contextlib.contextmanager
def step_threads():
    """Run training steps on $BS4NN_TRAIN_THREADS threads (default 1), torch's and numba's alike, then restore
    both. A batch of 64 is too small to split: on 2 cores one thread trains faster (19,000 against 16,000
    samples/s, docs/training.md) and a run does not depend on the machine's core count; the evaluation between
    epochs keeps every thread."""
    raw = os.environ.get(TRAIN_THREADS_ENV, "1")
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"{TRAIN_THREADS_ENV}={raw!r}: expected a positive number of threads")
    wanted = min(int(raw), numba.config.NUMBA_NUM_THREADS)
    before = torch.get_num_threads(), numba.get_num_threads()
    torch.set_num_threads(wanted)
    numba.set_num_threads(wanted)
    try:
        yield wanted
    finally:
        torch.set_num_threads(before[0])
        numba.set_num_threads(before[1])


EMA_EVERY = 4  # steps between updates of the averaged parameters (decay ema ** EMA_EVERY each time)


def update_average(averaged: BS4NN, model: BS4NN, decay: float) -> None:
    """averaged <- decay * averaged + (1 - decay) * model, over the latent parameters."""
    with torch.no_grad():
        torch._foreach_lerp_(list(averaged.parameters()), list(model.parameters()), 1.0 - decay)


def evaluate(model: BS4NN, images: np.ndarray, labels: np.ndarray, input_shape) -> dict:
    if len(images) == 0:
        return {}
    inference = reference.run(model.network(input_shape), images)
    out = scoring.score(inference, labels).as_dict()
    out["median_first_spike_bin"] = float(np.median(inference.first_spike_bin))
    return out


def _state(model, optimizer, generator, epoch, config, history, best, command, averaged=None) -> dict:
    return {
        "averaged": averaged.state_dict() if averaged is not None else {},
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "config": json.dumps(asdict(config)),
        "command": command or "",
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
        "history": json.dumps(history),
        "best": best,
    }


def save_checkpoint(state: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path) -> dict:
    """A checkpoint dict, loaded without pickle of arbitrary objects; clear errors for other files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many kinds for a bad file
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        reason = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else "")
        raise ValueError(f"{path}: not a readable bs4nn checkpoint ({type(error).__name__}: {reason[:200]})") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a bs4nn checkpoint (format key missing or wrong)")
    if state.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path}: checkpoint version {state.get('version')} is not supported (expected {CHECKPOINT_VERSION})")
    return state


def config_from_state(state: dict) -> TrainConfig:
    raw = json.loads(state["config"])
    known = {f.name for f in fields(TrainConfig)}
    raw = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known}
    return TrainConfig(**raw)


def model_from_state(state: dict, which: str = "best") -> tuple[BS4NN, TrainConfig, dict]:
    config = config_from_state(state)
    best = state.get("best") or {}
    last = state.get("averaged") or state["model"]  # with weight averaging, the averaged network is the result
    model_state = best.get("model") if which == "best" and best.get("model") is not None else last
    n_in = model_state["weights.0"].shape[0]
    model = build_model(config, n_in, torch.Generator().manual_seed(0))
    model.load_state_dict(model_state)
    if which == "best" and best.get("output_threshold_offset"):
        raise_output_threshold(model, best["output_threshold_offset"])
    return model, config, best


def raise_output_threshold(model: BS4NN, offset: int) -> None:
    """The output layer's threshold + offset, in place."""
    set_output_threshold(model, int(model.output_threshold) + int(offset))


def set_output_threshold(model: BS4NN, value: int) -> None:
    """The output layer's threshold (clamped to 1 .. n_in + 1, as every threshold is), in place."""
    with torch.no_grad():
        model.output_threshold.fill_(min(max(int(value), 1), model.sizes[-2] + 1))
    model.refresh_thresholds()


def choose_output_threshold(model: BS4NN, images: np.ndarray, labels: np.ndarray, input_shape, search: int,
                            max_no_spike: float) -> tuple[int, list[dict]]:
    """The offset 0 .. search to the output threshold with the best strict score on (images, labels) among
    those with at most max_no_spike images without an output spike (a tie to the smaller offset; 0 when none
    qualifies), and each offset's scores. The model is left as it was."""
    base = int(model.output_threshold)
    rows = []
    try:
        for offset in range(search + 1):
            set_output_threshold(model, base + offset)
            rows.append({"offset": offset, "output_threshold": int(model.output_threshold),
                         **evaluate(model, images, labels, input_shape)})
    finally:
        set_output_threshold(model, base)
    allowed = [r for r in rows if r["no_spike_rate"] <= max_no_spike] or rows[:1]
    return max(allowed, key=lambda r: (r["strict"], -r["offset"]))["offset"], rows


def load_network(checkpoint_path, which: str = "best"):
    """(Network, meta) from a checkpoint: the best-validation epoch's network unless which="last"."""
    state = load_checkpoint(checkpoint_path)
    model, config, best = model_from_state(state, which)
    shape = tuple(state["best"]["input_shape"]) if state.get("best") else None
    history = json.loads(state["history"])
    meta = {"dataset": config.dataset, "seed": config.seed, "command": state["command"], "commit": state.get("commit"),
            "config": asdict(config), "epoch": best.get("epoch", state["epoch"]), "history": history}
    return model.network(shape), meta


def train(config: TrainConfig, out_dir, data_dir=None, resume: bool = False, progress: bool = True,
          command: str | None = None, stop_after: int | None = None, stop_when=None) -> TrainResult:
    """Train into out_dir; resume=True continues from out_dir/checkpoint.pt up to config.epochs.

    stop_after=k stops after epoch k of the schedule (as an interruption would): resuming then gives the
    same weights, bit for bit, as an uninterrupted run. stop_when(entry) -> bool, called with each
    epoch's metrics entry, ends the run early when true (the benchmark's time-to-accuracy run).
    """
    from tqdm import tqdm

    from .plots import plot_accuracy

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = out_dir / "checkpoint.pt"
    train_set = datasets.load(config.dataset, "train", data_dir, progress=progress)
    test_set = datasets.load(config.dataset, "test", data_dir, progress=progress)
    input_shape = train_set.images.shape[1:]
    n_in = int(np.prod(input_shape))
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    if resume:
        state = load_checkpoint(ckpt_path)
        saved = config_from_state(state)
        config = replace(saved, epochs=config.epochs)
        model = build_model(config, n_in, torch.Generator().manual_seed(0))
        model.load_state_dict(state["model"])
        optimizer = make_optimizer(model, config)
        optimizer.load_state_dict(state["optimizer"])
        if config.rule == "decision":  # the clip is part of the method, not of the saved state
            optimizer.param_groups[0]["clip"], optimizer.param_groups[1]["clip"] = 1.0, None
        generator.set_state(state["generator"])
        start, history, best = state["epoch"], json.loads(state["history"]), state["best"]
        command = state["command"] + (f" && {command}" if command else "")
    else:
        config = config.resolved(n_in, input_shape[0])
        model = build_model(config, n_in, generator)
        optimizer = make_optimizer(model, config)
        start, history, best = 0, [], {}
    from ..export.provenance import git_commit

    commit = git_commit() or ""  # the code that trained (recorded in the checkpoint, then the artifact)
    if resume and state.get("commit") and state["commit"] != commit:
        commit = f"{state['commit']} then {commit}"
    averaged = None
    if config.ema:
        averaged = copy.deepcopy(model)
        if resume:
            averaged.load_state_dict(state["averaged"])
    evaluated = averaged if averaged is not None else model
    step = 0 if not resume else state.get("step", 0)
    train_idx, val_idx = split_train_val(len(train_set.labels), config.val_fraction, config.seed)
    images = torch.from_numpy(train_set.images[train_idx])
    labels = torch.from_numpy(train_set.labels[train_idx].astype(np.int64))

    def save(epochs_done: int) -> None:  # the checkpoint as the run stands (best, step: their current values)
        save_checkpoint({**_state(model, optimizer, generator, epochs_done, config, history, best, command, averaged),
                         "step": step, "commit": commit}, ckpt_path)

    for epoch in range(start, min(config.epochs, stop_after or config.epochs)):
        lr = learning_rate(config, epoch)
        optimizer.param_groups[0]["lr"] = lr
        if config.rule == "decision":
            optimizer.param_groups[1]["lr"] = lr * config.threshold_lr_scale
        model.train()
        began = time.perf_counter()
        order = torch.randperm(len(labels), generator=generator)
        batches = range(0, len(order), config.batch_size)
        total_loss, seen = 0.0, 0
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{config.epochs}", unit="batch", disable=None if progress else True, leave=False)
        with step_threads():
            for s in bar:
                idx = order[s : s + config.batch_size]
                loss = train_step(model, optimizer, config, images[idx], labels[idx], generator)
                step += 1
                if averaged is not None and step % EMA_EVERY == 0:
                    update_average(averaged, model, config.ema ** EMA_EVERY)
                total_loss += loss * len(idx)
                seen += len(idx)
        seconds = time.perf_counter() - began
        if averaged is not None:
            averaged.refresh_thresholds()
        entry = {"epoch": epoch + 1, "lr": lr, "loss": total_loss / max(1, seen), "seconds": seconds,
                 "samples_per_s": seen / seconds,
                 "thresholds": [int(evaluated.thresholds(k).float().median()) for k in range(len(model.weights))]}
        for name, imgs, labs in (("val", train_set.images[val_idx], train_set.labels[val_idx]),
                                 ("test", test_set.images, test_set.labels)):
            entry.update({f"{name}_{k}": v for k, v in evaluate(evaluated, imgs, labs, input_shape).items() if k != "n"})
        entry["eval_seconds"] = time.perf_counter() - began - seconds
        history.append(entry)
        # the exported epoch is chosen on the validation split; without one, it is the last epoch
        # (never chosen on the test set)
        score = entry.get("val_strict", float(epoch))
        if not best or score >= best["score"]:  # a tie goes to the later (longer-trained) epoch
            best = {"epoch": epoch + 1, "score": float(score), "model": {k: v.clone() for k, v in evaluated.state_dict().items()},
                    "input_shape": list(input_shape)}
        if progress:
            tqdm.write(f"epoch {epoch + 1}: loss {entry['loss']:.4f}  val strict {entry.get('val_strict', float('nan')):.4f}"
                       f"  test strict {entry['test_strict']:.4f}  no-spike {entry['test_no_spike_rate']:.4f}"
                       f"  median t* {entry['test_median_first_spike_bin']:.0f}  {entry['samples_per_s']:.0f} samples/s")
        save(epoch + 1)
        _write_json(out_dir / "metrics.json", history)
        plot_accuracy(history, out_dir / "accuracy.png", title=f"BS4NN {config.dataset} {'-'.join(map(str, [n_in, *config.hidden, 10]))}")
        if stop_when is not None and stop_when(entry):
            break
    best_model = None
    if best.get("model") is not None:
        best_model = build_model(config, n_in, torch.Generator().manual_seed(0))
        best_model.load_state_dict(best["model"])
    if best_model is not None and config.rule == "decision" and config.output_threshold_search and len(val_idx):
        # the output threshold is chosen on the validation split, as the epoch is (never on the test set); the
        # best epoch's snapshot stays as trained and the offset is stored beside it (a resumed run chooses anew)
        offset, rows = choose_output_threshold(best_model, train_set.images[val_idx], train_set.labels[val_idx],
                                               input_shape, config.output_threshold_search, config.max_no_spike)
        best = {**best, "output_threshold_offset": offset}
        _write_json(out_dir / "output_threshold.json",
                    {"chosen_offset": offset, "max_no_spike": config.max_no_spike, "epoch": best["epoch"],
                     "validation": rows})
        if progress:
            tqdm.write(f"output threshold {rows[0]['output_threshold']} + {offset} (validation strict "
                       f"{rows[0]['strict']:.4f} -> {rows[offset]['strict']:.4f}, "
                       f"no-spike {rows[offset]['no_spike_rate']:.4f})")
        save(history[-1]["epoch"] if history else start)
    if best_model is not None and len(test_set.labels):
        if best.get("output_threshold_offset"):
            raise_output_threshold(best_model, best["output_threshold_offset"])
        write_run_plots(best_model.network(input_shape), test_set.images, test_set.labels, out_dir,
                        f"{config.dataset} test, epoch {best['epoch']} (best validation)")
    return TrainResult(ckpt_path, history, config, best.get("output_threshold_offset"))


def write_run_plots(network, images, labels, out_dir, tag: str) -> None:
    """The plots of a finished run for its exported network: spike-bin histograms per layer (and t*), the
    confusion matrix of the strict decision, hidden-layer activity (dead and always-firing neurons)."""
    from . import plots

    inference = reference.run(network, images)
    out_dir = Path(out_dir)
    plots.plot_spike_histograms(inference, out_dir / "spike_bins.png", f"spike bins, {tag}")
    plots.plot_confusion(inference.decision, labels, out_dir / "confusion.png", f"strict decision, {tag}",
                         network.n_classes)
    plots.plot_hidden_activity(inference, out_dir / "hidden_activity.png", f"hidden activity, {tag}")


def _write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
