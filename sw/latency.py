"""Latency traces: per-image cycles of the core (from co-simulation or the cycle model), summarised and
compared across configurations, as JSON/CSV and PNG plots.

A trace is the dump format with `cycles` (export/dump.py) plus a per-image CSV beside it (written by
`bs4nn sim`): events, per-layer events, synaptic updates and the cycle model's prediction.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bs4nn.export.dump import Dump, read_dump

from .plots import _save, plt
from .semantics import T_MAX


@dataclass
class Trace:
    name: str
    dump: Dump
    table: dict[str, np.ndarray]  # per-image columns of the CSV (cycles, events, model_cycles, ...)

    @property
    def cycles(self) -> np.ndarray:
        return self.dump.cycles


def read_trace(path, name: str | None = None) -> Trace:
    """A hardware trace (.npz with cycles) and the per-image CSV beside it."""
    path = Path(path)
    dump = read_dump(path)
    if dump.cycles is None:
        raise ValueError(f"{path}: not a hardware trace (no cycles array); write one with `bs4nn sim --trace`")
    table_path = path.with_suffix(".csv")
    table: dict[str, np.ndarray] = {}
    if table_path.exists():
        with open(table_path, newline="") as f:
            rows = list(csv.DictReader(f))
        if len(rows) != dump.n_images:
            raise ValueError(f"{table_path}: {len(rows)} rows, the trace holds {dump.n_images} images")
        for key in rows[0] if rows else []:
            if key != "label":
                table[key] = np.array([int(r[key]) for r in rows], np.int64)
    config = dump.config
    label = name or f"{config.get('mode', '?')} lanes {','.join(str(p) for p in config.get('lanes', []))}"
    events = config.get("events_per_cycle")
    if name is None and events and any(e != 1 for e in events):
        label += f" E {','.join(str(e) for e in events)}"
    return Trace(label, dump, table)


def summarize(trace: Trace) -> dict:
    """Mean / median / p95 / max cycles, events and synaptic updates per image, model agreement, accuracy."""
    cycles = trace.cycles.astype(np.float64)
    out = {"name": trace.name, "images": int(trace.dump.n_images), "config": trace.dump.config,
           "cycles_mean": float(cycles.mean()), "cycles_median": float(np.median(cycles)),
           "cycles_p95": float(np.percentile(cycles, 95)), "cycles_max": int(cycles.max()),
           "first_spike_bin_median": float(np.median(trace.dump.first_spike_bin)),
           "no_spike_rate": float((trace.dump.first_spike_bin == T_MAX).mean())}
    for key in ("events", "synaptic_updates"):
        if key in trace.table:
            out[f"{key}_mean"] = float(trace.table[key].mean())
    if "model_cycles" in trace.table:
        out["model_agrees"] = int((trace.table["model_cycles"] == trace.cycles).sum())
    if "floor_cycles" in trace.table:  # the event floor (sw/cycles.py): how close the schedule comes to it
        out["floor_mean"] = float(trace.table["floor_cycles"].mean())
        out["cycles_over_floor"] = float(cycles.mean() / trace.table["floor_cycles"].mean())
    if "pipeline_floor_cycles" in trace.table:  # ... and with the core's fixed latencies charged: the stalls
        out["pipeline_floor_mean"] = float(trace.table["pipeline_floor_cycles"].mean())
        out["cycles_over_pipeline_floor"] = float(cycles.mean() / trace.table["pipeline_floor_cycles"].mean())
    if trace.dump.labels is not None:
        out["strict_accuracy"] = float((trace.dump.decision == trace.dump.labels).mean())
    return out


def write_report(traces: list[Trace], out_dir, raster_image: int = 0) -> dict:
    """summary.json, summary.csv and the plots for `traces` into `out_dir`; returns the summary."""
    import json
    import os

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [summarize(t) for t in traces]
    files = {"summary.json": json.dumps(rows, indent=2) + "\n"}
    keys = [k for k in rows[0] if k != "config"]
    table = io.StringIO()  # names hold commas ("early lanes 600,10"): quoted by the csv module
    writer = csv.DictWriter(table, keys, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    files["summary.csv"] = table.getvalue()
    for name, text in files.items():
        tmp = out_dir / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, out_dir / name)
    plot_latency_histogram(traces, out_dir / "latency_histogram.png")
    plot_cycles_vs_events(traces, out_dir / "cycles_vs_events.png")
    plot_cycles_vs_first_spike(traces, out_dir / "cycles_vs_first_spike_bin.png")
    plot_hardware_vs_model(traces, out_dir / "hardware_vs_model.png")
    plot_raster(traces[0], raster_image, out_dir / f"raster_image{raster_image}.png")
    return {"summary": rows, "files": sorted(files) + ["latency_histogram.png", "cycles_vs_events.png",
                                                        "cycles_vs_first_spike_bin.png",
                                                        "hardware_vs_model.png", f"raster_image{raster_image}.png"]}


def _finish(fig, ax, path, xlabel: str, ylabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_latency_histogram(traces: list[Trace], path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    top = max(int(t.cycles.max()) for t in traces)
    low = max(1, min(int(t.cycles.min()) for t in traces))
    wide = top > 20 * low  # configurations far apart: logarithmic cycles
    bins = np.geomspace(low, top + 1, 60) if wide else np.linspace(0, top + 1, 60)
    if wide:
        ax.set_xscale("log")
    for t in traces:
        ax.hist(t.cycles, bins=bins, histtype="step", linewidth=1.5,
                label=f"{t.name}: mean {t.cycles.mean():.0f}, p95 {np.percentile(t.cycles, 95):.0f}")
    _finish(fig, ax, path, "cycles per image (after the last pixel)", "images", "latency")


def plot_cycles_vs_events(traces: list[Trace], path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in traces:
        if "events" in t.table:
            ax.scatter(t.table["events"], t.cycles, s=6, alpha=0.6, label=t.name)
    _finish(fig, ax, path, "events integrated before the decision", "cycles per image", "cycles against events")


def plot_cycles_vs_first_spike(traces: list[Trace], path) -> None:
    """Cycles per image against its first output spike bin t* (no-spike images at 256)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for t in traces:
        ax.scatter(t.dump.first_spike_bin, t.cycles, s=6, alpha=0.6, label=t.name)
    _finish(fig, ax, path, "first output spike bin t* (256: none)", "cycles per image",
            "cycles against the first output spike")


