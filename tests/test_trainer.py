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
from bs4nn.sw import train as training
from bs4nn.sw.train import TrainConfig, build_model, load_checkpoint, load_network, split_train_val, train

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


def test_integer_thresholds_from_learned_parameters():
    """Rule "decision": hidden thresholds are the rounded parameters clamped to 1 .. n_in + 1, the output's
    is fixed. Rule "s4nn": floor(thr / fact) + 1 (float64), clamped, per layer or per neuron."""
    model = BS4NN([6, 4, 3], rule="decision", hidden_thresholds=[2.0], output_threshold=2)
    with torch.no_grad():
        model.threshold_params[0].copy_(torch.tensor([-5.0, 2.6, 6.9, 1000.0]))
    model.refresh_thresholds()
    assert model.thresholds(0).tolist() == [1, 3, 7, 7]  # n_in + 1 = 7 is legal (never fires)
    assert model.thresholds(1).tolist() == [2, 2, 2]
    s4nn = BS4NN([6, 4, 3], rule="s4nn", thr=100.0, per_neuron_fact=True)
    with torch.no_grad():
        s4nn.facts[0].copy_(torch.tensor([25.0, 30.0, 1.0, 1000.0]))
        s4nn.facts[1].copy_(torch.tensor([50.0, 40.0, 100.0]))
    s4nn.refresh_thresholds()
    assert s4nn.thresholds(0).tolist() == [5, 4, 7, 1]  # 100/25 = 4 exactly -> 5; floor(3.33) + 1; clamped
    assert s4nn.thresholds(1).tolist() == [3, 3, 2]


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


def test_s4nn_rule_is_strict_in_time():
    """[t_i < t_j] is strict: an input arriving in the very bin its neuron fires, and a silent input (256) to a
    silent neuron (256), get no gradient. Worked by hand on one image, 3 inputs -> 2 neurons, all weights > 0."""
    t_in = torch.tensor([[5.0, 6.0, 256.0]], requires_grad=True)
    weights = torch.tensor([[0.5, 0.25], [1.0, 2.0], [0.75, 1.5]], requires_grad=True)
    fact = torch.tensor(10.0, requires_grad=True)
    thresholds = np.array([1, 3], np.int32)
    t_out = S4NNSpikeTimes.apply(t_in, weights, fact, thresholds)
    # o0 (theta 1): V(5) = 1, fires at 6; o1 (theta 3): V(6) = 2 and input 2 never arrives, so never (256)
    assert t_out.tolist() == [[6.0, 256.0]]
    (t_out * torch.tensor([[3.0, 4.0]])).sum().backward()
    # g = (3, 4) / 5 = (0.6, 0.8); mask [t_i < t_j] = [[1, 1], [0 (6 < 6), 1], [0, 0 (256 < 256)]]
    np.testing.assert_allclose(weights.grad.numpy(), [[-0.6, -0.8], [0.0, -0.8], [0.0, 0.0]], rtol=1e-6)
    # grad_in_i = sum_j w_ij g_j mask_ij = [0.5*0.6 + 0.25*0.8, 2.0*0.8, 0]
    np.testing.assert_allclose(t_in.grad.numpy(), [[0.5, 1.6, 0.0]], rtol=1e-6)
    np.testing.assert_allclose(fact.grad.numpy(), -2.2 / 6, rtol=1e-6)  # mean of grad_w * sign(w), signs all +1


def tiny_config(**kw):
    return TrainConfig(dataset="digits", hidden=(24,), epochs=3, seed=4, **kw)


