"""`bs4nn hdl`, `bs4nn sim` and `bs4nn trace` end to end on a small digits-shaped model."""
from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest

from test_cli import run_cli
from bs4nn.cli import main
from bs4nn.export.artifact import write_artifact
from bs4nn.export.dump import read_dump
from bs4nn.sw import datasets, reference
from bs4nn.sw.cycles import bank_input
from bs4nn.sw.network import random_network

PROVENANCE = {"command": "tests", "seed": 0, "commit": None, "created": "2026-11-23T00:00:00+00:00",
              "source": "trained"}


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    network = random_network([64, 12, 10], np.random.default_rng(4), input_shape=(8, 8), threshold_range=(1, 6))
    return write_artifact(tmp_path_factory.mktemp("model") / "model", network, "digits", PROVENANCE)


def test_hdl_writes_verilog_roms_and_port_description(tmp_path, capsys, digits_model):
    code, out, err = run_cli(capsys, "hdl", "--model", digits_model.path, "--out", tmp_path / "core",
                             "--lanes", "5,max", "--mode", "early")
    assert code == 0, err
    core = json.loads((tmp_path / "core" / "core.json").read_text())
    assert core["lanes"] == [5, 10] and core["mode"] == "early" and core["id32"] == digits_model.id32
    verilog = (tmp_path / "core" / "bs4nn_core.v").read_text()
    for port in ("s_axis_pixels_tvalid", "s_axis_pixels_tready", "s_axis_pixels_tdata", "s_axis_pixels_tlast",
                 "m_axis_result_tdata", "m_axis_spikes_l0_tdata", "m_axis_spikes_l1_tvalid"):
        assert port in verilog
    rom = (tmp_path / "core" / "rom_l0.hex").read_text().split()
    assert len(rom) == 64 * 3  # ceil(12 / 5) words per input
    fields = core["ports"]["m_axis_result"]["tdata"]
    assert fields["decision"] == {"offset": 0, "width": 4}


@pytest.fixture(scope="module")
def banked_core(tmp_path_factory, digits_model):
    """`bs4nn hdl` of the digits model with 3 and 4 input banks: its output directory."""
    out = tmp_path_factory.mktemp("banked") / "core"
    assert main(["hdl", "--model", str(digits_model.path), "--out", str(out), "--lanes", "5,max",
                 "--events", "3,4", "--mode", "early"]) == 0
    return out


