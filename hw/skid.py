"""A register slice for valid/ready streams: every output of it comes straight from a flip-flop."""
from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out


class SkidBuffer(wiring.Component):
    """Two entries: the output register and a skid register behind it. `o.valid` / `o.payload` and
    `i.ready` are registers, so neither side's handshake logic reaches the other's in one cycle. A word
    accepted in cycle c is offered from cycle c + 1; at one word per cycle both ways nothing stalls."""

    def __init__(self, shape):
        super().__init__({"i": In(stream.Signature(shape)), "o": Out(stream.Signature(shape))})

    def elaborate(self, platform):
        m = Module()
        skid_valid = Signal()
        skid = Signal.like(self.i.payload)
        m.d.comb += self.i.ready.eq(~skid_valid)
        accepted = self.i.valid & ~skid_valid
        with m.If(~self.o.valid | self.o.ready):  # the output register is free for the next cycle
            with m.If(skid_valid):
                m.d.sync += [self.o.payload.eq(skid), skid_valid.eq(0)]
            with m.Else():
                m.d.sync += [self.o.valid.eq(accepted), self.o.payload.eq(self.i.payload)]
        with m.Elif(accepted):
            m.d.sync += [skid.eq(self.i.payload), skid_valid.eq(1)]
        return m