@pytest.mark.parametrize("rule,ema", [("decision", 0.0), ("s4nn", 0.0), ("decision", 0.9)])
def test_resume_is_bit_identical(tmp_path, rule, ema):
    full = train(tiny_config(rule=rule, ema=ema), tmp_path / "full", progress=False)
    train(tiny_config(rule=rule, ema=ema), tmp_path / "split", progress=False, stop_after=2)
    resumed = train(tiny_config(rule=rule, ema=ema), tmp_path / "split", resume=True, progress=False)
    a = load_checkpoint(full.checkpoint)
    b = load_checkpoint(resumed.checkpoint)
    assert a["epoch"] == b["epoch"] == 3
    for part in ("model", "averaged"):
        assert a[part].keys() == b[part].keys() and bool(a[part]) == (part == "model" or ema > 0)
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), (part, key)
    if ema:  # the averaged network is the evaluated one, and it differs from the raw weights
        last, _ = load_network(full.checkpoint, which="last")
        np.testing.assert_array_equal(last.layers[0].signs, signs_of(a["averaged"]["weights.0"]))
        assert not torch.equal(a["averaged"]["weights.0"], a["model"]["weights.0"])
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


def _fake_scores(val, test, calls):
    def fake_evaluate(model, images, labels, input_shape):
        epoch, is_test = len(calls) // 2 + 1, len(calls) % 2 == 1  # train evaluates val, then test
        calls.append(len(labels))
        rate = (test if is_test else val)[epoch]
        return {"n": len(labels), "strict": rate, "lenient": rate, "first_spike": rate, "no_spike_rate": 0.0,
                "median_first_spike_bin": 100.0}
    return fake_evaluate


def test_a_validation_tie_exports_the_later_epoch(tmp_path, monkeypatch):
    """Epochs 1 and 2 tie on validation (epoch 3 is worse, the test split prefers epoch 1): epoch 2, trained
    longer, is the exported one."""
    monkeypatch.setattr(training, "evaluate", _fake_scores({1: 0.9, 2: 0.9, 3: 0.4}, {1: 0.95, 2: 0.1, 3: 0.2}, []))
    train(TrainConfig(dataset="digits", hidden=(8,), epochs=3, seed=1), tmp_path, progress=False)
    assert load_network(tmp_path / "checkpoint.pt")[1]["epoch"] == 2


def test_exported_epoch_is_chosen_on_validation_never_on_test(tmp_path, monkeypatch):
    """Scores are faked so that validation prefers epoch 1 and the test split epoch 3: the checkpoint's best
    (exported) network must be epoch 1's, the very network a run stopped after epoch 1 ends with."""
    calls = []
    monkeypatch.setattr(training, "evaluate", _fake_scores({1: 0.9, 2: 0.5, 3: 0.4}, {1: 0.1, 2: 0.2, 3: 0.95}, calls))
    config = TrainConfig(dataset="digits", hidden=(8,), epochs=3, seed=1)
    train(config, tmp_path / "full", progress=False)
    assert calls == [120, 360] * 3  # 1437 training images: round(1437 / 12) held out; 360 test images
    network, meta = load_network(tmp_path / "full" / "checkpoint.pt")
    assert meta["epoch"] == 1
    calls.clear()
    train(config, tmp_path / "one", progress=False, stop_after=1)
    epoch1, _ = load_network(tmp_path / "one" / "checkpoint.pt", which="last")
    last, _ = load_network(tmp_path / "full" / "checkpoint.pt", which="last")
    for mine, want, other in zip(network.layers, epoch1.layers, last.layers):
        np.testing.assert_array_equal(mine.signs, want.signs)
        np.testing.assert_array_equal(mine.thresholds, want.thresholds)
    assert any((a.signs != b.signs).any() for a, b in zip(network.layers, last.layers))  # not trivially equal


def test_training_feeds_each_training_image_once_per_epoch_at_bins_255_minus_p(tmp_path, monkeypatch):
    """The training loop encodes pixels itself: over one epoch the model must see every image of the training
    part of the split exactly once (none of the held-out validation images), as input bins 255 - p."""
    seen = []
    real_forward = BS4NN.forward

    def spy(self, in_bins):
        seen.append(in_bins.numpy().copy())
        return real_forward(self, in_bins)

    monkeypatch.setattr(BS4NN, "forward", spy)
    scores = {"strict": 0.5, "lenient": 0.5, "first_spike": 0.5, "no_spike_rate": 0.0, "median_first_spike_bin": 100.0}
    monkeypatch.setattr(training, "evaluate", lambda *args: dict(scores))  # the evaluation is not under test
    train(TrainConfig(dataset="digits", hidden=(8,), epochs=1, seed=2), tmp_path / "run", progress=False)
    from bs4nn.sw import datasets

    images = datasets.load("digits", "train").images.reshape(1437, 64)
    train_idx, _ = split_train_val(1437, 1 / 12, 2)
    expected = 255 - images[train_idx].astype(np.int64)
    got = np.concatenate(seen).astype(np.int64)
    assert got.shape == expected.shape == (1317, 64)
    got_rows, got_counts = np.unique(got, axis=0, return_counts=True)  # the same multiset of rows
    want_rows, want_counts = np.unique(expected, axis=0, return_counts=True)
    assert np.array_equal(got_rows, want_rows) and np.array_equal(got_counts, want_counts)


