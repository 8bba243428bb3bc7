"""Board tops: the UART core on a real board's clock, UART pins and LEDs (amaranth-boards platforms)."""
from __future__ import annotations

from amaranth.build import ResourceError
from amaranth.hdl import Elaboratable, Module
from amaranth.lib import io

from bs4nn.hw.config import CoreConfig

from .top import UARTCore

BAUD = 115200


class BoardTop(Elaboratable):
    """UART on the board's USB-serial bridge; LEDs show the last class (binary, as many bits as LEDs)."""

    def __init__(self, config: CoreConfig, model_id: str, baud: int = BAUD):
        self.config, self.model_id, self.baud = config, model_id, baud

    def divisor(self, platform) -> int:
        return round(platform.default_clk_frequency / self.baud)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = UARTCore(self.config, self.model_id, self.divisor(platform))
        uart = platform.request("uart", 0, dir="-")
        m.submodules.uart_rx = rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = tx = io.Buffer("o", uart.tx)
        m.d.comb += [core.rx.eq(rx.i), tx.o.eq(core.tx)]
        for bit in range(len(core.last_class)):
            try:
                led = platform.request("led", bit, dir="-")
            except ResourceError:
                break
            m.submodules[f"led{bit}"] = buffer = io.Buffer("o", led)
            m.d.comb += buffer.o.eq(core.last_class[bit])
        return m
