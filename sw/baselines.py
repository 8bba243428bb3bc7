"""Comparison baselines of the BS4NN paper (784-600-10, input coding t = 255 - p), built clean-room.

(a) ``train_s4nn_real``: "real-valued S4NN", a time-to-first-spike network of non-leaky integrate-and-fire
    neurons with real (float32) weights and real thresholds, on exactly the discrete time of
    docs/semantics.md: bins 0 .. 255, each pixel spikes once at bin 255 - p, the end-of-bin potential
    V_j(t) = sum of w_ji over inputs with t_i <= t, a neuron fires at 1 + the first bin with
    V_j(t) >= theta_j (at most once, 256 = never); decision = earliest output spike, ties by highest
    V(t* - 1) then lowest index, no output spike -> argmax V(255) (lowest index on ties).
    The forward pass is the reference's own dtype-generic numba kernel (`kernels.forward`, run on float32
    weights and thresholds: counting sort of the inputs by bin, a bin's weight rows added in input-index
    order, compare at the end of the bin; bin-255 events only for the output layer's no-spike fallback).
    Training is our trainer's "decision" rule (docs/training.md) with real weights instead of signs:
    cross-entropy on logit_scale * (V(b*) - margin * onehot) with b* = t* - 1 (255 with no output spike),
    the gradient reaching the hidden layer through a straight-through triangle surrogate (half-width
    `surrogate_width`) of "hidden neuron j fired by b*" around u_j = V_j(b* - 1) - theta_j, and a "fire"
    term that pushes the label's potential towards the output threshold on images without an output spike.
    Weights are in the units of the binary network: initialised at sign * U(0.5, 1.5) (65% / 60%
    positive) and kept in [-1, 1] (`clip`), so that the real network contains BS4NN (|w| = 1, integer
    thresholds) as a special case; unclipped weights let it decide even earlier and scored lower.
    Hidden thresholds are real, learned per neuron (lr x 10, kept >= `min_threshold`); the output
    threshold is fixed (0.1 * hidden; 0.3 * hidden on small images). Adam 2e-2 with cosine decay to 2e-4,
    batch 64. This is not the S4NN paper's temporal rule (per-sample SGD for hundreds of epochs); it
    trains the same network class far faster.

(b) ``train_binary_ann``: the non-spiking binarized MLP: binary +-1 weights in both layers (sign of latent
    real weights, 0 -> +1, straight-through gradient, latents clipped to [-1, 1]), sign activations in
    the hidden layer (0 -> +1; straight-through with the hardtanh gradient 1[|x| <= 1]), a batch-norm
    before the hidden sign (on by default; at inference BN + sign is a per-neuron threshold), input =
    pixels / 255 in 0..1 (real, not binarized), output logits = a learned positive scalar times the
    integer sum h @ sign(W2) (the scalar does not change the argmax), cross-entropy, Adam, argmax decision.

Augmentation: by default both use the BS4NN trainer's random +-1 pixel shifts on 28x28 images (none on
small ones), so that the comparison with our BS4NN runs differs only in the network; shift=0 gives the
papers' plain setting.

Both hold out a validation split of the training split (`train.split_train_val`), evaluate every epoch,
and report the test accuracy of the epoch with the best validation accuracy (first best on ties; the last
epoch without a validation split). `run_baselines` runs both over seeds and writes a JSON summary.

    python -m bs4nn.sw.baselines --dataset mnist --seeds 0 1 --epochs 30 --out baselines-mnist.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import datasets, kernels
from .semantics import T_MAX
from .train import shift_images, split_train_val
from .model import FiredByDecision

__all__ = ["PAPER", "RealInference", "run_real", "S4NNReal", "BinaryANN",
           "train_s4nn_real", "train_binary_ann", "run_baselines", "main"]

# The BS4NN paper's figures for the two comparison networks (784-600-10), test accuracy.
PAPER = {"s4nn-real": {"mnist": 0.974, "fashion-mnist": 0.880},
         "binary-ann": {"mnist": 0.968, "fashion-mnist": 0.864}}

_T_MAX = T_MAX


# ----------------------------------------------------------------------------- exact real-valued forward

class RealInference:
    """What a real-valued network does on a batch: spike bins per layer (int16, 256 = never), the
    decision, t* (256 when no output spiked) and the decision potentials V(b*) (float32)."""

    def __init__(self, spikes, decision, first_spike_bin, decision_potentials):
        self.spikes = spikes
        self.decision = decision
        self.first_spike_bin = first_spike_bin
        self.decision_potentials = decision_potentials


def run_real(in_bins, weights, thresholds, parallel: bool = True) -> RealInference:
    """The exact forward on input bins (N, n_in) (0 .. 256) with weights [(n_in, n_out) ...] and thresholds
    [(n_out,) ...] (float32); parallel=False runs on one thread (`kernels.forward_serial`)."""
    in_bins = np.ascontiguousarray(in_bins, np.int16)
    if in_bins.ndim != 2 or (in_bins.size and (in_bins.min() < 0 or in_bins.max() > _T_MAX)):
        raise ValueError(f"input bins must be (N, n_in) in 0..{_T_MAX}")
    w = tuple(np.ascontiguousarray(x, np.float32) for x in weights)
    th = tuple(np.ascontiguousarray(x, np.float32) for x in thresholds)
    if len(w) != len(th) or not w:
        raise ValueError("need one threshold vector per weight layer")
    n = in_bins.shape[0]
    n_prev = in_bins.shape[1]
    for k, (wk, tk) in enumerate(zip(w, th)):
        if wk.ndim != 2 or wk.shape[0] != n_prev or tk.shape != (wk.shape[1],):
            raise ValueError(f"layer {k}: weights {wk.shape} / thresholds {tk.shape} do not fit {n_prev} inputs")
        n_prev = wk.shape[1]
    spikes = tuple(np.empty((n, wk.shape[1]), np.int16) for wk in w)
    decision = np.empty(n, np.int16)
    first = np.empty(n, np.int16)
    potentials = np.empty((n, w[-1].shape[1]), np.float32)
    (kernels.forward if parallel else kernels.forward_serial)(in_bins, w, th, spikes, decision, first, potentials, False)
    return RealInference(list(spikes), decision, first, potentials)


# ----------------------------------------------------------------------------- real-valued S4NN (a)

class S4NNReal(nn.Module):
    """784-H-10 real-valued TTFS network: weights (n_in, n_out), learned per-neuron hidden thresholds
    (real), a fixed real output threshold."""

    def __init__(self, n_in: int, hidden: int, n_classes: int, hidden_threshold: float, output_threshold: float):
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(n_in, hidden))
        self.w2 = nn.Parameter(torch.zeros(hidden, n_classes))
        self.theta1 = nn.Parameter(torch.full((hidden,), float(hidden_threshold)))
        self.register_buffer("theta2", torch.full((n_classes,), float(output_threshold)))

    def arrays(self):
        """(weights, thresholds) as float32 numpy tuples for `run_real`."""
        w = tuple(np.ascontiguousarray(p.detach().numpy(), np.float32) for p in (self.w1, self.w2))
        th = tuple(np.ascontiguousarray(p.detach().numpy(), np.float32) for p in (self.theta1, self.theta2))
        return w, th

    def infer(self, in_bins: np.ndarray, parallel: bool = True) -> RealInference:
        w, th = self.arrays()
        return run_real(in_bins, w, th, parallel)

    def forward(self, in_bins: torch.Tensor, half_width: float):
        """(logits = V(b*) differentiable, exact inference) on input bins (B, n_in) int16."""
        inf = self.infer(in_bins.numpy(), parallel=False)
        t_star = torch.from_numpy(inf.first_spike_bin.astype(np.int64))
        b_star = torch.where(t_star < _T_MAX, t_star - 1, torch.full_like(t_star, _T_MAX - 1))
        bins = in_bins.long()
        before = (bins <= (b_star - 1)[:, None]).float()  # inputs that arrived by b* - 1
        u = before @ self.w1 - self.theta1  # the hidden potential at b* - 1 against the threshold
        hidden = torch.from_numpy(inf.spikes[0].astype(np.int64))
        fired = (hidden <= b_star[:, None]).float()  # hidden spikes that reach V_out(b*): exact
        activity = FiredByDecision.apply(u, fired, half_width, 0.0)
        return activity @ self.w2, inf


def _cosine(lr: float, lr_final: float, epoch: int, epochs: int) -> float:
    progress = epoch / max(1, epochs - 1)
    return float(lr_final + 0.5 * (lr - lr_final) * (1 + math.cos(math.pi * progress)))


def _split(dataset: str, data_dir, val_fraction: float, seed: int, progress: bool):
    train_set = datasets.load(dataset, "train", data_dir, progress=progress)
    test_set = datasets.load(dataset, "test", data_dir, progress=progress)
    train_idx, val_idx = split_train_val(len(train_set.labels), val_fraction, seed)
    return (train_set.images[train_idx], train_set.labels[train_idx].astype(np.int64),
            train_set.images[val_idx], train_set.labels[val_idx].astype(np.int64),
            test_set.images, test_set.labels.astype(np.int64))


class _Threads:
    """Temporarily set torch's and numba's thread counts (None: leave them)."""

    def __init__(self, threads):
        self.threads = threads

    def __enter__(self):
        if self.threads:
            self.saved = (torch.get_num_threads(), numba.get_num_threads())
            torch.set_num_threads(int(self.threads))
            numba.set_num_threads(min(int(self.threads), numba.config.NUMBA_NUM_THREADS))
        return self

    def __exit__(self, *exc):
        if self.threads:
            torch.set_num_threads(self.saved[0])
            numba.set_num_threads(self.saved[1])


def _pick_best(history: list[dict]) -> dict:
    """The entry with the best validation accuracy (first on ties); the last without validation."""
    if any(h.get("val_accuracy") is not None for h in history):
        return max(history, key=lambda h: (h["val_accuracy"], -h["epoch"]))
    return history[-1]


def _result(model_name, dataset, seed, epochs, history, seconds, extra) -> dict:
    best = _pick_best(history)
    return {"model": model_name, "dataset": dataset, "seed": int(seed), "epochs": int(epochs),
            "best_epoch": best["epoch"], "test_accuracy": best["test_accuracy"],
            "val_accuracy": best.get("val_accuracy"), "seconds": seconds, "history": history, **extra}


def _evaluate_real(model: S4NNReal, images: np.ndarray, labels: np.ndarray) -> dict:
    if len(labels) == 0:
        return {"accuracy": None}
    inf = model.infer((255 - images.reshape(len(images), -1).astype(np.int16)).astype(np.int16))
    no_spike = inf.first_spike_bin >= _T_MAX
    return {"accuracy": float((inf.decision == labels).mean()), "no_spike_rate": float(no_spike.mean()),
            "median_first_spike_bin": float(np.median(inf.first_spike_bin)),
            "hidden_fired": float((inf.spikes[0] < _T_MAX).mean())}


def train_s4nn_real(dataset: str = "mnist", data_dir=None, hidden: int = 600, epochs: int = 30, seed: int = 0, *,
                    batch_size: int | None = None, lr: float = 2e-2, lr_final: float = 2e-4,
                    val_fraction: float = 1 / 12, shift: int | None = None, logit_scale: float = 0.3,
                    margin: float = 4.0, fire_weight: float = 0.1, hidden_threshold: float | None = None,
                    output_threshold: float | None = None, init_positive=(0.65, 0.60), surrogate_width: float = 4.0,
                    min_threshold: float = 0.5, clip: float | None = 1.0, progress: bool = True,
                    threads: int | None = None) -> dict:
    """Train the real-valued S4NN baseline (module docstring, (a)); returns the result dict.

    Defaults on small (8x8) images follow our trainer: batch 16, hidden threshold 0.125 * n_in, output
    threshold 0.3 * hidden, no shifts (otherwise batch 64, 0.03 * n_in, 0.1 * hidden, shift 1).
    threads: torch and numba thread counts during the run (None leaves them).
    """
    from tqdm import tqdm

    began_all = time.perf_counter()
    x_tr, y_tr, x_val, y_val, x_te, y_te = _split(dataset, data_dir, val_fraction, seed, progress)
    side, n_in = x_tr.shape[1], int(np.prod(x_tr.shape[1:]))
    small = side < 16
    batch_size = batch_size or (16 if small else 64)
    shift = (0 if small else 1) if shift is None else shift
    hidden_threshold = hidden_threshold if hidden_threshold is not None else max(1.0, (0.125 if small else 0.03) * n_in)
    output_threshold = output_threshold if output_threshold is not None else max(1.0, (0.3 if small else 0.1) * hidden)
    history: list[dict] = []
    with _Threads(threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = S4NNReal(n_in, hidden, 10, hidden_threshold, output_threshold)
        with torch.no_grad():
            for k, w in enumerate((model.w1, model.w2)):
                positive = init_positive[min(k, len(init_positive) - 1)]
                sign = torch.where(torch.rand(w.shape, generator=gen) < positive, 1.0, -1.0)
                w.copy_(sign * (0.5 + torch.rand(w.shape, generator=gen)))
                if clip is not None:
                    w.clamp_(-clip, clip)
        optimizer = torch.optim.Adam([{"params": [model.w1, model.w2]}, {"params": [model.theta1]}], lr=lr, fused=True)
        images = torch.from_numpy(x_tr)
        labels = torch.from_numpy(y_tr)
        for epoch in range(epochs):
            rate = _cosine(lr, lr_final, epoch, epochs)
            optimizer.param_groups[0]["lr"] = rate
            optimizer.param_groups[1]["lr"] = rate * 10
            began = time.perf_counter()
            order = torch.randperm(len(labels), generator=gen)
            total_loss, correct, silent, seen = 0.0, 0, 0, 0
            for s in tqdm(range(0, len(order), batch_size), desc=f"s4nn-real {epoch + 1}/{epochs}", unit="batch",
                          disable=None if progress else True, leave=False):
                idx = order[s : s + batch_size]
                batch = shift_images(images[idx], shift, gen).reshape(len(idx), -1)
                in_bins = (255 - batch.to(torch.int16)).to(torch.int16)
                logits, inf = model(in_bins, surrogate_width)
                y = labels[idx]
                one_hot = F.one_hot(y, logits.shape[1]).float()
                loss = F.cross_entropy(logit_scale * (logits - margin * one_hot), y)
                no_spike = torch.from_numpy(inf.first_spike_bin >= _T_MAX)
                if no_spike.any():
                    label_v = (logits * one_hot).sum(dim=1)[no_spike]
                    loss = loss + fire_weight * logit_scale * F.relu(output_threshold - label_v).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    model.theta1.clamp_(min=min_threshold)
                    if clip is not None:
                        model.w1.clamp_(-clip, clip)
                        model.w2.clamp_(-clip, clip)
                total_loss += float(loss.detach()) * len(idx)
                correct += int((torch.from_numpy(inf.decision.astype(np.int64)) == y).sum())
                silent += int(no_spike.sum())
                seen += len(idx)
            seconds = time.perf_counter() - began
            val, test = _evaluate_real(model, x_val, y_val), _evaluate_real(model, x_te, y_te)
            entry = {"epoch": epoch + 1, "lr": rate, "loss": total_loss / seen, "train_accuracy": correct / seen,
                     "train_no_spike_rate": silent / seen, "val_accuracy": val["accuracy"],
                     "test_accuracy": test["accuracy"], "seconds": seconds, "samples_per_s": seen / seconds,
                     "hidden_threshold_median": float(model.theta1.detach().median())}
            entry.update({f"test_{k}": v for k, v in test.items() if k != "accuracy"})
            history.append(entry)
            if progress:
                tqdm.write(f"s4nn-real epoch {epoch + 1}: loss {entry['loss']:.4f}  val {_fmt(val['accuracy'])}  "
                           f"test {test['accuracy']:.4f}  no-spike {test['no_spike_rate']:.4f}  "
                           f"median t* {test['median_first_spike_bin']:.0f}  {entry['samples_per_s']:.0f} samples/s")
    extra = {"hidden": hidden, "rule": "decision", "shift": shift, "output_threshold": float(output_threshold),
             "hidden_threshold_init": float(hidden_threshold)}
    return _result("s4nn-real", dataset, seed, epochs, history, time.perf_counter() - began_all, extra)


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


# ----------------------------------------------------------------------------- binarized ANN (b)

class _SignSTE(torch.autograd.Function):
    """sign (0 -> +1) forward; backward identity, or the hardtanh gradient 1[|x| <= 1] when clipped."""

    @staticmethod
    def forward(ctx, x, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return (grad * (x.abs() <= 1).to(grad.dtype) if ctx.clip else grad), None


class BinaryANN(nn.Module):
    """n_in-H-10 MLP with +-1 weights, sign hidden activations, optional batch-norm before the sign."""

    def __init__(self, n_in: int, hidden: int, n_classes: int, batch_norm: bool = True):
        super().__init__()
        self.w1 = nn.Parameter(torch.zeros(n_in, hidden))
        self.w2 = nn.Parameter(torch.zeros(hidden, n_classes))
        self.bn = nn.BatchNorm1d(hidden) if batch_norm else None
        self.log_scale = nn.Parameter(torch.tensor(-0.5 * math.log(hidden)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of inputs x (B, n_in) in 0..1."""
        pre = x @ _SignSTE.apply(self.w1, False)
        if self.bn is not None:
            pre = self.bn(pre)
        h = _SignSTE.apply(pre, True)
        return self.log_scale.exp() * (h @ _SignSTE.apply(self.w2, False))


