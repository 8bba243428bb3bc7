"""cocotb test of the preload harness (top `bs4nn_preload`, see sim/preload.py): the images are already in the
simulator; this starts the clock, releases reset, waits for `done` and checks the harness's log."""
from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from bs4nn.sim.preload import parse_log
from bs4nn.sim.scoreboard import check_and_report


@cocotb.test()
async def preloaded_images_match_the_reference(dut):
    """Every image, back to back: decision, first spike bin, every spike bin, cycles and events."""
    job = json.loads(Path(os.environ["BS4NN_COSIM_JOB"]).read_text())
    core = json.loads(Path(job["core"]).read_text())
    images = np.load(job["images"], allow_pickle=False)
    names = job.get("names") or [f"image {i}" for i in range(len(images))]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.done)
    results, spikes, firsts, measured = parse_log(Path(job["log"]).read_text(), core)
    report = check_and_report(job, core, images, names, results, spikes, measured,
                              extra={"image_intervals": np.diff(firsts).tolist()})
    assert not report["mismatches"], "\n".join(report["mismatches"][:20])
