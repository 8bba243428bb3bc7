"""The `bs4nn` command line: train, export, import-reference, eval, bench (hdl, sim, trace: cli_hw.py).

Thin glue over the library (bs4nn.sw, bs4nn.export): parse, call, print. Every command shows an example in
its --help. Bad input (missing files, unreadable artifacts or checkpoints, unknown datasets, wrong shapes)
ends with one line `bs4nn <command>: error: ...` on stderr and exit code 2, and nothing half-written:
artifacts, dumps and JSON files are written beside their target and renamed into place.

Heavy imports (torch, numba) happen inside the commands that need them, so `bs4nn eval` never loads torch.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path

DATASETS = ("digits", "mnist", "fashion-mnist")  # = bs4nn.sw.datasets.DATASETS (checked in the tests)
SPLITS = ("test", "train")
DEFAULT_HIDDEN = {"digits": (100,), "mnist": (600,), "fashion-mnist": (600,)}  # 64-100-10, 784-600-10

# TrainConfig fields that `bs4nn train` handles itself; every other field becomes an option of its own
_TRAIN_EXPLICIT = ("dataset", "hidden", "epochs", "batch_size", "rule", "seed")


class CLIError(Exception):
    """Bad input found by the CLI itself; reported as one line and exit code 2."""


class UsageError(Exception):
    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog, self.message = prog, message


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line (`prog: error: message`) instead of usage + message."""

    def error(self, message):  # noqa: D102 - argparse API
        raise UsageError(self.prog, message)


_Help = argparse.RawDescriptionHelpFormatter


# ----------------------------------------------------------------------------- argument types

def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _int_list(text: str) -> list[int]:
    """'600' or '600,300' -> [600, 300]."""
    parts = [p.strip() for p in text.split(",")]
    if not parts or not all(parts):
        raise argparse.ArgumentTypeError(f"must be positive integers separated by commas, got {text!r}")
    return [_positive_int(p) for p in parts]


def _number_tuple(kind):
    def parse(text: str) -> tuple:
        try:
            return tuple(kind(p) for p in text.split(","))
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {kind.__name__}s separated by commas, got {text!r}") from None
    parse.__name__ = f"{kind.__name__} list"
    return parse


def _shape(text: str) -> tuple[int, int]:
    """'28x28' or '28,28' -> (28, 28)."""
    parts = text.lower().replace(",", "x").split("x")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"must be HxW, for example 28x28, got {text!r}")
    return tuple(_positive_int(p) for p in parts)


def _nonempty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


# ----------------------------------------------------------------------------- helpers

def _command_line(argv) -> str:
    return shlex.join(["bs4nn", *argv])


def _one_line(error: BaseException) -> str:
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    else:
        text = str(error) or type(error).__name__
    return "; ".join(line.strip() for line in text.splitlines() if line.strip())


def _warn(command: str, message: str) -> None:
    print(f"bs4nn {command}: warning: {message}", file=sys.stderr)


def write_json_atomic(path, data) -> Path:
    """Write `data` as JSON to `path` through a temporary file beside it and os.replace."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, allow_nan=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _check_outputs(*paths) -> None:
    """Refuse output paths that cannot be files before any work is done (so nothing is half-written)."""
    for path in paths:
        if path is None:
            continue
        path = Path(path)
        if path.is_dir():
            raise CLIError(f"{path}: is a directory, expected an output file name")
        parent = next((p for p in path.absolute().parents if p.exists()), None)
        if parent is not None and not parent.is_dir():
            raise CLIError(f"{path}: cannot be created ({parent} is not a directory)")


def _percent(value: float) -> str:
    return f"{100 * value:7.2f}%"


def _sizes(network) -> str:
    return "-".join(str(n) for n in network.sizes)


def load_checked(network, dataset: str, split: str, data_dir=None, limit: int | None = None,
                 model_dataset: str | None = None, command: str = "eval"):
    """The split of `dataset` that `network` can run on: an error if the image shape differs from the
    network's input, a warning if the model was made for another dataset of the same shape."""
    from .sw import datasets

    data = datasets.load(dataset, split, data_dir, progress=sys.stderr.isatty())
    shape = tuple(data.images.shape[1:])
    if shape != tuple(network.input_shape):
        made_for = f" ({model_dataset})" if model_dataset else ""
        raise CLIError(f"input shape mismatch: the model{made_for} takes {network.input_shape[0]}x{network.input_shape[1]} "
                       f"images, {data.name} {split} images are {shape[0]}x{shape[1]}")
    if model_dataset is not None and model_dataset != data.name:
        _warn(command, f"the model was made for {model_dataset!r}, evaluating it on {data.name!r}")
    images, labels = data.images, data.labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return data, images, labels