def _evaluate_ann(model: BinaryANN, images: np.ndarray, labels: np.ndarray) -> float | None:
    if len(labels) == 0:
        return None
    model.eval()
    with torch.no_grad():
        x = torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255.0)
        pred = torch.cat([model(x[s : s + 4096]).argmax(dim=1) for s in range(0, len(x), 4096)])
    model.train()
    return float((pred.numpy() == labels).mean())


def train_binary_ann(dataset: str = "mnist", data_dir=None, hidden: int = 600, epochs: int = 30, seed: int = 0, *,
                     batch_size: int | None = None, lr: float = 1e-3, lr_final: float = 1e-5,
                     val_fraction: float = 1 / 12, shift: int | None = None, batch_norm: bool = True,
                     init_scale: float = 0.05, progress: bool = True, threads: int | None = None) -> dict:
    """Train the binarized non-spiking MLP baseline (module docstring, (b)); returns the result dict."""
    from tqdm import tqdm

    began_all = time.perf_counter()
    x_tr, y_tr, x_val, y_val, x_te, y_te = _split(dataset, data_dir, val_fraction, seed, progress)
    side, n_in = x_tr.shape[1], int(np.prod(x_tr.shape[1:]))
    batch_size = batch_size or (16 if side < 16 else 64)
    shift = (0 if side < 16 else 1) if shift is None else shift
    history: list[dict] = []
    with _Threads(threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        model = BinaryANN(n_in, hidden, 10, batch_norm)
        with torch.no_grad():
            for w in (model.w1, model.w2):
                w.copy_((torch.rand(w.shape, generator=gen) * 2 - 1) * init_scale)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, fused=True)
        images = torch.from_numpy(x_tr)
        labels = torch.from_numpy(y_tr)
        model.train()
        for epoch in range(epochs):
            rate = _cosine(lr, lr_final, epoch, epochs)
            for group in optimizer.param_groups:
                group["lr"] = rate
            began = time.perf_counter()
            order = torch.randperm(len(labels), generator=gen)
            total_loss, correct, seen = 0.0, 0, 0
            for s in tqdm(range(0, len(order), batch_size), desc=f"binary-ann {epoch + 1}/{epochs}", unit="batch",
                          disable=None if progress else True, leave=False):
                idx = order[s : s + batch_size]
                if len(idx) < 2 and batch_norm:
                    continue  # batch-norm needs two samples
                x = shift_images(images[idx], shift, gen).reshape(len(idx), -1).float() / 255.0
                y = labels[idx]
                logits = model(x)
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                with torch.no_grad():
                    model.w1.clamp_(-1.0, 1.0)
                    model.w2.clamp_(-1.0, 1.0)
                total_loss += float(loss.detach()) * len(idx)
                correct += int((logits.detach().argmax(dim=1) == y).sum())
                seen += len(idx)
            seconds = time.perf_counter() - began
            val, test = _evaluate_ann(model, x_val, y_val), _evaluate_ann(model, x_te, y_te)
            entry = {"epoch": epoch + 1, "lr": rate, "loss": total_loss / seen, "train_accuracy": correct / seen,
                     "val_accuracy": val, "test_accuracy": test, "seconds": seconds, "samples_per_s": seen / seconds}
            history.append(entry)
            if progress:
                tqdm.write(f"binary-ann epoch {epoch + 1}: loss {entry['loss']:.4f}  val {_fmt(val)}  test {test:.4f}"
                           f"  {entry['samples_per_s']:.0f} samples/s")
    extra = {"hidden": hidden, "shift": shift, "batch_norm": bool(batch_norm)}
    return _result("binary-ann", dataset, seed, epochs, history, time.perf_counter() - began_all, extra)


