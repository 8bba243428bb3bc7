"""The input stage: files each pixel under its bin as it arrives, then hands out events bin by bin.

Per-bin linked lists (a head per bin, a link per pixel) plus a 256-bit bitmap of non-empty bins: the
first event is offered the cycle after the last pixel is accepted, and empty bins cost nothing.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import layouts
from .config import index_width
from .encoders import lowest_set_bit


class InputStage(wiring.Component):
    """Pixels in (raster order, one per cycle), events out (bins ascending; within a bin, the order of
    the linked list). With `skip_bin_255`, bin 255 (black pixels) is never handed out."""

    def __init__(self, n_in: int, skip_bin_255: bool):
        self.n_in = n_in
        self.skip_bin_255 = skip_bin_255
        super().__init__({
            "pixels": In(stream.Signature(layouts.PIXEL)),
            "events": Out(stream.Signature(layouts.event(n_in))),
            "stop": In(1),  # hand out the end of the events now (early exit decided)
            "restart": In(1),  # leave WAIT and accept the next image
            "last_pixel": Out(1),  # pulse: the image's last pixel is accepted in this cycle
            "framing_error": Out(1),  # tlast disagreed with the pixel count in this image
        })

    def elaborate(self, platform):
        m = Module()
        n_in, width = self.n_in, index_width(self.n_in)
        link = data.StructLayout({"index": unsigned(width), "valid": unsigned(1)})
        m.submodules.heads = heads = Memory(shape=unsigned(width), depth=256, init=[])
        m.submodules.links = links = Memory(shape=link, depth=n_in, init=[])
        head_read, head_write = heads.read_port(domain="comb"), heads.write_port()
        link_read, link_write = links.read_port(domain="comb"), links.write_port()

        bitmap = Signal(256)  # bins holding at least one pixel not yet handed out
        count = Signal(range(n_in))
        current = Signal(width)  # the event being offered, once inside a bin
        inside_bin = Signal()
        framing_error = Signal()
        m.d.comb += self.framing_error.eq(framing_error)

        walk_bits = Cat(bitmap[:255], Const(0, 1)) if self.skip_bin_255 else bitmap
        any_bin, low_bin = lowest_set_bit(m, walk_bits, "bin")

        with m.FSM():
            with m.State("INGEST"):
                pixel = self.pixels.payload
                bin_in = Signal(8)
                m.d.comb += [bin_in.eq(~pixel.data), self.pixels.ready.eq(1), head_read.addr.eq(bin_in)]
                with m.If(self.pixels.valid):
                    m.d.comb += [
                        link_write.addr.eq(count), link_write.en.eq(1),
                        link_write.data.index.eq(head_read.data),
                        link_write.data.valid.eq(bitmap.bit_select(bin_in, 1)),
                        head_write.addr.eq(bin_in), head_write.data.eq(count), head_write.en.eq(1),
                    ]
                    m.d.sync += bitmap.bit_select(bin_in, 1).eq(1)
                    is_last = count == n_in - 1
                    with m.If(pixel.last != is_last):
                        m.d.sync += framing_error.eq(1)
                    with m.If(is_last):
                        m.d.comb += self.last_pixel.eq(1)
                        m.d.sync += count.eq(0)
                        m.next = "WALK"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
            with m.State("WALK"):
                index = Mux(inside_bin, current, head_read.data)
                m.d.comb += [head_read.addr.eq(low_bin), link_read.addr.eq(index), self.events.valid.eq(1)]
                with m.If(self.stop | ~any_bin):
                    m.d.comb += self.events.payload.end.eq(1)
                    with m.If(self.events.ready):
                        m.next = "WAIT"
                with m.Else():
                    m.d.comb += [
                        self.events.payload.index.eq(index),
                        self.events.payload.bin.eq(low_bin),
                        self.events.payload.last.eq(~link_read.data.valid),
                    ]
                    with m.If(self.events.ready):
                        with m.If(link_read.data.valid):
                            m.d.sync += [current.eq(link_read.data.index), inside_bin.eq(1)]
                        with m.Else():
                            m.d.sync += [bitmap.bit_select(low_bin, 1).eq(0), inside_bin.eq(0)]
            with m.State("WAIT"):
                with m.If(self.restart):
                    m.d.sync += [bitmap.eq(0), framing_error.eq(0), inside_bin.eq(0)]
                    m.next = "INGEST"
        return m