def test_validation_split_is_a_disjoint_seeded_hold_out():
    train_idx, val_idx = split_train_val(1437, 1 / 12, 4)
    assert len(val_idx) == 120 and len(train_idx) == 1317  # round(119.75)
    assert not set(train_idx.tolist()) & set(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(1437))
    again = split_train_val(1437, 1 / 12, 4)
    assert np.array_equal(again[0], train_idx) and np.array_equal(again[1], val_idx)
    assert not np.array_equal(split_train_val(1437, 1 / 12, 5)[1], val_idx)  # the seed matters
    assert split_train_val(10, 0.0, 4)[1].size == 0


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


def test_fused_shift_and_coding_equals_shift_images_then_255_minus_p():
    """The training step's numba shift + input coding draws the same offsets and gives the same bins as
    `shift_images` followed by t = 255 - p (zero fill = bin 255), for shifts 0, 1 and 2."""
    images = torch.from_numpy(np.random.default_rng(3).integers(0, 256, (40, 7, 9)).astype(np.uint8))
    images[0] = 255  # an all-white image shows the zero fill at the border
    for shift in (0, 1, 2):
        for flip in (False, True):
            a, b = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
            want = 255 - training.shift_images(images, shift, a, flip).reshape(40, -1).to(torch.int16)
            got = training.shifted_input_bins(images, shift, b, flip)
            assert got.dtype == torch.int16
            assert torch.equal(got, want), (shift, flip)
            assert torch.equal(a.get_state(), b.get_state())  # the same random draws
            if shift:
                assert (got[0] == 255).any() and (got[0] == 0).any()
    # mirrors: without a shift every image comes back as itself or as its mirror image, and both occur
    out = 255 - training.shifted_input_bins(images, 0, torch.Generator().manual_seed(1), True).reshape(40, 7, 9)
    same = (out == images.to(torch.int16)).flatten(1).all(1)
    mirrored = (out == images.flip(2).to(torch.int16)).flatten(1).all(1)
    assert bool((same | mirrored).all()) and 0 < int(mirrored.sum()) < 40 and 0 < int(same.sum()) < 40


def test_sparse_first_layer_equals_dense_products():
    """Forward V(cut) and backward d loss / d W of the first layer's sparse numba sums equal the dense
    [t_i <= cut] @ sign(W) and [t_i <= cut]^T @ g, with signs 0 -> +1 (also -0.0)."""
    from bs4nn.sw.model import InputPotentials, hard_signs

    rng = np.random.default_rng(11)
    w = torch.from_numpy(rng.normal(size=(50, 13)).astype(np.float32))
    w[0, 0], w[1, 1] = 0.0, -0.0
    signs = hard_signs(w)
    assert signs[0, 0] == 1 and signs[1, 1] == 1 and set(signs.unique().tolist()) == {-1, 1}
    np.testing.assert_array_equal(signs.numpy(), np.where(w.numpy() >= 0, 1, -1))
    bins = rng.integers(0, 257, (17, 50)).astype(np.int16)
    cut = rng.integers(-1, 256, 17).astype(np.int64)
    cut[0], cut[1] = -1, 255  # nothing arrived / everything below T_MAX arrived
    w.requires_grad_(True)
    got = InputPotentials.apply(w, bins, cut, signs.numpy())
    arrived = torch.from_numpy((bins <= cut[:, None]).astype(np.float32))
    np.testing.assert_array_equal(got.detach().numpy(), (arrived @ signs.float()).numpy())
    assert (got[0] == 0).all()
    g = torch.from_numpy(rng.normal(size=(17, 13)).astype(np.float32))
    (got * g).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), (arrived.t() @ g).numpy(), rtol=1e-5, atol=1e-5)


