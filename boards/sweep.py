"""Design-space sweep: lanes P and events per cycle E against area, logic depth and cycles per image.

Each configuration is built for the Arty A7 as `bs4nn bitstream` builds it (the board top behind the UART)
and synthesised by the open yosys estimate (LUT / FF / BRAM36, logic levels between registers; both
Artix-7 parts, since the netlist is the same); its cycles per image come from the cycle model on the
images given (exact: co-simulation checks the model on every image). Rows are written after each
configuration (CSV and JSON, atomically), so an interrupted sweep keeps what it measured; with `resume`, a
sweep run again into the same directory takes those rows back (when they are of the same model, images,
mode and design sources: `design_digest`) and builds only the points it does not have yet.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bs4nn.export.artifact import read_artifact
from bs4nn.hw.config import CoreConfig
from bs4nn.sw import reference
from bs4nn.sw.cycles import schedule
from bs4nn.sw.semantics import encode_pixels

from .build import XILINX_CAPACITY, against_part, build

FIELDS = ["lanes", "events", "mode", "model_id", "images", "design", "LUT", "FF", "BRAM36", "CARRY4", "logic_levels",
          "lut_levels", "lut_pct_35t", "lut_pct_100t", "bram_pct_35t", "fits_35t_60pct", "fits_100t", "cycles_mean",
          "cycles_p95", "cycles_max", "floor_mean", "pipeline_floor_mean", "images_per_s_bound", "build_s"]


# the modules whose source decides a point's netlist or its cycles: the core generator, the board top and
# its build, the cycle model and the integer semantics
DESIGN_MODULES = ("bs4nn.hw", "bs4nn.boards.board_top", "bs4nn.boards.top", "bs4nn.boards.link",
                  "bs4nn.boards.uart", "bs4nn.boards.build", "bs4nn.sw.cycles", "bs4nn.sw.semantics")


def design_digest() -> str:
    """A short hash of the source files of `DESIGN_MODULES` (every module of a package): a row measured with
    other sources (another version of the core) is not taken back by `resume`."""
    import importlib
    import pkgutil

    files = []
    for name in DESIGN_MODULES:
        module = importlib.import_module(name)
        files.append(Path(module.__file__))
        if hasattr(module, "__path__"):  # a package: its modules too
            files += [Path(info.module_finder.path) / f"{info.name}.py"
                      for info in pkgutil.iter_modules(module.__path__) if not info.ispkg]
    digest = hashlib.sha256()
    for path in sorted(set(files), key=lambda p: (p.parent.name, p.name)):
        digest.update(f"{path.parent.name}/{path.name}\n".encode() + path.read_bytes())
    return digest.hexdigest()[:12]


@dataclass(frozen=True)
class SweepPoint:
    lanes: str  # as --lanes: "max", "60,10", ...
    events: str  # as --events: "1", "4,max", ...


def parse_point(text: str) -> SweepPoint:
    """'LANES/EVENTS' (e.g. 'max/4,max', '60,10/1'); EVENTS defaults to 1."""
    lanes, _, events = text.partition("/")
    return SweepPoint(lanes or "max", events or "1")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_rows(rows: list[dict], out_dir: Path) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, FIELDS, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _write_atomic(out_dir / "sweep.csv", buffer.getvalue())
    _write_atomic(out_dir / "sweep.json", json.dumps(rows, indent=2) + "\n")


class SweepError(ValueError):
    """A sweep directory's file that cannot be taken back."""


def images_digest(images: np.ndarray) -> str:
    """How many images and a short hash of their pixels, e.g. '10000:3f2a9c1b' (a row's image set)."""
    return f"{len(images)}:{hashlib.sha256(np.ascontiguousarray(images, dtype=np.uint8).tobytes()).hexdigest()[:8]}"


