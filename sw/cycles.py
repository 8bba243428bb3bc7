"""The core's cycle model: how many cycles each image takes, predicted from the reference's spikes.

The hardware (hw/, docs/hardware.md) is event-driven and its timing depends only on which events occur
in which bins, so the full-mode reference run determines it. Co-simulation asserts that the model and
the RTL agree on every image exactly; this module never imports the hardware.

Events travel in words: layer k takes E_k events per word, one from each bank of its inputs (`input_bank`:
input i at index i // E_k, in bank i mod E_k, layer 0's pixels rotated per word), all of one bin; a bin
whose busiest bank holds c events takes c words (word w holds one event of every bank with more than w).
With E = 1 a word is one event.

Timing rules (cycle 0 is the cycle the image's last pixel is accepted):
- The input stage offers layer 0 its first word in cycle 3 (`INPUT_FIRST_WORD`) and every next one (of
  the same bin or the next: the next bin's heads are read ahead) the cycle after the previous one was
  taken; the end marker the cycle after the last word was taken (cycle 2 when there is no event at all).
  Bin-255 input events are skipped when layer 0 is hidden.
- A layer takes a word when one is offered, spending G = ceil(n_out / P) cycles on it (the last of them
  takes it); nothing else stops it, except that a bin's last word needs a free entry in the layer's
  spike queue (`spike_queue_entries(E)`: 3, or 4 when E > 1; each reserved when the last word's first
  group is issued).
  Stage B writes the bin's spikes to the entry in the cycle after the last group was issued, or two
  cycles after when the layer's ROMs are in block RAM (`rom_in_block_ram`: stage R registers the word
  read); from the next cycle on it is at the head of the queue once the entries before it have left it.
  The emitter takes the entries in order into its working register, when the register is idle or in the
  cycle it sends its last word, and from the next cycle sends one word per cycle of the neurons that fired
  (banked by the next layer's E; the output layer's spikes one per word); the entry is free from the
  cycle after the load. An entry where nothing fired is freed the cycle it is at the head. A word sent in cycle c
  is offered to the next layer from cycle c + HANDOVER = c + 4 (it leaves through a register slice, the
  queue between layers reads its block RAM through a register, and a second register slice follows it).
  Spikes at bin 255 are not sent to a hidden layer.
- The end marker follows the last word; a layer takes it once every entry is free and the emitter has
  sent its last word. A hidden layer passes it on in that cycle (offered to the next layer HANDOVER
  cycles later). The output layer picks its winner in two registered stages after the lanes (C: the best of
  each block of lanes, D: those and the best so far): it decides DECISION_STAGES = 2 cycles after stage
  B closed its first firing bin (early mode), when it takes the end marker (full mode; not before the
  last close has passed stage D, unless the decision stopped it), or G + 2 cycles after that (no output
  spike: argmax over the G groups, then stages C and D). The result is valid the cycle after the
  decision: cycles = decision cycle + 1.
- `events` counts events integrated by all layers before the decision cycle; the core's counter counts
  words (`Schedule.words`), the same number when every E is 1.

The floor (`event_floor`) is what no schedule of the same events can beat when layer k integrates at most
E_k events per cycle: layer 0's events are there from cycle 1; a spike of bin b can be integrated the cycle
after its layer integrated its last event of a bin < b; events are integrated in bin order; nothing else
costs a cycle (no bin changes, no hand-over latency). The result comes the cycle after the output layer
integrated its last event that the decision needs (bins < t*, or every event when no output neuron fired
or in full mode).

The pipeline floor (`event_floor` with `pipeline_latency(...)`) charges, on top, the core's fixed
latencies, so what separates it from the cycles is what the schedule loses to waiting (a full spike queue,
an emitter busy with earlier bins, words of one bin that follow each other): layer 0's first event in
cycle INPUT_FIRST_WORD; a spike 3 + R_k + HANDOVER cycles after its layer took its last event of an
earlier bin (stage B one cycle later, R_k = 1 more with stage R; at the head of the queue the next cycle;
loaded; sent the cycle after; offered HANDOVER cycles after that); the result 2 + R + DECISION_STAGES cycles
after the output layer took the last word of the bin that fired (stage B, stages C and D, the result
register; a full run no sooner), and 2 cycles after its last word otherwise. Both are lower bounds of the model's cycles
on every image (tests/test_cycles.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

T_MAX = 256
MODES = ("full", "early")
SPIKE_QUEUE_ENTRIES = 3  # closed bins a layer holds for its emitter at one event per cycle (hw/layer.py)
SPIKE_QUEUE_ENTRIES_BANKED = 4  # ... at E > 1 events per cycle, where bins close faster
BLOCK_ROM_BITS = 2048  # weight ROMs (per input bank) of at least this many bits go to block RAM, smaller ones to logic
DECISION_STAGES = 2  # registered stages between the output layer's stage B and its decision (C and D)
HANDOVER = 4  # a hidden layer's word sent in cycle c is offered to the next layer in cycle c + HANDOVER
INPUT_FIRST_WORD = 3  # the cycle the input stage offers its first word (its words leave through a register)


def spike_queue_entries(events: int) -> int:
    """Entries of a layer's spike queue: one more when it takes several events per cycle (a fourth entry
    costs flip-flops, not LUTs, but its wider head select is on the emitter's critical path)."""
    return SPIKE_QUEUE_ENTRIES if events == 1 else SPIKE_QUEUE_ENTRIES_BANKED