def test_clipped_adam_is_torch_adam_then_clamp():
    """The fused numba update equals torch's Adam followed by clamp_(-1, 1) on the clipped group (and no
    clamp on the other), step after step, and its state survives a state_dict round trip."""
    from bs4nn.sw.model import ClippedAdam

    rng = np.random.default_rng(2)
    start = [torch.from_numpy(rng.uniform(-1, 1, (30, 7)).astype(np.float32)),
             torch.from_numpy(rng.normal(20, 3, 7).astype(np.float32))]
    ours = [torch.nn.Parameter(t.clone()) for t in start]
    theirs = [torch.nn.Parameter(t.clone()) for t in start]
    opt = ClippedAdam([{"params": [ours[0]], "clip": 1.0}, {"params": [ours[1]], "lr": 0.05, "clip": None}], lr=0.02)
    ref = torch.optim.Adam([{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.05}], lr=0.02)
    for step in range(25):
        grads = [torch.from_numpy(rng.normal(0, 1, tuple(t.shape)).astype(np.float32)) for t in start]
        grads[0][0] = 3.0  # a row pushed steadily down: it must stop at -1
        for p, q, g in zip(ours, theirs, grads):
            p.grad, q.grad = g.clone(), g.clone()
        opt.step()
        ref.step()
        with torch.no_grad():
            theirs[0].clamp_(-1.0, 1.0)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=1e-4, atol=2e-5, err_msg=f"step {step}")
    assert ours[0].detach().abs().max() <= 1.0 and (ours[0][0].detach() == -1.0).sum() >= 2  # clipped ones
    again = ClippedAdam([{"params": [ours[0]], "clip": 1.0}, {"params": [ours[1]], "clip": None}], lr=0.02)
    again.load_state_dict(opt.state_dict())
    assert float(again.state[ours[0]]["step"]) == 25
    assert torch.equal(again.state[ours[0]]["exp_avg"], opt.state[ours[0]]["exp_avg"])