def measured_rows(out_dir: Path, model_id: str, images: str, mode: str, design: str) -> dict:
    """Rows of out_dir/sweep.json measured on this model, image set, mode and design digest, by (lanes,
    events); rows of anything else (or of a sweep.json written before rows named them) are not taken back."""
    path = out_dir / "sweep.json"
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise SweepError(f"{path}: not a sweep's JSON ({error}); move it away or sweep into another directory") \
            from None
    return {(row["lanes"], row["events"]): row for row in rows if isinstance(row, dict)
            and (row.get("model_id"), row.get("images"), row.get("mode"), row.get("design"))
            == (model_id, images, mode, design)}


def sweep(model_dir, images: np.ndarray, points: list[SweepPoint], out_dir, mode: str = "early",
          clock_hz: float = 100e6, progress: bool = False, resume: bool = False) -> list[dict]:
    """Build and model every point; returns the rows (also in out_dir/sweep.csv, sweep.json, sweep.png).
    With `resume`, points already in out_dir/sweep.json for this model, image set and mode are not built
    again."""
    import time

    artifact = read_artifact(model_dir)
    network = artifact.network
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = images_digest(images)
    design = design_digest()
    kept = measured_rows(out_dir, artifact.model_id, digest, mode, design) if resume else {}
    ref = reference.run(network, images)
    bins = encode_pixels(images)
    rows = []
    iterator = points
    if progress:
        from tqdm import tqdm

        iterator = tqdm(points, desc="sweep", unit="config")
    for point in iterator:
        config = CoreConfig(network, lanes=point.lanes, mode=mode, events=point.events)
        key = (",".join(map(str, config.lanes)), ",".join(map(str, config.events)))
        tag = f"p{key[0].replace(',', '-')}_e{key[1].replace(',', '-')}"
        if key in kept:
            rows.append(kept[key])
            write_rows(rows, out_dir)
            continue
        began = time.perf_counter()
        summary = build("arty_a7", model_dir, out_dir / tag, lanes=point.lanes, mode=mode, events=point.events)
        seconds = time.perf_counter() - began
        use = summary["estimate"]["use"]
        plan = schedule(network.sizes, config.lanes, bins, ref.spikes, config.events)
        cycles = plan.cycles(mode)
        small, large = against_part(use, "xc7a35t"), against_part(use, "xc7a100t")
        row = {"lanes": key[0], "events": key[1], "mode": mode, "model_id": artifact.model_id, "images": digest,
               "design": design,
               **{k: use[k] for k in ("LUT", "FF", "BRAM36", "CARRY4")},
               "logic_levels": summary["estimate"]["logic_levels"], "lut_levels": summary["estimate"]["lut_levels"],
               "lut_pct_35t": small["percent"]["LUT"], "lut_pct_100t": large["percent"]["LUT"],
               "bram_pct_35t": small["percent"]["BRAM36"],
               "fits_35t_60pct": bool(use["LUT"] <= 0.6 * XILINX_CAPACITY["xc7a35t"]["LUT"]
                                      and "BRAM36" not in small["over_capacity"]),
               "fits_100t": not {"LUT", "BRAM36"} & set(large["over_capacity"]),
               "cycles_mean": round(float(cycles.mean()), 2), "cycles_p95": float(np.percentile(cycles, 95)),
               "cycles_max": int(cycles.max()), "floor_mean": round(float(plan.floor(mode).mean()), 2),
               "pipeline_floor_mean": round(float(plan.pipeline_floor(mode).mean()), 2),
               # one pixel per cycle, images one after another: the pixels plus the cycles (drain not counted)
               "images_per_s_bound": round(clock_hz / (network.layers[0].n_in + float(cycles.mean()))),
               "build_s": round(seconds, 1)}
        rows.append(row)
        write_rows(rows, out_dir)
    plot_sweep(rows, out_dir / "sweep.png")
    return rows


# where a point's label may go, in offset points from the point (x, y, horizontal alignment), tried in
# turn: beside the point first, then further above and below, then further out to the side
LABEL_PLACES = [(dx * side, dy, "left" if side > 0 else "right") for dx in (5, 25, 50)
                for dy in (4, -24, 16, -36, 28, -48, 40, -60) for side in (1, -1)]


