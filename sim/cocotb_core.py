"""cocotb testbench of the generated core (top `bs4nn_core`): images in, every spike, decision and cycle
count out, each checked against the integer reference and the cycle model.

Run through `bs4nn.sim.runner` (pytest, `bs4nn sim`, `make sim`); the job (model, images, mode, stalls,
aborts) arrives as a JSON file named by the environment variable BS4NN_COSIM_JOB, and the outcome is
written to the file the job names.
"""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from bs4nn.sim.scoreboard import check_and_report, field_value, spike_word


class CoreTB:
    """Drives pixels (with random idle cycles), takes results and spikes (with random back-pressure)."""

    def __init__(self, dut, core: dict, rng: np.random.Generator, stall: float):
        self.dut, self.core, self.rng, self.stall = dut, core, rng, stall
        self.n_layers = len(core["layers"])
        self.result_fields = core["ports"]["m_axis_result"]["tdata"]
        self.spike_fields = [core["ports"][f"m_axis_spikes_l{k}"]["tdata"] for k in range(self.n_layers)]
        self.cycle = 0
        self.image = -1  # the image whose pixels were last accepted: spikes belong to it
        self.results: list[dict] = []
        self.spikes: list[list[dict]] = []
        self.stalled_cycles = 0

    def _idle(self) -> bool:
        stalled = self.stall > 0 and self.rng.random() < self.stall
        self.stalled_cycles += stalled
        return stalled

    async def start(self):
        dut = self.dut
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value, dut.abort.value = 1, 0
        dut.s_axis_pixels_tvalid.value = 0
        dut.m_axis_result_tready.value = 0
        for k in range(self.n_layers):
            getattr(dut, f"m_axis_spikes_l{k}_tready").value = 0
        await ClockCycles(dut.clk, 3)
        dut.rst.value = 0
        cocotb.start_soon(self._count())
        cocotb.start_soon(self._take_results())
        for k in range(self.n_layers):
            cocotb.start_soon(self._take_spikes(k))

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def _take_results(self):
        dut, seen = self.dut, False
        while True:
            await RisingEdge(dut.clk)
            ready = not self._idle()
            dut.m_axis_result_tready.value = int(ready)
            await ReadOnly()
            if dut.m_axis_result_tvalid.value and not seen:
                seen, first_valid = True, self.cycle
            if dut.m_axis_result_tvalid.value and ready:
                value = int(dut.m_axis_result_tdata.value)
                result = {name: field_value(value, f) for name, f in self.result_fields.items()}
                result["valid_cycle"] = first_valid
                self.results.append(result)
                seen = False

    async def _take_spikes(self, k: int):
        dut, fields = self.dut, self.spike_fields[k]
        valid, tready, tdata = (getattr(dut, f"m_axis_spikes_l{k}_{s}") for s in ("tvalid", "tready", "tdata"))
        while True:
            await RisingEdge(dut.clk)
            ready = not self._idle()
            tready.value = int(ready)
            await ReadOnly()
            if valid.value and ready:
                neurons, b = spike_word(int(tdata.value), fields)
                layer = self.spikes[self.image][k]
                for neuron in neurons:
                    assert neuron not in layer, f"image {self.image} layer {k}: neuron {neuron} spiked twice"
                    layer[neuron] = b

    async def send(self, pixels: np.ndarray, abort_after: int | None = None) -> tuple[int, int]:
        """Send one image (or, with abort_after, that many pixels, possibly none, and then an abort); return
        the cycles in which its first and last pixels were accepted."""
        dut = self.dut
        count = len(pixels) if abort_after is None else abort_after
        first = accepted = self.cycle
        for j in range(count):
            while True:
                await RisingEdge(dut.clk)
                if self._idle():
                    dut.s_axis_pixels_tvalid.value = 0
                    continue
                dut.s_axis_pixels_tvalid.value = 1
                dut.s_axis_pixels_tdata.value = int(pixels[j])
                dut.s_axis_pixels_tlast.value = int(j == len(pixels) - 1)
                await ReadOnly()
                if dut.s_axis_pixels_tready.value:
                    break
            if j == 0 and abort_after is None:
                self.image += 1
                self.spikes.append([{} for _ in range(self.n_layers)])
                first = self.cycle
            accepted = self.cycle
        await RisingEdge(dut.clk)
        dut.s_axis_pixels_tvalid.value = 0
        if abort_after == 0:  # an abort between images: once the previous image is finished
            while True:
                await ReadOnly()
                if dut.s_axis_pixels_tready.value:
                    break
                await RisingEdge(dut.clk)
            await RisingEdge(dut.clk)
        if abort_after is not None:
            dut.abort.value = 1
            await RisingEdge(dut.clk)
            dut.abort.value = 0
        return first, accepted


@cocotb.test()
async def images_match_the_reference(dut):
    """Every image: decision, first spike bin, every spike bin, cycles and events."""
    with open(os.environ["BS4NN_COSIM_JOB"]) as f:
        job = json.load(f)
    with open(job["core"]) as f:
        core = json.load(f)
    images = np.load(job["images"], allow_pickle=False)
    names = job.get("names") or [f"image {i}" for i in range(len(images))]
    rng = np.random.default_rng(job.get("seed", 0))
    tb = CoreTB(dut, core, rng, float(job.get("stall", 0.0)))
    await tb.start()

    aborts = {int(i): int(n) for i, n in (job.get("aborts") or {}).items()}
    first_pixel_cycles, last_pixel_cycles = [], []
    for i, image in enumerate(images):
        if i in aborts:
            await tb.send(image, abort_after=aborts[i])
        first, last = await tb.send(image)
        first_pixel_cycles.append(first)
        last_pixel_cycles.append(last)
    while True:  # the last image's spikes are all out once the core takes pixels again
        await RisingEdge(dut.clk)
        dut.s_axis_pixels_tvalid.value = 0
        await ReadOnly()
        if dut.s_axis_pixels_tready.value:
            break

    measured = [r["valid_cycle"] - last for r, last in zip(tb.results, last_pixel_cycles)]
    report = check_and_report(job, core, images, names, tb.results, tb.spikes, measured,
                              cycles_checked=tb.stall == 0,
                              extra={"stalled_cycles": tb.stalled_cycles, "aborts": len(aborts), "sim_cycles": tb.cycle,
                                     # one image's first pixel to the next one's, the driver sending as fast as it may
                                     "image_intervals": np.diff(first_pixel_cycles).tolist()})
    assert not report["mismatches"], "\n".join(report["mismatches"][:20])
