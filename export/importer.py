"""Import the BS4NN authors' published real-valued weights as a binary `Network`.

Their arrays are (n_out, n_in) or (n_out, n_in, 1) per layer; ours are signs (n_in, n_out). Each layer
has one learned `fact`; a neuron fires when V > thr / fact, i.e. V >= floor(thr / fact) + 1 (in float64).
Their code took sign(0) = 0, which has no binary equivalent, so exact zeros are refused.
"""
from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from bs4nn.sw.network import Layer, Network
from bs4nn.sw.semantics import binarize, threshold_from_fact


class WeightImportError(ValueError):
    """The published weights (or their files) cannot be imported; the message says which and why."""


def load_npy(path) -> np.ndarray:
    """One array from a .npy file, never unpickling; failures name the file."""
    path = Path(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise WeightImportError(f"{path}: missing") from None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise WeightImportError(f"{path}: not a readable .npy array ({e})") from None
    if not isinstance(loaded, np.ndarray):
        loaded.close()
        raise WeightImportError(f"{path}: an .npz archive, expected a single .npy array")
    return loaded


def _layer_matrix(k: int, w) -> np.ndarray:
    """Layer k's weights as float64 (n_out, n_in), checked."""
    w = np.asarray(w)
    if w.ndim == 3 and w.shape[2] == 1:
        w = w[:, :, 0]
    if w.ndim != 2:
        raise WeightImportError(f"layer {k}: weights must be (n_out, n_in) or (n_out, n_in, 1), got shape {w.shape}")
    if w.dtype.kind not in "fiu" or w.size == 0:
        raise WeightImportError(f"layer {k}: weights must be a non-empty real array, got dtype {w.dtype} shape {w.shape}")
    w = w.astype(np.float64)
    for bad, what in ((~np.isfinite(w), "NaN or infinite"), (w == 0, "exactly 0")):
        if bad.any():
            out, inp = np.argwhere(bad)[0]
            note = " (the original sign(0) = 0 has no binary equivalent)" if what == "exactly 0" else ""
            raise WeightImportError(f"layer {k}: {int(bad.sum())} weights are {what}, the first at "
                                    f"[out={out}, in={inp}]{note}")
    return w


def default_input_shape(n_in: int) -> tuple[int, int]:
    side = math.isqrt(n_in)
    return (side, side) if side * side == n_in else (1, n_in)


def import_reference(weights: list[np.ndarray], facts: list[float], thr: float = 100.0,
                     input_shape=None) -> Network:
    """The binary network of the authors' weights: signs of the weights (transposed to (n_in, n_out)) and,
    for every neuron of layer k, the threshold floor(thr / facts[k]) + 1 computed in float64."""
    weights, facts = list(weights), list(facts)
    if not weights:
        raise WeightImportError("no weight layers given")
    if len(facts) != len(weights):
        raise WeightImportError(f"{len(facts)} facts for {len(weights)} weight layers (one per layer needed)")
    thr = float(thr)
    if not (math.isfinite(thr) and thr > 0):
        raise WeightImportError(f"thr must be a positive finite number, got {thr}")
    layers = []
    for k, (w, fact) in enumerate(zip(weights, facts)):
        w = _layer_matrix(k, w)
        n_out, n_in = w.shape
        if layers and n_in != layers[-1].n_out:
            raise WeightImportError(f"layer {k} has {n_in} inputs, but layer {k - 1} has {layers[-1].n_out} outputs")
        fact = float(fact)  # exact for float32 values too: the division below is done in float64
        if not (math.isfinite(fact) and fact > 0):
            raise WeightImportError(f"layer {k}: fact must be a positive finite number, got {fact}")
        theta = threshold_from_fact(thr, fact, n_in)
        layers.append(Layer(binarize(w.T), np.full(n_out, theta, np.int32)))
    shape = default_input_shape(layers[0].n_in) if input_shape is None else tuple(input_shape)
    try:
        return Network(tuple(layers), shape)
    except ValueError as e:
        raise WeightImportError(str(e)) from None