def run_network(network, images, mode: str = "fast"):
    """(Inference, seconds) of the fast reference (numba, compiled before the clock starts) or the spec twin."""
    if mode == "spec":
        from .sw import reference_spec as runner
    else:
        from .sw import reference as runner
        runner.run(network, images[:1])  # compile (or load the cached kernels) outside the timing
    began = time.perf_counter()
    inference = runner.run(network, images)
    return inference, time.perf_counter() - began


def metrics_entry(network, dataset: str, split: str, data_dir=None, model_dataset=None, command="export") -> dict:
    """One manifest `metrics` row: the network scored on a whole split."""
    from .sw import scoring

    data, images, labels = load_checked(network, dataset, split, data_dir, None, model_dataset, command)
    inference, _ = run_network(network, images)
    return {"dataset": data.name, "split": split, **scoring.score(inference, labels).as_dict()}


def _print_metrics(metrics) -> None:
    for m in metrics or []:
        print(f"  {m['dataset']} {m['split']} ({m['n']} images): strict {_percent(m['strict']).strip()}, "
              f"lenient {_percent(m['lenient']).strip()}, first-spike {_percent(m['first_spike']).strip()}, "
              f"no-spike {_percent(m['no_spike_rate']).strip()}")


# ----------------------------------------------------------------------------- commands

def cmd_train(args, argv) -> int:
    from dataclasses import fields, replace

    from .sw import train as training

    known = {f.name for f in fields(training.TrainConfig)}
    given = {name: value for name, value in vars(args).items() if name in known}
    if "hidden" in given:
        given["hidden"] = tuple(n for group in given["hidden"] for n in group)
    out = Path(args.out)
    if args.resume:
        checkpoint = out / "checkpoint.pt"
        state = training.load_checkpoint(checkpoint)
        saved = training.config_from_state(state)
        differ = [f"--{k.replace('_', '-')} {given[k]!r} (saved: {getattr(saved, k)!r})"
                  for k in given if k != "epochs" and given[k] != getattr(saved, k)]
        if differ:
            raise CLIError(f"--resume continues {checkpoint} with its saved settings (only --epochs may change); "
                           f"these differ: {', '.join(differ)}")
        config = replace(saved, epochs=given.get("epochs", saved.epochs))
        if config.epochs <= int(state["epoch"]):
            _warn("train", f"{checkpoint} has already trained {state['epoch']} epochs; nothing to do "
                           f"(raise --epochs to train further)")
    else:
        dataset = given.get("dataset", training.TrainConfig.dataset)
        given.setdefault("hidden", DEFAULT_HIDDEN.get(dataset, training.TrainConfig.hidden))
        config = training.TrainConfig(**given)
    result = training.train(config, out, data_dir=args.data_dir, resume=args.resume,
                            progress=not args.quiet, command=_command_line(argv))
    print(f"checkpoint  {result.checkpoint}")
    if result.metrics:
        last = result.metrics[-1]
        best_key = "val_strict" if "val_strict" in last else "test_strict"
        best = max(result.metrics, key=lambda m: m.get(best_key, 0.0))
        print(f"epochs      {last['epoch']} (best {best_key.replace('_', ' ')} at epoch {best['epoch']}: "
              f"{_percent(best[best_key]).strip()})")
        print(f"last epoch  test strict {_percent(last['test_strict']).strip()}, lenient "
              f"{_percent(last['test_lenient']).strip()}, no-spike {_percent(last['test_no_spike_rate']).strip()}")
    if result.output_threshold_offset is not None:
        print(f"output thr  {result.config.output_threshold} raised by "
              f"{result.output_threshold_offset}, chosen on the validation split ({out / 'output_threshold.json'})")
    print(f"metrics     {out / 'metrics.json'}")
    print(f"next        bs4nn export --checkpoint {shlex.quote(str(result.checkpoint))} --out "
          f"{shlex.quote(str(out / 'model'))} --eval-dataset {config.dataset}")
    return 0