def rom_in_block_ram(n_in: int, n_out: int, lanes: int, events: int) -> bool:
    """Whether a layer's weight ROMs (one per input bank: ceil(n_in / E) * G words of P bits) go to block
    RAM. Such a layer registers the word read (stage R): stage B comes two cycles after the issue, else one."""
    words = -(-n_in // events) * -(-n_out // lanes)
    return words > 1 and words * lanes >= BLOCK_ROM_BITS


def parse_lanes(lanes, sizes_out, what: str = "lanes", bound: str = "n_out") -> tuple[int, ...]:
    """Lanes per layer from an int (the same P everywhere, capped at each n_out), a "P0,P1" string
    ("max" allowed), a sequence, or None/"max" (a whole layer per cycle). `what` and `bound` name the
    quantity and its per-layer maximum in the error messages (parse_events reuses the rules)."""
    sizes = [int(n) for n in sizes_out]
    if lanes is None or lanes == "max":
        return tuple(sizes)
    if isinstance(lanes, str):
        parts = [p.strip() for p in lanes.split(",")]
        try:
            if len(parts) == 1:
                lanes = int(parts[0])
            elif len(parts) == len(sizes):
                lanes = [n if p == "max" else int(p) for p, n in zip(parts, sizes)]
            else:
                raise ValueError
        except ValueError:
            raise ValueError(f"{what} {lanes!r}: give one number, or one per layer ({len(sizes)}) "
                             "separated by commas") from None
    if isinstance(lanes, (int, np.integer)):
        lanes = [min(int(lanes), n) for n in sizes]
    lanes = tuple(int(p) for p in lanes)
    if len(lanes) != len(sizes):
        raise ValueError(f"{what} {lanes}: the network has {len(sizes)} layers")
    for k, (p, n) in enumerate(zip(lanes, sizes)):
        if not 1 <= p <= n:
            raise ValueError(f"{what} of layer {k} must lie in 1..{n} (its {bound}), got {p}")
    return lanes


def parse_events(events, sizes_in) -> tuple[int, ...]:
    """Events per cycle E per layer (inputs banked by `input_bank`), like `parse_lanes` over each n_in: an int
    (capped at each n_in), "E0,E1" ("max": every input in its own bank), a sequence, or None (1)."""
    sizes = [int(n) for n in sizes_in]
    if events is None:
        return (1,) * len(sizes)
    return parse_lanes(events, sizes, what="events per cycle", bound="n_in")


@dataclass(frozen=True)
class FloorLatency:
    """Fixed cycles a floor charges: layer 0's first event, a spike's way from its layer's last event of an
    earlier bin to the next layer (one entry per layer but the last: at least 1), and the result after the
    output layer's last needed event, early mode with an output spike (`decision`) and otherwise (`end`)."""

    first_event: int = 1
    handover: tuple[int, ...] | None = None  # None: 1 for every layer
    decision: int = 1
    end: int = 1


def pipeline_latency(sizes, lanes, events) -> FloorLatency:
    """The core's fixed latencies (module docstring) for a network and a configuration."""
    sizes = [int(s) for s in sizes]
    lanes = parse_lanes(lanes, sizes[1:])
    banks = parse_events(events, sizes[:-1])
    stage_r = [int(rom_in_block_ram(sizes[k], sizes[k + 1], lanes[k], banks[k])) for k in range(len(sizes) - 1)]
    return FloorLatency(first_event=INPUT_FIRST_WORD, handover=tuple(3 + r + HANDOVER for r in stage_r[:-1]),
                        decision=2 + stage_r[-1] + DECISION_STAGES, end=2)


@dataclass
class Schedule:
    """Per image and mode: cycles, and the events each layer integrates before the decision."""

    cycles_full: np.ndarray  # int64 (N,)
    cycles_early: np.ndarray
    layer_events_full: np.ndarray  # int64 (N, L)
    layer_events_early: np.ndarray
    floor_full: np.ndarray  # int64 (N,): the event floor at the same events per cycle
    floor_early: np.ndarray
    layer_words_full: np.ndarray  # int64 (N, L): event words (one per cycle group; = events when E = 1)
    layer_words_early: np.ndarray
    pipeline_floor_full: np.ndarray  # int64 (N,): the event floor with the core's fixed latencies
    pipeline_floor_early: np.ndarray

    def cycles(self, mode: str) -> np.ndarray:
        return self.cycles_full if mode == "full" else self.cycles_early

    def floor(self, mode: str) -> np.ndarray:
        return self.floor_full if mode == "full" else self.floor_early

    def pipeline_floor(self, mode: str) -> np.ndarray:
        return self.pipeline_floor_full if mode == "full" else self.pipeline_floor_early

    def layer_events(self, mode: str) -> np.ndarray:
        return self.layer_events_full if mode == "full" else self.layer_events_early

    def events(self, mode: str) -> np.ndarray:
        return self.layer_events(mode).sum(axis=1)

    def words(self, mode: str) -> np.ndarray:
        """What the core's `events` counter reports: event words integrated before the decision."""
        return (self.layer_words_full if mode == "full" else self.layer_words_early).sum(axis=1)

    def synaptic_updates(self, mode: str, sizes_out) -> np.ndarray:
        """Weight reads applied to potentials: each event of layer k updates its n_out_k neurons."""
        return self.layer_events(mode) @ np.asarray(sizes_out, np.int64)


def input_bank(inputs, banks: int, layer: int):
    """The bank of each input (an int or an array) of layer `layer` with E = `banks` input banks; input i
    sits at index i // E of its bank. A hidden layer's inputs are neurons, in bank i mod E. Layer 0's are
    pixels in raster order, and each word of E pixels is rotated by its index: bank (i + i // E) mod E.
    A vertical stroke's pixels, often of one bin, then spread over the banks even when E divides the
    image's width, where i mod E would put them all in one bank and serialise them."""
    if layer == 0:
        return (inputs + inputs // banks) % banks
    return inputs % banks


def bank_input(bank, index, banks: int, layer: int):
    """The input at `index` of `bank` (the inverse of `input_bank`)."""
    if layer == 0:
        return index * banks + (bank - index) % banks
    return index * banks + bank


def _bin_words(bins: np.ndarray, in_bank: np.ndarray, banks: int) -> dict[int, list[int]]:
    """Per bin: the events of each word, when event e sits in bank `in_bank[e]` of `banks` and a word takes
    one event per bank (word w holds one event of every bank with more than w events in the bin)."""
    words = {}
    for b in np.unique(bins).tolist():
        counts = np.bincount(in_bank[bins == b], minlength=banks)
        words[b] = [int((counts > w).sum()) for w in range(int(counts.max()))]
    return words


def _layer(words_in, groups, fired_words, is_output, forward_255, from_input, stage_r, entries):
    """Run one layer over its event words (bin, arrival cycle, events), ascending bins; return (cycle the
    end marker is taken from, per word its consume cycle, outgoing words, cycle of the first firing
    close). `from_input`: the words come from the input stage, which offers each word the cycle after
    the previous one was taken (the next bin's heads are read ahead) and the end marker the cycle after
    the last word was taken (cycle INPUT_FIRST_WORD - 1 without any)."""
    t = 0  # stage A is free from this cycle
    consumed, words_out, frees = [], [], []  # frees: the cycle each queue entry is free again
    first_close = None
    head_next = 0  # the cycle from which the next entry may leave the head of the queue
    last_word = -1  # the cycle the emitter sends its last word (it may load the next entry in that cycle)
    n = len(words_in)
    for e, (b, arrival, _) in enumerate(words_in):
        if from_input and e:
            arrival = max(arrival, consumed[-1] + 1)
        last = e == n - 1 or words_in[e + 1][0] != b
        start = max(t, arrival)
        if last and len(frees) >= entries:  # the queue entry of `entries` bins ago
            start = max(start, frees[-entries])
        consumed.append(start + groups - 1)
        t = start + groups
        if last:  # stage B writes the bin's spikes to its entry in cycle t + stage_r; the emitter sees it next
            fired = fired_words.get(b + 1, []) if b < T_MAX - 1 else []
            if fired and is_output and first_close is None:
                first_close = t + stage_r
            at_head = max(t + stage_r + 1, head_next)
            if fired:  # loaded into the working register (idle, or sending its last word); words from the next cycle
                load = max(at_head, last_word)
                if forward_255 or b + 1 < T_MAX - 1:  # offered to the next layer HANDOVER cycles after
                    words_out.extend((b + 1, load + 1 + w + HANDOVER, n_events) for w, n_events in enumerate(fired))
                last_word = load + len(fired)
                head_next = load + 1
            else:  # an entry where nothing fired is freed at once
                head_next = at_head + 1
            frees.append(head_next)
    end_ready = max(t, last_word + 1, head_next)
    if is_output and n:  # the last close (stage B in cycle t + stage_r) must reach `best` through stages C
        # and D, unless the decision (two cycles after the first firing close) stops it from merging
        close = t + stage_r
        if first_close is None:
            end_ready = max(end_ready, close + DECISION_STAGES + 1)
        elif close < first_close + DECISION_STAGES:  # it is on its way until the decision cycle
            end_ready = max(end_ready, first_close + DECISION_STAGES + 1)
    if from_input:
        end_ready = max(end_ready, consumed[-1] + 1 if consumed else INPUT_FIRST_WORD - 1)
    return end_ready, consumed, words_out, first_close


def schedule(sizes, lanes, input_bins: np.ndarray, spikes: list[np.ndarray], events=None) -> Schedule:
    """Predict every image's cycles. `sizes` = [n_in, n_1, ..., n_classes]; `input_bins` (N, n_in) in
    0..255; `spikes` the full-mode reference's spike bins per layer (N, n_out); `events` E per layer."""
    sizes = [int(s) for s in sizes]
    n_layers = len(sizes) - 1
    lanes = parse_lanes(lanes, sizes[1:])
    banks = parse_events(events, sizes[:-1]) + (1,)  # the output layer's spikes leave one per word
    groups = [-(-n // p) for n, p in zip(sizes[1:], lanes)]
    input_bins = np.asarray(input_bins)
    n_images = input_bins.shape[0]
    cycles = {mode: np.zeros(n_images, np.int64) for mode in MODES}
    counted = {(what, mode): np.zeros((n_images, n_layers), np.int64) for what in ("events", "words") for mode in MODES}
    for i in range(n_images):
        bins = input_bins[i].astype(np.int64)
        keep = bins < T_MAX - 1 if n_layers > 1 else np.ones(len(bins), bool)
        input_words = _bin_words(bins[keep], input_bank(np.flatnonzero(keep), banks[0], 0), banks[0])
        words = [(b, INPUT_FIRST_WORD, n) for b, ws in sorted(input_words.items()) for n in ws]
        end_arrival = INPUT_FIRST_WORD - 1  # the input stage: see _layer (from_input)
        all_consumed = []
        for k in range(n_layers):
            row = spikes[k][i].astype(np.int64)
            fired = row < T_MAX
            fired_words = _bin_words(row[fired], input_bank(np.flatnonzero(fired), banks[k + 1], k + 1), banks[k + 1])
            is_output = k == n_layers - 1
            forward_255 = k + 2 >= n_layers  # the next layer (if any) is the output layer
            stage_r = int(rom_in_block_ram(sizes[k], sizes[k + 1], lanes[k], banks[k]))
            t, consumed, words_out, first_close = _layer(words, groups[k], fired_words, is_output, forward_255,
                                                         from_input=k == 0, stage_r=stage_r,
                                                         entries=spike_queue_entries(banks[k]))
            all_consumed.append((np.asarray(consumed, np.int64), np.array([w[2] for w in words], np.int64)))
            end_taken = max(t, end_arrival)
            if not is_output:
                words, end_arrival = words_out, end_taken + HANDOVER
                continue
            decided = {"full": end_taken if first_close is not None else end_taken + groups[k] + DECISION_STAGES}
            decided["early"] = first_close + DECISION_STAGES if first_close is not None else decided["full"]
        for mode in MODES:
            cycles[mode][i] = decided[mode] + 1
            before = [c < decided[mode] for c, _ in all_consumed]
            counted["words", mode][i] = [int(b.sum()) for b in before]
            counted["events", mode][i] = [int(n[b].sum()) for b, (_, n) in zip(before, all_consumed)]
    floor_full, floor_early = event_floor(sizes, input_bins, spikes, banks[:-1])
    pipeline_full, pipeline_early = event_floor(sizes, input_bins, spikes, banks[:-1],
                                                pipeline_latency(sizes, lanes, banks[:-1]))
    return Schedule(cycles["full"], cycles["early"], counted["events", "full"], counted["events", "early"],
                    floor_full, floor_early, counted["words", "full"], counted["words", "early"],
                    pipeline_full, pipeline_early)


def layer_event_bins(input_bins: np.ndarray, spikes: list[np.ndarray], image: int) -> list[np.ndarray]:
    """The bins of the events each layer integrates for one image, ascending: the input events (bin 255
    dropped when layer 0 is hidden) and each hidden layer's spikes (bin 255 dropped before a hidden layer)."""
    n_layers = len(spikes)
    out = []
    for k in range(n_layers):
        bins = (np.asarray(input_bins[image], np.int64) if k == 0
                else spikes[k - 1][image].astype(np.int64))
        limit = T_MAX - 1 if k < n_layers - 1 else T_MAX  # what a hidden layer never sees
        out.append(np.sort(bins[bins < limit], kind="stable"))
    return out


def _integrate(bins: np.ndarray, ready: np.ndarray, per_cycle: int) -> np.ndarray:
    """Cycle of each event (ascending bins, each ready from cycle `ready[e]`), at most `per_cycle` a cycle,
    in order: c_e = max(ready_e, c_(e-1), c_(e-E) + 1)."""
    cycles = np.empty(len(bins), np.int64)
    for e in range(len(bins)):
        c = int(ready[e])
        if e:
            c = max(c, int(cycles[e - 1]))
        if e >= per_cycle:
            c = max(c, int(cycles[e - per_cycle]) + 1)
        cycles[e] = c
    return cycles


def event_floor(sizes, input_bins: np.ndarray, spikes: list[np.ndarray], events_per_cycle=1,
                latency: FloorLatency | None = None):
    """(full, early) floor cycles per image (module docstring): `events_per_cycle` is E, one int for
    every layer or one per layer; `latency` the fixed cycles charged (default: the event floor's, none
    beyond one cycle per step; `pipeline_latency` gives the core's)."""
    n_layers = len(sizes) - 1
    per_cycle = [int(events_per_cycle)] * n_layers if np.isscalar(events_per_cycle) else list(events_per_cycle)
    if len(per_cycle) != n_layers or min(per_cycle) < 1:
        raise ValueError(f"events per cycle {events_per_cycle}: give one positive number or {n_layers}")
    latency = latency or FloorLatency()
    handover = latency.handover or (1,) * (n_layers - 1)
    if len(handover) != n_layers - 1 or min(handover, default=1) < 1:
        raise ValueError(f"hand-over latencies {handover}: give one positive number per layer but the last")
    input_bins = np.asarray(input_bins)
    n_images = input_bins.shape[0]
    full, early = np.zeros(n_images, np.int64), np.zeros(n_images, np.int64)
    for i in range(n_images):
        ready_after = None  # per bin b of the previous layer: the cycle its last event of a bin <= b was taken
        for k, bins in enumerate(layer_event_bins(input_bins, spikes, i)):
            if k == 0:
                ready = np.full(len(bins), latency.first_event, np.int64)
            else:
                ready = ready_after[np.maximum(bins - 1, 0)] + handover[k - 1]
            cycles = _integrate(bins, ready, per_cycle[k])
            ready_after = np.zeros(T_MAX + 1, np.int64)
            if len(bins):
                np.maximum.at(ready_after, bins, cycles)
                ready_after = np.maximum.accumulate(ready_after)
        t_star = int(spikes[-1][i].min()) if spikes[-1].shape[1] else T_MAX
        last = int(cycles[-1]) if len(cycles) else 0
        full[i] = last + latency.end
        if t_star < T_MAX:  # the bin t* - 1 holds the output layer's last needed event (it made a neuron fire)
            early[i] = int(cycles[bins < t_star].max()) + latency.decision
            full[i] = max(full[i], early[i])  # a full run decides no sooner
        else:
            early[i] = full[i]
    return full, early
