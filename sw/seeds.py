"""Several seeds of one training command: the table of their exported artifacts and the median seed shipped.

    python -m bs4nn.sw.seeds --dataset mnist --runs runs/mnist-s0 runs/mnist-s1 runs/mnist-s2 \\
        --data-dir ~/data --table runs/mnist-seeds.json --ship models/mnist-784-600-10

Each run directory holds a `bs4nn train` checkpoint and its exported artifact in `model/` (`bs4nn export
--eval-dataset`). Every artifact is scored again on the whole test split with the integer reference (strict,
lenient, first-spike, no-spike rate, median first output spike bin) and the figures must equal the ones its
manifest records. The table gives each seed, the mean and the median; the seed whose test strict accuracy is
the median of the seeds (the lower middle one for an even count) is copied to --ship, replacing it atomically.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

FIGURES = ("strict", "lenient", "first_spike", "no_spike_rate", "median_first_spike_bin")


def score_run(run_dir, dataset: str, data_dir=None) -> dict:
    from ..export.artifact import read_artifact
    from . import datasets, reference, scoring
    from .train import load_checkpoint

    run_dir = Path(run_dir)
    artifact = read_artifact(run_dir / "model")
    test = datasets.load(dataset, "test", data_dir, progress=False)
    inference = reference.run(artifact.network, test.images)
    scores = scoring.score(inference, test.labels).as_dict()
    recorded = [m for m in artifact.manifest.get("metrics") or [] if m["dataset"] == dataset and m["split"] == "test"]
    if recorded and any(recorded[0][k] != scores[k] for k in scores):
        raise ValueError(f"{run_dir / 'model'}: manifest metrics {recorded[0]} differ from the reference's {scores}")
    state = load_checkpoint(run_dir / "checkpoint.pt")
    history = json.loads(state["history"])
    best_epoch = state["best"]["epoch"] if state.get("best") else state["epoch"]
    val = [h for h in history if h["epoch"] == best_epoch][0].get("val_strict")
    return {"run": str(run_dir), "seed": artifact.manifest["provenance"]["seed"],
            "command": artifact.manifest["provenance"]["command"], "commit": artifact.manifest["provenance"]["commit"],
            "model_id": artifact.model_id, "epochs": len(history), "best_epoch": best_epoch, "val_strict": val,
            "train_seconds": float(sum(h["seconds"] for h in history)),
            **{k: scores[k] for k in FIGURES if k in scores},
            "median_first_spike_bin": float(np.median(inference.first_spike_bin))}


def summarize(rows: list[dict]) -> dict:
    order = sorted(range(len(rows)), key=lambda i: (rows[i]["strict"], rows[i]["seed"]))
    median_row = rows[order[(len(rows) - 1) // 2]]
    return {"runs": rows,
            "mean": {k: float(np.mean([r[k] for r in rows])) for k in FIGURES},
            "median": {k: float(np.median([r[k] for r in rows])) for k in FIGURES},
            "median_seed": median_row["seed"], "median_run": median_row["run"]}


def markdown(table: dict, dataset: str) -> str:
    pct = lambda v: f"{100 * v:.2f}"  # noqa: E731
    lines = [f"| {dataset} | seed | best epoch | val strict | test strict | lenient | first-spike | no-spike | median t* |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in table["runs"]:
        lines.append(f"| | {r['seed']} | {r['best_epoch']}/{r['epochs']} | {pct(r['val_strict'])} | {pct(r['strict'])} | "
                     f"{pct(r['lenient'])} | {pct(r['first_spike'])} | {pct(r['no_spike_rate'])} % | "
                     f"{r['median_first_spike_bin']:.0f} |")
    for name in ("mean", "median"):
        m = table[name]
        lines.append(f"| | {name} | | | {pct(m['strict'])} | {pct(m['lenient'])} | {pct(m['first_spike'])} | "
                     f"{pct(m['no_spike_rate'])} % | {m['median_first_spike_bin']:.1f} |")
    return "\n".join(lines)


def ship(run_dir, target) -> None:
    """Copy run_dir/model to target through a temporary directory beside it (replaced atomically)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        shutil.copytree(Path(run_dir) / "model", tmp, dirs_exist_ok=True)
        old = None
        if target.exists():
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bs4nn.sw.seeds", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--runs", nargs="+", required=True, metavar="DIR")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--table", metavar="OUT.json", default=None)
    parser.add_argument("--ship", metavar="DIR", default=None, help="copy the median seed's artifact here")
    args = parser.parse_args(argv)
    table = summarize([score_run(run, args.dataset, args.data_dir) for run in args.runs])
    text = markdown(table, args.dataset)
    print(text)
    print(f"median seed {table['median_seed']} ({table['median_run']})")
    if args.table:
        path = Path(args.table)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({**table, "dataset": args.dataset, "markdown": text}, indent=2) + "\n")
        os.replace(tmp, path)
    if args.ship:
        ship(table["median_run"], args.ship)
        print(f"shipped {table['median_run']}/model -> {args.ship}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
