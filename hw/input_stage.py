"""The input stage: files each pixel under its bin as it arrives, then hands out events bin by bin.

Per-bin linked lists in block RAM with registered reads: a head entry per bin and a link per pixel, plus
a 256-bit bitmap of the bins that hold a pixel. A head entry is (latest pixel of the bin, whether the bin
holds an earlier one); the link of pixel p is the head entry it replaced, so every event knows whether it
is the last of its bin without a second read. With E banks (pixel i at index i // E, in bank
(i + i // E) mod E: `input_bank`), each bank keeps its own lists and bitmap and all banks walk the same
bin together, one event each per word.

The walk never searches the 256-bit bitmap in one cycle. The bins form 16 groups of 16; two slots hold
the two lowest groups that still hold bins to hand out (their bins, per bank, as 16-bit words) and a
16-bit mask the other non-empty groups. The slots are kept sorted while the pixels arrive, so the lowest
bin is a 16-bit search from the first cycle of the walk; when the first slot's last bin is read, the
second moves up and the lowest group of the mask refills it (a 16-bit search and a 16-way select).

The heads of the next bin are read ahead as soon as the head reads' data are free (once the current
bin's first word is taken), so bins follow each other without a gap. Words leave through a register
slice (`SkidBuffer`): the first word is offered three cycles after the last pixel is accepted, every
next word (of the same bin or the next) the cycle after the previous one was taken, and the end marker
the cycle after the last word was taken (cycle 2 when there is no event).
"""
from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import layouts
from .config import index_width
from .encoders import any_set, any_set_words, lowest_one_hot, lowest_set_bit
from .skid import SkidBuffer

GROUPS, GROUP_BINS = 16, 16  # the walk's two-level search: 256 bins = 16 groups of 16


