"""One weight layer as an event-driven binary integrate-and-fire unit.

An event word (up to E events of bin b, one per input bank: `input_bank`) reads, in each
bank's ROM, G = ceil(n_out / P) words of P bits, one per cycle, and adds the sum of the events' +1 / -1 to
P neurons per cycle. After the last word of a bin, the neurons whose potential reached their threshold
fire at bin b + 1 (each neuron once): they leave as words of the next layer's banks (one word per cycle,
each bank's lowest pending neuron) to the next layer and to the spike port. Bins without events are
never visited.

Pipeline stages: A issues the ROM read of (word, group); R (only when the ROMs are in block RAM) registers
the word read; B updates the potentials of that group and, at the end of a bin, compares and writes the
neurons that fire to the bin's entry of the spike queue. An emitter drains the queue in order while stage
A goes on with the next bins. The output layer decides in two more registered stages, C and D. Each lane
keeps its own potentials (registers when G = 1, else a small memory of G words) and thresholds, so no
wide vector is assembled from all lanes.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from . import layouts
from .config import (LayerConfig, index_width, input_bank, potential_width, rom_in_block_ram,
                     spike_queue_entries)
from .encoders import any_set, any_set_words, at_least, chunked_lowest, popcount, select
from .skid import SkidBuffer


LANE_BLOCK = 4  # output lanes whose best candidate stage C picks (all pairs compared at once)
EMIT_CHUNK = 16  # neurons of a bank per chunk of the emitter's two-level search (a power of two)
EMIT_GATHER = 8  # chunks whose candidates for a word's index are gathered before the register slice (the
# parts are ORed behind it), so no path gathers across all of a bank's chunks in one cycle


def bank_rom_words(signs: np.ndarray, lanes: int, banks: int, layer: int) -> list[list[int]]:
    """Per bank j of E: the ROM of the inputs in bank j (`input_bank`), word (r * G + g) for the one at
    index r; rows past n_in are all -1 (never read: no such input spikes)."""
    n_in, n_out = signs.shape
    depth = -(-n_in // banks)
    rows = np.full((banks, depth, n_out), -1, dtype=signs.dtype)
    inputs = np.arange(n_in)
    rows[input_bank(inputs, banks, layer), inputs // banks] = signs
    return [rom_words(rows[j], lanes) for j in range(banks)]


def rom_words(signs: np.ndarray, lanes: int) -> list[int]:
    """ROM word (i * G + g) holds the weights from input i to neurons g*P .. g*P + P - 1, bit l set for +1."""
    n_in, n_out = signs.shape
    groups = -(-n_out // lanes)
    bits = np.zeros((n_in, groups * lanes), np.uint8)
    bits[:, :n_out] = signs > 0
    weights = (1 << np.arange(lanes, dtype=object))
    return [int((row * weights).sum()) for row in bits.reshape(n_in * groups, lanes).astype(object)]


def lane_thresholds(thresholds: np.ndarray, n_in: int, lanes: int) -> np.ndarray:
    """(G, P) thresholds; lanes past n_out get n_in + 1 (they never fire)."""
    groups = -(-len(thresholds) // lanes)
    padded = np.full(groups * lanes, n_in + 1, dtype=np.int64)
    padded[: len(thresholds)] = thresholds
    return padded.reshape(groups, lanes)


def _best_of(m, candidates, name):
    """The best of (valid, potential, index) candidates given in index order: the highest potential, the
    leftmost on a tie. Every pair is compared at once (one comparator in series, then a one-hot select),
    not in a tree of comparisons: candidate i wins when it is valid and no valid candidate left of it has
    a potential >= its own, nor one right of it a higher one."""
    n = len(candidates)
    at_least = {}  # (i, j), i < j: candidate i's potential >= candidate j's
    for i in range(n):
        for j in range(i + 1, n):
            at_least[i, j] = Signal(name=f"{name}_ge{i}_{j}")
            m.d.comb += at_least[i, j].eq(candidates[i][1] >= candidates[j][1])
    wins = []
    for i, (valid, _, _) in enumerate(candidates):
        win = Signal(name=f"{name}_wins{i}")
        beats = [~candidates[j][0] | ~at_least[j, i] for j in range(i)] + \
                [~candidates[j][0] | at_least[i, j] for j in range(i + 1, n)]
        m.d.comb += win.eq(valid & Cat(*beats).all() if beats else valid)
        wins.append(win)
    best = Signal(name=f"{name}_valid"), Signal.like(candidates[0][1], name=f"{name}_v"), \
        Signal.like(candidates[0][2], name=f"{name}_index")
    m.d.comb += [best[0].eq(Cat(*wins).any()),
                 best[1].eq(any_set_words(m, [Mux(win, value, 0) for win, (_, value, _) in zip(wins, candidates)],
                                          f"{name}_vsel")),
                 best[2].eq(any_set_words(m, [Mux(win, index, 0) for win, (_, _, index) in zip(wins, candidates)],
                                          f"{name}_isel"))]
    return best


class LayerUnit(wiring.Component):
    """Events in, spikes out (to the next layer and to the spike port). The output layer also decides."""

    def __init__(self, config: LayerConfig, signs: np.ndarray, thresholds: np.ndarray, early: bool = False):
        self.config = config
        self.signs = signs
        self.thresholds = thresholds
        self.early = early
        members = {
            "events": In(stream.Signature(layouts.event(config.n_in, config.events))),
            "spikes": Out(stream.Signature(layouts.spike(config.n_out, config.events_out))),
            "stop_bin": In(9, init=256),  # early exit: spikes at bins >= stop_bin are no longer needed
            "integrated": Out(1),  # pulse: an event was taken and integrated in this cycle
        }
        if config.is_output:
            members.update({
                "decide": Out(1),  # pulse: decision and first_spike_bin are final in this cycle
                "decision": Out(index_width(config.n_out)),
                "first_spike_bin": Out(9),
                "finished": Out(1),  # pulse: the image's events are all taken; the layer is clear
            })
        else:
            members["out_events"] = Out(stream.Signature(layouts.event(config.n_out, config.events_out)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        lanes, groups, width = cfg.lanes, cfg.groups, potential_width(cfg.n_in)
        lane_layout = data.StructLayout({"v": signed(width), "fired": unsigned(1)})
        left_width = (2 * cfg.n_in + 1).bit_length() + 1  # theta - 1 - V lies in -n_in - 1 .. 2 n_in
        thresholds = lane_thresholds(self.thresholds, cfg.n_in, lanes)

        # one ROM per input bank; a bank of one word (E = n_in, G = 1) is a constant
        banks, bank_words = cfg.events, bank_rom_words(self.signs, lanes, cfg.events, cfg.index)
        stage_r = rom_in_block_ram(cfg.n_in, cfg.n_out, lanes, banks)
        rom_data, rom_reads = [], []
        for j, words in enumerate(bank_words):
            if len(words) == 1:
                rom_data.append(Const(words[0], unsigned(lanes)))
                rom_reads.append(None)
            else:
                # a large ROM goes to block RAM even when shallow (yosys would spread a 196 x 600 bank over LUTs);
                # a small one is built from logic, so no block RAM's clock-to-out is in stage B's path
                m.submodules[f"rom{j}" if banks > 1 else "rom"] = rom = Memory(
                    shape=unsigned(lanes), depth=len(words), init=words,
                    attrs={"ram_style": "block" if stage_r else "logic"})
                rom_reads.append(rom.read_port())
                if stage_r:  # stage R registers the word read: the block RAM's clock-to-out is not in stage B's path
                    rom_word = Signal(lanes, name=f"rom_word{j}")
                    m.d.sync += rom_word.eq(rom_reads[-1].data)
                    rom_data.append(rom_word)
                else:
                    rom_data.append(rom_reads[-1].data)
        b_slots = Signal(banks)  # stage B: the word's valid slots
        n_valid = Signal(range(banks + 1))  # stage B: events in the word
        if banks > 1:
            m.d.comb += n_valid.eq(popcount(m, [b_slots[j] for j in range(banks)], "n_valid"))

        group = Signal(range(groups))  # stage A: group of the event being issued
        # stage R (the ROM word is read) and stage B (it is added), each: valid, group, last word of its bin, bin
        r_valid, r_group, r_last, r_bin = Signal(name="r_valid"), Signal(range(groups), name="r_group"), \
            Signal(name="r_last"), Signal(8, name="r_bin")
        queue_depth = spike_queue_entries(banks)
        r_slots, r_entry = Signal(banks, name="r_slots"), Signal(range(queue_depth), name="r_entry")
        b_valid, b_group, b_last, b_bin = Signal(name="b_valid"), Signal(range(groups), name="b_group"), \
            Signal(name="b_last"), Signal(8, name="b_bin")
        group_valid = Signal(groups)  # groups written during this image; the others read as zero
        read_group = Signal(range(groups))  # the group whose potentials are read (stage B or fallback)
        thr_group = Signal(range(groups))  # the group whose thresholds are read (stage R, sync: ready in B)
        m.d.comb += read_group.eq(b_group)
        group_is_valid = Signal()
        m.d.comb += group_is_valid.eq(group_valid.bit_select(read_group, 1))
        can_fire = Signal()
        m.d.comb += can_fire.eq(b_last & ((b_bin != 255) if cfg.is_output else 1))

        # ---- the spike queue: one entry per closed bin (allocated when stage A issues the bin's last word):
        # the neurons that fired, bit g of lane l for neuron g*P + l, and their bin; the emitter drains the
        # entries in order while the layer goes on with the next bins
        entry_bits = [[Signal(groups, name=f"entry{d}_lane{lane}") for lane in range(lanes)]
                      for d in range(queue_depth)]
        entry_bin = [Signal(8, name=f"entry{d}_bin") for d in range(queue_depth)]
        alloc, head = Signal(range(queue_depth)), Signal(range(queue_depth))  # next to allocate, next to emit
        reserved = Signal(range(queue_depth + 1))  # allocated and not yet freed
        complete = Signal(range(queue_depth + 1))  # every group written and not yet freed
        b_entry = Signal(range(queue_depth))  # stage B: the entry of the word's bin

        # ---- stage B, per lane: update one group's potentials; at the end of a bin, compare
        old_v, new_v, crossed = [], [], []
        # with G = 1: (register, value at an image's start). These registers have no reset of their own:
        # `clearing` (an image's start, or the domain's reset where it has one) is their only synchronous
        # reset and b_valid their enable, which maps onto the flip-flops' reset and enable pins instead of a
        # multiplexer per bit; their initial values are the image-start values
        lane_resets = []
        clearing = Signal()
        for lane in range(lanes):
            fired_old, fire = Signal(name=f"fired_old{lane}"), Signal(name=f"fire{lane}")
            if groups > 1 or cfg.is_output:  # V before and after this word (a G = 1 hidden lane keeps theta - 1 - V)
                v_old, v_new = Signal(signed(width), name=f"v_old{lane}"), Signal(signed(width), name=f"v_new{lane}")
            if banks == 1:
                step = Mux(rom_data[0][lane], 1, -1)
            else:  # sum of the valid slots' +-1 = 2 * (valid +1 slots) - (valid slots)
                plus = popcount(m, [b_slots[j] & rom_data[j][lane] for j in range(banks)], f"plus{lane}")
                step = (plus << 1) - n_valid
            threshold = int(thresholds[0, lane])
            if groups == 1 and not cfg.is_output:
                # a hidden lane keeps what is left to its threshold, r = theta - 1 - V, in a register set to
                # theta - 1 at the image's start: it fires when r turns negative (its sign bit, no comparator)
                left = Signal(signed(left_width), init=threshold - 1, name=f"left{lane}", reset_less=True)
                left_new = Signal(signed(left_width), name=f"left_new{lane}")
                fired = Signal(name=f"fired{lane}", reset_less=True)
                m.d.comb += [left_new.eq(left - step), fired_old.eq(fired),
                             fire.eq(can_fire & left_new[-1] & ~fired_old)]
                with m.If(b_valid):
                    m.d.sync += [left.eq(left_new), fired.eq(fired | fire)]
                lane_resets += [(left, threshold - 1), (fired, 0)]
            elif groups == 1:  # an output lane: V and its fired flag in registers cleared at the image's start
                potential = Signal(signed(width), name=f"v{lane}", reset_less=True)
                fired = Signal(name=f"fired{lane}", reset_less=True)
                m.d.comb += [v_old.eq(potential), fired_old.eq(fired), v_new.eq(v_old + step),
                             fire.eq(can_fire & (v_new >= threshold) & ~fired_old)]
                with m.If(b_valid):
                    m.d.sync += [potential.eq(v_new), fired.eq(fired | fire)]
                lane_resets += [(potential, 0), (fired, 0)]
            else:  # G groups: a small memory per lane, its words invalid until written in this image
                pot = Memory(shape=lane_layout, depth=groups, init=[])
                m.submodules[f"potential{lane}"] = pot
                pot_read, pot_write = pot.read_port(domain="comb"), pot.write_port()
                thr = Memory(shape=signed(width), depth=groups, init=[int(t) for t in thresholds[:, lane]])
                m.submodules[f"threshold{lane}"] = thr
                thr_read = thr.read_port()
                m.d.comb += [
                    thr_read.addr.eq(thr_group),
                    pot_read.addr.eq(read_group),
                    v_old.eq(Mux(group_is_valid, pot_read.data.v, 0)),
                    fired_old.eq(group_is_valid & pot_read.data.fired),
                    v_new.eq(v_old + step),
                    fire.eq(can_fire & (v_new >= thr_read.data) & ~fired_old),
                    pot_write.addr.eq(b_group), pot_write.en.eq(b_valid),
                    pot_write.data.v.eq(v_new), pot_write.data.fired.eq(fired_old | fire),
                ]
            for d in range(queue_depth):  # a bin's close: the lanes that fire go to its queue entry
                with m.If(b_valid & b_last & (b_entry == d)):
                    m.d.sync += entry_bits[d][lane].bit_select(b_group, 1).eq(fire)
            if cfg.is_output:
                old_v.append(v_old)
                new_v.append(v_new)
            crossed.append(fire)
        with m.If(b_valid):
            m.d.sync += group_valid.bit_select(b_group, 1).eq(1)
        # per entry, bank and chunk of EMIT_CHUNK of the bank's neurons: whether one of them fired in the entry's
        # bin (`flag`) and whether two or more did (`several`), written by stage B beside the entry's bits
        # (accumulated over the groups when G > 1), so the emitter's control and the load read these short
        # vectors instead of a search over the entry's n_out bits
        out_banks = cfg.events_out
        chunks = [[list(range(cfg.n_out))[j::out_banks][i:i + EMIT_CHUNK]
                   for i in range(0, len(range(j, cfg.n_out, out_banks)), EMIT_CHUNK)] for j in range(out_banks)]
        entry_flags = [[[Signal(name=f"entry{d}_b{j}_chunk{c}") for c in range(len(chunks[j]))]
                        for j in range(out_banks)] for d in range(queue_depth)]
        entry_several = [[[Signal(name=f"entry{d}_b{j}_several{c}") for c in range(len(chunks[j]))]
                          for j in range(out_banks)] for d in range(queue_depth)]
        for j in range(out_banks):
            for c, neurons in enumerate(chunks[j]):
                part = [crossed[n % lanes] & (b_group == n // lanes) if groups > 1 else crossed[n % lanes]
                        for n in neurons]
                part_any = any_set(m, part, f"fired_b{j}_chunk{c}")
                part_several = at_least(m, part, 2, f"fired_b{j}_several{c}")
                for d in range(queue_depth):
                    flag, several = entry_flags[d][j][c], entry_several[d][j][c]
                    with m.If(b_valid & b_last & (b_entry == d)):
                        if groups > 1:  # group 0 starts the bin's flags afresh
                            more = b_group != 0
                            m.d.sync += [flag.eq(part_any | (more & flag)),
                                         several.eq(part_several | (more & (several | (flag & part_any))))]
                        else:
                            m.d.sync += [flag.eq(part_any), several.eq(part_several)]

        # the emitter sends from its working register only: the head entry is loaded into it (and freed) when
        # the register is idle or sends its last word, so its first word leaves the cycle after; an entry
        # where nothing fired is freed as soon as it is at the head. Neither the queue's select nor the load is in the
        # path from the working register through the search and back. A spike word takes the lowest
        # pending neuron of each of the next layer's banks (neuron n in bank n mod E_out, index n // E_out)
        has_entry = Signal()
        m.d.comb += has_entry.eq(complete != 0)
        work_bits = [Signal(groups, name=f"work_lane{lane}") for lane in range(lanes)]
        work_bin, work_active = Signal(8), Signal()
        head_lanes = [select(m, [entry_bits[d][lane] for d in range(queue_depth)], head, f"head_lane{lane}")
                      for lane in range(lanes)]
        head_bin = select(m, entry_bin, head, "head_bin")
        head_flags = [[select(m, [entry_flags[d][j][c] for d in range(queue_depth)], head, f"head_b{j}_chunk{c}")
                       for c in range(len(chunks[j]))] for j in range(out_banks)]
        # the bits the load writes and the free reads (anything fired, two or more in a bank) are summarised
        # per entry from the entry's own flags, then one bit is selected by `head`: the trees sit beside
        # their entry's flip-flops, and no wide select is in front of them
        entry_any = [any_set(m, [flag for flags in entry_flags[d] for flag in flags], f"entry{d}_any")
                     for d in range(queue_depth)]
        head_any = select(m, entry_any, head, "head_any")
        pending_bits = [work_bits[n % lanes][n // lanes] for n in range(cfg.n_out)]
        # per bank, the lowest pending neuron in two levels (`chunked_lowest`): registered flags per chunk
        # (loaded with the entry's) say which chunks still hold some
        # work_last (a register): the word the working register sends is its last (at most one pending neuron
        # per bank), so no search result is in the load's control; it is computed from the head entry when
        # loading (a bank with two or more), and from the working register when a word leaves (a bank with
        # three or more: two or more stay). Three or more in a bank: a chunk with three or more, three
        # flagged chunks, or two flagged chunks one of which holds two or more; so it is found from the
        # registered flags and each chunk's own count, not by a count over the bank's neurons
        bank_any, bank_parts, bank_rest, work_flags, flags_rest, bank_three = [], [], [], [], [], []
        for j in range(out_banks):
            flags = [Signal(name=f"work_b{j}_chunk{c}") for c in range(len(chunks[j]))]
            bits = pending_bits[j::out_banks]
            found, parts, rest, rest_flags, several = chunked_lowest(m, bits, flags, EMIT_CHUNK, f"pending_b{j}",
                                                                     chunks_per_part=EMIT_GATHER)
            bank_any.append(found), bank_parts.append(parts), bank_rest.append(rest)
            work_flags.append(flags), flags_rest.append(rest_flags)
            three = [at_least(m, bits[first:first + EMIT_CHUNK], 3, f"pending_b{j}_c{c}_three")
                     for c, first in enumerate(range(0, len(bits), EMIT_CHUNK))]
            bank_three.append(at_least(m, flags, 3, f"pending_b{j}_chunks_three")
                              | any_set(m, three, f"pending_b{j}_three")
                              | (any_set(m, several, f"pending_b{j}_several")
                                 & at_least(m, flags, 2, f"pending_b{j}_chunks_two")))
        work_last = Signal()
        entry_multi = [any_set(m, [at_least(m, entry_flags[d][j], 2, f"entry{d}_b{j}_chunks_several")
                                   for j in range(out_banks)]
                               + [several for per_bank in entry_several[d] for several in per_bank], f"entry{d}_multi")
                       for d in range(queue_depth)]
        head_several = select(m, entry_multi, head, "head_several")
        rest_several = any_set(m, bank_three, "rest_several")

        # ---- output layer: the best candidate so far (highest potential, lowest index)
        if cfg.is_output:
            decided = Signal()
            best_valid, best_v, best_index = Signal(), Signal(signed(width)), Signal(index_width(cfg.n_out))
            winner, t_star = Signal.like(best_index), Signal(9)
            in_fallback = Signal()
            fallback_group = Signal(range(groups))
            # stage C (registered): each lane's candidate of the group stage B handled: at the close of a
            # bin, the lanes that fired with V(b) (crossing is checked at bin ends only); in the fallback,
            # every real neuron with V(255). Stage C picks the best of each LANE_BLOCK lanes, stage D (also
            # registered) merges those and the best so far; each compares all its pairs at once, so no cycle
            # holds more than one comparison in series
            c_merge, c_close, c_bin = Signal(name="c_merge"), Signal(name="c_close"), Signal(8, name="c_bin")
            c_base = Signal.like(best_index, name="c_base")
            d_merge, d_close, d_bin = Signal(name="d_merge"), Signal(name="d_close"), Signal(8, name="d_bin")
            deciding = Signal()  # stage D decides in this cycle: the words behind it may not merge or close
            m.d.sync += [c_merge.eq((b_valid & b_last & ~decided & ~deciding) | in_fallback),
                         c_close.eq(b_valid & b_last & (b_group == groups - 1) & ~decided & ~deciding),
                         c_bin.eq(b_bin), c_base.eq(read_group * lanes),
                         d_merge.eq(c_merge & ~deciding), d_close.eq(c_close & ~deciding), d_bin.eq(c_bin)]
            decision_busy = Signal()  # a close or merge is still on its way to `best`
            m.d.comb += decision_busy.eq(c_merge | d_merge)
            leaves = []
            for lane in range(lanes):
                leaf = Signal(name=f"cand_valid{lane}"), Signal(signed(width), name=f"cand_v{lane}"), \
                    Signal.like(best_index, name=f"cand_index{lane}")
                m.d.sync += [leaf[0].eq(Mux(in_fallback, (read_group * lanes + lane) < cfg.n_out, crossed[lane])),
                             leaf[1].eq(Mux(in_fallback, old_v[lane], new_v[lane]))]
                m.d.comb += leaf[2].eq(c_base + lane)
                leaves.append(leaf)
            blocks = []
            for k, first in enumerate(range(0, lanes, LANE_BLOCK)):
                best_of = _best_of(m, leaves[first:first + LANE_BLOCK], f"cand_c{k}")
                node = Signal(name=f"d_valid{k}"), Signal(signed(width), name=f"d_v{k}"), \
                    Signal.like(best_index, name=f"d_index{k}")
                m.d.sync += [node[0].eq(best_of[0]), node[1].eq(best_of[1]), node[2].eq(best_of[2])]
                blocks.append(node)
            cand = _best_of(m, [(best_valid, best_v, best_index)] + blocks, "cand_d")
            with m.If(d_merge):
                m.d.sync += [best_valid.eq(cand[0]), best_v.eq(cand[1]), best_index.eq(cand[2])]
            # the decision: two cycles after stage B closed the first bin with an output spike
            m.d.comb += deciding.eq(d_close & cand[0])
            with m.If(deciding):
                m.d.sync += [decided.eq(1), winner.eq(cand[2]), t_star.eq(d_bin + 1)]
                if self.early:
                    m.d.comb += [self.decide.eq(1), self.decision.eq(cand[2]), self.first_spike_bin.eq(d_bin + 1)]

        # ---- the emitter: one word per cycle from the working register (active: it holds a pending neuron);
        # early exit drops it when its bin became useless
        if cfg.is_output:
            spike = self.spikes.payload
            m.d.comb += spike.bin.eq(work_bin)
            for j in range(out_banks):
                m.d.comb += [spike.slots[j].valid.eq(bank_any[j]),
                             spike.slots[j].index.eq(any_set_words(m, bank_parts[j], f"spike_b{j}_index"))]
            stopped = Const(0)
            m.d.comb += self.spikes.valid.eq(work_active)
            sent = self.spikes.ready
        else:
            # a hidden layer's words (and its end marker) leave through a register slice, which then offers
            # each to the next layer and to the spike port together (`forward`: not at bin 255 before a
            # hidden layer, where only the port gets it; no such field otherwise, since a field that is only
            # ever a constant becomes an `always @*` that Icarus never runs). The slice holds each bank's
            # index in parts (`EMIT_GATHER`), ORed behind it into the word
            word_layout = layouts.event(cfg.n_out, out_banks)
            index_shape = word_layout.members["slots"].elem_shape.members["index"]
            n_parts = max(len(parts) for parts in bank_parts)
            fields = {"bin": unsigned(8), "last": unsigned(1), "end": unsigned(1), "valid": unsigned(out_banks),
                      "parts": data.ArrayLayout(data.ArrayLayout(index_shape, n_parts), out_banks)}
            if cfg.next_is_hidden:
                fields["forward"] = unsigned(1)
            m.submodules.out_slice = out_slice = SkidBuffer(data.StructLayout(fields))
            word, held = out_slice.i.payload, out_slice.o.payload
            m.d.comb += [word.bin.eq(work_bin), word.last.eq(work_last), word.valid.eq(Cat(bank_any))]
            for j in range(out_banks):
                m.d.comb += [word.parts[j][p].eq(part) for p, part in enumerate(bank_parts[j])]
            held_word = Signal(word_layout)  # the held word, each bank's index ORed from its parts
            m.d.comb += [held_word.bin.eq(held.bin), held_word.last.eq(held.last), held_word.end.eq(held.end)]
            for j in range(out_banks):
                m.d.comb += [held_word.slots[j].valid.eq(held.valid[j]),
                             held_word.slots[j].index.eq(any_set_words(m, [held.parts[j][p] for p in range(n_parts)],
                                                                       f"held_b{j}_index"))]
            forward = held.forward if cfg.next_is_hidden else Const(1)
            if cfg.next_is_hidden:
                m.d.comb += word.forward.eq(~(work_bin == 255))
            stopped = Signal()
            m.d.comb += stopped.eq(work_active & (work_bin >= self.stop_bin))
            m.d.comb += out_slice.i.valid.eq(work_active & ~stopped)
            sent = out_slice.i.ready
            m.d.comb += [self.out_events.payload.eq(held_word), self.spikes.payload.slots.eq(held_word.slots),
                         self.spikes.payload.bin.eq(held_word.bin)]
            with m.If(held.end):
                m.d.comb += [self.out_events.valid.eq(out_slice.o.valid), out_slice.o.ready.eq(self.out_events.ready)]
            with m.Else():
                m.d.comb += [
                    self.spikes.valid.eq(out_slice.o.valid & (self.out_events.ready | ~forward)),
                    self.out_events.valid.eq(out_slice.o.valid & forward & self.spikes.ready),
                    out_slice.o.ready.eq(self.spikes.ready & (self.out_events.ready | ~forward))]
        # the working register is done in this cycle (its last word leaves, or it is dropped), or idle
        work_free = Signal()
        m.d.comb += work_free.eq(~work_active | stopped | (sent & work_last))
        # load: the head entry goes to the working register whenever that is free, even an entry where nothing
        # fired (the register then goes idle, as it would have), so whether the entry holds a spike is not in
        # the clock enable of the working register's bits; free: the head entry is done with (one where
        # nothing fired also while the register is busy)
        load, free = Signal(), Signal()
        m.d.comb += [load.eq(has_entry & work_free), free.eq(has_entry & (~head_any | work_free))]
        with m.If(load):
            m.d.sync += [work_active.eq(head_any), work_bin.eq(head_bin), work_last.eq(~head_several)]
            m.d.sync += [work.eq(entry) for work, entry in zip(work_bits, head_lanes)]
            m.d.sync += [flag.eq(value) for j in range(out_banks) for flag, value in zip(work_flags[j], head_flags[j])]
        with m.Elif(work_active & (stopped | sent)):
            m.d.sync += [work_active.eq(~stopped & ~work_last), work_last.eq(~rest_several)]
            # the bits only matter while the register is active, so they take the rest whether or not it stays so
            for j in range(out_banks):
                for r, n in enumerate(range(j, cfg.n_out, out_banks)):
                    m.d.sync += work_bits[n % lanes][n // lanes].eq(bank_rest[j][r])
                m.d.sync += [flag.eq(value) for flag, value in zip(work_flags[j], flags_rest[j])]
        with m.If(free):
            m.d.sync += head.eq(Mux(head == queue_depth - 1, 0, head + 1))

        # ---- stage A and the unit's phases
        event = self.events.payload
        # a word is dropped whole or not at all (once its group 0 is issued it holds a queue entry)
        if cfg.is_output:
            drop = (decided & (group == 0)) if self.early else Const(0)
        else:
            drop = ((event.bin + 1) >= self.stop_bin) & (group == 0)
        # stage A issues to R (block-RAM ROMs) or straight to B; R -> B; an image's start (or end) drops a
        # word still in R
        issue_valid, issue_group, issue_last, issue_bin, issue_slots, issue_entry = \
            (r_valid, r_group, r_last, r_bin, r_slots, r_entry) if stage_r else \
            (b_valid, b_group, b_last, b_bin, b_slots, b_entry)
        m.d.sync += issue_valid.eq(0)
        if stage_r:
            m.d.sync += [b_valid.eq(r_valid & ~clearing), b_group.eq(r_group), b_last.eq(r_last), b_bin.eq(r_bin),
                         b_slots.eq(r_slots), b_entry.eq(r_entry)]
        m.d.comb += thr_group.eq(r_group if stage_r else group)
        allocate = Signal()  # stage A issues group 0 of a bin's last word: its queue entry is reserved
        completing = Signal()  # stage B writes the last group of a bin's last word: its entry is complete
        m.d.comb += completing.eq(b_valid & b_last & (b_group == groups - 1))
        # the input stage may replace a word by the end marker before its last group (early exit): a word
        # that reserved an entry and never completes gives it back
        word_reserved, unreserve = Signal(), Signal()
        m.d.sync += [reserved.eq(reserved + allocate - free - unreserve), complete.eq(complete + completing - free)]

        # the ROMs read the offered word's address in every cycle, whether or not stage A issues it (a word
        # read and not issued is never used): no control logic sits in front of the block RAMs' address pins
        for j, rom_read in enumerate(rom_reads):
            if rom_read is not None:
                index = event.slots[j].index
                m.d.comb += rom_read.addr.eq(index * groups + group if groups > 1 else index)

        def clear_image():
            m.d.sync += [group_valid.eq(0), group.eq(0), alloc.eq(0), head.eq(0), reserved.eq(0), complete.eq(0),
                         word_reserved.eq(0)]
            m.d.sync += work_active.eq(0)
            m.d.comb += clearing.eq(1)
            if cfg.is_output:
                m.d.sync += [decided.eq(0), best_valid.eq(0)]

        def accumulate():  # take words, pass the end marker; a hidden layer does nothing else
            with m.If(self.events.valid):
                with m.If(event.end & word_reserved):
                    m.d.comb += unreserve.eq(1)
                    m.d.sync += [word_reserved.eq(0), group.eq(0)]
                with m.Elif(event.end):
                    # every closed bin's spikes have left (and, in the output layer, every close reached `best`)
                    with m.If((reserved == 0) & ~work_active & (~decision_busy if cfg.is_output else 1)):
                        m.d.sync += group.eq(0)
                        if cfg.is_output:
                            m.d.comb += self.events.ready.eq(1)
                            with m.If(decided):
                                m.d.comb += self.finished.eq(1)
                                if not self.early:
                                    m.d.comb += [self.decide.eq(1), self.decision.eq(winner),
                                                 self.first_spike_bin.eq(t_star)]
                                clear_image()
                            with m.Else():
                                m.d.sync += [fallback_group.eq(0), best_valid.eq(0)]
                                m.next = "FALLBACK"
                        else:  # the end marker follows the words through the slice
                            m.d.comb += [out_slice.i.valid.eq(1), out_slice.i.payload.end.eq(1),
                                         self.events.ready.eq(out_slice.i.ready)]
                            with m.If(out_slice.i.ready):
                                clear_image()
                with m.Elif(drop):
                    m.d.comb += self.events.ready.eq(1)
                    m.d.sync += group.eq(0)
                with m.Elif(~(event.last & (group == 0) & (reserved == queue_depth))):  # else: the queue is full
                    m.d.sync += [issue_valid.eq(1), issue_group.eq(group), issue_last.eq(event.last),
                                 issue_bin.eq(event.bin), issue_entry.eq(alloc),
                                 issue_slots.eq(Cat(event.slots[j].valid for j in range(banks)))]
                    with m.If(event.last & (group == 0)):
                        m.d.comb += allocate.eq(1)
                        if groups > 1:
                            m.d.sync += word_reserved.eq(1)
                        for d in range(queue_depth):
                            with m.If(alloc == d):
                                m.d.sync += entry_bin[d].eq(event.bin + 1)
                    with m.If(group == groups - 1):
                        m.d.comb += [self.events.ready.eq(1), self.integrated.eq(1)]
                        m.d.sync += group.eq(0)
                        m.d.sync += word_reserved.eq(0)
                        with m.If(event.last):
                            m.d.sync += alloc.eq(Mux(alloc == queue_depth - 1, 0, alloc + 1))
                    with m.Else():
                        m.d.sync += group.eq(group + 1)

        if cfg.is_output:
            with m.FSM():
                with m.State("ACCUM"):
                    accumulate()
                with m.State("FALLBACK"):  # no output spike: argmax of V(255), one group per cycle
                    m.d.comb += [in_fallback.eq(1), read_group.eq(fallback_group)]
                    m.d.sync += fallback_group.eq(fallback_group + 1)
                    with m.If(fallback_group == groups - 1):
                        m.next = "FALLBACK_DRAIN"
                with m.State("FALLBACK_DRAIN"):  # stage C picks the last group's best of each block
                    m.next = "FALLBACK_END"
                with m.State("FALLBACK_END"):  # stage D merges them
                    m.d.comb += [self.decide.eq(1), self.decision.eq(cand[2]), self.first_spike_bin.eq(256),
                                 self.finished.eq(1)]
                    clear_image()
                    m.next = "ACCUM"
        else:  # (no one-state FSM: its zero-width state register is not safe in every backend)
            accumulate()
        with m.If(clearing | ResetSignal(allow_reset_less=True)):
            m.d.sync += [register.eq(value) for register, value in lane_resets]
        return m
