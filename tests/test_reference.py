"""The two references against the conformance vectors, against each other, and the conformance analyzer.

docs/conformance.md describes the vectors and the situations they must cover.
"""
from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from bs4nn.sw import reference, reference_spec
from bs4nn.sw.conformance import REQUIRED_SITUATIONS, VectorError, compare, load_vector, random_case, situations
from bs4nn.sw.network import Layer, Network, random_network
from bs4nn.sw.reference import Inference
from bs4nn.sw.scoring import correct_masks, score
from bs4nn.sw.semantics import T_MAX, binarize

VECTORS = sorted((Path(__file__).parent / "vectors").glob("*.json"))
MNIST_IMAGES = Path("/work/shared/datasets/mnist/t10k-images-idx3-ubyte.gz")
REFERENCES = {"fast": reference.run, "spec": reference_spec.run}


def assert_same(a: Inference, b: Inference, what: str = ""):
    assert len(a.spikes) == len(b.spikes), what
    for k, (x, y) in enumerate(zip(a.spikes, b.spikes)):
        bad = np.argwhere(x != y)
        assert not bad.size, f"{what}: layer {k} spikes differ first at (image, neuron) {tuple(bad[0])}: {x[tuple(bad[0])]} vs {y[tuple(bad[0])]}"
    for field in ("decision", "first_spike_bin", "decision_potentials"):
        x, y = getattr(a, field), getattr(b, field)
        assert x.shape == y.shape and np.array_equal(x, y), f"{what}: {field} differs: {x} vs {y}"


# ------------------------------------------------------------------------------------------ (a) vectors


def test_there_are_vectors():
    assert len(VECTORS) >= 8, f"expected the conformance vectors in tests/vectors, found {len(VECTORS)}"


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
@pytest.mark.parametrize("ref", sorted(REFERENCES))
def test_vector(path, ref):
    network, pixels, expected = load_vector(path)
    problems = compare(REFERENCES[ref](network, pixels), expected)
    assert not problems, f"{path.name} ({ref} reference):\n" + "\n".join(problems)


# ------------------------------------------------------------------------- (b) vectors cover situations


def test_vectors_cover_required_situations():
    found = set()
    for path in VECTORS:
        network, pixels, _ = load_vector(path)
        found |= situations(network, pixels, reference.run(network, pixels))
    missing = sorted(REQUIRED_SITUATIONS - found)
    assert not missing, f"no conformance vector exercises: {missing}"


def test_load_vector_names_the_file_on_errors(tmp_path):
    good = json.loads(VECTORS[0].read_text())

    def broken(mutate, name):
        data = json.loads(json.dumps(good))
        mutate(data)
        path = tmp_path / name
        path.write_text(json.dumps(data))
        return path

    cases = {
        "zero_weight.json": lambda d: d["network"]["layers"][0]["weights"][0].__setitem__(0, 0),
        "float_weight.json": lambda d: d["network"]["layers"][0]["weights"][0].__setitem__(0, 1.0),
        "ragged.json": lambda d: d["network"]["layers"][0]["weights"][1].pop(),
        "threshold.json": lambda d: d["network"]["layers"][0]["thresholds"].__setitem__(0, 0),
        "pixel.json": lambda d: d["images"][0].__setitem__(0, 256),
        "image_length.json": lambda d: d["images"][0].append(3),
        "expected_count.json": lambda d: d["expected"].pop(),
        "first_spike.json": lambda d: d["expected"][0].__setitem__("first_spike_bin", 7),
        "no_decision.json": lambda d: d["expected"][0].pop("decision"),
        "layer_sizes.json": lambda d: d["network"]["layers"][1]["weights"].pop(),
    }
    for name, mutate in cases.items():
        with pytest.raises(VectorError, match=name):
            load_vector(broken(mutate, name))
    (tmp_path / "not_json.json").write_text("{")
    with pytest.raises(VectorError, match="not_json.json"):
        load_vector(tmp_path / "not_json.json")


# ------------------------------------------------------------------------- (c) random: fast == spec


def test_random_fast_equals_spec_and_covers_situations():
    rng = np.random.default_rng(20240611)
    found = set()
    for case in range(300):
        network, pixels = random_case(rng)
        fast = reference.run(network, pixels)
        assert_same(fast, reference_spec.run(network, pixels), f"random case {case} (sizes {network.sizes})")
        found |= situations(network, pixels, fast)
    missing = sorted(REQUIRED_SITUATIONS - found)
    assert not missing, f"the random generator no longer produces: {missing}"


# ------------------------------------------------------------------------ (d) MNIST 784-600-10