def test_hdl_writes_one_rom_file_per_input_bank(banked_core, digits_model):
    """With E > 1 the Verilog's ROMs are per input bank; the hex files beside it are the same banks, and
    every row decodes (through `bank_input`) to the artifact's weights of the input it names."""
    core = json.loads((banked_core / "core.json").read_text())
    assert not (banked_core / "rom_l0.hex").exists()
    for k, (banks, lanes) in enumerate(((3, 5), (4, 10))):
        layer, signs = core["layers"][k], digits_model.network.layers[k].signs
        n_in, n_out = signs.shape
        groups = -(-n_out // lanes)
        assert layer["banks"] == banks and layer["roms"] == [f"rom_l{k}_b{j}.hex" for j in range(banks)]
        seen = []
        for j, name in enumerate(layer["roms"]):
            words = [int(w, 16) for w in (banked_core / name).read_text().split()]
            assert len(words) == layer["rom_words"] == -(-n_in // banks) * groups
            for r in range(-(-n_in // banks)):
                i = bank_input(j, r, banks, k)
                row = sum(words[r * groups + g] << (g * lanes) for g in range(groups))
                bits = np.array([(row >> n) & 1 for n in range(n_out)])
                if i < n_in:
                    assert np.array_equal(bits, (signs[i] > 0).astype(int)), (k, j, r)
                    seen.append(i)
                else:
                    assert not bits.any()
        assert sorted(seen) == list(range(n_in))


def _verilog_roms(verilog: str) -> list[tuple[int, list[int]]]:
    """(width, words) of every `rom*` memory the Verilog initialises inline."""
    roms = []
    for match in re.finditer(r"reg \[(\d+):0\] (rom\d+) \[(\d+):0\];\s*initial begin(.*?)\n\s*end", verilog, re.S):
        width, name, depth, body = int(match[1]) + 1, match[2], int(match[3]) + 1, match[4]
        words = dict((int(i), int(w, 16)) for i, w in re.findall(rf"{name}\[(\d+)\] = \d+'h([0-9a-f]+);", body))
        assert sorted(words) == list(range(depth)), name
        roms.append((width, [words[i] for i in range(depth)]))
    return roms


def test_hdl_rom_files_hold_what_the_verilog_holds(banked_core):
    """Each bank's hex file is word for word one of the ROMs initialised inside bs4nn_core.v."""
    core = json.loads((banked_core / "core.json").read_text())
    in_verilog = _verilog_roms((banked_core / "bs4nn_core.v").read_text())
    files = [(layer["rom_width"], [int(w, 16) for w in (banked_core / name).read_text().split()])
             for layer in core["layers"] for name in layer["roms"]]
    assert len(in_verilog) == len(files) == 3 + 4
    assert sorted(in_verilog) == sorted(files)


def test_hdl_refuses_bad_lanes_in_one_line(tmp_path, capsys, digits_model):
    code, _, err = run_cli(capsys, "hdl", "--model", digits_model.path, "--out", tmp_path / "core", "--lanes", "13,1")
    assert code == 2 and err.count("\n") == 1 and "lanes of layer 0 must lie in 1..12" in err
    assert not (tmp_path / "core").exists()


def test_sim_is_bit_exact_and_writes_a_trace(tmp_path, capsys, digits_model):
    trace = tmp_path / "hw.npz"
    code, out, err = run_cli(capsys, "sim", "--model", digits_model.path, "--dataset", "digits", "--limit", "6",
                             "--mode", "full", "--lanes", "4,max", "--trace", trace)
    assert code == 0, err
    assert "bit-exact" in out and "6 of 6 images take exactly the cycles" in out
    dump = read_dump(trace)
    images = datasets.load("digits", "test").images[:6]
    ref = reference.run(digits_model.network, images)
    for k in range(2):
        assert np.array_equal(dump.spikes[k], ref.spikes[k])
    assert dump.cycles.min() > 0 and dump.config["source"] == "hardware"

    code, out, err = run_cli(capsys, "trace", "--read", trace, "--out", tmp_path / "report")
    assert code == 0, err
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary[0]["images"] == 6 and summary[0]["model_agrees"] == 6
    assert summary[0]["cycles_max"] == int(dump.cycles.max())
    for name in ("latency_histogram.png", "cycles_vs_events.png", "cycles_vs_first_spike_bin.png",
                 "hardware_vs_model.png", "raster_image0.png"):
        assert (tmp_path / "report" / name).stat().st_size > 1000


def test_sim_refuses_an_index_outside_the_split(tmp_path, capsys, digits_model):
    code, _, err = run_cli(capsys, "sim", "--model", digits_model.path, "--dataset", "digits", "--index", "360",
                           "--trace", tmp_path / "t.npz")
    assert code == 2 and "--index 360 is outside the split's 360 images" in err
    assert not (tmp_path / "t.npz").exists()


def test_trace_model_only_covers_the_whole_split(tmp_path, capsys, digits_model):
    code, out, err = run_cli(capsys, "trace", "--model", digits_model.path, "--dataset", "digits", "--model-only",
                             "--config", "early:max", "--config", "early:1", "--out", tmp_path / "report")
    assert code == 0, err
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert [row["images"] for row in summary] == [360, 360]
    assert summary[1]["cycles_mean"] > summary[0]["cycles_mean"]  # one lane is slower than all lanes
    assert all(row["floor_mean"] < row["pipeline_floor_mean"] <= row["cycles_mean"] for row in summary), summary
    assert "/pfloor" in out
    # the CSV holds the same rows, its names (with commas) quoted
    table = list(csv.DictReader((tmp_path / "report" / "summary.csv").open()))
    assert [r["name"] for r in table] == [row["name"] for row in summary] == ["early lanes 12,10", "early lanes 1,1"]
    assert [float(r["cycles_mean"]) for r in table] == [row["cycles_mean"] for row in summary]


def test_trace_co_simulates_the_whole_split_with_the_preloaded_harness(tmp_path, capsys, digits_model):
    """`bs4nn trace --preload --shards 2`: every image of the split through the hardware, cycles equal to the
    model's for each configuration, and the same figures as the model-only trace."""
    configs = ["--config", "early:max", "--config", "full:5,max:2,max"]
    code, out, err = run_cli(capsys, "trace", "--model", digits_model.path, "--dataset", "digits", *configs,
                             "--preload", "--shards", "2", "--out", tmp_path / "hw")
    assert code == 0, err
    code, _, err = run_cli(capsys, "trace", "--model", digits_model.path, "--dataset", "digits", *configs,
                           "--model-only", "--out", tmp_path / "model")
    assert code == 0, err
    hardware = json.loads((tmp_path / "hw" / "summary.json").read_text())
    model = json.loads((tmp_path / "model" / "summary.json").read_text())
    assert [row["images"] for row in hardware] == [360, 360]
    assert all(row["model_agrees"] == 360 for row in hardware), hardware
    for hw_row, model_row in zip(hardware, model):
        assert hw_row["cycles_mean"] == model_row["cycles_mean"] and hw_row["cycles_max"] == model_row["cycles_max"]