class InputStage(wiring.Component):
    """Pixels in (raster order, one per cycle), event words out (bins ascending). Pixel i goes to bank
    (i + i // E) mod E of E = `banks`, as index i // E (`input_bank`); a word holds one event of every
    bank with events left in the bin (within a bank, the latest pixel first). With `skip_bin_255`, bin 255 (black pixels) is never handed
    out."""

    def __init__(self, n_in: int, skip_bin_255: bool, banks: int = 1):
        self.n_in = n_in
        self.skip_bin_255 = skip_bin_255
        self.banks = banks
        super().__init__({
            "pixels": In(stream.Signature(layouts.PIXEL)),
            "events": Out(stream.Signature(layouts.event(n_in, banks))),
            "stop": In(1),  # hand out the end of the events now (early exit decided)
            "restart": In(1),  # leave WAIT and accept the next image
            "last_pixel": Out(1),  # pulse: the image's last pixel is accepted in this cycle
            "framing_error": Out(1),  # tlast disagreed with the pixel count in this image
        })

    def elaborate(self, platform):
        m = Module()
        n_in, banks = self.n_in, self.banks
        depth = -(-n_in // banks)
        width = index_width(depth)
        entry = data.StructLayout({"index": unsigned(width), "has_next": unsigned(1)})
        heads, links, bitmaps, link_pending, from_link, active = [], [], [], [], [], []
        for j in range(banks):
            m.submodules[f"heads{j}"] = head_mem = Memory(shape=entry, depth=256, init=[])
            m.submodules[f"links{j}"] = link_mem = Memory(shape=entry, depth=depth, init=[])
            # registered reads that return the old contents when the same address is written
            heads.append((head_mem.read_port(), head_mem.write_port()))
            links.append((link_mem.read_port(), link_mem.write_port()))
            bitmaps.append(Signal(256, name=f"bitmap{j}"))  # bins of bank j holding a pixel in this image
            link_pending.append(Signal(name=f"link_pending{j}"))  # bank j took a pixel last cycle
            from_link.append(Signal(name=f"from_link{j}"))  # bank j offers its link read's data (else its head's)
            active.append(Signal(name=f"active{j}"))  # bank j has events left in the bin being walked

        # the words leave through a register slice
        m.submodules.slice = out_slice = SkidBuffer(self.events.payload.shape())
        wiring.connect(m, out_slice.o, wiring.flipped(self.events))
        walk_out = out_slice.i

        count = Signal(range(n_in))
        # the next pixel's index in its bank (count // E), its place among the E pixels of that index (count
        # mod E), the bank of the first of them (index mod E) and its own bank (the two added, mod E)
        row, position = Signal(width, name="row"), Signal(range(banks), name="position")
        row_bank, bank = Signal(range(banks), name="row_bank"), Signal(range(banks), name="bank")
        link_addr = Signal(width)  # the index of the pixel taken last cycle (in its bank)
        # the bin being handed out, and the next one, whose heads are read ahead
        cur_valid, cur_bin, cur_first = Signal(), Signal(8), Signal()  # cur_first: its first word not taken yet
        next_valid, next_bin = Signal(), Signal(8)
        next_active = [Signal(name=f"next_active{j}") for j in range(banks)]
        framing_error = Signal()
        m.d.comb += self.framing_error.eq(framing_error)

        # ---- the bins still to be read, by group of 16: slot 0 (the lowest group) and slot 1 (the next),
        # each a group number and per bank a 16-bit word of bins; `left`: the other non-empty groups
        slot_valid = [Signal(name=f"slot{s}_valid") for s in range(2)]
        slot_group = [Signal(4, name=f"slot{s}_group") for s in range(2)]
        slot_words = [[Signal(GROUP_BINS, name=f"slot{s}_bank{j}") for j in range(banks)] for s in range(2)]
        left = Signal(GROUPS)

        def group_word(j, g):  # bank j's bins of group g that are walked
            word = bitmaps[j][g * GROUP_BINS:(g + 1) * GROUP_BINS]
            if self.skip_bin_255 and g == GROUPS - 1:
                word = Cat(word[:GROUP_BINS - 1], Const(0, 1))
            return word

        # the lowest bin: a 16-bit search in slot 0
        union = slot_words[0][0]
        if banks > 1:
            union = Signal(GROUP_BINS)
            m.d.comb += union.eq(any_set_words(m, slot_words[0], "union"))
        low_onehot = lowest_one_hot(m, union, "bin")
        _, low_in_group, several_in_group = lowest_set_bit(m, union, "bin", several=True)
        any_bin = slot_valid[0]
        low_bin = Signal(8)
        m.d.comb += low_bin.eq(Cat(low_in_group, slot_group[0]))
        # the refill: the lowest group of `left` (kept as a one-hot register, `left_low`) and its words
        left_low = Signal(GROUPS)
        refill_any = Signal()
        m.d.comb += refill_any.eq(left_low.any())
        refill_group = Signal(4)
        m.d.comb += refill_group.eq(Cat(any_set(m, [left_low[g] for g in range(GROUPS) if g >> b & 1], f"refill_g{b}")
                                        for b in range(4)))
        refill_words = []
        for j in range(banks):
            word = Signal(GROUP_BINS, name=f"refill_bank{j}")
            m.d.comb += word.eq(any_set_words(
                m, [Mux(left_low[g], group_word(j, g), 0) for g in range(GROUPS)], f"refill_bank{j}"))
            refill_words.append(word)

        left_rest = Signal(GROUPS)  # `left` once its lowest group is taken, and that one's lowest
        m.d.comb += left_rest.eq(left & ~left_low)
        left_rest_low = lowest_one_hot(m, left_rest, "left_rest")

        def load(s, valid, group, words):
            m.d.sync += [slot_valid[s].eq(valid), slot_group[s].eq(group)]
            m.d.sync += [w.eq(v) for w, v in zip(slot_words[s], words)]

        # the heads are read and written at one address (the pixel's bin while pixels arrive, the walk's bin
        # after), so the read and the write map onto one block-RAM port, whose read-before-write mode gives
        # the old entry without logic around the RAM; only pixels write
        head_addr = Signal(8)
        for head_read, head_write in heads:
            m.d.comb += [head_read.addr.eq(head_addr), head_write.addr.eq(head_addr)]
        # a pixel's link is written the cycle after it was taken, from the head entry it replaced
        for j in range(banks):
            (head_read, _), (_, link_write) = heads[j], links[j]
            m.d.comb += [link_write.addr.eq(link_addr), link_write.data.eq(head_read.data),
                         link_write.en.eq(link_pending[j])]
            m.d.sync += link_pending[j].eq(0)

        pixel = self.pixels.payload
        bin_in = Signal(8)
        m.d.comb += bin_in.eq(~pixel.data)
        # the pixel's bin one-hot, decoded once for all banks; each bitmap bit is set under its own enable
        # (a variable bit-select on the left of an assignment would be a 256-way case per bank, which yosys
        # expands into 256 x 256 compares before merging them; `bitmap | one-hot` would put an OR before
        # every bit's flip-flop instead of using its enable)
        bin_bit = Signal(256)
        m.d.comb += bin_bit.eq(Cat(bin_in == b for b in range(256)))
        with m.FSM():
            with m.State("INGEST"):
                m.d.comb += self.pixels.ready.eq(1)
                m.d.comb += head_addr.eq(bin_in)
                with m.If(self.pixels.valid):
                    for j, (_, head_write) in enumerate(heads):
                        with m.If(bank == j):
                            m.d.comb += [head_write.en.eq(1),
                                         head_write.data.index.eq(row),
                                         head_write.data.has_next.eq(bitmaps[j].bit_select(bin_in, 1))]
                            m.d.sync += link_pending[j].eq(1)
                            for b in range(256):
                                with m.If(bin_bit[b]):
                                    m.d.sync += bitmaps[j][b].eq(1)
                    self._file_group(m, bin_in, bank, slot_valid, slot_group, slot_words, left, left_low, load)
                    m.d.sync += link_addr.eq(row)
                    if banks > 1:
                        def after(b):  # bank b + 1 mod E
                            return Mux(b == banks - 1, 0, b + 1)
                        with m.If(position == banks - 1):  # the next index starts one bank further
                            m.d.sync += [position.eq(0), row.eq(row + 1), row_bank.eq(after(row_bank)),
                                         bank.eq(after(row_bank))]
                        with m.Else():
                            m.d.sync += [position.eq(position + 1), bank.eq(after(bank))]
                    else:
                        m.d.sync += row.eq(row + 1)
                    is_last = count == n_in - 1
                    with m.If(pixel.last != is_last):
                        m.d.sync += framing_error.eq(1)
                    with m.If(is_last):
                        m.d.comb += self.last_pixel.eq(1)
                        m.d.sync += [count.eq(0), bank.eq(0), row.eq(0), cur_valid.eq(0), next_valid.eq(0)]
                        if banks > 1:
                            m.d.sync += [position.eq(0), row_bank.eq(0)]
                        m.d.sync += [f.eq(0) for f in from_link]
                        m.next = "WALK"
                    with m.Else():
                        m.d.sync += count.eq(count + 1)
            with m.State("WALK"):
                offered = []  # each bank's event on offer: its head read for a bin's first word, else its link read
                for j in range(banks):
                    (head_read, _), (link_read, _) = heads[j], links[j]
                    bank_offer = Signal(entry, name=f"offered{j}")
                    with m.If(from_link[j]):
                        m.d.comb += bank_offer.eq(link_read.data)
                    with m.Else():
                        m.d.comb += bank_offer.eq(head_read.data)
                    m.d.comb += [head_addr.eq(low_bin), head_read.en.eq(0),
                                 link_read.addr.eq(bank_offer.index), link_read.en.eq(0)]
                    offered.append(bank_offer)
                more = Signal()  # some bank holds another event of this bin
                m.d.comb += more.eq(any_set(m, [active[j] & offered[j].has_next for j in range(banks)], "more"))
                word = walk_out.payload
                taken = Signal()  # a word of the current bin is taken in this cycle
                done = Signal()  # ... and it is the bin's last
                with m.If(self.stop | (~cur_valid & ~next_valid & ~any_bin)):
                    m.d.comb += [walk_out.valid.eq(1), word.end.eq(1)]
                    with m.If(walk_out.ready):
                        m.next = "WAIT"
                with m.Elif(cur_valid):
                    m.d.comb += [walk_out.valid.eq(1), word.bin.eq(cur_bin), word.last.eq(~more),
                                 taken.eq(walk_out.ready), done.eq(walk_out.ready & ~more)]
                    for j in range(banks):
                        m.d.comb += [word.slots[j].valid.eq(active[j]), word.slots[j].index.eq(offered[j].index)]
                    with m.If(taken):
                        m.d.sync += cur_first.eq(0)
                        for j in range(banks):
                            (link_read, _) = links[j]
                            with m.If(active[j] & offered[j].has_next):
                                m.d.comb += link_read.en.eq(1)
                                m.d.sync += from_link[j].eq(1)
                            with m.Else():
                                m.d.sync += active[j].eq(0)
                # the next bin moves up when the current one is done (its heads were read ahead)
                with m.If(done | ~cur_valid):
                    m.d.sync += [cur_valid.eq(next_valid), cur_bin.eq(next_bin), cur_first.eq(1)]
                    m.d.sync += [f.eq(0) for f in from_link]
                    m.d.sync += [active[j].eq(next_active[j]) for j in range(banks)]
                    m.d.sync += next_valid.eq(0)
                # read the lowest unread bin's heads ahead, whenever the head reads' data are not needed next
                # cycle: not the current bin's first word still on offer, not a bin read ahead and waiting
                fetch = Signal()
                head_needed = Signal()
                m.d.comb += head_needed.eq(next_valid | (cur_valid & cur_first & ~taken))
                m.d.comb += fetch.eq(any_bin & ~head_needed & ~self.stop)
                low_active = [(slot_words[0][j] & low_onehot).any() for j in range(banks)]
                with m.If(fetch):
                    for j in range(banks):
                        m.d.comb += heads[j][0].en.eq(1)
                    # the read-ahead bin is written on every fetch (the register is free then: a fetch
                    # needs ~next_valid), so only next_valid and the current bin's registers wait on
                    # `done`, which comes late from the block RAM's data
                    m.d.sync += next_bin.eq(low_bin)
                    m.d.sync += [next_active[j].eq(low_active[j]) for j in range(banks)]
                    with m.If(done | ~cur_valid):  # straight to the current bin
                        m.d.sync += [cur_valid.eq(1), cur_bin.eq(low_bin), cur_first.eq(1)]
                        m.d.sync += [active[j].eq(low_active[j]) for j in range(banks)]
                    with m.Else():
                        m.d.sync += next_valid.eq(1)
                # the slots: a read bin leaves slot 0; an empty slot 0 takes slot 1, an empty slot 1 the refill
                slot0_free = ~slot_valid[0] | (fetch & ~several_in_group)
                refill_taken = Signal()
                with m.If(slot0_free):
                    with m.If(slot_valid[1]):
                        load(0, 1, slot_group[1], slot_words[1])
                        load(1, refill_any, refill_group, refill_words)
                        m.d.comb += refill_taken.eq(refill_any)
                    with m.Else():
                        load(0, refill_any, refill_group, refill_words)
                        m.d.comb += refill_taken.eq(refill_any)
                with m.Else():
                    with m.If(fetch):
                        m.d.sync += [w.eq(w & ~low_onehot) for w in slot_words[0]]
                    with m.If(~slot_valid[1]):
                        load(1, refill_any, refill_group, refill_words)
                        m.d.comb += refill_taken.eq(refill_any)
                with m.If(refill_taken):
                    m.d.sync += [left.eq(left_rest), left_low.eq(left_rest_low)]
            with m.State("WAIT"):
                with m.If(self.restart):
                    m.d.sync += [b.eq(0) for b in bitmaps]
                    m.d.sync += [v.eq(0) for v in slot_valid] + [left.eq(0), left_low.eq(0)]
                    m.d.sync += framing_error.eq(0)
                    m.next = "INGEST"
        return m

    def _file_group(self, m, bin_in, bank, slot_valid, slot_group, slot_words, left, left_low, load):
        """A pixel of bin `bin_in` in bank `bank` arrives: add its bin to the slot of its group, or insert
        its group (new, if below slot 1's) into the two sorted slots, or mark it in `left` (and keep
        `left_low` its lowest group, one-hot)."""
        group, position = bin_in[4:], bin_in[:4]
        bit = Signal(GROUP_BINS)
        m.d.comb += bit.eq(1 << position)
        fresh = [Mux(bank == j, bit, 0) for j in range(len(slot_words[0]))]  # a new group's words
        below0 = ~slot_valid[0] | (group < slot_group[0])
        in0 = slot_valid[0] & (group == slot_group[0])
        below1 = ~slot_valid[1] | (group < slot_group[1])
        in1 = slot_valid[1] & (group == slot_group[1])
        skipped = (bin_in == 255) if self.skip_bin_255 else Const(0)
        with m.If(skipped):
            pass
        with m.Elif(in0):
            for j, w in enumerate(slot_words[0]):
                with m.If(bank == j):
                    m.d.sync += w.eq(w | bit)
        with m.Elif(in1):
            for j, w in enumerate(slot_words[1]):
                with m.If(bank == j):
                    m.d.sync += w.eq(w | bit)
        with m.Elif(below1):  # a new group below slot 1 (below0 implies it): slot 1 (if any) goes back to `left`
            with m.If(below0):  # the new lowest group: slot 0 moves to slot 1
                load(0, 1, group, fresh)
                load(1, slot_valid[0], slot_group[0], slot_words[0])
            with m.Else():
                load(1, 1, group, fresh)
            with m.If(slot_valid[1]):
                m.d.sync += [left.bit_select(slot_group[1], 1).eq(1), left_low.eq(1 << slot_group[1])]
        with m.Else():
            at_or_below = Signal(GROUPS)  # groups 0 .. group
            m.d.comb += at_or_below.eq(Cat(Const(g, 4) <= group for g in range(GROUPS)))
            m.d.sync += left.bit_select(group, 1).eq(1)
            with m.If(~(left_low & at_or_below).any()):
                m.d.sync += left_low.eq(1 << group)
