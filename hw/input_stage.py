"""The input stage: files each pixel under its bin as it arrives, then hands out events bin by bin.

Per-bin linked lists in block RAM with registered reads: a head entry per bin and a link per pixel, plus
a 256-bit bitmap of non-empty bins. A head entry is (latest pixel of the bin, whether the bin holds an
earlier one); the link of pixel p is the head entry it replaced, so every event knows whether it is the
last of its bin without a second read. The first event is offered two cycles after the last pixel is
accepted; a new bin's first event (or the end marker) two cycles after the previous bin's last was taken
(the consuming layer spends the cycle between on its CLOSE, so the gap costs nothing). In that gap cycle
the priority encoder's answer is registered, so it drives only the head read's address.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import layouts
from .config import index_width
from .encoders import lowest_set_bit


class InputStage(wiring.Component):
    """Pixels in (raster order, one per cycle), events out (bins ascending; within a bin, the latest
    pixel first). With `skip_bin_255`, bin 255 (black pixels) is never handed out."""

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
        entry = data.StructLayout({"index": unsigned(width), "has_next": unsigned(1)})
        m.submodules.heads = heads = Memory(shape=entry, depth=256, init=[])
        m.submodules.links = links = Memory(shape=entry, depth=n_in, init=[])
        # registered reads that return the old contents when the same address is written
        head_read, head_write = heads.read_port(), heads.write_port()
        link_read, link_write = links.read_port(), links.write_port()

        bitmap = Signal(256)  # bins holding at least one pixel not yet handed out
        count = Signal(range(n_in))
        link_pending, link_addr = Signal(), Signal(width)  # the link of the pixel taken last cycle
        from_link = Signal()  # the offered event is the link read's data (else the head read's)
        head_ready = Signal()  # the head read's data belongs to the current lowest bin
        walk_bin, walk_any = Signal(8), Signal()  # the lowest non-empty bin, registered in the gap cycle
        framing_error = Signal()
        m.d.comb += self.framing_error.eq(framing_error)

        walk_bits = Cat(bitmap[:255], Const(0, 1)) if self.skip_bin_255 else bitmap
        any_bin, low_bin = lowest_set_bit(m, walk_bits, "bin")

        # a pixel's link is written the cycle after it was taken, from the head entry it replaced
        m.d.comb += [link_write.addr.eq(link_addr), link_write.data.eq(head_read.data),
                     link_write.en.eq(link_pending)]
        m.d.sync += link_pending.eq(0)

        with m.FSM():
            with m.State("INGEST"):
                pixel = self.pixels.payload
                bin_in = Signal(8)
                m.d.comb += [bin_in.eq(~pixel.data), self.pixels.ready.eq(1), head_read.addr.eq(bin_in)]
                with m.If(self.pixels.valid):
                    m.d.comb += [head_write.addr.eq(bin_in), head_write.en.eq(1),
                                 head_write.data.index.eq(count),
                                 head_write.data.has_next.eq(bitmap.bit_select(bin_in, 1))]
                    m.d.sync += [bitmap.bit_select(bin_in, 1).eq(1), link_pending.eq(1), link_addr.eq(count)]
                    is_last = count == n_in - 1
                    with m.If(pixel.last != is_last):
                        m.d.sync += framing_error.eq(1)
                    with m.If(is_last):
                        m.d.comb += self.last_pixel.eq(1)
                        m.d.sync += [count.eq(0), from_link.eq(0), head_ready.eq(0)]
                        m.next = "WALK"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
            with m.State("WALK"):
                offered = Signal(entry)  # the event on offer: from the link read inside a bin, else the head read
                with m.If(from_link):
                    m.d.comb += offered.eq(link_read.data)
                with m.Else():
                    m.d.comb += offered.eq(head_read.data)
                m.d.comb += [head_read.addr.eq(low_bin), link_read.addr.eq(offered.index), link_read.en.eq(0)]
                m.d.sync += head_ready.eq(1)
                with m.If(~head_ready):  # the gap cycle: the bitmap is settled, the encoder's answer is kept
                    m.d.sync += [walk_bin.eq(low_bin), walk_any.eq(any_bin)]
                with m.If(self.stop | (head_ready & ~walk_any)):
                    m.d.comb += [self.events.valid.eq(1), self.events.payload.end.eq(1)]
                    with m.If(self.events.ready):
                        m.next = "WAIT"
                with m.Elif(head_ready):  # (nothing is offered in the gap cycle: the next head is being read)
                    m.d.comb += [
                        self.events.valid.eq(1),
                        self.events.payload.index.eq(offered.index),
                        self.events.payload.bin.eq(walk_bin),
                        self.events.payload.last.eq(~offered.has_next),
                    ]
                    with m.If(self.events.ready):
                        with m.If(offered.has_next):
                            m.d.comb += link_read.en.eq(1)
                            m.d.sync += from_link.eq(1)
                        with m.Else():  # the bin is done; its successor's head is read next cycle
                            m.d.sync += [bitmap.bit_select(walk_bin, 1).eq(0), from_link.eq(0), head_ready.eq(0)]
            with m.State("WAIT"):
                with m.If(self.restart):
                    m.d.sync += [bitmap.eq(0), framing_error.eq(0)]
                    m.next = "INGEST"
        return m
