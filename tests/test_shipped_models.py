"""The trained artifacts shipped in models/: each evaluates to the metrics its manifest records, and its
provenance names how it was made.

The digits model always runs (digits ship with scikit-learn); MNIST and Fashion-MNIST need the IDX files,
found through $BS4NN_DATA or the shared datasets folder beside the repository (skipped otherwise). Each model
is scored on the whole test split (fast: the numba reference runs ~100k images/s) and must give the manifest's
numbers exactly; `bs4nn eval --limit` on a slice must equal the library on that slice.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from bs4nn.cli import main
from bs4nn.export.artifact import read_artifact
from bs4nn.sw import datasets, reference, scoring

REPO = Path(__file__).resolve().parents[1]
MODELS = REPO / "models"
SHIPPED = {"digits-64-100-10": "digits", "mnist-784-600-10": "mnist", "fashion-mnist-784-600-10": "fashion-mnist"}


def data_dir():
    for root in (os.environ.get("BS4NN_DATA"), REPO.parent / "shared" / "datasets"):
        if root and Path(root).is_dir():
            return Path(root)
    return None


def test_every_shipped_model_is_listed():
    assert MODELS.is_dir(), f"{MODELS} is missing"
    assert sorted(p.name for p in MODELS.iterdir() if (p / "manifest.json").is_file()) == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_model_reproduces_its_manifest(name, capsys, tmp_path):
    dataset = SHIPPED[name]
    if dataset != "digits" and data_dir() is None:
        pytest.skip(f"{dataset} files not found (set BS4NN_DATA)")
    artifact = read_artifact(MODELS / name)
    assert artifact.dataset_name == dataset
    provenance = artifact.manifest["provenance"]
    assert provenance["source"] == "trained" and isinstance(provenance["seed"], int)
    assert provenance["command"].startswith("bs4nn train") and f"--dataset {dataset}" in provenance["command"]
    assert provenance["commit"] and len(provenance["commit"].split()[0]) == 40
    (metrics,) = [m for m in artifact.manifest["metrics"] if m["dataset"] == dataset and m["split"] == "test"]
    test = datasets.load(dataset, "test", data_dir() if dataset != "digits" else None, progress=False)
    assert metrics["n"] == len(test.labels)
    scores = scoring.score(reference.run(artifact.network, test.images), test.labels).as_dict()
    assert scores == {k: metrics[k] for k in scores}
    # the command line on a slice of the test split: the same numbers as the library on that slice
    limit = 500
    out = tmp_path / "eval.json"
    argv = ["eval", "--model", str(MODELS / name), "--dataset", dataset, "--limit", str(limit), "--json", str(out)]
    if dataset != "digits":
        argv += ["--data-dir", str(data_dir())]
    assert main(argv) == 0
    capsys.readouterr()
    report = json.loads(out.read_text())
    part = reference.run(artifact.network, test.images[:limit])
    want = scoring.score(part, test.labels[:limit]).as_dict()
    assert {k: report[k] for k in want} == want
    assert report["median_first_spike_bin"] == float(np.median(part.first_spike_bin))


def test_seed_table_ships_the_median_seed(tmp_path):
    """bs4nn.sw.seeds: three tiny digits runs; the table's rows equal the reference, mean and median are
    over the rows, and the run with the median test strict accuracy is copied to --ship (replacing it)."""
    from bs4nn.export.exporter import export_checkpoint
    from bs4nn.sw import seeds
    from bs4nn.sw.train import TrainConfig, train

    runs = []
    for seed in (0, 1, 2):
        run = tmp_path / f"s{seed}"
        result = train(TrainConfig(dataset="digits", hidden=(12,), epochs=1, seed=seed), run, progress=False,
                       command=f"bs4nn train --dataset digits --seed {seed}")
        export_checkpoint(result.checkpoint, run / "model")
        runs.append(str(run))
    target = tmp_path / "models" / "digits"
    target.mkdir(parents=True)
    (target / "stale.txt").write_text("replaced")
    assert seeds.main(["--dataset", "digits", "--runs", *runs, "--table", str(tmp_path / "t.json"),
                       "--ship", str(target)]) == 0
    table = json.loads((tmp_path / "t.json").read_text())
    test = datasets.load("digits", "test")
    stricts = []
    for row in table["runs"]:
        inference = reference.run(read_artifact(Path(row["run"]) / "model").network, test.images)
        assert row["strict"] == scoring.score(inference, test.labels).strict
        assert row["median_first_spike_bin"] == float(np.median(inference.first_spike_bin))
        stricts.append(row["strict"])
    assert table["mean"]["strict"] == pytest.approx(np.mean(stricts))
    assert table["median"]["strict"] == float(np.median(stricts))
    median_row = sorted(table["runs"], key=lambda r: (r["strict"], r["seed"]))[1]
    assert table["median_seed"] == median_row["seed"]
    shipped = read_artifact(target)
    assert shipped.model_id == read_artifact(Path(median_row["run"]) / "model").model_id
    assert not (target / "stale.txt").exists() and shipped.manifest["provenance"]["seed"] == median_row["seed"]
