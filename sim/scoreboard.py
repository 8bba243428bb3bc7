"""Check what the core did on each image against the reference and the cycle model.

Shared by the Amaranth-simulator tests and the cocotb co-simulation: one place says what "bit-exact"
means. In full mode every neuron's spike bin must match; in early-exit mode every spike the core
reports must match, and every spike before t* (and the output spikes at t*) must be reported.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bs4nn.sw.reference import Inference
from bs4nn.sw.semantics import T_MAX


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
