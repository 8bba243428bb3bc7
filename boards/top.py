"""The core behind a UART: the board-independent part of every board top."""
from __future__ import annotations

from amaranth.hdl import Module, ResetInserter, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from bs4nn.hw.config import CoreConfig, index_width
from bs4nn.hw.core import Core
from bs4nn.hw.skid import SkidBuffer

from .link import LinkEngine
from .uart import UARTReceiver, UARTTransmitter


class UARTCore(wiring.Component):
    """`rx` / `tx` UART lines (8N1, `divisor` clock cycles per bit), `last_class` for LEDs."""

    def __init__(self, config: CoreConfig, model_id: str, divisor: int, timeout_bits: int = 64):
        self.config, self.model_id, self.divisor, self.timeout_bits = config, model_id, divisor, timeout_bits
        super().__init__({"rx": In(1, init=1), "tx": Out(1, init=1),
                          "last_class": Out(index_width(config.n_classes)), "frames": Out(16)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        m.submodules.receiver = receiver = UARTReceiver(self.divisor)
        m.submodules.transmitter = transmitter = UARTTransmitter(self.divisor)
        m.submodules.core = core = Core(cfg, spike_ports=False)
        m.submodules.link = link = LinkEngine(cfg.n_in, cfg.n_classes, int(self.model_id[:8], 16), cfg.mode,
                                              timeout=self.timeout_bits * self.divisor)
        # the link's abort is registered: its decision (a frame's CRC, the timeout) is not in the path of the
        # reset that reaches every flip-flop of the core; the link feeds no pixel in the cycle between
        abort = Signal()
        m.d.sync += abort.eq(link.abort)
        m.d.comb += [receiver.rx.eq(self.rx), self.tx.eq(transmitter.tx), link.rx_busy.eq(receiver.busy),
                     core.abort.eq(abort), self.last_class.eq(link.last_class), self.frames.eq(link.frames)]
        wiring.connect(m, receiver.bytes, link.rx_bytes)
        wiring.connect(m, link.tx_bytes, transmitter.bytes)
        # the pixels reach the core through a register slice (cleared with the core on abort), so the link's
        # byte handling and the input stage's filing are not one combinational path
        pixel_slice = SkidBuffer(core.pixels.payload.shape())
        m.submodules.pixel_slice = ResetInserter(abort)(pixel_slice)
        wiring.connect(m, link.pixels, pixel_slice.i)
        wiring.connect(m, pixel_slice.o, core.pixels)
        wiring.connect(m, core.result, link.result)
        return m


TOP = "bs4nn_uart_top"


def write_uart_top(config: CoreConfig, model_id: str, divisor: int, out_dir, timeout_bits: int = 64):
    """Verilog of the UART top (module bs4nn_uart_top: clk, rst, rx, tx, last_class, frames) and top.json."""
    import json

    from amaranth.back import verilog

    from bs4nn.export.artifact import write_directory

    text = verilog.convert(UARTCore(config, model_id, divisor, timeout_bits), name=TOP, emit_src=False)
    description = {"format": "bs4nn-uart-top", "version": 1, "top": TOP, "model_id": model_id,
                   "id32": model_id[:8], "divisor": divisor, "timeout_bits": timeout_bits, **config.describe(),
                   "protocol": "docs/board-protocol.md"}
    return write_directory(out_dir, {f"{TOP}.v": text.encode(),
                                     "top.json": (json.dumps(description, indent=2) + "\n").encode()})
