"""The fast integer reference: every neuron's spike bin, the strict decision, on a whole batch.

Implements docs/semantics.md with the numba kernels in `kernels.py` (the trainer's forward pass uses the
same kernels); `reference_spec.py` is the slow, literal twin it is tested against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels
from .network import Network
from .semantics import check_pixels


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
    check_pixels(pixels)
    return pixels.astype(np.uint8, copy=False)


def kernel_layers(network: Network):
    """Signs (int8) and thresholds (in the accumulator dtype) as tuples over the layers, for the kernels."""
    dtype = kernels.accumulator_dtype(max(layer.n_in for layer in network.layers))
    signs = tuple(layer.signs for layer in network.layers)
    thresholds = tuple(layer.thresholds.astype(dtype) for layer in network.layers)
    return signs, thresholds


def _run(network: Network, events: np.ndarray, from_pixels: bool, prepared=None) -> Inference:
    signs, thresholds = prepared or kernel_layers(network)
    n = events.shape[0]
    spikes = tuple(np.empty((n, layer.n_out), np.int16) for layer in network.layers)
    decision = np.empty(n, np.int16)
    first = np.empty(n, np.int16)
    potentials = np.empty((n, network.n_classes), np.int32)
    kernels.forward(events, signs, thresholds, spikes, decision, first, potentials, from_pixels)
    return Inference(list(spikes), decision, first, potentials)


def run_bins(network: Network, input_bins: np.ndarray) -> Inference:
    """Run on input spike bins (N, n_in) in 0 .. 255 (bin 255 - p of pixel p)."""
    bins = np.ascontiguousarray(input_bins, dtype=np.int16)
    if bins.size and (bins.min() < 0 or bins.max() > 255):
        raise ValueError(f"input spike bins must lie in 0..255, got {bins.min()}..{bins.max()}")
    return _run(network, bins, False)


def run(network: Network, pixels: np.ndarray, batch_size: int = 65536, progress: bool = False) -> Inference:
    """Run on 8-bit images, (N, h, w) or (N, n_in)."""
    flat = np.ascontiguousarray(flatten_images(pixels, network))
    prepared = kernel_layers(network)
    starts = range(0, max(1, flat.shape[0]), batch_size)
    if progress:
        from tqdm import tqdm

        starts = tqdm(starts, desc="reference", unit="batch")
    parts = [_run(network, flat[s : s + batch_size], True, prepared) for s in starts]
    return parts[0] if len(parts) == 1 else concat(parts)


def concat(parts: list[Inference]) -> Inference:
    return Inference(
        [np.concatenate([p.spikes[k] for p in parts]) for k in range(len(parts[0].spikes))],
        np.concatenate([p.decision for p in parts]),
        np.concatenate([p.first_spike_bin for p in parts]),
        np.concatenate([p.decision_potentials for p in parts]),
    )
