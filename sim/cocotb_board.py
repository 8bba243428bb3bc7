"""cocotb end-to-end test of the UART board top (`bs4nn_uart_top`): the host code of `bs4nn board run`
(`bs4nn.sw.board`) drives the simulated UART line from its own thread through cocotb's bridge, checks
the model ID, sends images and corrupted frames, and compares every answer with the reference."""
from __future__ import annotations

import json
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge

from bs4nn.export.artifact import read_artifact
from bs4nn.sw import link_protocol as lp
from bs4nn.sw.board import HostLink, run_images


class SimulatedUART:
    """A byte transport into the simulation, called by host code running in a bridge thread."""

    def __init__(self, dut, divisor: int, read_bits: int):
        self.dut, self.divisor, self.read_bits = dut, divisor, read_bits
        self.received = bytearray()

    async def listen(self):
        dut = self.dut
        while True:
            await FallingEdge(dut.tx)
            await ClockCycles(dut.clk, self.divisor // 2)
            byte = 0
            for i in range(8):
                await ClockCycles(dut.clk, self.divisor)
                byte |= int(dut.tx.value) << i
            await ClockCycles(dut.clk, self.divisor)
            self.received.append(byte)

    async def _send(self, data: bytes):
        for byte in data:
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                self.dut.rx.value = bit
                await ClockCycles(self.dut.clk, self.divisor)

    async def _read(self, size: int) -> bytes:
        for _ in range(self.read_bits):
            if self.received:
                break
            await ClockCycles(self.dut.clk, self.divisor)
        out = bytes(self.received[:size])
        del self.received[:size]
        return out

    def write(self, data: bytes) -> None:
        resume(self._send)(data)

    def read(self, size: int) -> bytes:
        return resume(self._read)(size)


@cocotb.test()
async def host_code_drives_the_board(dut):
    with open(os.environ["BS4NN_COSIM_JOB"]) as f:
        job = json.load(f)
    images = np.load(job["images"], allow_pickle=False)
    artifact = read_artifact(job["model"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    dut.rst.value, dut.rx.value = 1, 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    uart = SimulatedUART(dut, job["divisor"], read_bits=4 * job["timeout_bits"])
    cocotb.start_soon(uart.listen())

    def host() -> dict:
        link = HostLink(uart, empty_reads=3)
        run = run_images(link, artifact.network, artifact.id32, images, lanes=job["lanes"], events=job.get("events"))
        good = lp.frame(lp.CLASSIFY, images[0].tobytes())
        corrupted = bytearray(good)
        corrupted[-1] ^= 0x01
        bad_frames = {
            "bad_crc": (bytes(corrupted), lp.BAD_CRC),
            "short": (lp.frame(lp.CLASSIFY, images[0][:-1].tobytes()), lp.BAD_LENGTH),
            "unknown": (lp.frame(0x5A), lp.UNKNOWN_COMMAND),
            "truncated": (good[: len(good) // 2], lp.TRUNCATED),
        }
        errors, recovered = {}, []
        for name, (data, code) in bad_frames.items():
            command, payload = link.exchange(data)
            errors[name] = [command, payload[0] if payload else None, code]
            recovered.append(link.classify(images[0]).decision)
        return {"answers": [[a.decision, a.first_spike_bin, a.cycles, a.events] for a in run.answers],
                "disagreements": run.disagreements, "errors": errors, "recovered": recovered}

    report = await bridge(host)()
    tmp = job["out"] + ".tmp"
    with open(tmp, "w") as f:
        json.dump(report, f)
    os.replace(tmp, job["out"])
    assert not report["disagreements"], report["disagreements"]
    for name, (command, code, expected) in report["errors"].items():
        assert command == lp.ERROR and code == expected, (name, command, code, expected)
