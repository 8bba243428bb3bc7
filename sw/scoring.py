"""Strict, lenient and first-spike accuracy (docs/semantics.md, "Decision")."""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .reference import Inference
from .semantics import T_MAX


@dataclass(frozen=True)
class Scores:
    n: int
    strict: float  # the hardware's decision
    lenient: float  # ties at t* in the label's favour, as the paper counted
    first_spike: float  # strict, with no-spike images counted wrong
    no_spike_rate: float

    def as_dict(self) -> dict:
        return asdict(self)


def correct_masks(inference: Inference, labels: np.ndarray):
    """Per-image booleans (strict, lenient, first_spike) and the no-spike mask."""
    labels = np.asarray(labels).astype(np.int64)
    if labels.shape != inference.decision.shape:
        raise ValueError(f"{labels.shape[0] if labels.ndim else 0} labels for {inference.n_images} images")
    out = inference.spikes[-1]
    t_star = inference.first_spike_bin.astype(np.int64)
    no_spike = t_star >= T_MAX
    strict = inference.decision.astype(np.int64) == labels
    label_bin = out[np.arange(len(labels)), labels].astype(np.int64) if len(labels) else t_star
    lenient = np.where(no_spike, strict, label_bin == t_star)
    first_spike = strict & ~no_spike
    return strict, lenient, first_spike, no_spike


def score(inference: Inference, labels: np.ndarray) -> Scores:
    strict, lenient, first_spike, no_spike = correct_masks(inference, labels)
    n = len(strict)
    mean = (lambda m: float(m.mean())) if n else (lambda m: 0.0)
    return Scores(n, mean(strict), mean(lenient), mean(first_spike), mean(no_spike))