def plot_hardware_vs_model(traces: list[Trace], path) -> None:
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    top = 1
    for t in traces:
        if "model_cycles" in t.table:
            agree = int((t.table["model_cycles"] == t.cycles).sum())
            ax.scatter(t.table["model_cycles"], t.cycles, s=8, alpha=0.6,
                       label=f"{t.name}: {agree}/{len(t.cycles)} equal")
            top = max(top, int(t.cycles.max()), int(t.table["model_cycles"].max()))
    ax.plot([0, top], [0, top], color="gray", linewidth=0.8)
    _finish(fig, ax, path, "cycle model (from the reference's events)", "hardware (co-simulation)",
            "hardware against the cycle model")


def plot_raster(trace: Trace, image: int, path) -> None:
    """Spike raster of one image: a panel per layer, neuron against spike bin."""
    spikes = trace.dump.spikes
    fig, axes = plt.subplots(1, len(spikes), figsize=(4.5 * len(spikes), 4), squeeze=False)
    t_star = int(trace.dump.first_spike_bin[image])
    for k, ax in enumerate(axes[0]):
        bins = spikes[k][image]
        fired = np.flatnonzero(bins < T_MAX)
        ax.scatter(bins[fired], fired, s=6, color="black")
        if t_star < T_MAX:
            ax.axvline(t_star, color="tab:red", linewidth=0.8, label=f"t* = {t_star}")
            ax.legend(fontsize=8)
        ax.set_xlim(0, T_MAX)
        ax.set_ylim(-0.5, bins.shape[0] - 0.5)
        ax.set_xlabel("spike bin")
        ax.set_ylabel("neuron")
        ax.set_title(f"layer {k}: {len(fired)} of {bins.shape[0]} fired")
    fig.suptitle(f"image {image} ({trace.name}), decision {int(trace.dump.decision[image])}, "
                 f"{int(trace.cycles[image])} cycles")
    fig.tight_layout()
    _save(fig, path)
