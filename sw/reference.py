"""The fast integer reference: every neuron's spike bin, the strict decision, on a whole batch.

Implements docs/semantics.md with the numba kernels in `kernels.py` (the trainer's forward pass uses the
same kernels); `reference_spec.py` is the slow, literal twin it is tested against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .network import Network
from .semantics import encode_pixels


@dataclass
class Inference:
    """What the network does on a batch of N images."""

    spikes: list[np.ndarray]  # per weight layer k: int16 (N, n_out_k), spike bins 1 .. 256 (256 = never)
    decision: np.ndarray  # int16 (N,): the strict decision
    first_spike_bin: np.ndarray  # int16 (N,): t*, 256 when no output neuron fired
    decision_potentials: np.ndarray  # int32 (N, n_classes): V_j(t* - 1), or V_j(255) when t* = 256

    @property
    def n_images(self) -> int:
        return int(self.decision.shape[0])


def flatten_images(pixels: np.ndarray, network: Network) -> np.ndarray:
    """Check 8-bit images against the network's input and return them as (N, n_in) uint8."""
    pixels = np.asarray(pixels)
    n_in = network.layers[0].n_in
    if pixels.ndim == 1:
        pixels = pixels[None]
    if pixels.ndim == 3:
        if pixels.shape[1:] != network.input_shape:
            raise ValueError(f"images have shape {pixels.shape[1:]}, the network expects {network.input_shape}")
        pixels = pixels.reshape(pixels.shape[0], -1)
    if pixels.ndim != 2 or pixels.shape[1] != n_in:
        raise ValueError(f"images must be (N, {n_in}) or (N, h, w) 8-bit pixels, got shape {pixels.shape}")
    encode_pixels(pixels)  # validates dtype and range
    return pixels.astype(np.uint8, copy=False)


def kernel_layers(network: Network):
    """Signs (int8) and thresholds (in the accumulator dtype) as tuples over the layers, for the kernels."""
    dtype = kernels.accumulator_dtype(max(layer.n_in for layer in network.layers))
    signs = tuple(layer.signs for layer in network.layers)
    thresholds = tuple(layer.thresholds.astype(dtype) for layer in network.layers)
    return signs, thresholds


def run_bins(network: Network, input_bins: np.ndarray, prepared=None) -> Inference:
    """Run on input spike bins (N, n_in) int16 in 0 .. 255."""
    bins = np.ascontiguousarray(input_bins, dtype=np.int16)
    signs, thresholds = prepared or kernel_layers(network)
    n = bins.shape[0]
    spikes = tuple(np.empty((n, layer.n_out), np.int16) for layer in network.layers)
    decision = np.empty(n, np.int16)
    first = np.empty(n, np.int16)
    potentials = np.empty((n, network.n_classes), np.int32)
    kernels.forward(bins, signs, thresholds, spikes, decision, first, potentials)
    return Inference(list(spikes), decision, first, potentials)


def run(network: Network, pixels: np.ndarray, batch_size: int = 8192, progress: bool = False) -> Inference:
    """Run on 8-bit images, (N, h, w) or (N, n_in)."""
    flat = flatten_images(pixels, network)
    prepared = kernel_layers(network)
    parts = []
    starts = range(0, flat.shape[0], batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="reference", unit="batch")
    for s in starts:
        parts.append(run_bins(network, encode_pixels(flat[s : s + batch_size]), prepared))
    if not parts:
        return run_bins(network, np.zeros((0, flat.shape[1]), np.int16), prepared)
    return concat(parts)


def concat(parts: list[Inference]) -> Inference:
    return Inference(
        [np.concatenate([p.spikes[k] for p in parts]) for k in range(len(parts[0].spikes))],
        np.concatenate([p.decision for p in parts]),
        np.concatenate([p.first_spike_bin for p in parts]),
        np.concatenate([p.decision_potentials for p in parts]),
    )
