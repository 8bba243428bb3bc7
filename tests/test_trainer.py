"""The trainer's forward pass is the integer semantics; its rules, checkpoints and resume behave."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch

from bs4nn.export.artifact import read_artifact
from bs4nn.export.exporter import export_checkpoint
from bs4nn.sw import reference, reference_spec
from bs4nn.sw.model import BS4NN, S4NNSpikeTimes, normalize_rows, signs_of
from bs4nn.sw.semantics import T_MAX, encode_pixels, threshold_from_fact
from bs4nn.sw.train import TrainConfig, build_model, load_checkpoint, load_network, train

MNIST = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "mnist"


def mnist_test_images(n: int) -> np.ndarray:
    path = MNIST / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    return np.frombuffer(gzip.open(path).read(), np.uint8, offset=16).reshape(-1, 784)[:n]


def random_model(sizes, rule, seed, thresholds=(8.0,), output_threshold=5):
    gen = torch.Generator().manual_seed(seed)
    if rule == "decision":
        model = BS4NN(sizes, rule="decision", hidden_thresholds=list(thresholds) * (len(sizes) - 2),
                      output_threshold=output_threshold)
    else:
        model = BS4NN(sizes, rule="s4nn", fact_init=10.0)
    with torch.no_grad():
        for w in model.weights:
            w.copy_(torch.randn(w.shape, generator=gen))
            w[0, 0] = 0.0  # an exact zero must act as +1
        if rule == "decision":
            for p in model.threshold_params:
                p.copy_(torch.randint(1, 12, p.shape, generator=gen).float())
    model.refresh_thresholds()
    return model


def check_against_spec(model, pixels):
    network = model.network((1, pixels.shape[1]))
    assert all(layer.signs[0, 0] == 1 for layer in network.layers)
    spec = reference_spec.run(network, pixels)
    times, logits, t_star = model(torch.from_numpy(encode_pixels(pixels)))
    for k, t in enumerate(times):
        np.testing.assert_array_equal(t.detach().numpy().astype(np.int16), spec.spikes[k], err_msg=f"layer {k}")
    np.testing.assert_array_equal(t_star.detach().numpy().astype(np.int16), spec.first_spike_bin)
    if logits is not None:  # rule "decision": the logits are exactly the decision potentials V(b*)
        np.testing.assert_array_equal(logits.detach().numpy().astype(np.int32), spec.decision_potentials)
    return spec


@pytest.mark.parametrize("rule", ["decision", "s4nn"])
def test_forward_equals_spec_reference_on_random_networks(rule):
    rng = np.random.default_rng(1)
    for seed in range(6):
        sizes = [int(rng.integers(4, 40)), int(rng.integers(2, 30)), int(rng.integers(2, 8))]
        pixels = rng.choice(np.array([0, 0, 1, 64, 128, 200, 254, 255], np.uint8), size=(25, sizes[0]))
        check_against_spec(random_model(sizes, rule, seed), pixels)


def test_forward_equals_spec_reference_on_mnist_784_600_10():
    model = random_model([784, 600, 10], "decision", 3, thresholds=(20.0,), output_threshold=4)
    with torch.no_grad():
        model.weights[0].add_(0.4)  # mostly excitatory, so that hidden and output neurons fire
        model.threshold_params[0].copy_(torch.randint(15, 30, (600,)).float())
    model.refresh_thresholds()
    spec = check_against_spec(model, mnist_test_images(12))
    assert (spec.spikes[0] < T_MAX).any() and (spec.spikes[1] < T_MAX).any()


def test_deep_network_forward_equals_spec():
    rng = np.random.default_rng(5)
    model = random_model([30, 20, 15, 4], "decision", 9, thresholds=(4.0,))
    check_against_spec(model, rng.integers(0, 256, (20, 30)).astype(np.uint8))


def test_threshold_rule_uses_float64():
    assert threshold_from_fact(100, 4.037, 784) == 25
    assert threshold_from_fact(100, 9.065, 600) == 12
    assert threshold_from_fact(100, 4.0, 784) == 26  # V > 25 means V >= 26
    assert threshold_from_fact(100, 0.01, 50) == 51  # clamped to n_in + 1
    # a fact where float32 arithmetic would floor differently: thr/fact just below an integer
    fact = 100 / (7 - 1e-12)
    assert np.floor(np.float32(100) / np.float32(fact)) == 7
    assert threshold_from_fact(100, fact, 784) == 7


def test_s4nn_backward_is_the_temporal_rule():
    rng = np.random.default_rng(2)
    t_in = torch.from_numpy(rng.integers(0, 257, (3, 5)).astype(np.float32))
    weights = torch.from_numpy(rng.normal(size=(5, 4)).astype(np.float32)).requires_grad_()
    fact = torch.tensor(10.0, requires_grad=True)
    thresholds = np.array([1, 2, 2, 6], np.int32)
    t_out = S4NNSpikeTimes.apply(t_in, weights, fact, thresholds)
    upstream = torch.from_numpy(rng.normal(size=(3, 4)).astype(np.float32))
    t_in.requires_grad_()
    t_out = S4NNSpikeTimes.apply(t_in, weights, fact, thresholds)
    (t_out * upstream).sum().backward()
    # by hand from docs/training.md: g = upstream normalised per image, averaged over the batch
    g = upstream.numpy() / np.linalg.norm(upstream.numpy(), axis=1, keepdims=True) / 3
    mask = t_in.detach().numpy()[:, :, None] < t_out.detach().numpy()[:, None, :]  # [t_i < t_j]
    expected_w = -(mask * g[:, None, :]).sum(0)
    expected_in = (mask * g[:, None, :] * weights.detach().numpy()[None]).sum(2)
    np.testing.assert_allclose(weights.grad.numpy(), expected_w, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(t_in.grad.numpy(), expected_in, rtol=1e-5, atol=1e-7)
    signs = signs_of(weights).astype(np.float32)
    np.testing.assert_allclose(fact.grad.numpy(), (expected_w * signs).mean(), rtol=1e-5, atol=1e-8)
    assert torch.equal(normalize_rows(torch.zeros(2, 3)), torch.zeros(2, 3))


def tiny_config(**kw):
    return TrainConfig(dataset="digits", hidden=(24,), epochs=3, seed=4, **kw)


@pytest.mark.parametrize("rule", ["decision", "s4nn"])
def test_resume_is_bit_identical(tmp_path, rule):
    full = train(tiny_config(rule=rule), tmp_path / "full", progress=False)
    train(tiny_config(rule=rule), tmp_path / "split", progress=False, stop_after=2)
    resumed = train(tiny_config(rule=rule), tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(full.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    assert a["epoch"] == b["epoch"] == 3
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert [m["test_strict"] for m in full.metrics] == [m["test_strict"] for m in resumed.metrics]
    assert (tmp_path / "full" / "metrics.json").is_file() and (tmp_path / "full" / "accuracy.png").is_file()


def test_training_learns_and_export_matches_the_model(tmp_path):
    result = train(TrainConfig(dataset="digits", hidden=(40,), epochs=4, seed=0), tmp_path / "run", progress=False)
    best = max(m["val_strict"] for m in result.metrics)
    assert best > 0.5, result.metrics  # chance is 0.1
    artifact = export_checkpoint(result.checkpoint, tmp_path / "model", command="test")
    again = read_artifact(tmp_path / "model")
    network, meta = load_network(result.checkpoint)
    assert again.model_id == artifact.model_id
    assert again.manifest["provenance"]["seed"] == 0 and again.manifest["provenance"]["source"] == "trained"
    for mine, theirs in zip(network.layers, again.network.layers):
        np.testing.assert_array_equal(mine.signs, theirs.signs)
        np.testing.assert_array_equal(mine.thresholds, theirs.thresholds)
    # the exported network scores on the test split what the training history says for its epoch
    from bs4nn.sw import datasets, scoring

    test = datasets.load("digits", "test")
    strict = scoring.score(reference.run(again.network, test.images), test.labels).strict
    assert strict == [m for m in result.metrics if m["epoch"] == meta["epoch"]][0]["test_strict"]


def test_checkpoint_errors(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(ValueError, match="not a bs4nn checkpoint"):
        load_checkpoint(other)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


def test_unknown_rule_refused():
    with pytest.raises(ValueError, match="unknown rule"):
        TrainConfig(rule="hebb")


def test_decision_rule_trains_every_layer_of_a_deep_network():
    model = random_model([30, 20, 15, 4], "decision", 9, thresholds=(3.0,), output_threshold=2)
    pixels = np.random.default_rng(0).integers(0, 256, (32, 30)).astype(np.uint8)
    _, logits, _ = model(torch.from_numpy(encode_pixels(pixels)))
    torch.nn.functional.cross_entropy(0.3 * logits, torch.arange(32) % 4).backward()
    for k, w in enumerate(model.weights):
        assert w.grad is not None and w.grad.abs().sum() > 0, f"layer {k} gets no gradient"
    for k, p in enumerate(model.threshold_params):
        assert p.grad is not None and p.grad.abs().sum() > 0, f"hidden thresholds of layer {k} get no gradient"
