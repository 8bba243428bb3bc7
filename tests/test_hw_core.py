"""The Amaranth core in Amaranth's simulator: each part, then the whole core against the reference and
the cycle model on random networks, with stalls on every port and aborts inside images."""
from __future__ import annotations

import math

import numpy as np
import pytest
from amaranth.hdl import Module, Signal
from amaranth.sim import Simulator

from amaranth_harness import simulate
from bs4nn.export.artifact import encode_hex
from bs4nn.hw.config import CoreConfig
from bs4nn.hw.encoders import at_least, lowest_set_bit
from bs4nn.hw.input_stage import InputStage
from bs4nn.hw.layer import bank_rom_words, rom_words
from bs4nn.sim.scoreboard import ImageOutcome, Scoreboard
from bs4nn.sw import reference
from bs4nn.sw.conformance import random_case, situations
from bs4nn.sw.cycles import bank_input, input_bank, schedule
from bs4nn.sw.network import random_network
from bs4nn.sw.semantics import encode_pixels


@pytest.mark.parametrize("width", [1, 2, 3, 5, 8, 13, 256])
def test_lowest_set_bit(width):
    m = Module()
    bits = Signal(width)
    found, index, several = lowest_set_bit(m, bits, "t", several=True)
    rng = np.random.default_rng(width)
    values = [0, 1, (1 << width) - 1, 1 << (width - 1)] + [int.from_bytes(rng.bytes(32), "little") % (1 << width)
                                                          for _ in range(60)]
    checked = []

    async def bench(ctx):
        for value in values:
            ctx.set(bits, value)
            got = (ctx.get(found), ctx.get(index), ctx.get(several))
            low = (value & -value).bit_length() - 1
            assert got[0] == (value != 0), hex(value)
            if value:
                assert got[1] == low, f"{value:#x}: lowest bit {low}, got {got[1]}"
            assert got[2] == (bin(value).count("1") > 1), hex(value)
            checked.append(value)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == len(values)


@pytest.mark.parametrize("width,count", [(1, 2), (2, 2), (5, 2), (3, 3), (6, 3), (9, 3)])
def test_at_least_counts_set_bits(width, count):
    """at_least (the emitter's "two or more" and "three or more") against a popcount, every input value."""
    m = Module()
    bits = Signal(width)
    result = at_least(m, [bits[i] for i in range(width)], count, "t")
    checked = []

    async def bench(ctx):
        for value in range(1 << width):
            ctx.set(bits, value)
            assert ctx.get(result) == (bin(value).count("1") >= count), f"{value:#b}, at least {count}"
            checked.append(value)

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == 1 << width


