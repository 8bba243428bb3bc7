"""The conformance suite of the BS4NN format (docs/conformance.md).

`load_vector` reads one hand-derived test vector (tests/vectors/*.json), `compare` lists where an
`Inference` departs from a vector's expected results, and `situations` is an analyzer that names which of
the semantics' corner cases (REQUIRED_SITUATIONS) occur in a run, so that a suite can prove it exercises
every one of them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .network import Layer, Network
from .reference import Inference, flatten_images
from .semantics import LAST_BIN, T_MAX, encode_pixels

SITUATIONS = {
    "in_bin_fallback": "a neuron that had not fired yet reaches theta while the events of one bin are added in "
    "input-index order, but the end-of-bin potential is below theta (it must not fire)",
    "tie_by_potential": "two or more output neurons spike at t*, and the highest V(t*-1) among them belongs to a "
    "neuron other than the lowest-index one (the potential rule, not the index rule, decides)",
    "tie_by_index": "two or more output neurons spike at t* and share the highest V(t*-1) among them "
    "(the lowest index decides)",
    "no_output_spike": "no output neuron spikes before T_MAX (t* = 256): the decision is argmax V(255)",
    "no_spike_tie_by_index": "no output spike, and two or more output neurons share the highest V(255)",
    "input_bin_0": "a pixel 255 gives an input event in bin 0",
    "input_bin_254": "a pixel 1 gives an input event in bin 254",
    "input_bin_255": "a pixel 0 gives an input event in bin 255",
    "hidden_spike_255": "a neuron of the layer feeding the output layer spikes at bin 255 (its crossing is in bin "
    "254) in an image with no output spike, so that spike is an event of the output layer's V(255) fallback",
    "bin255_crossing_never": "a neuron first reaches theta at the end of bin 255, so its spike bin is 256 (never)",
    "threshold_1": "a neuron has threshold 1",
    "threshold_n_in_plus_1": "a neuron has threshold n_in + 1 (it can never fire)",
    "negative_potential": "a neuron's potential is below 0 at the end of some bin",
}
REQUIRED_SITUATIONS = frozenset(SITUATIONS)

_EXPECTED_KEYS = ("spikes", "decision", "first_spike_bin", "decision_potentials")


class VectorError(ValueError):
    """A malformed conformance vector; the message starts with the file name."""


# ----------------------------------------------------------------------------------------------- loading


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_list(path, value, where, length=None, lo=None, hi=None) -> list[int]:
    if not isinstance(value, list):
        raise VectorError(f"{path}: {where} must be a list, got {type(value).__name__}")
    if length is not None and len(value) != length:
        raise VectorError(f"{path}: {where} must have {length} entries, got {len(value)}")
    for k, v in enumerate(value):
        if not _is_int(v):
            raise VectorError(f"{path}: {where}[{k}] must be an integer, got {v!r}")
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            raise VectorError(f"{path}: {where}[{k}] = {v} is outside {lo}..{hi}")
    return list(value)


def _field(path, obj, key, where):
    if not isinstance(obj, dict):
        raise VectorError(f"{path}: {where} must be an object, got {type(obj).__name__}")
    if key not in obj:
        raise VectorError(f"{path}: {where} has no {key!r}")
    return obj[key]


def _network(path, data) -> Network:
    shape = _int_list(path, _field(path, data, "input_shape", "network"), "network.input_shape", 2, 1)
    layers_data = _field(path, data, "layers", "network")
    if not isinstance(layers_data, list) or not layers_data:
        raise VectorError(f"{path}: network.layers must be a non-empty list")
    layers = []
    for k, layer in enumerate(layers_data):
        where = f"network.layers[{k}]"
        rows = _field(path, layer, "weights", where)
        if not isinstance(rows, list) or not rows:
            raise VectorError(f"{path}: {where}.weights must be a non-empty list of rows (one per input)")
        n_out = len(rows[0]) if isinstance(rows[0], list) else 0
        if n_out == 0:
            raise VectorError(f"{path}: {where}.weights[0] must be a non-empty list")
        signs = []
        for i, row in enumerate(rows):
            row = _int_list(path, row, f"{where}.weights[{i}]", n_out)
            bad = [v for v in row if v not in (-1, 1)]
            if bad:
                raise VectorError(f"{path}: {where}.weights[{i}] holds {bad[0]}, weights must be -1 or +1")
            signs.append(row)
        n_in = len(rows)
        thresholds = _int_list(path, _field(path, layer, "thresholds", where), f"{where}.thresholds", n_out, 1, n_in + 1)
        layers.append(Layer(np.array(signs, np.int8), np.array(thresholds, np.int32)))
    try:
        return Network(tuple(layers), tuple(shape))
    except ValueError as e:
        raise VectorError(f"{path}: bad network: {e}") from e


def _expected(path, entry, k, network) -> dict:
    where = f"expected[{k}]"
    if not isinstance(entry, dict):
        raise VectorError(f"{path}: {where} must be an object")
    unknown = set(entry) - set(_EXPECTED_KEYS)
    if unknown:
        raise VectorError(f"{path}: {where} has unknown keys {sorted(unknown)}")
    spikes = _field(path, entry, "spikes", where)
    if not isinstance(spikes, list) or len(spikes) != len(network.layers):
        raise VectorError(f"{path}: {where}.spikes must list the spike bins of each of the {len(network.layers)} layers")
    spikes = [
        _int_list(path, s, f"{where}.spikes[{j}]", layer.n_out, 1, T_MAX) for j, (s, layer) in enumerate(zip(spikes, network.layers))
    ]
    n_classes = network.n_classes
    decision = _field(path, entry, "decision", where)
    if not _is_int(decision) or not 0 <= decision < n_classes:
        raise VectorError(f"{path}: {where}.decision must be an integer in 0..{n_classes - 1}, got {decision!r}")
    first = _field(path, entry, "first_spike_bin", where)
    if not _is_int(first) or not 1 <= first <= T_MAX:
        raise VectorError(f"{path}: {where}.first_spike_bin must be an integer in 1..{T_MAX}, got {first!r}")
    if first != min(spikes[-1]):
        raise VectorError(f"{path}: {where}.first_spike_bin {first} is not the earliest output spike {min(spikes[-1])}")
    n_in = network.layers[-1].n_in
    potentials = _int_list(path, _field(path, entry, "decision_potentials", where), f"{where}.decision_potentials", n_classes, -n_in, n_in)
    return {"spikes": spikes, "decision": decision, "first_spike_bin": first, "decision_potentials": potentials}


def load_vector(path) -> tuple[Network, np.ndarray, list[dict]]:
    """Read one vector: (network, pixels uint8 (N, n_in), expected results, one dict per image).

    Raises VectorError, naming the file, for anything malformed.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise VectorError(f"{path}: cannot read JSON: {e}") from e
    if not isinstance(data, dict):
        raise VectorError(f"{path}: the top level must be an object")
    for key in ("name", "description"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise VectorError(f"{path}: {key!r} must be a non-empty string")
    network = _network(path, _field(path, data, "network", "the vector"))
    n_in = network.layers[0].n_in
    images = _field(path, data, "images", "the vector")
    if not isinstance(images, list) or not images:
        raise VectorError(f"{path}: 'images' must be a non-empty list")
    pixels = np.array([_int_list(path, im, f"images[{k}]", n_in, 0, 255) for k, im in enumerate(images)], np.uint8)
    expected = _field(path, data, "expected", "the vector")
    if not isinstance(expected, list) or len(expected) != len(images):
        raise VectorError(f"{path}: 'expected' must be a list with one entry per image ({len(images)})")
    return network, pixels, [_expected(path, e, k, network) for k, e in enumerate(expected)]


def compare(inference: Inference, expected: list[dict]) -> list[str]:
    """Every difference between an inference and a vector's expected results (empty when conformant)."""
    problems = []
    if inference.n_images != len(expected):
        return [f"{inference.n_images} results for {len(expected)} expected images"]
    for b, exp in enumerate(expected):
        for k, want in enumerate(exp["spikes"]):
            got = [int(v) for v in inference.spikes[k][b]]
            if got != want:
                problems.append(f"image {b}: layer {k} spikes {got}, expected {want}")
        for key in ("decision", "first_spike_bin"):
            got = int(getattr(inference, key)[b])
            if got != exp[key]:
                problems.append(f"image {b}: {key} {got}, expected {exp[key]}")
        got = [int(v) for v in inference.decision_potentials[b]]
        if got != exp["decision_potentials"]:
            problems.append(f"image {b}: decision_potentials {got}, expected {exp['decision_potentials']}")
    return problems


# ---------------------------------------------------------------------------------------------- analyzer


def _trace(signs: np.ndarray, thresholds: np.ndarray, in_bins: np.ndarray):
    """One layer on one image: end-of-bin potentials V (T_MAX, n_out), first crossing bin per neuron
    (T_MAX if none), and whether some neuron shows an in-bin fallback."""
    events = np.flatnonzero(in_bins < T_MAX)
    order = events[np.argsort(in_bins[events], kind="stable")]  # by bin, then by input index
    ev_bins = in_bins[order].astype(np.int64)
    running = np.cumsum(signs[order].astype(np.int32), axis=0)  # potential after each event
    ends = np.cumsum(np.bincount(ev_bins, minlength=T_MAX))  # events with bin <= t
    potentials = np.zeros((T_MAX, signs.shape[1]), np.int32)
    has = ends > 0
    potentials[has] = running[ends[has] - 1]
    reached = potentials >= thresholds
    crossing = np.where(reached.any(axis=0), reached.argmax(axis=0), T_MAX)
    fallback = (
        (running >= thresholds) & (potentials[ev_bins] < thresholds) & (ev_bins[:, None] < crossing[None, :])
    ).any()
    return potentials, crossing, bool(fallback)


def situations(network: Network, pixels: np.ndarray, inference: Inference) -> set[str]:
    """Which of SITUATIONS occur when `network` runs on `pixels` with the result `inference`.

    Per-bin potentials are recomputed here; the spike bins of each layer are taken from `inference` as
    the input events of the next layer, and the output spikes from `inference` define t* and the ties.
    """
    flat = flatten_images(pixels, network)
    found = set()
    for layer in network.layers:
        if (layer.thresholds == 1).any():
            found.add("threshold_1")
        if (layer.thresholds == layer.n_in + 1).any():
            found.add("threshold_n_in_plus_1")
    input_bins = encode_pixels(flat)
    for t in (0, LAST_BIN - 1, LAST_BIN):
        if (input_bins == t).any():
            found.add(f"input_bin_{t}")
    n_layers = len(network.layers)
    for b in range(flat.shape[0]):
        in_bins = input_bins[b]
        out = inference.spikes[-1][b].astype(np.int64)
        t_star = int(out.min())
        for k, layer in enumerate(network.layers):
            potentials, crossing, fallback = _trace(layer.signs, layer.thresholds, in_bins)
            if fallback:
                found.add("in_bin_fallback")
            if (potentials < 0).any():
                found.add("negative_potential")
            if (crossing == LAST_BIN).any():
                found.add("bin255_crossing_never")
            spikes = inference.spikes[k][b]
            if k == n_layers - 2 and t_star == T_MAX and (spikes == LAST_BIN).any():
                found.add("hidden_spike_255")
            in_bins = spikes
        # potentials now belong to the output layer
        if t_star < T_MAX:
            tied = np.flatnonzero(out == t_star)
            if len(tied) >= 2:
                v = potentials[t_star - 1, tied]
                best = tied[v == v.max()]
                if best[0] != tied[0]:
                    found.add("tie_by_potential")
                if len(best) >= 2:
                    found.add("tie_by_index")
        else:
            found.add("no_output_spike")
            v = potentials[LAST_BIN]
            if (v == v.max()).sum() >= 2:
                found.add("no_spike_tie_by_index")
    return found


def random_case(rng: np.random.Generator, n_images: int = 4):
    """A small network and a few images built to hit the corner cases: few neurons (few outputs, for
    ties), small thresholds with 1 and n_in + 1 present, weights biased towards +1 in some cases so that
    spikes reach the output layer, pixels drawn from a small palette holding 0, 1 and 255 so that bins
    hold several events."""
    n_layers = int(rng.integers(2, 4))
    sizes = [int(rng.integers(3, 9))] + [int(rng.integers(3, 7)) for _ in range(n_layers - 1)] + [int(rng.integers(2, 4))]
    plus = rng.choice([0.5, 0.7, 0.85])  # probability of a +1 weight
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        signs = np.where(rng.random((n_in, n_out)) < plus, 1, -1).astype(np.int8)
        options = np.array([1, 1, 2, 2, 3, n_in + 1, int(rng.integers(1, n_in + 2))])
        thresholds = np.minimum(rng.choice(options, n_out), n_in + 1)
        layers.append(Layer(signs, thresholds))
    network = Network(tuple(layers), (1, sizes[0]))
    palette = np.concatenate([[0, 1, 255], rng.integers(0, 256, 2), rng.integers(250, 256, 1)])
    pixels = np.empty((n_images, sizes[0]), np.uint8)
    for b in range(len(pixels)):
        few = rng.choice(palette, int(rng.integers(2, 5)), replace=False)
        pixels[b] = rng.choice(few, sizes[0])
    return network, pixels
