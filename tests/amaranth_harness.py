"""Drive the Core in Amaranth's simulator: images in (with random stalls), results and spikes out."""
from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from bs4nn.hw.config import CoreConfig
from bs4nn.hw.core import Core


def simulate(config: CoreConfig, images: np.ndarray, rng=None, stall=0.0, aborts=(), max_cycles=200_000):
    """Run `images` (N, n_in) uint8 through the core. `stall` is the probability of a cycle without
    valid (pixels) / ready (result, spikes). `aborts`: image indices during which abort is pulsed after
    a random number of pixels; that image is then sent again in full.
    Returns (results list of dicts, spikes per image: list of per-layer dicts neuron -> bin, meta)."""
    rng = rng or np.random.default_rng(0)
    dut = Core(config, spike_ports=True)
    n_images = len(images)
    results, spikes = [], [[{} for _ in config.network.layers] for _ in range(n_images)]
    meta = {"last_pixel_cycle": [], "result_cycle": [], "aborted": 0}
    state = {"image": 0, "cycle": 0, "sent_first": -1}

    async def clock(ctx):
        async for _ in ctx.tick():
            state["cycle"] += 1

    async def driver(ctx):
        for i, image in enumerate(images):
            abort_at = int(rng.integers(0, len(image))) if i in aborts else None
            if abort_at is not None:  # send part of the image, abort, then send it properly
                if abort_at == 0:  # an abort between images: once the previous one has drained
                    await ctx.tick().until(dut.pixels.ready)
                for p in image[:abort_at]:
                    await _put(ctx, dut.pixels, {"data": int(p), "last": 0}, rng, stall)
                ctx.set(dut.abort, 1)
                await ctx.tick()
                ctx.set(dut.abort, 0)
                meta["aborted"] += 1
            for j, p in enumerate(image):
                await _put(ctx, dut.pixels, {"data": int(p), "last": int(j == len(image) - 1)}, rng, stall)
                state["image"] = i
                if j == len(image) - 1:
                    meta["last_pixel_cycle"].append(state["cycle"])
            while len(results) <= i:
                await ctx.tick()
        await ctx.tick().until(dut.pixels.ready)  # the last image's spikes are all out (early mode)

    async def result_taker(ctx):
        seen = False
        while len(results) < n_images:
            assert state["cycle"] < max_cycles, f"no result within {max_cycles} cycles"
            ready = int(rng.random() >= stall)
            ctx.set(dut.result.ready, ready)
            *_, valid, payload = await ctx.tick().sample(dut.result.valid, dut.result.payload)
            if valid and not seen:
                meta["result_cycle"].append(state["cycle"])
                seen = True
            if valid and ready:
                seen = False
                results.append({"decision": int(payload.decision), "first_spike_bin": int(payload.first_spike_bin),
                                "cycles": int(payload.cycles), "events": int(payload.events),
                                "framing_error": int(payload.framing_error)})

    def spike_taker(k):
        port = getattr(dut, f"spikes_l{k}")

        async def take(ctx):
            while True:
                ready = int(rng.random() >= stall)
                ctx.set(port.ready, ready)
                *_, valid, payload = await ctx.tick().sample(port.valid, port.payload)
                if valid and ready:
                    b, slots = int(payload.bin), payload.slots
                    layer = spikes[state["image"]][k]
                    for j in range(len(slots)):
                        if int(slots[j].valid):
                            neuron = int(slots[j].index) * len(slots) + j
                            assert neuron not in layer, f"image {state['image']} layer {k}: neuron {neuron} spiked twice"
                            layer[neuron] = b
        return take

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(clock, background=True)
    sim.add_testbench(driver)
    sim.add_testbench(result_taker)
    for k in range(len(config.network.layers)):
        sim.add_testbench(spike_taker(k), background=True)
    sim.run()
    assert len(results) == n_images, f"only {len(results)} of {n_images} results within {max_cycles} cycles"
    return results, spikes, meta


async def _put(ctx, port, payload, rng, stall):
    while stall and rng.random() < stall:
        ctx.set(port.valid, 0)
        await ctx.tick()
    ctx.set(port.valid, 1)
    ctx.set(port.payload, payload)
    await ctx.tick().until(port.ready)
    ctx.set(port.valid, 0)