def place_labels(fig, ax, points, texts) -> list:
    """Annotate each point with its text (a gray leader line when it is not beside it) at the first of
    `LABEL_PLACES` where the label stays inside the axes and clear of the labels placed before it and of
    every point; where none is clear, at the place that overlaps least. Returns the labels."""
    from matplotlib.text import Text
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    inside = ax.get_window_extent(renderer)
    dots = [ax.transData.transform(p) for p in points]
    taken, labels = [], []

    def shared(a, b):  # the area (pixels) two boxes share
        both = Bbox.intersection(a, b)
        return 0 if both is None else both.width * both.height

    def overlap(box):  # the area (pixels) of `box` outside the axes, on other labels and near points
        cost = 4 * (box.width * box.height - shared(box, inside)) + sum(shared(box, other) for other in taken)
        cost += sum(400 for x, y in dots if box.x0 - 3 <= x <= box.x1 + 3 and box.y0 - 3 <= y <= box.y1 + 3)
        return cost

    for point, text in zip(points, texts):
        best = None
        for dx, dy, align in LABEL_PLACES:
            label = ax.annotate(text, point, fontsize=7, xytext=(dx, dy), textcoords="offset points", ha=align,
                                va="bottom", arrowprops={"arrowstyle": "-", "linewidth": 0.4, "color": "gray",
                                                         "shrinkB": 3})
            label.update_positions(renderer)
            box = Text.get_window_extent(label, renderer).expanded(1.04, 1.08)  # the text, not its leader line
            cost = overlap(box)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, label, box)
            else:
                label.remove()
            if cost == 0:
                break
        taken.append(best[2])
        labels.append(best[1])
    return labels


def plot_sweep(rows: list[dict], path) -> None:
    """Mean cycles per image against LUTs, each point labelled P/E; the 35T's 60 % and 100 %, the 100T's 100 %."""
    from bs4nn.sw.plots import _save

    fig, _, _ = sweep_figure(rows)
    _save(fig, path)


def sweep_figure(rows: list[dict]):
    """The sweep's chart as (figure, axes, point labels)."""
    from bs4nn.sw.plots import plt

    fig, ax = plt.subplots(figsize=(9, 5.5))
    for row in rows:
        colour = ("tab:green" if row["fits_35t_60pct"] else "tab:olive" if row["lut_pct_35t"] <= 100
                  else "tab:blue" if row["fits_100t"] else "tab:red")
        ax.scatter(row["LUT"], row["cycles_mean"], color=colour, s=30)
    ax.axvline(0.6 * XILINX_CAPACITY["xc7a35t"]["LUT"], color="tab:green", linestyle="--", linewidth=0.8,
               label="60 % of the A7-35T's LUTs")
    ax.axvline(XILINX_CAPACITY["xc7a35t"]["LUT"], color="tab:green", linestyle="-.", linewidth=0.8,
               label="the A7-35T's LUTs")
    ax.axvline(XILINX_CAPACITY["xc7a100t"]["LUT"], color="tab:blue", linestyle="--", linewidth=0.8,
               label="the A7-100T's LUTs")
    ax.axhline(60, color="gray", linestyle=":", linewidth=0.8, label="60 cycles")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("LUTs (open yosys estimate, board top included)")
    ax.set_ylabel("mean cycles per image (cycle model, after the last pixel)")
    ax.set_title("design space: lanes P and events per cycle E")
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(alpha=0.3, which="both")
    ax.margins(x=0.1, y=0.15)  # room for labels beside the outermost points
    # labels last, once the axes' limits and scales are final, largest area first (the crowded corner)
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["LUT"])
    labels = place_labels(fig, ax, [(rows[i]["LUT"], rows[i]["cycles_mean"]) for i in order],
                          [f"P {rows[i]['lanes']} / E {rows[i]['events']}\n{rows[i]['logic_levels']} levels"
                           for i in order])
    return fig, ax, labels
