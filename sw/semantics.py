"""Constants and small rules of the BS4NN integer semantics (docs/semantics.md).

Everything here is a direct statement of the contract; the reference, the trainer and the exporter
import these instead of restating them.
"""
from __future__ import annotations

import math

import numpy as np

T_MAX = 256  # bins 0 .. T_MAX-1; a spike "at T_MAX" means never fired
LAST_BIN = T_MAX - 1  # events in this bin can never make a neuron of their layer fire
ENCODING = "t=255-p"
TIE_RULE = "earliest,max-potential,lowest-index"


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """The array itself if it holds integer pixels in 0..255, else a ValueError saying what is wrong."""
    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8:
        if not np.issubdtype(pixels.dtype, np.integer):
            raise ValueError(f"pixels must be 8-bit integers 0..255, got dtype {pixels.dtype}")
        if pixels.size and (pixels.min() < 0 or pixels.max() > 255):
            raise ValueError(f"pixels must lie in 0..255, got {pixels.min()}..{pixels.max()}")
    return pixels


def encode_pixels(pixels: np.ndarray) -> np.ndarray:
    """Input spike bins of 8-bit pixels: t = 255 - p (bright = early). Returns int16, same shape."""
    return (255 - check_pixels(pixels).astype(np.int16)).astype(np.int16)


def binarize(weights: np.ndarray) -> np.ndarray:
    """Signs of real weights as int8 +-1, with an exact 0 mapping to +1 (unlike numpy.sign)."""
    return np.where(np.asarray(weights) < 0, -1, 1).astype(np.int8)


def threshold_from_fact(thr: float, fact: float, n_in: int) -> int:
    """Integer threshold theta = floor(thr / fact) + 1 in float64, clamped to 1 .. n_in + 1.

    The original code fires when V > thr / fact; for integer V this is V >= floor(thr / fact) + 1.
    """
    ratio = float(np.float64(thr) / np.float64(fact))
    theta = math.floor(ratio) + 1 if math.isfinite(ratio) else n_in + 1
    return int(min(max(theta, 1), n_in + 1))
