"""Co-simulate a model's core on images: bit-exact checks, a trace in the dump format, waveforms of
the images that fail.

`cosimulate` writes the core for the artifact (hw.verilog), runs the cocotb testbench in chunks (a
progress bar per chunk), gathers every image's decision, spikes, cycles and events, and on any mismatch
runs each failing image again alone with waveforms on and keeps the waveform.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bs4nn.export.artifact import read_artifact
from bs4nn.export.dump import write_dump
from bs4nn.hw.config import CoreConfig
from bs4nn.hw.verilog import write_core

from . import runner
from .scoreboard import ImageOutcome, trace_arrays


@dataclass
class Cosim:
    config: CoreConfig
    model_id: str
    outcomes: list[ImageOutcome]
    model_cycles: np.ndarray
    model_events: np.ndarray
    model_layer_events: np.ndarray  # (N, L) events per layer before the decision (cycle model)
    mismatches: list[str]
    failed: list[int]  # positions (into the images given) of images with a mismatch
    waveforms: dict[int, Path] = field(default_factory=dict)
    stalled_cycles: int = 0
    aborts: int = 0
    image_intervals: list[int] = field(default_factory=list)  # first pixel to next first pixel, in cycles
    floor_cycles: np.ndarray | None = None  # the cycle model's event floor (one event per cycle per layer)
    pipeline_floor_cycles: np.ndarray | None = None  # the event floor with the core's fixed latencies


def _outcome(d: dict) -> ImageOutcome:
    spikes = [{int(n): int(b) for n, b in layer.items()} for layer in d["spikes"]]
    return ImageOutcome(d["decision"], d["first_spike_bin"], d["cycles"], d["events"], spikes)


def cosimulate(model_dir, images: np.ndarray, *, simulator: str = "icarus", mode: str = "full", lanes=None, events=None,
               names: list[str] | None = None, stall: float = 0.0, aborts: dict | None = None, seed: int = 0,
               work_dir, chunk: int = 100, progress: bool = False, waves_on_failure: int = 3,
               preload: bool = False, shards: int = 1) -> Cosim:
    """Run `images` (N, n_in) uint8 through the core of the artifact `model_dir` under `simulator`. With
    `preload`, the images are streamed back to back from the harness of sim/preload.py (no stalls or
    aborts) in `shards` parallel processes; otherwise the cocotb testbench drives them in chunks."""
    if preload and (stall or aborts):
        raise ValueError("the preload harness streams images without stalls or aborts")
    artifact = read_artifact(model_dir)
    config = CoreConfig(artifact.network, lanes=lanes, mode=mode, events=events)
    images = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    names = names or [f"image {i}" for i in range(len(images))]
    work_dir = Path(work_dir)
    core_dir = write_core(config, work_dir / "core", model_id=artifact.model_id)
    if preload:  # images in the simulator's memory, shards in parallel processes
        from .preload import run_preloaded

        reports = run_preloaded(core_dir, images, model_dir, work_dir / "preload", simulator=simulator,
                                shards=shards, names=names, progress=progress)
        offsets = np.concatenate([[0], np.cumsum([len(r["outcomes"]) for r in reports])[:-1]]).astype(int)
    else:
        built = runner.build(core_dir, simulator, work_dir / "build")
        starts = range(0, len(images), chunk)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc=f"co-simulation ({simulator}, {mode})", unit="chunk", total=len(starts))
        reports, offsets = [], []
        for start in starts:
            part = slice(start, start + chunk)
            chunk_aborts = {i - start: n for i, n in (aborts or {}).items() if start <= i < start + chunk}
            reports.append(runner.run(built, images[part], model_dir, work_dir / "run", names=names[part],
                                      stall=stall, aborts=chunk_aborts, seed=seed + start))
            offsets.append(start)
    outcomes, model_cycles, model_events, layer_events, mismatches, failed = [], [], [], [], [], []
    floor_cycles, pipeline_floor_cycles = [], []
    stalled, n_aborts, intervals = 0, 0, []
    for start, report in zip(offsets, reports):
        outcomes += [_outcome(d) for d in report["outcomes"]]
        model_cycles += [d["model_cycles"] for d in report["outcomes"]]
        model_events += [d["model_events"] for d in report["outcomes"]]
        floor_cycles += [d["floor_cycles"] for d in report["outcomes"]]
        pipeline_floor_cycles += [d["pipeline_floor_cycles"] for d in report["outcomes"]]
        layer_events += [d["model_layer_events"] for d in report["outcomes"]]
        mismatches += report["mismatches"]
        failed += [int(start) + i for i in report["failed_images"]]
        stalled += report["stalled_cycles"]
        n_aborts += report["aborts"]
        intervals += report["image_intervals"]
    result = Cosim(config, artifact.model_id, outcomes, np.array(model_cycles, np.int64),
                   np.array(model_events, np.int64), np.array(layer_events, np.int64).reshape(-1, config.n_layers),
                   mismatches, failed, {}, stalled, n_aborts, intervals, np.array(floor_cycles, np.int64),
                   np.array(pipeline_floor_cycles, np.int64))
    if failed and waves_on_failure:  # replayed alone under the cocotb testbench, with waveforms
        waved = runner.build(core_dir, simulator, work_dir / "build", waves=True)
        for i in failed[:waves_on_failure]:
            replay_dir = work_dir / "failed" / names[i].replace(" ", "_")
            runner.run(waved, images[i:i + 1], model_dir, replay_dir, names=[names[i]], seed=seed)
            found = sorted(replay_dir.glob("*.fst")) + sorted(replay_dir.glob("*.vcd"))
            if found:
                result.waveforms[i] = found[0]
    return result


def write_trace(path, cosim: Cosim, labels=None, config: dict | None = None) -> tuple[Path, Path]:
    """The trace as the dump format (with `cycles`) at `path`, and a per-image CSV beside it."""
    path = Path(path)
    sizes_out = [layer.n_out for layer in cosim.config.network.layers]
    arrays = trace_arrays(cosim.outcomes, sizes_out, cosim.config.mode)

    class _Inference:
        spikes, decision, first_spike_bin = arrays["spikes"], arrays["decision"], arrays["first_spike_bin"]

    meta = {"model_id": cosim.model_id, "mode": cosim.config.mode, "lanes": list(cosim.config.lanes),
            "events_per_cycle": list(cosim.config.events),
            "source": "hardware"} | (config or {})
    write_dump(path, _Inference, labels=labels, config=meta, cycles=arrays["cycles"])
    csv_path = path.with_suffix(".csv")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    n_layers = cosim.config.n_layers
    writer.writerow(["image", "label", "decision", "first_spike_bin", "cycles", "events", "model_cycles",
                     "model_events", *[f"events_l{k}" for k in range(n_layers)], "synaptic_updates",
                     *(["floor_cycles"] if cosim.floor_cycles is not None else []),
                     *(["pipeline_floor_cycles"] if cosim.pipeline_floor_cycles is not None else [])])
    updates = cosim.model_layer_events @ np.asarray(sizes_out, np.int64)
    for i, o in enumerate(cosim.outcomes):
        label = "" if labels is None else int(labels[i])
        writer.writerow([i, label, o.decision, o.first_spike_bin, o.cycles, o.events, int(cosim.model_cycles[i]),
                         int(cosim.model_events[i]), *cosim.model_layer_events[i].tolist(), int(updates[i]),
                         *([int(cosim.floor_cycles[i])] if cosim.floor_cycles is not None else []),
                         *([int(cosim.pipeline_floor_cycles[i])] if cosim.pipeline_floor_cycles is not None else [])])
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    tmp.write_text(buffer.getvalue())
    tmp.replace(csv_path)
    return path, csv_path
