"""An 8N1 UART as two stream components; the baud divisor (clock cycles per bit) is a parameter, so
simulations can run it fast."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class UARTReceiver(wiring.Component):
    """`rx` line in, bytes out. A byte whose stop bit is low is dropped and counted in `framing_errors`."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"the baud divisor must be at least 4 cycles per bit, got {divisor}")
        self.divisor = divisor
        super().__init__({"rx": In(1, init=1), "bytes": Out(stream.Signature(8)), "framing_errors": Out(8),
                          "busy": Out(1)})

    def elaborate(self, platform):
        m = Module()
        rx = Signal(init=1)
        rx_meta = Signal(init=1)
        m.d.sync += [rx_meta.eq(self.rx), rx.eq(rx_meta)]  # two flip-flops against metastability
        timer = Signal(range(self.divisor * 3 // 2 + 1))
        bit = Signal(range(9))
        shift = Signal(8)
        with m.If(self.bytes.valid & self.bytes.ready):
            m.d.sync += self.bytes.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):  # start bit: sample the data bits in their middles
                    m.d.sync += [timer.eq(self.divisor + self.divisor // 2 - 1), bit.eq(0)]
                    m.next = "DATA"
            with m.State("DATA"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    m.d.sync += [shift.eq((shift >> 1) | (rx << 7)), bit.eq(bit + 1), timer.eq(self.divisor - 1)]
                    with m.If(bit == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                m.d.comb += self.busy.eq(1)
                m.d.sync += timer.eq(timer - 1)
                with m.If(timer == 0):
                    with m.If(rx):
                        m.d.sync += [self.bytes.payload.eq(shift), self.bytes.valid.eq(1)]
                    with m.Else():
                        m.d.sync += self.framing_errors.eq(self.framing_errors + 1)
                    m.next = "WAIT_HIGH"
            with m.State("WAIT_HIGH"):  # a broken byte: wait for the line to idle before the next start bit
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTransmitter(wiring.Component):
    """Bytes in, `tx` line out."""

    def __init__(self, divisor: int):
        if divisor < 4:
            raise ValueError(f"the baud divisor must be at least 4 cycles per bit, got {divisor}")
        self.divisor = divisor
        super().__init__({"bytes": In(stream.Signature(8)), "tx": Out(1, init=1)})

    def elaborate(self, platform):
        m = Module()
        timer = Signal(range(self.divisor))
        bits = Signal(10)  # start, 8 data bits LSB first, stop
        left = Signal(range(11))
        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)
        with m.Elif(left != 0):  # the next bit, held for `divisor` cycles
            m.d.sync += [self.tx.eq(bits[0]), bits.eq(bits >> 1), left.eq(left - 1), timer.eq(self.divisor - 1)]
        with m.Else():  # the stop bit has been held a full bit time
            m.d.comb += self.bytes.ready.eq(1)
            with m.If(self.bytes.valid):
                m.d.sync += [bits.eq((self.bytes.payload << 1) | (1 << 9)), left.eq(10)]
        return m