def cmd_export(args, argv) -> int:
    from .export.exporter import export_checkpoint
    from .sw.train import load_network

    metrics = None
    if args.eval_dataset:
        network, meta = load_network(args.checkpoint, args.which)
        metrics = [metrics_entry(network, name, split, args.data_dir, meta["dataset"], "export")
                   for name in dict.fromkeys(args.eval_dataset) for split in dict.fromkeys(args.eval_split)]
    artifact = export_checkpoint(args.checkpoint, args.out, metrics=metrics, which=args.which)
    _print_artifact(artifact)
    return 0


def cmd_import_reference(args, argv) -> int:
    from .export.artifact import write_artifact
    from .export.importer import import_reference, load_npy

    if len(args.fact) != len(args.weights):
        raise CLIError(f"{len(args.fact)} --fact values for {len(args.weights)} --weights files (one fact per layer)")
    weights = [load_npy(path) for path in args.weights]
    network = import_reference(weights, args.fact, thr=args.thr, input_shape=args.input_shape)
    metrics = None
    if args.eval_dataset:
        metrics = [metrics_entry(network, name, split, args.data_dir, args.dataset_name, "import-reference")
                   for name in dict.fromkeys(args.eval_dataset) for split in dict.fromkeys(args.eval_split)]
    from .export.provenance import git_commit

    provenance = {"command": _command_line(argv), "seed": None, "commit": git_commit(), "source": "imported"}
    artifact = write_artifact(args.out, network, args.dataset_name, provenance, metrics)
    _print_artifact(artifact)
    return 0


def _print_artifact(artifact) -> None:
    print(f"artifact  {artifact.path}")
    print(f"model_id  {artifact.model_id} (hardware ID {artifact.id32})")
    print(f"network   {_sizes(artifact.network)} for {artifact.dataset_name} "
          f"({artifact.network.input_shape[0]}x{artifact.network.input_shape[1]} inputs)")
    if artifact.manifest.get("metrics"):
        print("metrics")
        _print_metrics(artifact.manifest["metrics"])


def cmd_eval(args, argv) -> int:
    import numpy as np

    from .export.artifact import read_artifact
    from .sw import scoring

    _check_outputs(args.json, args.dump_spikes)
    artifact = read_artifact(args.model)
    network = artifact.network
    data, images, labels = load_checked(network, args.dataset, args.split, args.data_dir, args.limit,
                                        artifact.dataset_name, "eval")
    inference, seconds = run_network(network, images, args.reference)
    scores = scoring.score(inference, labels)
    median = float(np.median(inference.first_spike_bin)) if len(labels) else None
    report = {
        **scores.as_dict(),
        "median_first_spike_bin": median,
        "images_per_s": len(labels) / seconds if seconds > 0 else None,
        "seconds": seconds,
        "model_id": artifact.model_id,
        "id32": artifact.id32,
        "model": str(artifact.path),
        "model_dataset": artifact.dataset_name,
        "network": network.sizes,
        "dataset": data.name,
        "split": data.split,
        "limit": args.limit,
        "reference": args.reference,
    }
    if args.dump_spikes:
        from .export.dump import write_dump

        Path(args.dump_spikes).parent.mkdir(parents=True, exist_ok=True)
        config = {key: report[key] for key in ("model_id", "dataset", "split", "limit", "reference")}
        write_dump(args.dump_spikes, inference, labels=labels, config={**config, "mode": "full", "source": "reference"})
    if args.plots:
        from .sw import plots

        plot_dir = Path(args.plots)
        tag = f"{artifact.id32} {_sizes(network)} on {data.name} {data.split}"
        plots.plot_spike_histograms(inference, plot_dir / "spike_bins.png", f"spike bins, {tag}")
        plots.plot_confusion(inference.decision, labels, plot_dir / "confusion.png", f"strict decision, {tag}",
                             network.n_classes)
        plots.plot_hidden_activity(inference, plot_dir / "hidden_activity.png", f"hidden activity, {tag}")
        report["plots"] = str(plot_dir)
    if args.json:
        write_json_atomic(args.json, report)
    print(f"model        {artifact.id32}  {_sizes(network)} for {artifact.dataset_name}  ({artifact.path})")
    print(f"data         {data.name} {data.split}: {scores.n} images")
    print(f"strict      {_percent(scores.strict)}   (the decision the hardware makes)")
    print(f"lenient     {_percent(scores.lenient)}   (ties at t* in the label's favour, as the paper scored)")
    print(f"first-spike {_percent(scores.first_spike)}   (strict, no-spike images counted wrong)")
    print(f"no-spike    {_percent(scores.no_spike_rate)}")
    if median is not None:
        print(f"median t*    bin {median:g} of 256")
    speed = f"{report['images_per_s']:,.0f} images/s" if report["images_per_s"] else "-"
    print(f"speed        {speed} ({args.reference} reference, {seconds:.3f} s)")
    for name, path in (("json", args.json), ("spikes", args.dump_spikes), ("plots", args.plots)):
        if path:
            print(f"{name:<12} {path}")
    return 0