def test_rom_words_with_all_lanes_are_the_artifact_rows():
    network = random_network([20, 13, 4], np.random.default_rng(1))
    for layer in network.layers:
        rows = [int(line, 16) for line in encode_hex(layer.signs).decode().split()]
        assert rom_words(layer.signs, layer.n_out) == rows
        lanes = 5  # G = 3 words per row, the last one padded with zeros
        words = rom_words(layer.signs, lanes)
        groups = -(-layer.n_out // lanes)
        for i, row in enumerate(rows):
            assert sum(words[i * groups + g] << (g * lanes) for g in range(groups)) == row


def test_rom_banks_hold_each_input_once_where_input_bank_puts_it():
    """Bank j's ROM row r holds the weights of input `bank_input(j, r)`; rows past n_in are all -1."""
    network = random_network([23, 7, 4], np.random.default_rng(2))
    for k, layer in enumerate(network.layers):
        for banks in (1, 3, 4, layer.n_in):
            depth, groups = -(-layer.n_in // banks), -(-layer.n_out // 3)  # 3 lanes
            roms = bank_rom_words(layer.signs, 3, banks, k)
            assert [len(rom) for rom in roms] == [depth * groups] * banks
            for j, rom in enumerate(roms):
                for r in range(depth):
                    i = bank_input(j, r, banks, k)
                    signs = layer.signs[i] if i < layer.n_in else -np.ones(layer.n_out, int)
                    assert rom[r * groups:(r + 1) * groups] == rom_words(signs[None, :], 3), \
                        f"layer {k}, E {banks}, bank {j}, row {r}"


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("banks", [1, 2, 4, 7, 13, 28])
def test_input_bank_is_a_bijection_onto_bank_and_index(layer, banks):
    inputs = np.arange(784)
    bank = input_bank(inputs, banks, layer)
    assert bank.min() >= 0 and bank.max() < banks
    assert len(set(zip(bank.tolist(), (inputs // banks).tolist()))) == 784
    assert (bank_input(bank, inputs // banks, banks, layer) == inputs).all()


@pytest.mark.parametrize("banks", [2, 4, 7, 14, 28])
def test_a_column_of_pixels_spreads_over_the_banks_when_e_divides_the_width(banks):
    """The reason pixels are rotated: with i mod E, every pixel of a 28-wide image's column shares a bank;
    rotated, the bank moves on by 28 / E each row, so the column meets E / gcd(E, 28 / E) banks (all of
    them at 4, 7 and 28 banks, 7 at 14, still one at 2)."""
    column = np.arange(5, 784, 28)
    assert len(set((column % banks).tolist())) == 1
    assert len(set(input_bank(column, banks, 0).tolist())) == banks // math.gcd(banks, 28 // banks)


def _input_stage_run(n_in, images, skip, rng, stall=0.3, bad_tlast=False, banks=1):
    """Per image: (words as (pixels, bin, last), framing error); slot j's index r is pixel `bank_input(j, r)`."""
    dut = InputStage(n_in, skip, banks)
    seen = []

    async def bench(ctx):
        for image in images:
            for j, p in enumerate(image):
                ctx.set(dut.pixels.valid, 1)
                last = int(j == n_in - 1) ^ int(bad_tlast and j == 0)
                ctx.set(dut.pixels.payload, {"data": int(p), "last": last})
                await ctx.tick().until(dut.pixels.ready)
            ctx.set(dut.pixels.valid, 0)
            events = []
            while True:
                ready = int(rng.random() >= stall)
                ctx.set(dut.events.ready, ready)
                *_, valid, payload = await ctx.tick().sample(dut.events.valid, dut.events.payload)
                if valid and ready:
                    if payload.end:
                        break
                    pixels = [bank_input(j, int(payload.slots[j].index), banks, 0) for j in range(banks)
                              if int(payload.slots[j].valid)]
                    events.append((pixels, int(payload.bin), int(payload.last)))
            ctx.set(dut.events.ready, 0)
            seen.append((events, ctx.get(dut.framing_error)))
            ctx.set(dut.restart, 1)
            await ctx.tick()
            ctx.set(dut.restart, 0)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return seen


@pytest.mark.parametrize("skip", [False, True])
@pytest.mark.parametrize("banks", [1, 3, 8])
def test_input_stage_hands_out_every_pixel_once_by_bin(skip, banks):
    """Every pixel once, bins ascending; in each bin, word w holds one pixel of every bank with more than
    w of the bin's pixels (in the banks of `input_bank`), and `last` marks the bin's last word."""
    rng = np.random.default_rng(5 + banks)
    n_in = 37
    images = rng.choice([0, 0, 0, 1, 7, 128, 255, 255], size=(5, n_in)).astype(np.uint8)
    images[2] = 0  # an all-black image: nothing (skip) or only bin 255
    # bins spread over all 16 groups of the walk, in an order that inserts groups below and between the
    # two slots and behind them
    images[3] = rng.integers(0, 256, size=n_in)
    images[4] = (np.arange(n_in) * 97 + 13) % 256
    for image, (words, framing) in zip(images, _input_stage_run(n_in, images, skip, rng, banks=banks)):
        assert not framing
        expected = sorted((i, 255 - int(p)) for i, p in enumerate(image) if not (skip and p == 0))
        assert sorted((i, b) for pixels, b, _ in words for i in pixels) == expected
        bins = [b for _, b, _ in words]
        assert bins == sorted(bins), "bins must come in ascending order"
        for e, (pixels, b, last) in enumerate(words):
            assert last == (e == len(words) - 1 or words[e + 1][1] != b), f"last flag of word {e}"
            assert len({input_bank(i, banks, 0) for i in pixels}) == len(pixels) >= 1, f"word {e}: one pixel per bank"
        for b in set(bins):
            counts = np.bincount([input_bank(i, banks, 0) for i, bb in expected if bb == b], minlength=banks)
            in_bin = [len(pixels) for pixels, bb, _ in words if bb == b]
            assert in_bin == [int((counts > w).sum()) for w in range(counts.max())], f"bin {b}"


def test_input_stage_reports_a_wrong_tlast():
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, size=(1, 9)).astype(np.uint8)
    [(_, framing)] = _input_stage_run(9, images, True, rng, bad_tlast=True)
    assert framing


def _check_core(network, pixels, lanes, mode, rng, stall, aborts, events=1):
    config = CoreConfig(network, lanes=lanes, mode=mode, events=events)
    results, spikes, meta = simulate(config, pixels, rng=rng, stall=stall, aborts=aborts)
    ref = reference.run(network, pixels)
    plan = schedule(network.sizes, config.lanes, encode_pixels(pixels), ref.spikes, config.events)
    board = Scoreboard(ref, mode, None if stall else plan.cycles(mode), None if stall else plan.words(mode))
    for i, result in enumerate(results):
        board.check(i, ImageOutcome(**result, spikes=spikes[i]), f"sizes {network.sizes} lanes {config.lanes} "
                    f"events {config.events} {mode} image {i}")
        measured = meta["result_cycle"][i] - meta["last_pixel_cycle"][i]
        assert measured == result["cycles"], f"the core counts {result['cycles']} cycles, the testbench {measured}"
    assert not board.mismatches, "\n".join(board.mismatches[:10])
    return ref, meta


@pytest.mark.parametrize("block_rom_bits,emit_chunk", [(None, None), (1, None), (None, 2)])
def test_core_equals_reference_and_cycle_model_on_random_networks(block_rom_bits, emit_chunk, monkeypatch):
    """Random networks from the conformance generator (plus single-layer ones), random lanes, both modes;
    half the cases with random stalls on every port and an abort inside an image. The cases must cover
    ties, no-spike images, bins 0 and 255, hidden spikes at 255, stalls and aborts. With block_rom_bits 1
    every ROM counts as a block-RAM one (stage R), as the 784 x 600 layer's does; with emit_chunk 2 the
    emitters' two-level search has many chunks per bank and gathers a word's index in several parts (of 2
    chunks), as the 600-neuron layer's has at 16 (parts of 8 chunks)."""
    from bs4nn.hw import layer
    from bs4nn.sw import cycles

    if block_rom_bits is not None:
        monkeypatch.setattr(cycles, "BLOCK_ROM_BITS", block_rom_bits)
    if emit_chunk is not None:
        monkeypatch.setattr(layer, "EMIT_CHUNK", emit_chunk)
        monkeypatch.setattr(layer, "EMIT_GATHER", 2)
    rng = np.random.default_rng(2026)
    covered, stalled, aborted = set(), 0, 0
    for case in range(24):
        if case % 6 == 5:
            sizes = [int(rng.integers(2, 12)), int(rng.integers(2, 6))]
            network = random_network(sizes, rng, threshold_range=(1, 4))
            pixels = rng.choice([0, 1, 200, 255], size=(4, sizes[0])).astype(np.uint8)
        else:
            network, pixels = random_case(rng, n_images=4)
        lanes = [int(rng.integers(1, layer.n_out + 1)) for layer in network.layers]
        # events per cycle: one (a third of the cases), else random per layer up to every input
        events = 1 if case % 3 == 0 else [int(rng.integers(1, layer.n_in + 1)) for layer in network.layers]
        stall = 0.25 if case % 2 else 0.0
        aborts = {1} if case % 4 == 1 else set()
        for mode in ("full", "early"):
            ref, meta = _check_core(network, pixels, lanes, mode, np.random.default_rng(case), stall, aborts,
                                    events)
            aborted += meta["aborted"]
        stalled += stall > 0
        covered |= situations(network, pixels, ref)
    wanted = {"tie_by_potential", "tie_by_index", "no_output_spike", "input_bin_0", "input_bin_255",
              "hidden_spike_255"}
    assert wanted <= covered, f"the random cases missed {sorted(wanted - covered)}"
    assert stalled and aborted


@pytest.mark.parametrize("lanes", [(52, 3), (26, 3)])
def test_spike_bursts_fill_the_spike_queue_and_the_model_counts_the_stalls(lanes, monkeypatch):
    """Hidden neurons firing by the dozen in consecutive bins: the emitter (one word per cycle) falls behind
    stage A (one bin per cycle or per G cycles), the spike queue fills and stage A waits for an entry. The
    core's cycles must equal the model's, and the model must see the stalls (a deeper queue is faster)."""
    from bs4nn.sw import cycles
    from bs4nn.sw.network import Layer, Network

    # inputs 0..5 arrive one per bin 0..5 (+1 to every neuron) and 8 neurons fire in each of bins 1..6;
    # then 60 inputs at bin 6 (-1 to every neuron) keep stage A busy while the emitter catches up
    n_burst, n_quiet, per_bin = 6, 60, 8
    n_in, n_hidden = n_burst + n_quiet, n_burst * per_bin + 4
    signs = np.ones((n_in, n_hidden), np.int8)
    signs[n_burst:] = -1
    thresholds = np.full(n_hidden, n_in + 1, np.int32)  # the last 4 neurons never fire
    thresholds[:n_burst * per_bin] = np.arange(n_burst * per_bin) % n_burst + 1
    rng = np.random.default_rng(11)
    output = Layer(rng.choice([-1, 1], size=(n_hidden, 3)).astype(np.int8), np.array([30, 31, 32], np.int32))
    network = Network((Layer(signs, thresholds), output), (1, n_in))
    pixels = np.full((2, n_in), 255 - n_burst, np.uint8)
    pixels[:, :n_burst] = 255 - np.arange(n_burst)
    pixels[1, n_burst + 40:] = 0  # fewer quiet events: bin 255, skipped
    for mode in ("full", "early"):
        ref, _ = _check_core(network, pixels, list(lanes), mode, np.random.default_rng(0), 0.0, set())
    plan = schedule(network.sizes, lanes, encode_pixels(pixels), ref.spikes)
    monkeypatch.setattr(cycles, "SPIKE_QUEUE_ENTRIES", 64)
    deep = schedule(network.sizes, lanes, encode_pixels(pixels), ref.spikes)
    assert (deep.cycles("full") < plan.cycles("full")).any(), "the bursts never filled the queue"


@pytest.mark.parametrize("lanes,banks_out,emit_chunk", [(1, 1, 16), (3, 1, 16), (7, 1, 16), (3, 2, 16), (7, 7, 16),
                                                      (7, 1, 2), (3, 2, 2), (7, 1, 4)])
def test_hidden_layer_unit_sends_its_spikes_by_bin_then_index(lanes, banks_out, emit_chunk, monkeypatch):
    """A hidden LayerUnit alone: events in by bin, spikes out as the next layer's event words (ascending
    bins; each word the lowest pending neuron of every bank of the next layer, `last` on each bin's last
    word, then the end marker), with a stalled output; also with chunks of 2 and 4 neurons in the
    emitter's two-level search, whose word index is then gathered in parts of 2 chunks."""
    from bs4nn.hw import layer
    from bs4nn.hw.config import LayerConfig
    from bs4nn.hw.layer import LayerUnit

    monkeypatch.setattr(layer, "EMIT_CHUNK", emit_chunk)
    monkeypatch.setattr(layer, "EMIT_GATHER", 2)

    rng = np.random.default_rng(lanes)
    network = random_network([9, 7], rng, threshold_range=(1, 3))
    config = LayerConfig(0, 9, 7, lanes, is_output=False, next_is_hidden=False, events_out=banks_out)
    dut = LayerUnit(config, network.layers[0].signs, network.layers[0].thresholds)
    images = [rng.choice([3, 3, 40, 41, 200, 254], size=9) for _ in range(3)]
    received = []

    async def feed(ctx):
        for bins in images:
            order = sorted(range(9), key=lambda i: (bins[i], -i))
            for n, i in enumerate(order):
                last = n == len(order) - 1 or bins[order[n + 1]] != bins[i]
                ctx.set(dut.events.valid, 1)
                ctx.set(dut.events.payload, {"slots": [{"valid": 1, "index": i}], "bin": int(bins[i]),
                                             "last": int(last), "end": 0})
                await ctx.tick().until(dut.events.ready)
            ctx.set(dut.events.payload, {"slots": [{"valid": 0, "index": 0}], "bin": 0, "last": 0, "end": 1})
            await ctx.tick().until(dut.events.ready)
            ctx.set(dut.events.valid, 0)

    async def take(ctx):
        for _ in images:
            spikes = []
            while True:
                ready = int(rng.random() < 0.6)
                ctx.set(dut.out_events.ready, ready)
                ctx.set(dut.spikes.ready, 1)
                *_, valid, payload = await ctx.tick().sample(dut.out_events.valid, dut.out_events.payload)
                if valid and ready:
                    if payload.end:
                        break
                    neurons = [int(payload.slots[j].index) * banks_out + j for j in range(banks_out)
                               if int(payload.slots[j].valid)]
                    spikes.append((int(payload.bin), neurons, int(payload.last)))
            received.append(spikes)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(feed)
    sim.add_testbench(take)
    sim.run()
    expected_bins = reference.run_bins(network, np.array(images)).spikes[0]
    for bins, words in zip(expected_bins, received):
        expected = sorted((int(b), j) for j, b in enumerate(bins) if b < 256)
        assert sorted((b, j) for b, neurons, _ in words for j in neurons) == expected
        for n, (b, neurons, last) in enumerate(words):
            assert last == (n == len(words) - 1 or words[n + 1][0] != b)
            assert len({j % banks_out for j in neurons}) == len(neurons) >= 1, "one neuron per bank"
        for b in {b for b, _, _ in words}:
            in_bin = [neurons for bb, neurons, _ in words if bb == b]
            for j in range(banks_out):
                order = [x for neurons in in_bin for x in neurons if x % banks_out == j]
                assert order == sorted(order), f"bin {b} bank {j}: lowest first"
            counts = np.bincount([j % banks_out for bb, j in expected if bb == b], minlength=banks_out)
            assert [len(n) for n in in_bin] == [int((counts > w).sum()) for w in range(counts.max())]


def test_the_input_stage_at_twelve_banks_stays_small_for_yosys(tmp_path):
    """yosys' `proc` once expanded the bitmap update (a 256-way case per bank) into 256 x 256 compares per
    bank: 784,460 `$eq` cells at 12 banks, which ran YoWASP yosys out of its 4 GB in the Arty estimate.
    The input stage of 784 inputs in 12 banks, after `proc`, must hold a few thousand compares at most."""
    import json
    import subprocess

    from amaranth.back import verilog

    from bs4nn.boards.build import _tool_env
    from bs4nn.hw.input_stage import InputStage

    # through Verilog, as the board flows hand it to yosys
    (tmp_path / "stage.v").write_text(verilog.convert(InputStage(784, True, banks=12), name="stage"))
    script = "read_verilog stage.v; hierarchy -top stage; proc; tee -q -o stat.json stat -json"
    env = _tool_env(tmp_path)  # the YoWASP tools of this Python's venv, as the board builds find them
    done = subprocess.run([env["YOSYS"], "-q", "-p", script], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    cells = json.loads((tmp_path / "stat.json").read_text())["design"]["num_cells_by_type"]
    assert 0 < cells.get("$eq", 0) < 5_000, cells.get("$eq")