def test_affine_warp_resamples_exactly_and_reproducibly():
    """`kernels.warped_bins`: the identity map gives t = 255 - p, an integer offset gives the shifted image
    (zero filled), a half-pixel offset the rounded average of two neighbours; `augmented_input_bins` with
    rotate / scale draws its maps from the generator (same seed, same bins) and falls back to the integer
    shifts without them."""
    from bs4nn.sw import kernels

    images = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (6, 7, 9)).astype(np.uint8))
    plain = 255 - images.reshape(6, -1).to(torch.int16)
    maps = torch.zeros(6, 2, 3)
    maps[:, 0, 0] = maps[:, 1, 1] = 1.0
    out = np.empty((6, 63), np.int16)
    kernels.warped_bins(images.numpy(), maps.numpy(), np.zeros((1, 2, 7, 9), np.float32), np.zeros(6, np.int64), out)
    assert torch.equal(torch.from_numpy(out), plain)
    maps[:, 0, 2], maps[:, 1, 2] = 2.0, -1.0  # output (r, c) samples source (r + 2, c - 1)
    kernels.warped_bins(images.numpy(), maps.numpy(), np.zeros((1, 2, 7, 9), np.float32), np.zeros(6, np.int64), out)
    want = np.zeros((6, 7, 9), np.int64)
    want[:, :5, 1:] = images.numpy()[:, 2:, :8]
    assert (out == 255 - want.reshape(6, -1)).all()
    maps[:, 0, 2], maps[:, 1, 2] = 0.0, 0.5
    kernels.warped_bins(images.numpy(), maps.numpy(), np.zeros((1, 2, 7, 9), np.float32), np.zeros(6, np.int64), out)
    src = images.numpy().astype(np.int64)
    half = np.zeros((6, 7, 9), np.int64)
    half[:, :, :8] = (src[:, :, :8] + src[:, :, 1:] + 1) // 2
    half[:, :, 8] = (src[:, :, 8] + 1) // 2
    assert (out == 255 - half.reshape(6, -1)).all()
    config = training.TrainConfig(dataset="mnist", shift=1, rotate=8.0, scale=0.1)
    a = training.augmented_input_bins(images, config, torch.Generator().manual_seed(3))
    b = training.augmented_input_bins(images, config, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(a, plain)
    shifted = training.augmented_input_bins(images, training.TrainConfig(shift=1), torch.Generator().manual_seed(3))
    assert torch.equal(shifted, training.shifted_input_bins(images, 1, torch.Generator().manual_seed(3)))
    # a mirrored warp without rotation or zoom is the mirror image
    mirrored = training.warp_matrices(6, 0, 0.0, 0.0, torch.Generator().manual_seed(2), flip=True)
    kernels.warped_bins(images.numpy(), mirrored.numpy(), np.zeros((1, 2, 7, 9), np.float32), np.zeros(6, np.int64), out)
    flipped = mirrored[:, 1, 1] < 0
    assert 0 < int(flipped.sum()) < 6
    want = torch.where(flipped[:, None, None], images.flip(2), images).reshape(6, -1).to(torch.int16)
    assert torch.equal(torch.from_numpy(out), 255 - want)


def test_training_steps_run_on_the_configured_threads_and_restore_them(monkeypatch):
    """step_threads: one thread by default (torch and numba), $BS4NN_TRAIN_THREADS otherwise, the previous
    counts restored afterwards; a value that is not a positive number is refused by name."""
    import numba

    before = torch.get_num_threads(), numba.get_num_threads()
    monkeypatch.delenv(training.TRAIN_THREADS_ENV, raising=False)
    with training.step_threads() as n:
        assert n == 1 and torch.get_num_threads() == 1 and numba.get_num_threads() == 1
    assert (torch.get_num_threads(), numba.get_num_threads()) == before
    monkeypatch.setenv(training.TRAIN_THREADS_ENV, "2")
    with training.step_threads() as n:
        assert n == min(2, numba.config.NUMBA_NUM_THREADS) == numba.get_num_threads()
    monkeypatch.setenv(training.TRAIN_THREADS_ENV, "zero")
    with pytest.raises(ValueError, match="BS4NN_TRAIN_THREADS"):
        with training.step_threads():
            pass


def test_elastic_fields_are_seeded_smooth_displacements_the_warp_applies():
    """elastic_fields: alpha 0 is one zero field; otherwise a seeded bank of smooth fields (neighbouring
    displacements nearly equal, strength proportional to alpha). warped_bins adds the field to the source
    point: a constant field of (2, -1) is the integer shift."""
    from bs4nn.sw import kernels

    assert not training.elastic_fields(0.0, 7, 9, 0).any()
    bank = training.elastic_fields(10.0, 28, 28, 0)
    assert bank.shape == (training.ELASTIC_FIELDS, 2, 28, 28) and bank.dtype == np.float32
    np.testing.assert_array_equal(bank, training.elastic_fields.__wrapped__(10.0, 28, 28, 0))
    assert not np.array_equal(bank, training.elastic_fields.__wrapped__(10.0, 28, 28, 1))
    np.testing.assert_allclose(training.elastic_fields.__wrapped__(20.0, 28, 28, 0), 2 * bank, rtol=1e-5, atol=1e-6)
    step = np.abs(np.diff(bank, axis=3)).mean()
    assert step < 0.25 * bank.std()  # smooth: far smaller changes from pixel to pixel than across the field
    images = torch.from_numpy(np.random.default_rng(4).integers(0, 256, (6, 7, 9)).astype(np.uint8))
    identity = torch.zeros(6, 2, 3)
    identity[:, 0, 0] = identity[:, 1, 1] = 1.0
    constant = np.zeros((1, 2, 7, 9), np.float32)
    constant[0, 0], constant[0, 1] = 2.0, -1.0
    out = np.empty((6, 63), np.int16)
    kernels.warped_bins(images.numpy(), identity.numpy(), constant, np.zeros(6, np.int64), out)
    want = np.zeros((6, 7, 9), np.int64)
    want[:, :5, 1:] = images.numpy()[:, 2:, :8]
    assert (out == 255 - want.reshape(6, -1)).all()


def _independent_choice(raw_network, images, labels, search, limit):
    """The output threshold offset as the spec says, computed on Network objects (not the model)."""
    import dataclasses

    from bs4nn.sw import scoring

    rows = []
    for offset in range(search + 1):
        last = raw_network.layers[-1]
        layer = dataclasses.replace(last, thresholds=np.minimum(last.thresholds + offset, last.signs.shape[0] + 1))
        network = dataclasses.replace(raw_network, layers=(*raw_network.layers[:-1], layer))
        scores = scoring.score(reference.run(network, images), labels)
        rows.append((offset, scores.strict, scores.no_spike_rate))
    allowed = [r for r in rows if r[2] <= limit] or rows[:1]
    return max(allowed, key=lambda r: (r[1], -r[0]))[0], rows


def test_output_threshold_choice_is_the_best_validation_score_under_the_no_spike_limit():
    """choose_output_threshold against an independent scan over Network copies, at limits that bind and one
    that does not; the model is left as it was."""
    from bs4nn.sw import datasets

    data = datasets.load("digits", "train")
    model = random_model([64, 30, 10], "decision", seed=3, thresholds=(6.0,), output_threshold=3)
    images, labels = data.images[:300], data.labels[:300]
    before = model.thresholds(1).clone()
    _, rows = _independent_choice(model.network((8, 8)), images, labels, 12, 1.0)
    rates = sorted({r[2] for r in rows})
    assert len(rates) > 2  # the offsets change the no-spike rate, so the limits below bind
    for limit in (rates[0], rates[len(rates) // 2], 1.0):
        want, _ = _independent_choice(model.network((8, 8)), images, labels, 12, limit)
        got, got_rows = training.choose_output_threshold(model, images, labels, (8, 8), 12, limit)
        assert got == want, (limit, rows)
        assert [(r["offset"], r["strict"], r["no_spike_rate"]) for r in got_rows] == rows
        assert torch.equal(model.thresholds(1), before)


def test_chosen_output_threshold_is_exported_and_a_resumed_run_chooses_anew(tmp_path):
    """The checkpoint keeps the best epoch as trained and the offset beside it; load_network and the artifact
    carry threshold + offset; a resumed run scans from the trained threshold again (no offset on an offset)."""
    from bs4nn.sw import datasets

    config = tiny_config(output_threshold_search=8, max_no_spike=1.0, output_threshold=4)
    result = train(config, tmp_path / "full", progress=False)
    state = load_checkpoint(result.checkpoint)
    base = int(state["best"]["model"]["output_threshold"])
    assert base == result.config.output_threshold
    chosen = state["best"]["output_threshold_offset"]
    assert result.output_threshold_offset == chosen and chosen > 0  # (1 on this seed: a raised threshold is exported)
    raw = build_model(result.config, 64, torch.Generator().manual_seed(0))
    raw.load_state_dict(state["best"]["model"])
    data = datasets.load("digits", "train")
    _, val_idx = split_train_val(len(data.labels), config.val_fraction, config.seed)
    want, _ = _independent_choice(raw.network((8, 8)), data.images[val_idx], data.labels[val_idx], 8, 1.0)
    assert chosen == want
    network, _ = load_network(result.checkpoint)
    assert set(network.layers[-1].thresholds) == {min(base + chosen, 25)}
    export_checkpoint(result.checkpoint, tmp_path / "model", command="test")
    np.testing.assert_array_equal(read_artifact(tmp_path / "model").network.layers[-1].thresholds,
                                  network.layers[-1].thresholds)
    train(config, tmp_path / "split", progress=False, stop_after=2)
    resumed = train(config, tmp_path / "split", resume=True, progress=False)
    again = load_checkpoint(resumed.checkpoint)
    assert int(again["best"]["model"]["output_threshold"]) == base
    assert again["best"]["output_threshold_offset"] == chosen
