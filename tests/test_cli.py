"""The `bs4nn` command line (eval, import-reference, help, errors) and the top-level Python API.

train and export are exercised with the trainer's own tests.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bs4nn.cli import main
from bs4nn.export.artifact import read_artifact, write_artifact
from bs4nn.export.dump import read_dump
from bs4nn.export.importer import import_reference
from bs4nn.sw import datasets, reference, reference_spec
from bs4nn.sw.network import random_network
from bs4nn.sw.scoring import score

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "datasets"
PROV = {"command": "pytest", "seed": 0, "commit": None, "source": "trained"}
COMMANDS = ("train", "export", "import-reference", "eval")
SCORE_KEYS = ("n", "strict", "lenient", "first_spike", "no_spike_rate")


def digits_network():
    return random_network([64, 20, 10], np.random.default_rng(0), input_shape=(8, 8), threshold_range=(1, 10))


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "digits"
    write_artifact(path, digits_network(), "digits", PROV)
    return path


@pytest.fixture(scope="module")
def digits_test():
    return datasets.load("digits", "test")


def run_cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_error_line(err: str, command: str, *words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"bs4nn {command}: error: "), err
    assert "Traceback" not in err
    for word in words:
        assert word in lines[0], (word, lines[0])


# ----------------------------------------------------------------------------- help and API

@pytest.mark.parametrize("command", (None, *COMMANDS))
def test_help_shows_an_example(capsys, command):
    argv = ["--help"] if command is None else [command, "--help"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "Example" in out
    assert "bs4nn" in out


def test_python_m_bs4nn_and_one_line_errors(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "bs4nn", "eval", "--help"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0 and "Example" in ok.stdout
    missing = tmp_path / "no-such-model"
    bad = subprocess.run([sys.executable, "-m", "bs4nn", "eval", "--model", str(missing), "--dataset", "digits"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2
    assert_one_error_line(bad.stderr, "eval", str(missing))
    assert bad.stdout == ""
    usage = subprocess.run([sys.executable, "-m", "bs4nn"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1


def test_cli_datasets_are_the_loaders():
    from bs4nn import cli

    assert set(cli.DATASETS) == set(datasets.DATASETS)


def test_top_level_api_does_not_import_torch():
    code = (
        "import sys, numpy as np, bs4nn\n"
        "net = bs4nn.Network\n"
        "d = bs4nn.load_dataset('digits', 'test')\n"
        "from bs4nn.sw.network import random_network\n"
        "n = random_network([64, 5, 10], np.random.default_rng(1), input_shape=(8, 8))\n"
        "r = bs4nn.run_reference(n, d.images[:5])\n"
        "s = bs4nn.score(r, d.labels[:5])\n"
        "assert bs4nn.encode(np.array([255, 0], np.uint8)).tolist() == [0, 255]\n"
        "assert callable(bs4nn.load_artifact) and s.n == 5\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "print(bs4nn.__version__)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    import bs4nn

    assert {"load_artifact", "load_dataset", "encode", "run_reference", "score", "Network"} <= set(dir(bs4nn))
    assert "bs4nn.load_artifact(" in bs4nn.__doc__


# ----------------------------------------------------------------------------- eval

def test_eval_json_and_dump_equal_the_reference(capsys, tmp_path, digits_model, digits_test):
    out_json, out_npz = tmp_path / "out" / "eval.json", tmp_path / "out" / "spikes.npz"
    code, out, err = run_cli(capsys, "eval", "--model", digits_model, "--dataset", "digits", "--limit", 50,
                             "--json", out_json, "--dump-spikes", out_npz)
    assert code == 0, err
    assert err == ""
    for word in ("strict", "lenient", "first-spike", "no-spike", "images/s", read_artifact(digits_model).id32):
        assert word in out

    images, labels = digits_test.images[:50], digits_test.labels[:50]
    network = read_artifact(digits_model).network
    expected = reference.run(network, images)
    scores = score(expected, labels).as_dict()
    report = json.loads(out_json.read_text())
    for key in SCORE_KEYS:
        assert report[key] == scores[key], key
    assert report["n"] == 50
    assert report["model_id"] == read_artifact(digits_model).model_id
    assert report["dataset"] == "digits" and report["split"] == "test"
    assert report["median_first_spike_bin"] == float(np.median(expected.first_spike_bin))
    assert report["images_per_s"] > 0
    assert sorted(p.name for p in out_json.parent.iterdir()) == ["eval.json", "spikes.npz"]  # no temp files left

    dump = read_dump(out_npz)
    assert len(dump.spikes) == len(expected.spikes)
    for got, want in zip(dump.spikes, expected.spikes):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(dump.decision, expected.decision)
    np.testing.assert_array_equal(dump.first_spike_bin, expected.first_spike_bin)
    np.testing.assert_array_equal(dump.labels, labels)
    assert dump.config["model_id"] == report["model_id"]
    assert dump.config["dataset"] == "digits" and dump.config["split"] == "test"


def test_eval_spec_reference_and_train_split(capsys, tmp_path, digits_model):
    out_json = tmp_path / "spec.json"
    code, _, err = run_cli(capsys, "eval", "--model", digits_model, "--dataset", "digits", "--split", "train",
                           "--limit", 8, "--reference", "spec", "--json", out_json)
    assert code == 0, err
    train = datasets.load("digits", "train")
    network = read_artifact(digits_model).network
    scores = score(reference_spec.run(network, train.images[:8]), train.labels[:8]).as_dict()
    report = json.loads(out_json.read_text())
    assert {k: report[k] for k in SCORE_KEYS} == scores
    assert report["split"] == "train" and report["reference"] == "spec"


def test_eval_reports_each_score_under_its_own_name(capsys, tmp_path, digits_test):
    """A one-layer 64 -> 10 model, all weights +1, all thresholds theta: every output neuron has the same
    potential at every bin, so V(254) = the number of non-black pixels. An image with at least theta of them
    makes all ten neurons spike together (a tie decided by the lowest index: 0); one with fewer spikes never
    (fallback argmax V(255) over equal potentials: 0 again). The four scores follow from pixels and labels."""
    from bs4nn.sw.network import Layer, Network

    n = 200
    images, labels = digits_test.images[:n].reshape(n, -1), digits_test.labels[:n].astype(int)
    ink = (images > 0).sum(axis=1)
    theta = int(np.median(ink))
    model = tmp_path / "ties"
    write_artifact(model, Network((Layer(np.ones((64, 10), np.int8), np.full(10, theta)),), (8, 8)), "digits", PROV)
    spikes, zero = ink >= theta, labels == 0
    expected = {"n": n, "strict": zero.mean(), "lenient": (spikes | zero).mean(),
                "first_spike": (spikes & zero).mean(), "no_spike_rate": (~spikes).mean()}
    assert len({round(v, 6) for k, v in expected.items() if k != "n"}) == 4  # four different numbers
    out_json = tmp_path / "eval.json"
    code, out, err = run_cli(capsys, "eval", "--model", model, "--dataset", "digits", "--limit", n, "--json", out_json)
    assert code == 0, err
    report = json.loads(out_json.read_text())
    for key, value in expected.items():
        assert report[key] == pytest.approx(value, abs=1e-12), key
    printed = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.strip()}
    for key, label in (("strict", "strict"), ("lenient", "lenient"), ("first_spike", "first-spike"),
                       ("no_spike_rate", "no-spike")):
        assert printed[label] == f"{100 * expected[key]:.2f}%", (label, printed[label])


@pytest.mark.parametrize("choice", ["spec", "fast"])
def test_eval_reference_option_selects_the_runner(capsys, monkeypatch, digits_model, choice):
    used = []

    def spy(name, real):
        def run(network, images, *args, **kwargs):
            used.append((name, len(images)))
            return real(network, images, *args, **kwargs)
        return run

    monkeypatch.setattr(reference_spec, "run", spy("spec", reference_spec.run))
    monkeypatch.setattr(reference, "run", spy("fast", reference.run))
    code, _, err = run_cli(capsys, "eval", "--model", digits_model, "--dataset", "digits", "--limit", 6,
                           "--reference", choice)
    assert code == 0, err
    assert {name for name, _ in used} == {choice} and (choice, 6) in used


def test_eval_warns_when_the_model_was_made_for_another_dataset(capsys, tmp_path):
    model = tmp_path / "model"
    write_artifact(model, digits_network(), "fashion-mnist", PROV)  # 8x8, but named for another dataset
    code, out, err = run_cli(capsys, "eval", "--model", model, "--dataset", "digits", "--limit", 5)
    assert code == 0
    assert err.startswith("bs4nn eval: warning:") and "fashion-mnist" in err and "digits" in err
    assert "strict" in out


def _tampered(tmp_path, digits_model):
    copy = tmp_path / "tampered"
    copy.mkdir()
    for f in digits_model.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    hex_file = copy / "layer0.hex"
    data = bytearray(hex_file.read_bytes())
    data[0] = ord("0") if data[0] != ord("0") else ord("1")
    hex_file.write_bytes(bytes(data))
    return copy


def _mnist_shaped(tmp_path):
    model = tmp_path / "mnist-model"
    net = random_network([784, 12, 10], np.random.default_rng(3), input_shape=(28, 28), threshold_range=(1, 30))
    write_artifact(model, net, "mnist", PROV)
    return model


@pytest.mark.parametrize("case, argv, words", [
    ("unknown dataset", ["--dataset", "cifar10"], ["cifar10"]),
    ("missing model", ["--model", "{tmp}/no-such-model"], ["no-such-model"]),
    ("tampered artifact", ["--model", "{tampered}"], ["layer0.hex"]),
    ("shape mismatch", ["--model", "{mnist_model}"], ["input shape mismatch", "28x28", "8x8"]),
    ("limit zero", ["--limit", "0"], ["--limit", "'0'"]),
    ("limit negative", ["--limit", "-3"], ["--limit"]),
    ("limit not a number", ["--limit", "ten"], ["--limit", "ten"]),
    ("bad split", ["--split", "validation"], ["validation"]),
    ("json into a directory", ["--json", "{tmp}/out"], ["out"]),
])
def test_eval_errors_exit_2_and_write_nothing(capsys, tmp_path, digits_model, case, argv, words):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "keep").write_text("")  # so "--json {tmp}/out" is a non-empty directory
    slots = {"tmp": tmp_path}
    if "{tampered}" in argv:
        slots["tampered"] = _tampered(tmp_path, digits_model)
    if "{mnist_model}" in argv:
        slots["mnist_model"] = _mnist_shaped(tmp_path)
    argv = [a.format(**slots) for a in argv]
    base = {"--model": str(digits_model), "--dataset": "digits",
            "--json": str(out_dir / "eval.json"), "--dump-spikes": str(out_dir / "spikes.npz")}
    for key, value in zip(argv[::2], argv[1::2]):
        base[key] = value
    full = ["eval"] + [x for pair in base.items() for x in pair]
    code, out, err = run_cli(capsys, *full)
    assert code == 2, (case, out, err)
    assert_one_error_line(err, "eval", *words)
    assert sorted(p.name for p in out_dir.iterdir()) == ["keep"]  # nothing written, no temp files


def test_eval_digits_model_on_mnist_is_a_shape_error(capsys, tmp_path, digits_model):
    if not (SHARED_DATA / "mnist" / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip(f"{SHARED_DATA}/mnist not present")
    out_json = tmp_path / "eval.json"
    code, _, err = run_cli(capsys, "eval", "--model", digits_model, "--dataset", "mnist", "--data-dir", SHARED_DATA,
                           "--limit", 10, "--json", out_json)
    assert code == 2
    assert_one_error_line(err, "eval", "input shape mismatch", "8x8", "28x28")
    assert not out_json.exists()


# ----------------------------------------------------------------------------- import-reference

def _authors_like_weights(tmp_path, rng):
    w0 = rng.normal(size=(20, 64)).astype(np.float32)  # (n_out, n_in) as the authors stored them
    w1 = rng.normal(size=(10, 20, 1)).astype(np.float32)
    paths = [tmp_path / "w0.npy", tmp_path / "w1.npy"]
    np.save(paths[0], w0)
    np.save(paths[1], w1)
    return [w0, w1], paths


def test_import_reference_round_trip(capsys, tmp_path):
    weights, paths = _authors_like_weights(tmp_path, np.random.default_rng(5))
    out = tmp_path / "imported"
    code, stdout, err = run_cli(capsys, "import-reference", "--weights", *paths, "--fact", "4.037", "9.065",
                                "--thr", "100", "--dataset-name", "digits", "--out", out, "--eval-dataset", "digits")
    assert code == 0, err
    artifact = read_artifact(out)
    want = import_reference(weights, [4.037, 9.065], thr=100.0)
    assert artifact.network.input_shape == (8, 8)
    for got, exp in zip(artifact.network.layers, want.layers, strict=True):
        np.testing.assert_array_equal(got.signs, exp.signs)
        np.testing.assert_array_equal(got.thresholds, exp.thresholds)
    assert artifact.network.layers[0].thresholds[0] == 25  # floor(100 / 4.037) + 1
    assert artifact.dataset_name == "digits"
    provenance = artifact.manifest["provenance"]
    assert provenance["source"] == "imported" and provenance["seed"] is None
    assert "import-reference" in provenance["command"]
    test = datasets.load("digits", "test")
    (metrics,) = artifact.manifest["metrics"]
    assert metrics == {"dataset": "digits", "split": "test", **score(reference.run(want, test.images), test.labels).as_dict()}
    assert artifact.id32 in stdout


def test_import_reference_passes_thr(capsys, tmp_path):
    _, paths = _authors_like_weights(tmp_path, np.random.default_rng(7))
    out = tmp_path / "imported"
    code, _, err = run_cli(capsys, "import-reference", "--weights", *paths, "--fact", "4.037", "9.065",
                           "--thr", "50", "--dataset-name", "digits", "--out", out)
    assert code == 0, err
    layers = read_artifact(out).network.layers
    assert set(layers[0].thresholds.tolist()) == {13}  # floor(50 / 4.037) + 1 = floor(12.39) + 1
    assert set(layers[1].thresholds.tolist()) == {6}  # floor(50 / 9.065) + 1 = floor(5.52) + 1


@pytest.mark.parametrize("case", ["zero weight", "fact count", "missing file", "bad shape"])
def test_import_reference_refuses_bad_input(capsys, tmp_path, case):
    weights, paths = _authors_like_weights(tmp_path, np.random.default_rng(6))
    facts, words = ["4.0", "9.0"], []
    if case == "zero weight":
        weights[0][3, 5] = 0.0
        np.save(paths[0], weights[0])
        words = ["exactly 0"]
    elif case == "fact count":
        facts = ["4.0"]
        words = ["1 --fact", "2 --weights"]
    elif case == "missing file":
        paths[1] = tmp_path / "w9.npy"
        words = ["w9.npy"]
    elif case == "bad shape":
        np.save(paths[1], np.ones((10, 21), np.float32))
        words = ["layer 1"]
    out = tmp_path / "imported"
    code, _, err = run_cli(capsys, "import-reference", "--weights", *paths, "--fact", *facts, "--out", out)
    assert code == 2
    assert_one_error_line(err, "import-reference", *words)
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary artifact left behind


def test_export_of_a_missing_checkpoint_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "export", "--checkpoint", tmp_path / "none.pt", "--out", tmp_path / "model")
    assert code == 2
    assert_one_error_line(err, "export", "none.pt")
    assert not (tmp_path / "model").exists()


def test_bench_writes_figures_curve_and_plot(capsys, tmp_path):
    """bench on digits with a short time-to-accuracy run: the JSON holds every figure, the run stops at the
    first epoch whose test strict accuracy reaches the target, and the plot is written beside the JSON."""
    out = tmp_path / "bench" / "b.json"
    code, stdout, err = run_cli(capsys, "bench", "--dataset", "digits", "--target", "0.3", "--max-epochs", "2",
                                "--limit", "200", "--train-batches", "5", "--spec-images", "5", "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert result == json.loads(stdout)
    for key in ("fast_images_per_s", "spec_images_per_s", "train_samples_per_s", "run_samples_per_s"):
        assert result[key] > 0, key
    curve = result["curve"]
    assert 1 <= len(curve) <= 2 and result["epochs_planned"] == 2
    assert all(a["wall_seconds"] < b["wall_seconds"] for a, b in zip(curve, curve[1:]))
    reached = [c for c in curve if c["test_strict"] >= 0.3]
    if reached:  # the run stops at the first epoch that reaches the target
        assert reached[0] is curve[-1] and result["time_to_target_epoch"] == curve[-1]["epoch"]
        assert result["time_to_target_wall_s"] == curve[-1]["wall_seconds"]
    else:
        assert len(curve) == 2 and result["time_to_target_wall_s"] is None
    assert result["plot"] == str(out.with_suffix(".png")) and out.with_suffix(".png").stat().st_size > 0
    code, _, err = run_cli(capsys, "bench", "--dataset", "digits", "--target", "1.5")
    assert code == 2 and "--target" in err
