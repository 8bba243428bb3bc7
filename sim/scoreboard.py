"""Check what the core did on each image against the reference and the cycle model.

Shared by the Amaranth-simulator tests and the cocotb co-simulation: one place says what "bit-exact"
means. In full mode every neuron's spike bin must match; in early-exit mode every spike the core
reports must match, and every spike before t* (and the output spikes at t*) must be reported.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field

import numpy as np

from bs4nn.export.artifact import read_artifact
from bs4nn.sw import reference
from bs4nn.sw.cycles import bank_input, schedule
from bs4nn.sw.reference import Inference
from bs4nn.sw.semantics import T_MAX, encode_pixels


def field_value(value: int, layout: dict) -> int:
    """One field of a port's tdata, by its offset and width in core.json."""
    return (value >> layout["offset"]) & ((1 << layout["width"]) - 1)


def spike_word(value: int, fields: dict) -> tuple[list[int], int]:
    """(neurons, bin) of one spike-port word: slot j's index r stands for the neuron `bank_input` puts there
    (a spike port carries a layer's neurons in the banks of the next layer, never layer 0: r * banks + j)."""
    banks = sum(1 for name in fields if name.endswith(".valid"))
    neurons = [bank_input(j, field_value(value, fields[f"slots.{j}.index"]), banks, layer=1) for j in range(banks)
               if field_value(value, fields[f"slots.{j}.valid"])]
    return neurons, field_value(value, fields["bin"])


@dataclass
class ImageOutcome:
    """What the hardware reported for one image."""

    decision: int
    first_spike_bin: int
    cycles: int
    events: int
    spikes: list[dict[int, int]]  # per layer: neuron -> bin
    framing_error: int = 0


@dataclass
class Scoreboard:
    reference: Inference
    mode: str
    expected_cycles: np.ndarray | None = None  # from the cycle model; None: not checked (stalled outputs)
    expected_events: np.ndarray | None = None
    mismatches: list[str] = field(default_factory=list)
    failed_images: list[int] = field(default_factory=list)

    def check(self, image: int, got: ImageOutcome, name: str | None = None) -> list[str]:
        ref, where = self.reference, name or f"image {image}"
        problems = []
        t_star = int(ref.first_spike_bin[image])
        if got.decision != int(ref.decision[image]):
            problems.append(f"{where}: decision {got.decision}, expected {int(ref.decision[image])}")
        if got.first_spike_bin != t_star:
            problems.append(f"{where}: first output spike bin {got.first_spike_bin}, expected {t_star}")
        if got.framing_error:
            problems.append(f"{where}: the core reports a framing error (tlast disagreed with the pixel count)")
        n_layers = len(ref.spikes)
        for k in range(n_layers):
            expected = ref.spikes[k][image]
            for neuron, b in sorted(got.spikes[k].items()):
                if neuron >= expected.shape[0] or int(expected[neuron]) != b:
                    exp = int(expected[neuron]) if neuron < expected.shape[0] else "no such neuron"
                    problems.append(f"{where} layer {k} neuron {neuron}: expected bin {exp}, got {b}")
            for neuron in np.flatnonzero(expected < T_MAX):
                b = int(expected[neuron])
                required = self.mode == "full" or b < t_star or (k == n_layers - 1 and b == t_star)
                if required and int(neuron) not in got.spikes[k]:
                    problems.append(f"{where} layer {k} neuron {int(neuron)}: expected bin {b}, got no spike")
        if self.expected_cycles is not None and got.cycles != int(self.expected_cycles[image]):
            problems.append(f"{where}: {got.cycles} cycles, the cycle model says {int(self.expected_cycles[image])}")
        if self.expected_events is not None and got.events != int(self.expected_events[image]):
            problems.append(f"{where}: {got.events} events, the cycle model says {int(self.expected_events[image])}")
        if problems:
            self.failed_images.append(image)
            self.mismatches.extend(problems)
        return problems


def trace_arrays(outcomes: list[ImageOutcome], sizes_out: list[int], mode: str) -> dict[str, np.ndarray]:
    """The dump format's arrays from what the core reported. In early mode an entry is kept when its bin is
    below t* (or it is an output spike at t*); every other entry reads T_MAX, as the format says."""
    n = len(outcomes)
    spikes = [np.full((n, size), T_MAX, np.int16) for size in sizes_out]
    for i, got in enumerate(outcomes):
        for k, layer in enumerate(got.spikes):
            for neuron, b in layer.items():
                last = k == len(sizes_out) - 1
                if mode == "full" or b < got.first_spike_bin or (last and b == got.first_spike_bin):
                    spikes[k][i, neuron] = b
    return {
        "spikes": spikes,
        "decision": np.array([o.decision for o in outcomes], np.int16),
        "first_spike_bin": np.array([o.first_spike_bin for o in outcomes], np.int16),
        "cycles": np.array([o.cycles for o in outcomes], np.int64),
        "events": np.array([o.events for o in outcomes], np.int64),
    }


def check_and_report(job: dict, core: dict, images: np.ndarray, names: list[str], results: list[dict],
                     spikes: list[list[dict]], measured_cycles: list[int], cycles_checked: bool = True,
                     extra: dict | None = None) -> dict:
    """Check a testbench run's results (one dict per image: decision, first_spike_bin, cycles, events,
    framing_error) and spikes (per image, per layer: neuron -> bin) against the reference and the cycle
    model; the cycles the testbench measured must equal the core's count. Writes the report the job names
    (atomically) and returns it."""
    network = read_artifact(job["model"]).network
    ref = reference.run(network, images)
    mode = core["mode"]
    plan = schedule(network.sizes, core["lanes"], encode_pixels(images), ref.spikes, core.get("events"))
    board = Scoreboard(ref, mode, plan.cycles(mode) if cycles_checked else None,
                       plan.words(mode) if cycles_checked else None)
    outcomes = []
    if len(results) != len(images):
        board.mismatches.append(f"the core answered {len(results)} of {len(images)} images")
    for i, result in enumerate(results[:len(images)]):
        outcome = ImageOutcome(result["decision"], result["first_spike_bin"], result["cycles"], result["events"],
                               spikes[i], result["framing_error"])
        problems = board.check(i, outcome, names[i])
        if measured_cycles[i] != result["cycles"]:
            problems.append(f"{names[i]}: the core counts {result['cycles']} cycles, the testbench {measured_cycles[i]}")
            board.mismatches.append(problems[-1])
            board.failed_images.append(i)
        outcomes.append({"decision": outcome.decision, "first_spike_bin": outcome.first_spike_bin,
                         "cycles": outcome.cycles, "events": outcome.events,
                         "spikes": [{str(n): b for n, b in layer.items()} for layer in outcome.spikes],
                         "model_cycles": int(plan.cycles(mode)[i]), "model_events": int(plan.words(mode)[i]),
                         "floor_cycles": int(plan.floor(mode)[i]),
                         "pipeline_floor_cycles": int(plan.pipeline_floor(mode)[i]),
                         "model_layer_events": plan.layer_events(mode)[i].tolist()})
    report = {"outcomes": outcomes, "mismatches": board.mismatches,
              "failed_images": sorted(set(board.failed_images)), "stalled_cycles": 0, "aborts": 0,
              "image_intervals": []} | (extra or {})
    tmp = job["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, job["out"])
    return report