# ----------------------------------------------------------------------------- driver

def _write_json_atomic(path: Path, data) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _summary(runs: list[dict], dataset: str) -> dict:
    out = {}
    for name in ("s4nn-real", "binary-ann"):
        acc = [r["test_accuracy"] for r in runs if r["model"] == name]
        if acc:
            out[name] = {"n": len(acc), "test_accuracy_mean": float(np.mean(acc)),
                         "test_accuracy_std": float(np.std(acc)), "test_accuracy": acc,
                         "paper": PAPER[name].get(dataset)}
    return out


def run_baselines(dataset: str, data_dir=None, seeds=(0,), epochs: int = 30, json_out=None, hidden: int = 600,
                  progress: bool = True, threads: int | None = None, **kwargs) -> dict:
    """Train both baselines for every seed; rewrite `json_out` atomically after every run.

    kwargs go to both trainers (e.g. shift=1). Returns the summary dict that is written.
    """
    runs: list[dict] = []
    summary: dict = {}
    for seed in seeds:
        for trainer in (train_s4nn_real, train_binary_ann):
            runs.append(trainer(dataset, data_dir, hidden=hidden, epochs=epochs, seed=int(seed),
                                progress=progress, threads=threads, **kwargs))
            summary = {"dataset": dataset, "epochs": epochs, "hidden": hidden, "seeds": [int(s) for s in seeds],
                       "summary": _summary(runs, dataset), "runs": runs}
            if json_out:
                _write_json_atomic(Path(json_out), summary)
    return summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Train the BS4NN paper's comparison baselines "
                                                 "(real-valued S4NN and a binarized sign-activation MLP).")
    parser.add_argument("--dataset", default="mnist", choices=datasets.DATASETS)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=600)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--shift", type=int, default=None, help="random +-shift pixel translations "
                        "(default: 1 on 28x28 images, 0 on small ones)")
    parser.add_argument("--out", default="baselines.json")
    args = parser.parse_args(argv)
    result = run_baselines(args.dataset, args.data_dir, args.seeds, args.epochs, args.out, hidden=args.hidden,
                           threads=args.threads, shift=args.shift)
    for name, s in result["summary"].items():
        print(f"{name}: test {s['test_accuracy_mean']:.4f} +- {s['test_accuracy_std']:.4f} over {s['n']} seed(s)"
              f" (paper {s['paper']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
