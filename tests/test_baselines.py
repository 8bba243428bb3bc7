"""The comparison baselines: the real-valued forward kernel is the per-bin semantics, both baselines learn."""
from __future__ import annotations

import json

import numpy as np
import pytest

from bs4nn.sw import baselines
from bs4nn.sw.semantics import T_MAX

RESULT_KEYS = {"model", "dataset", "seed", "epochs", "test_accuracy", "val_accuracy", "seconds", "history"}


def literal_forward(bins, weights, thresholds):
    """One image, read literally: for every bin t, V(t) = sum of w_ji over inputs with t_i <= t (summed
    in float32, bin by bin and in input order within a bin, the kernel's documented order), compared at
    the end of every bin; fire at t + 1 (256 = never). Returns (spike bins per layer, decision, t*, V(b*))."""
    layer_bins = []
    history = None
    for w, theta in zip(weights, thresholds):
        fired = np.full(w.shape[1], T_MAX, np.int64)
        history = np.zeros((T_MAX, w.shape[1]), np.float32)
        arrival = sorted(range(len(bins)), key=lambda i: (bins[i], i))
        for t in range(T_MAX):
            v = np.zeros(w.shape[1], np.float32)
            for i in arrival:
                if bins[i] <= t:
                    v = v + w[i]
            history[t] = v
            crossing = (v >= theta) & (fired == T_MAX)
            fired[crossing] = t + 1
        layer_bins.append(fired)
        bins = fired
    out = layer_bins[-1]
    t_star = int(out.min())
    if t_star < T_MAX:
        v = history[t_star - 1]
        candidates = [j for j in range(len(out)) if out[j] == t_star]
        best = max(v[j] for j in candidates)
        winner = min(j for j in candidates if v[j] == best)
    else:
        v = history[T_MAX - 1]
        winner = int(np.argmax(v))
    return layer_bins, winner, t_star, v


def check(in_bins, weights, thresholds):
    fast = baselines.run_real(in_bins, weights, thresholds)
    serial = baselines.run_real(in_bins, weights, thresholds, parallel=False)
    for k in range(len(weights)):
        np.testing.assert_array_equal(serial.spikes[k], fast.spikes[k])
    np.testing.assert_array_equal(serial.decision, fast.decision)
    stats = {"ties": 0, "potential_ties": 0, "no_spike": 0, "late_hidden": 0}
    for b in range(len(in_bins)):
        spikes, winner, t_star, v = literal_forward(in_bins[b].astype(np.int64), weights, thresholds)
        for k, s in enumerate(spikes):
            np.testing.assert_array_equal(fast.spikes[k][b], s, err_msg=f"image {b} layer {k}")
        assert fast.first_spike_bin[b] == t_star, b
        assert fast.decision[b] == winner, b
        np.testing.assert_array_equal(fast.decision_potentials[b], v, err_msg=f"image {b}")
        out = spikes[-1]
        if t_star == T_MAX:
            stats["no_spike"] += 1
        elif (out == t_star).sum() > 1:
            stats["ties"] += 1
            top = v[out == t_star]
            stats["potential_ties"] += int((top == top.max()).sum() > 1)
        stats["late_hidden"] += int(any((s == T_MAX - 1).any() for s in spikes[:-1]))
    return stats


def random_case(rng, n_in, hidden, n_out, n_images, dyadic, output_threshold):
    levels = np.array([0, 0, 1, 5, 55, 128, 200, 240, 250, 254, 255, 255], np.int16)  # few bins: same-bin events
    bins = 255 - rng.choice(levels, size=(n_images, n_in))
    if dyadic:  # multiples of 1/4: sums are exact, so equal potentials (ties) are common
        w1 = rng.integers(-4, 9, size=(n_in, hidden)) / 4
        w2 = rng.integers(-4, 9, size=(hidden, n_out)) / 4
        th1 = rng.integers(1, 16, size=hidden) / 4
    else:
        w1 = rng.normal(0.3, 1.0, size=(n_in, hidden))
        w2 = rng.normal(0.3, 1.0, size=(hidden, n_out))
        th1 = rng.uniform(0.1, 5.0, size=hidden)
    th2 = np.full(n_out, output_threshold)
    cast = lambda x: np.asarray(x, np.float32)  # noqa: E731
    return bins.astype(np.int16), [cast(w1), cast(w2)], [cast(th1), cast(th2)]


def test_real_forward_equals_literal_per_bin_loop():
    rng = np.random.default_rng(1234)
    totals = {"ties": 0, "potential_ties": 0, "no_spike": 0, "late_hidden": 0}
    for case in range(8):
        dyadic = case % 2 == 0
        bins, w, th = random_case(rng, n_in=24, hidden=10, n_out=4, n_images=12, dyadic=dyadic,
                                  output_threshold=[1.0, 2.5, 6.0, 40.0][case % 4])
        stats = check(bins, w, th)
        totals = {k: totals[k] + stats[k] for k in totals}
    # the random cases exercise what matters: same-bin ties at t*, equal potentials, no output spike
    assert totals["ties"] > 0 and totals["potential_ties"] > 0 and totals["no_spike"] > 0, totals


