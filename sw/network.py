"""The in-memory binary network that the reference runs and the artifact stores."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Layer:
    """One weight layer: signs[i, j] is the weight (+1 or -1) from input i to neuron j."""

    signs: np.ndarray  # int8, shape (n_in, n_out), values +-1
    thresholds: np.ndarray  # int32, shape (n_out,), each in 1 .. n_in + 1

    def __post_init__(self):
        signs = np.ascontiguousarray(self.signs, dtype=np.int8)
        thresholds = np.ascontiguousarray(self.thresholds, dtype=np.int32)
        if signs.ndim != 2:
            raise ValueError(f"layer signs must be 2-D (n_in, n_out), got shape {signs.shape}")
        if not np.all((signs == 1) | (signs == -1)):
            raise ValueError("layer signs must all be +1 or -1")
        if thresholds.shape != (signs.shape[1],):
            raise ValueError(f"thresholds must have shape ({signs.shape[1]},), got {thresholds.shape}")
        n_in = signs.shape[0]
        if thresholds.size and (thresholds.min() < 1 or thresholds.max() > n_in + 1):
            raise ValueError(f"thresholds must lie in 1..{n_in + 1} (n_in + 1), got {thresholds.min()}..{thresholds.max()}")
        object.__setattr__(self, "signs", signs)
        object.__setattr__(self, "thresholds", thresholds)

    @property
    def n_in(self) -> int:
        return self.signs.shape[0]

    @property
    def n_out(self) -> int:
        return self.signs.shape[1]


@dataclass(frozen=True)
class Network:
    """A chain of binary IF layers on 8-bit images of `input_shape` (h, w)."""

    layers: tuple[Layer, ...]
    input_shape: tuple[int, int]

    def __post_init__(self):
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("a network needs at least one layer")
        h, w = (int(v) for v in self.input_shape)
        if layers[0].n_in != h * w:
            raise ValueError(f"layer 0 has n_in {layers[0].n_in}, but input_shape {h}x{w} gives {h * w}")
        for k in range(1, len(layers)):
            if layers[k].n_in != layers[k - 1].n_out:
                raise ValueError(f"layer {k} has n_in {layers[k].n_in}, but layer {k - 1} has n_out {layers[k - 1].n_out}")
        object.__setattr__(self, "layers", layers)
        object.__setattr__(self, "input_shape", (h, w))

    @property
    def sizes(self) -> list[int]:
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def n_classes(self) -> int:
        return self.layers[-1].n_out


def random_network(sizes, rng: np.random.Generator, input_shape=None, threshold_range=None) -> Network:
    """A random network for tests and benchmarks; thresholds uniform in `threshold_range` per layer
    (default 1 .. n_in + 1)."""
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        signs = np.where(rng.random((n_in, n_out)) < 0.5, -1, 1).astype(np.int8)
        lo, hi = threshold_range or (1, n_in + 1)
        thresholds = rng.integers(max(lo, 1), min(hi, n_in + 1) + 1, size=n_out)
        layers.append(Layer(signs, thresholds))
    if input_shape is None:
        input_shape = (1, sizes[0])
    return Network(tuple(layers), tuple(input_shape))