def read_idx_images(path: Path, count: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        header = np.frombuffer(f.read(16), ">u4")
        assert header[0] == 0x00000803, f"{path}: not an IDX3 ubyte file"
        n, h, w = (int(v) for v in header[1:])
        count = min(count, n)
        return np.frombuffer(f.read(count * h * w), np.uint8).reshape(count, h, w)


@pytest.mark.skipif(not MNIST_IMAGES.exists(), reason=f"MNIST test images not found at {MNIST_IMAGES}")
def test_mnist_fast_equals_spec():
    images = read_idx_images(MNIST_IMAGES, 20)
    network = random_network([784, 600, 10], np.random.default_rng(7), input_shape=(28, 28), threshold_range=(1, 30))
    fast = reference.run(network, images)
    assert_same(fast, reference_spec.run(network, images), "784-600-10 on MNIST")
    # the case is not degenerate: hidden and output neurons do fire
    assert (fast.spikes[0] < T_MAX).mean() > 0.05
    assert (fast.first_spike_bin < T_MAX).any()


# -------------------------------------------------------------------------- (e) the analyzer itself


def net(*layers):
    """Network from (rows, thresholds) pairs; rows[i] = weights of input i."""
    built = tuple(Layer(np.array(rows, np.int8), np.array(th, np.int32)) for rows, th in layers)
    return Network(built, (1, built[0].n_in))


def found(network, pixels):
    pixels = np.array(pixels, np.uint8).reshape(1, -1)
    return situations(network, pixels, reference.run(network, pixels))


ONE = net(([[1]], [1]))  # one input, one output, theta 1
ANALYZER_CASES = {
    # situation: (positive (network, pixels), negative (network, pixels))
    "in_bin_fallback": (
        (net(([[1], [1], [-1], [-1]], [2])), [200] * 4),  # running 1, 2, 1, 0 in bin 55
        (net(([[-1], [-1], [1], [1]], [2])), [200] * 4),  # running -1, -2, -1, 0: never reaches theta
    ),
    "in_bin_fallback/after_firing": (
        None,
        (net(([[1], [1], [-1], [-1]], [2])), [200, 200, 100, 100]),  # fires in bin 55; bin 155 does not count
    ),
    "tie_by_potential": (
        (net(([[1, 1], [1, 1], [-1, 1]], [1, 1])), [255] * 3),  # both fire at 1, V = 1 and 3: index 1 wins
        (net(([[1, 1], [1, 1], [1, -1]], [1, 1])), [255] * 3),  # V = 3 and 1: the lowest index wins anyway
    ),
    "tie_by_index": (
        (net(([[1, 1], [1, 1], [-1, -1]], [1, 1])), [255] * 3),  # both fire at 1 with V = 1
        (net(([[1, 1], [1, 1], [-1, 1]], [1, 1])), [255] * 3),  # V = 1 and 3
    ),
    "no_output_spike": (
        (ONE, [0]),  # crossing in bin 255: never
        (ONE, [1]),  # crossing in bin 254: spike at 255
    ),
    "no_spike_tie_by_index": (
        (net(([[1, 1]], [2, 2])), [0]),  # V(255) = [1, 1]
        (net(([[1, -1]], [2, 2])), [0]),  # V(255) = [1, -1]
    ),
    "input_bin_0": ((ONE, [255]), (ONE, [254])),
    "input_bin_254": ((ONE, [1]), (ONE, [2])),
    "input_bin_255": ((ONE, [0]), (ONE, [1])),
    "hidden_spike_255": (
        (net(([[1]], [1]), ([[1]], [1])), [1]),  # hidden fires at 255, the output never
        (net(([[1]], [1]), ([[1]], [1])), [2]),  # hidden fires at 254, the output at 255
    ),
    "bin255_crossing_never": ((ONE, [0]), (ONE, [1])),
    "threshold_1": ((net(([[1], [1]], [1])), [9, 9]), (net(([[1], [1]], [2])), [9, 9])),
    "threshold_n_in_plus_1": ((net(([[1], [1]], [3])), [9, 9]), (net(([[1], [1]], [2])), [9, 9])),
    "negative_potential": (
        (net(([[-1]], [1])), [100]),
        (net(([[-1], [1]], [1])), [100, 100]),  # -1 only in the middle of bin 155, 0 at its end
    ),
}


def test_analyzer_cases_cover_required_situations():
    assert {name.split("/")[0] for name in ANALYZER_CASES} == set(REQUIRED_SITUATIONS)


@pytest.mark.parametrize("name", sorted(ANALYZER_CASES))
def test_analyzer_detects(name):
    situation = name.split("/")[0]
    positive, negative = ANALYZER_CASES[name]
    if positive is not None:
        assert situation in found(*positive), f"{situation} not detected on its positive case"
    assert situation not in found(*negative), f"{situation} wrongly detected on its negative case"


# ------------------------------------------------------------------------------------------ (f) scoring


def test_scoring_three_ways():
    never = T_MAX
    out = np.array(
        [
            [5, 5, 9],  # tie at t* = 5, strict picks 0, label 1 fires at t*: lenient right only
            [7, 3, never],  # clear win of 1, label 1: right three ways
            [never, never, never],  # no spike, fallback picks 2, label 2: strict and lenient right
            [never, never, never],  # no spike, fallback picks 0, label 1: wrong
            [4, 6, 6],  # 0 wins at 4, label 1 fires later: wrong three ways
        ],
        np.int16,
    )
    inference = Inference(
        [out],
        np.array([0, 1, 2, 0, 0], np.int16),
        out.min(axis=1).astype(np.int16),
        np.zeros((5, 3), np.int32),
    )
    labels = np.array([1, 1, 2, 1, 1])
    strict, lenient, first_spike, no_spike = correct_masks(inference, labels)
    assert strict.tolist() == [False, True, True, False, False]
    assert lenient.tolist() == [True, True, True, False, False]
    assert first_spike.tolist() == [False, True, False, False, False]
    assert no_spike.tolist() == [False, False, True, True, False]
    s = score(inference, labels)
    assert (s.n, s.strict, s.lenient, s.first_spike, s.no_spike_rate) == (5, 0.4, 0.6, 0.2, 0.4)
    with pytest.raises(ValueError):
        score(inference, labels[:4])


# ------------------------------------------------------------------------------- (g) semantics helpers


def test_binarize_maps_exact_zero_to_plus_one():
    # docs/semantics.md: a real weight of exactly 0 is +1 (numpy.sign(0) would give 0); -0.0 is a zero too
    weights = np.array([[-2.5, -1e-30, 0.0], [-0.0, 1e-30, 3.0]])
    signs = binarize(weights)
    assert signs.dtype == np.int8
    assert signs.tolist() == [[-1, -1, 1], [1, 1, 1]]


# ------------------------------------------------------------------ (h) the references' inputs and batching


def small_case(n_images=10, seed=3):
    rng = np.random.default_rng(seed)
    network = random_network([12, 6, 3], rng, input_shape=(3, 4), threshold_range=(1, 4))
    return network, rng.integers(0, 256, (n_images, 3, 4)).astype(np.uint8)


def test_run_in_several_batches_equals_one_batch():
    network, pixels = small_case()
    whole = reference.run(network, pixels)
    assert_same(reference.run(network, pixels, batch_size=3), whole, "batches of 3 (the last one holds 1 image)")
    assert_same(whole, reference_spec.run(network, pixels), "fast vs spec")


def test_run_bins_takes_spike_bins_not_pixels():
    network, pixels = small_case()
    bins = 255 - pixels.reshape(len(pixels), -1).astype(np.int16)  # pixel p spikes in bin 255 - p
    assert_same(reference.run_bins(network, bins), reference.run(network, pixels), "run_bins(255 - p) vs run(p)")
    for bad in (256, -1):
        wrong = bins.copy()
        wrong[2, 5] = bad
        with pytest.raises(ValueError, match="0..255"):
            reference.run_bins(network, wrong)


@pytest.mark.parametrize("ref", sorted(REFERENCES))
def test_pixels_outside_0_255_are_refused(ref):
    network, pixels = small_case(2)
    for bad in (256, -1):
        wide = pixels.astype(np.int32)
        wide[1, 2, 3] = bad  # would wrap around silently if cast to uint8
        with pytest.raises(ValueError, match="0..255"):
            REFERENCES[ref](network, wide)
    with pytest.raises(ValueError, match="dtype"):
        REFERENCES[ref](network, pixels.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        REFERENCES[ref](network, pixels.reshape(2, 2, 6))


def test_layer_and_network_refuse_what_the_semantics_exclude():
    signs = np.ones((3, 2), np.int8)
    Layer(signs, [1, 4])  # 1 .. n_in + 1 are legal
    for thresholds in ([0, 2], [1, 5]):
        with pytest.raises(ValueError, match="thresholds"):
            Layer(signs, thresholds)
    zero = signs.copy()
    zero[1, 1] = 0
    with pytest.raises(ValueError, match="signs"):
        Layer(zero, [1, 1])
    with pytest.raises(ValueError, match="n_in"):
        Network((Layer(signs, [1, 1]), Layer(np.ones((3, 2), np.int8), [1, 1])), (1, 3))  # 2 outputs feed 3 inputs
    with pytest.raises(ValueError, match="input_shape"):
        Network((Layer(signs, [1, 1]),), (2, 2))