# ----------------------------------------------------------------------------- parser

def _add_data_dir(p) -> None:
    p.add_argument("--data-dir", metavar="DIR", default=None,
                   help="dataset root holding mnist/ and fashion-mnist/ (default: $BS4NN_DATA, else "
                        "~/.cache/bs4nn/datasets; digits ships with scikit-learn)")


def _add_eval_options(p, default_note: str) -> None:
    p.add_argument("--eval-dataset", action="append", choices=DATASETS, metavar="NAME", default=[],
                   help=f"score the network on this dataset (repeatable; one of {', '.join(DATASETS)}) and "
                        f"record the result in the manifest's metrics; {default_note}")
    p.add_argument("--eval-split", action="append", choices=SPLITS, default=None,
                   help="split(s) for --eval-dataset (repeatable; default: test)")
    _add_data_dir(p)


def _train_config_options(p) -> None:
    """One option per TrainConfig field not handled explicitly (needs torch: only built for `train`)."""
    try:
        from dataclasses import MISSING, fields

        from .sw.train import TrainConfig
    except ImportError as error:  # torch missing: train will fail with the same message
        p.add_argument_group(f"training hyper-parameters (unavailable: {error})")
        return
    group = p.add_argument_group("training hyper-parameters", "every other TrainConfig field; unset ones keep "
                                 "the default for the rule and dataset")
    for f in fields(TrainConfig):
        if f.name in _TRAIN_EXPLICIT:
            continue
        option = "--" + f.name.replace("_", "-")
        annotation = str(f.type)
        default = None if f.default is MISSING else f.default
        note = ("per rule and dataset" if default is None else f"{default:.6g}" if isinstance(default, float)
                else repr(default))
        if annotation.startswith("bool"):
            group.add_argument(option, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                               help=f"(default: {note})")
        else:
            kind = float if "float" in annotation else int if "int" in annotation else str
            parse = _number_tuple(kind) if annotation.startswith("tuple") else kind
            metavar = f"{kind.__name__.upper()}[,...]" if annotation.startswith("tuple") else kind.__name__.upper()
            group.add_argument(option, dest=f.name, type=parse, metavar=metavar, default=argparse.SUPPRESS,
                               help=f"(default: {note})")


