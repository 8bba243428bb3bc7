"""The spec reference: a literal, per-image, per-bin reading of docs/semantics.md. Slow, for trust.

It shares nothing with the fast kernels but the network data and the pixel encoding.
"""
from __future__ import annotations

import numpy as np

from .network import Network
from .reference import Inference, flatten_images
from .semantics import T_MAX, encode_pixels


def run_image(network: Network, pixels: np.ndarray):
    """One image: (spike bins per layer, decision, t*, V(b*) of the output layer)."""
    bins = encode_pixels(pixels).astype(np.int64)  # each pixel p spikes once, at bin 255 - p
    layer_bins = []
    for layer in network.layers:
        weights = layer.signs.astype(np.int64)
        fired_at = np.full(layer.n_out, T_MAX, np.int64)
        potential_history = np.zeros((T_MAX, layer.n_out), np.int64)
        for t in range(T_MAX):
            # V_j(t) = sum of s_ji over inputs i whose spike bin t_i <= t (all of bin t summed first)
            arrived = bins <= t
            potential = weights[arrived].sum(axis=0)
            potential_history[t] = potential
            # a neuron fires at 1 + the first bin whose end-of-bin potential reaches theta
            crossing = (potential >= layer.thresholds) & (fired_at == T_MAX)
            fired_at[crossing] = t + 1
        layer_bins.append(fired_at)  # a spike at T_MAX (256) is "never" and no event downstream
        bins = fired_at
    out = layer_bins[-1]
    t_star = int(out.min())
    if t_star < T_MAX:
        candidates = [j for j in range(len(out)) if out[j] == t_star]
        v = potential_history[t_star - 1]
        best = max(v[j] for j in candidates)
        winner = min(j for j in candidates if v[j] == best)
    else:
        v = potential_history[T_MAX - 1]
        winner = int(np.argmax(v))  # argmax returns the lowest index on ties
    return layer_bins, winner, t_star, v


def run(network: Network, pixels: np.ndarray) -> Inference:
    flat = flatten_images(pixels, network)
    results = [run_image(network, image) for image in flat]
    n = len(results)
    spikes = [
        np.array([r[0][k] for r in results], np.int16).reshape(n, layer.n_out)
        for k, layer in enumerate(network.layers)
    ]
    return Inference(
        spikes,
        np.array([r[1] for r in results], np.int16),
        np.array([r[2] for r in results], np.int16),
        np.array([r[3] for r in results], np.int32).reshape(n, network.n_classes),
    )