def test_real_forward_hand_made_edge_cases():
    # two identical output neurons: the tie at t* goes to the lower index; a crossing inside bin 255 is
    # "never"; bin-255 hidden events count for the no-spike fallback V(255); a potential that crosses
    # and falls back within one bin does not fire.
    w1 = np.array([[1.0, 0.0, 2.0], [1.0, 5.0, -2.0], [0.0, 0.0, 0.0]], np.float32)
    th1 = np.array([2.0, 5.0, 1.0], np.float32)
    w2 = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 3.0], [9.0, 9.0, 0.0]], np.float32)
    th2 = np.array([0.5, 0.5, 3.0], np.float32)
    bins = np.array([[10, 10, 0],     # hidden 0 fires at 11, hidden 1 at 11; outputs 0, 1 and 2 all at 12
                     [T_MAX, 254, 0],  # hidden 1 crosses in bin 254: spike at 255, an event only for V(255)
                     [255, 255, 255],  # nothing can fire: inputs at 255 never make a neuron fire
                     [5, 5, T_MAX]],   # hidden 2: +2 - 2 in the same bin never crosses; no input at all
                    np.int16)
    check(bins, [w1, w2], [th1, th2])
    out = baselines.run_real(bins, [w1, w2], [th1, th2])
    assert out.spikes[0][1].tolist() == [T_MAX, 255, T_MAX] and out.spikes[1][1].tolist() == [T_MAX] * 3
    assert out.decision[1] == 2 and out.decision_potentials[1].tolist() == [0.0, 0.0, 3.0]  # V(255) fallback
    assert out.spikes[0][2].tolist() == [T_MAX] * 3 and out.decision[2] == 0
    assert out.spikes[0][3][2] == T_MAX
    first = out.spikes[1][0]
    assert first[0] == first[1] == first[2] == 12 and out.decision[0] == 2  # ties by highest V(t*-1)
    w2_tie = w2.copy()
    w2_tie[:, 2] = -1.0
    out = baselines.run_real(bins[:1], [w1, w2_tie], [th1, th2])
    assert out.first_spike_bin[0] == 12 and out.decision[0] == 0  # equal potentials: lowest index


def test_real_forward_float32_random_weights_in_order():
    rng = np.random.default_rng(7)
    bins = rng.integers(0, 257, size=(6, 40)).astype(np.int16)  # includes "no event" (256) inputs
    w = [rng.normal(0.05, 0.3, size=(40, 16)).astype(np.float32), rng.normal(0.1, 0.5, size=(16, 3)).astype(np.float32)]
    th = [rng.uniform(0.2, 2.0, size=16).astype(np.float32), np.full(3, 1.5, np.float32)]
    check(bins, w, th)
    with pytest.raises(ValueError):
        baselines.run_real(bins, w[:1], th)


@pytest.mark.parametrize("trainer", [baselines.train_s4nn_real, baselines.train_binary_ann])
def test_baseline_learns_digits_and_is_deterministic(trainer):
    result = trainer("digits", None, hidden=32, epochs=3, seed=0, progress=False)
    assert RESULT_KEYS <= set(result)
    assert result["model"] == ("s4nn-real" if trainer is baselines.train_s4nn_real else "binary-ann")
    assert len(result["history"]) == 3 and result["test_accuracy"] > 0.5, result["history"]
    best = max(result["history"], key=lambda h: (h["val_accuracy"], -h["epoch"]))
    assert result["test_accuracy"] == best["test_accuracy"] and result["val_accuracy"] == best["val_accuracy"]
    again = trainer("digits", None, hidden=32, epochs=1, seed=0, progress=False)
    first = trainer("digits", None, hidden=32, epochs=1, seed=0, progress=False)
    assert [h["loss"] for h in again["history"]] == [h["loss"] for h in first["history"]]
    assert again["test_accuracy"] == first["test_accuracy"]


def test_run_baselines_writes_json(tmp_path):
    out = tmp_path / "sub" / "baselines.json"
    summary = baselines.run_baselines("digits", None, seeds=[1], epochs=1, json_out=out, hidden=16, progress=False)
    data = json.loads(out.read_text())
    assert data == json.loads(json.dumps(summary))
    assert [r["model"] for r in data["runs"]] == ["s4nn-real", "binary-ann"]
    assert set(data["summary"]) == {"s4nn-real", "binary-ann"}
    assert [p.name for p in out.parent.iterdir()] == ["baselines.json"]  # no temp file left behind