def build_parser(train_options: bool = False) -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="bs4nn", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="BS4NN: binarized time-to-first-spike networks, from PyTorch training to a bit-exact FPGA core.",
        epilog="Example (the offline demo, as `make all` runs it):\n"
               "  bs4nn train --dataset digits --out runs/digits\n"
               "  bs4nn export --checkpoint runs/digits/checkpoint.pt --out runs/digits/model --eval-dataset digits\n"
               "  bs4nn eval --model runs/digits/model --dataset digits --json runs/digits/eval.json\n\n"
               "Run `bs4nn COMMAND --help` for the options of each command.")
    parser.add_argument("--version", action="version", version=f"bs4nn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)

    p = sub.add_parser(
        "train", formatter_class=_Help, help="train a network (writes checkpoint.pt, metrics.json, accuracy.png)",
        description="Train a BS4NN network with the exact integer forward pass. Writes OUT/checkpoint.pt (last "
                    "and best-validation epoch), OUT/metrics.json and OUT/accuracy.png.",
        epilog="Example:\n"
               "  bs4nn train --dataset mnist --hidden 600 --seed 0 --out runs/mnist --data-dir ~/data\n"
               "  bs4nn train --out runs/mnist --epochs 80 --resume   # continue the same run up to epoch 80")
    p.add_argument("--dataset", choices=DATASETS, default=argparse.SUPPRESS,
                   help="training dataset (default: digits)")
    p.add_argument("--hidden", type=_int_list, action="append", metavar="N[,N...]", default=argparse.SUPPRESS,
                   help="hidden layer size(s), repeatable or comma-separated (default: 100 for digits, "
                        "600 for mnist and fashion-mnist)")
    p.add_argument("--epochs", type=_positive_int, metavar="N", default=argparse.SUPPRESS,
                   help="epochs, also the length of the lr schedule (default: 60 on MNIST, 30 otherwise)")
    p.add_argument("--batch-size", dest="batch_size", type=_positive_int, metavar="N", default=argparse.SUPPRESS,
                   help="mini-batch size (default: per rule and dataset)")
    p.add_argument("--rule", type=_nonempty, default=argparse.SUPPRESS,
                   help="learning rule: decision (default) or s4nn (the paper's temporal rule)")
    p.add_argument("--seed", type=int, metavar="N", default=argparse.SUPPRESS, help="random seed (default: 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="run directory")
    p.add_argument("--resume", action="store_true",
                   help="continue OUT/checkpoint.pt with its saved settings up to --epochs (bit for bit the "
                        "same as an uninterrupted run)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or per-epoch lines")
    _add_data_dir(p)
    if train_options:
        _train_config_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "export", formatter_class=_Help, help="checkpoint -> model artifact (manifest.json + layer{k}.hex/.bin)",
        description="Write the artifact (format version 1, docs/artifact-format.md) of a training checkpoint: "
                    "the best-validation epoch unless --which last.",
        epilog="Example:\n"
               "  bs4nn export --checkpoint runs/digits/checkpoint.pt --out runs/digits/model --eval-dataset digits")
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="checkpoint.pt written by `bs4nn train`")
    p.add_argument("--out", required=True, metavar="DIR", help="artifact directory (replaced atomically)")
    p.add_argument("--which", choices=("best", "last"), default="best", help="which epoch of the checkpoint (default: best, chosen on the validation split)")
    _add_eval_options(p, "default: no metrics")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "import-reference", formatter_class=_Help, help="the BS4NN authors' published weights -> model artifact",
        description="Import real-valued weights as published by the BS4NN authors (one .npy per layer, shape "
                    "(n_out, n_in) or (n_out, n_in, 1), no exact zeros) and one fact per layer: signs become the "
                    "binary weights, floor(thr / fact) + 1 the integer threshold.",
        epilog="Example:\n"
               "  bs4nn import-reference --weights w0.npy w1.npy --fact 4.037 9.065 --thr 100 \\\n"
               "      --dataset-name mnist --out runs/authors/model --eval-dataset mnist")
    p.add_argument("--weights", required=True, nargs="+", metavar="W.npy", help="one .npy file per layer, in order")
    p.add_argument("--fact", required=True, nargs="+", type=float, metavar="F", help="one fact per layer, in order")
    p.add_argument("--thr", type=float, default=100.0, help="the original code's threshold (default: 100)")
    p.add_argument("--dataset-name", default="mnist", type=_nonempty, help="dataset recorded in the manifest (default: mnist)")
    p.add_argument("--input-shape", type=_shape, metavar="HxW", default=None,
                   help="input image shape (default: square, e.g. 28x28 for 784 inputs)")
    p.add_argument("--out", required=True, metavar="DIR", help="artifact directory (replaced atomically)")
    _add_eval_options(p, "default: no metrics")
    p.set_defaults(func=cmd_import_reference)

    p = sub.add_parser(
        "eval", formatter_class=_Help, help="score a model artifact with the integer reference",
        description="Run a model artifact on a dataset split with the integer reference and report strict, "
                    "lenient and first-spike accuracy, the no-spike rate, the median first output spike bin and "
                    "the speed. Rates in --json are fractions in 0..1.",
        epilog="Example:\n"
               "  bs4nn eval --model runs/digits/model --dataset digits --split test \\\n"
               "      --json runs/digits/eval.json --dump-spikes runs/digits/spikes.npz")
    p.add_argument("--model", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--dataset", required=True, choices=DATASETS, help="dataset to run on")
    p.add_argument("--split", choices=SPLITS, default="test", help="dataset split (default: test)")
    p.add_argument("--limit", type=_positive_int, metavar="N", default=None, help="only the first N images")
    p.add_argument("--json", metavar="OUT", default=None, help="write the scores as JSON here")
    p.add_argument("--dump-spikes", metavar="OUT.npz", default=None,
                   help="write every neuron's spike bin, the decisions and t* (.npz spike dump) here")
    p.add_argument("--reference", choices=("fast", "spec"), default="fast",
                   help="fast (numba) reference (default) or the slow, literal spec twin")
    p.add_argument("--plots", metavar="DIR", default=None,
                   help="write PNG plots here: spike-bin histograms per layer, confusion matrix, hidden activity")
    _add_data_dir(p)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "bench", formatter_class=_Help, help="measure training samples/s, reference images/s, time to 97% strict",
        description="Measure the fast and the spec reference (images/s, on the test split), full training steps of "
                    "the default 784-600-10 training command (samples/s: batch indexing, shift and input coding, "
                    "exact forward, backward, update), and the time the default training command takes to reach "
                    "--target test strict accuracy (the test split only stops the clock). Prints the figures, "
                    "writes them as JSON and a PNG of test accuracy against wall-clock time with the paper's "
                    "figures as lines. Without --model the reference runs a random 784-600-10 network. Timings "
                    "depend on what else the machine runs: the JSON records the load average.",
        epilog="Example:\n"
               "  bs4nn bench --dataset mnist --data-dir ~/data --json runs/bench.json   # also runs/bench.png\n"
               "  bs4nn bench --dataset mnist --model models/mnist-784-600-10 --target 0 --json quick.json")
    p.add_argument("--dataset", choices=DATASETS, default="mnist", help="dataset (default: mnist)")
    p.add_argument("--model", metavar="DIR", default=None, help="artifact to run the reference on (default: random)")
    p.add_argument("--limit", type=_positive_int, metavar="N", default=10000, help="test images for the fast reference")
    p.add_argument("--json", metavar="OUT", default=None, help="write the figures as JSON here")
    p.add_argument("--plot", metavar="PNG", default=None,
                   help="accuracy against wall-clock time (default: the --json path with .png)")
    p.add_argument("--target", type=float, default=0.97, metavar="FRACTION",
                   help="test strict accuracy the time-to-accuracy run stops at (default: 0.97; 0 skips the run)")
    p.add_argument("--train-batches", type=_positive_int, default=150, metavar="N",
                   help="training steps per timed repeat (best of 3; default: 150)")
    p.add_argument("--spec-images", type=_positive_int, default=40, metavar="N",
                   help="test images for the (slow) spec reference (default: 40)")
    p.add_argument("--max-epochs", type=_positive_int, default=None, metavar="N",
                   help="epochs of the time-to-accuracy run's schedule (default: the training command's)")
    _add_data_dir(p)
    p.set_defaults(func=cmd_bench)

    from . import cli_hw

    cli_hw.add_commands(sub)
    return parser


def cmd_bench(args, argv) -> int:
    from .sw import bench

    _check_outputs(args.json, args.plot)
    if not 0 <= args.target < 1:
        raise CLIError(f"--target must be a fraction in [0, 1), got {args.target}")
    bench.main(args.dataset, args.data_dir, args.model, args.json, args.limit, target=args.target or None,
               plot_out=args.plot, max_epochs=args.max_epochs, train_batches=args.train_batches,
               spec_images=args.spec_images)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(train_options=bool(argv) and argv[0] == "train")
    try:
        args = parser.parse_args(argv)
    except UsageError as error:
        print(f"{error.prog}: error: {error.message}", file=sys.stderr)
        return 2
    if getattr(args, "eval_split", None) is None and hasattr(args, "eval_split"):
        args.eval_split = ["test"]
    try:
        return args.func(args, argv) or 0
    except (CLIError, ValueError, OSError) as error:  # DatasetError, ArtifactError, DumpError, ... are ValueErrors
        print(f"bs4nn {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bs4nn {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
