"""The core behind the UART link (boards/): frames from the host code's encoder, answers checked against
the reference and the cycle model; bad frames get error answers and the link recovers."""
from __future__ import annotations

import numpy as np
from amaranth.sim import Simulator

from bs4nn.boards.top import UARTCore
from bs4nn.export.artifact import model_id
from bs4nn.hw.config import CoreConfig
from bs4nn.sw import link_protocol as lp
from bs4nn.sw import reference
from bs4nn.sw.cycles import schedule
from bs4nn.sw.network import random_network
from bs4nn.sw.semantics import encode_pixels

DIVISOR = 6


def run_link(dut, exchanges, timeout_bits):
    """exchanges: list of (bytes to send, pause bits after). Returns the answers, one per exchange."""
    received, answers = bytearray(), []

    async def host(ctx):
        ctx.set(dut.rx, 1)
        for data, pause in exchanges:
            for byte in data:
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    ctx.set(dut.rx, bit)
                    for _ in range(DIVISOR):
                        await ctx.tick()
            for _ in range(pause * DIVISOR):
                await ctx.tick()
            waited = 0
            while True:
                parsed = lp.parse(bytes(received))
                if parsed is not None:
                    answers.append(parsed[:2])
                    received.clear()
                    break
                await ctx.tick()
                waited += 1
                assert waited < 40_000, f"no answer to exchange {len(answers)}"

    async def listen(ctx):
        while True:
            await ctx.tick().until(dut.tx == 0)
            for _ in range(DIVISOR // 2):
                await ctx.tick()
            byte = 0
            for i in range(8):
                for _ in range(DIVISOR):
                    await ctx.tick()
                byte |= ctx.get(dut.tx) << i
            for _ in range(DIVISOR):
                await ctx.tick()
            received.append(byte)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(listen, background=True)
    sim.run()
    return answers


def test_link_answers_and_recovers_from_bad_frames():
    rng = np.random.default_rng(12)
    network = random_network([16, 8, 4], rng, threshold_range=(1, 4))
    config = CoreConfig(network, lanes=(3, 4), mode="early")
    mid = model_id(network)
    dut = UARTCore(config, mid, DIVISOR, timeout_bits=40)
    images = rng.integers(0, 256, size=(3, 16)).astype(np.uint8)
    good = [lp.frame(lp.CLASSIFY, bytes(image)) for image in images]
    bad_crc = bytearray(good[0])
    bad_crc[-1] ^= 0x40
    exchanges = [
        (b"\x00\x13" + lp.frame(lp.INFO), 0),  # garbage before SOF is skipped
        (good[0], 0),
        (bytes(bad_crc), 0),
        (good[1], 0),
        (lp.frame(lp.CLASSIFY, bytes(images[2][:15])), 0),  # one pixel short
        (lp.frame(0x37, b"xy"), 0),  # unknown command
        (good[0][:9], 0),  # truncated: the rest never comes
        (good[2], 0),
    ]
    answers = run_link(dut, exchanges, 40)
    info = lp.Info.decode(lp.check_reply(*answers[0], lp.INFO_REPLY))
    assert info == lp.Info(int(mid[:8], 16), 16, 4, "early", lp.PROTOCOL_VERSION)
    ref = reference.run(network, images)
    plan = schedule(network.sizes, config.lanes, encode_pixels(images), ref.spikes)
    for answer, i in ((answers[1], 0), (answers[3], 1), (answers[7], 2)):
        got = lp.Answer.decode(lp.check_reply(*answer, lp.CLASSIFY_REPLY))
        assert (got.decision, got.first_spike_bin) == (ref.decision[i], ref.first_spike_bin[i])
        assert (got.cycles, got.events) == (plan.cycles("early")[i], plan.events("early")[i])
    expected_errors = {2: lp.BAD_CRC, 4: lp.BAD_LENGTH, 5: lp.UNKNOWN_COMMAND, 6: lp.TRUNCATED}
    for k, code in expected_errors.items():
        command, payload = answers[k]
        assert command == lp.ERROR and payload[0] == code, (k, command, payload)
