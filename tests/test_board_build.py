"""`make bitstream BOARD=arty_a7` without Vivado: the Vivado build tree and the open yosys estimate."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from bs4nn.boards.build import NAME, against_part, board_pins, build, estimable_verilog, platform_for
from bs4nn.export.artifact import write_artifact
from bs4nn.sw.network import random_network

PROVENANCE = {"command": "tests", "seed": 0, "commit": None, "created": "2026-11-23T00:00:00+00:00",
              "source": "trained"}


@pytest.fixture(scope="module")
def arty_tree(tmp_path_factory):
    network = random_network([16, 6, 3], np.random.default_rng(2), input_shape=(4, 4), threshold_range=(1, 4))
    root = tmp_path_factory.mktemp("arty")
    artifact = write_artifact(root / "model", network, "digits", PROVENANCE)
    return build("arty_a7", artifact.path, root / "build", lanes="max", mode="early")


def test_the_tree_is_complete(arty_tree):
    for name in (f"{NAME}.v", f"{NAME}.tcl", f"{NAME}.xdc", f"build_{NAME}.sh"):
        assert name in arty_tree["tree"]
    assert arty_tree["bitstream"] is None and "Vivado is not on PATH" in arty_tree["note"]
    assert arty_tree["divisor"] == round(100e6 / 115200)


def test_the_tcl_parses_in_tclsh(arty_tree):
    """Every command of the Vivado script is parsed and run by tclsh with the Vivado commands stubbed."""
    tcl = f"{arty_tree['out_dir']}/{NAME}.tcl"
    script = f"proc unknown args {{ return {{}} }}\nsource {{{tcl}}}\nputs parsed\n"
    done = subprocess.run(["tclsh"], input=script, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip().endswith("parsed"), done.stderr


def test_the_xdc_names_only_pins_of_the_board_file(arty_tree):
    xdc = open(f"{arty_tree['out_dir']}/{NAME}.xdc").read()
    sites = set(re.findall(r"set_property LOC (\S+)", xdc))
    assert sites, "no pin constraints"
    platform, _ = platform_for("arty_a7")
    assert sites <= board_pins(platform), sorted(sites - board_pins(platform))
    assert "A9" in sites and "D10" in sites  # the USB-UART's rx and tx


def test_yosys_synthesises_the_verilog_of_the_tree(arty_tree):
    tree = open(f"{arty_tree['out_dir']}/{NAME}.v").read()
    synthesised = open(f"{arty_tree['out_dir']}/estimate/{NAME}.v").read()
    assert synthesised == estimable_verilog(tree)
    assert "SIM_DEVICE" in tree and "SIM_DEVICE" not in synthesised
    estimate = arty_tree["estimate"]
    assert estimate["part"] == "xc7a35t" and estimate["use"]["LUT"] > 50 and estimate["use"]["FF"] > 50
    assert 0 < estimate["percent"]["LUT"] < 100 and estimate["logic_levels"] >= estimate["lut_levels"] >= 2
    assert estimate["over_capacity"] == {}
    # the registers over the depth aim: grouped, each group deeper than the aim, the deepest among them
    over = estimate["over_aim"]
    assert estimate["lut_level_aim"] == 6 and all(row["lut_levels"] > 6 and row["count"] >= 1 for row in over)
    assert all(row["lut_levels"] <= estimate["lut_levels"] for row in over)


def test_an_estimate_over_the_parts_block_ram_names_it():
    """Figures of events 16,600 on the 100T (2026-12-06): LUTs fit, block RAM does not."""
    use = {"LUT": 48487, "FF": 29607, "BRAM36": 144.5, "DSP": 0, "CARRY4": 4653}
    report = against_part(use, "xc7a100t")
    assert report["over_capacity"] == {"BRAM36": [144.5, 135]}
    assert report["percent"]["BRAM36"] == 107.0 and report["percent"]["LUT"] == 76.5
    assert set(against_part(use, "xc7a35t")["over_capacity"]) == {"LUT", "BRAM36"}


def test_sweep_writes_one_row_per_point_with_the_cycle_models_cycles(tmp_path):
    import csv
    import json

    from bs4nn.boards.sweep import parse_point, sweep
    from bs4nn.hw.config import CoreConfig
    from bs4nn.sw import reference
    from bs4nn.sw.cycles import schedule
    from bs4nn.sw.semantics import encode_pixels

    rng = np.random.default_rng(3)
    network = random_network([16, 6, 3], rng, input_shape=(4, 4), threshold_range=(1, 4))
    artifact = write_artifact(tmp_path / "model", network, "digits", PROVENANCE)
    images = rng.choice([0, 0, 30, 200, 255], size=(6, 16)).astype(np.uint8)
    points = [parse_point("2,3/1"), parse_point("max/4,max")]
    rows = sweep(artifact.path, images, points, tmp_path / "sweep")
    ref = reference.run(network, images)
    assert [(r["lanes"], r["events"]) for r in rows] == [("2,3", "1,1"), ("6,3", "4,6")]
    for row, point in zip(rows, points):
        config = CoreConfig(network, lanes=point.lanes, mode="early", events=point.events)
        cycles = schedule(network.sizes, config.lanes, encode_pixels(images), ref.spikes, config.events).cycles("early")
        assert row["cycles_mean"] == round(float(cycles.mean()), 2) and row["cycles_max"] == int(cycles.max())
        assert row["LUT"] > 0 and row["logic_levels"] >= 1
        assert row["fits_35t_60pct"] == (row["LUT"] <= 0.6 * 20800 and row["BRAM36"] <= 50)
        assert row["images_per_s_bound"] == round(100e6 / (16 + float(cycles.mean())))
    with open(tmp_path / "sweep" / "sweep.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["events"] for t in table] == ["1,1", "4,6"] and float(table[1]["cycles_mean"]) == rows[1]["cycles_mean"]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == rows
    assert (tmp_path / "sweep" / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_resume_builds_only_the_points_it_has_not_measured(tmp_path, monkeypatch):
    import json

    from bs4nn.boards import sweep as sweep_module
    from bs4nn.boards.sweep import parse_point, sweep

    rng = np.random.default_rng(4)
    network = random_network([16, 6, 3], rng, input_shape=(4, 4), threshold_range=(1, 4))
    artifact = write_artifact(tmp_path / "model", network, "digits", PROVENANCE)
    images = rng.choice([0, 0, 30, 200, 255], size=(6, 16)).astype(np.uint8)
    first = sweep(artifact.path, images, [parse_point("2,3/1")], tmp_path / "sweep")
    assert first[0]["model_id"] == artifact.model_id and first[0]["images"].startswith("6:")
    assert first[0]["design"] == sweep_module.design_digest()

    built = []
    real_build = sweep_module.build

    def counting_build(board, model_dir, out_dir, **kwargs):
        built.append(Path(out_dir).name)
        return real_build(board, model_dir, out_dir, **kwargs)

    monkeypatch.setattr(sweep_module, "build", counting_build)
    points = [parse_point("2,3/1"), parse_point("max/1")]
    rows = sweep(artifact.path, images, points, tmp_path / "sweep", resume=True)
    assert built == ["p6-3_e1-1"] and rows[0] == first[0] and [r["lanes"] for r in rows] == ["2,3", "6,3"]
    assert json.loads((tmp_path / "sweep" / "sweep.json").read_text()) == rows
    # rows of other images are not taken back
    sweep(artifact.path, images[:5], points[:1], tmp_path / "sweep", resume=True)
    assert built == ["p6-3_e1-1", "p2-3_e1-1"]
    # nor rows of another version of the design (its generator's or cycle model's sources changed)
    monkeypatch.setattr(sweep_module, "design_digest", lambda: "0123456789ab")
    sweep(artifact.path, images[:5], points[:1], tmp_path / "sweep", resume=True)
    assert built == ["p6-3_e1-1", "p2-3_e1-1", "p2-3_e1-1"]
    (tmp_path / "sweep" / "sweep.json").write_text("{not json")
    with pytest.raises(ValueError, match="sweep.json"):
        sweep(artifact.path, images, points[:1], tmp_path / "sweep", resume=True)



def test_the_sweep_charts_labels_do_not_overlap_each_other_or_the_points():
    """Points as crowded as the large-E corner of the MNIST sweep (labels placed one below the other would
    cover each other): every label inside the axes, clear of the other labels and of every point."""
    from matplotlib.text import Text

    from bs4nn.boards.sweep import sweep_figure
    from bs4nn.sw.plots import plt

    points = [(12602, 219.8), (15047, 152.9), (19130, 73.3), (21872, 59.8), (28557, 50.0), (29284, 47.4),
              (34856, 43.8), (41074, 40.4), (42071, 39.4), (44000, 39.3), (48106, 38.7)]
    rows = [{"LUT": lut, "cycles_mean": cycles, "lanes": "600,10", "events": f"{k + 1},600", "logic_levels": 33,
             "fits_35t_60pct": False, "lut_pct_35t": 100 * lut / 20800, "fits_100t": True}
            for k, (lut, cycles) in enumerate(points)]
    fig, ax, labels = sweep_figure(rows)
    assert len(labels) == len(rows)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(label, renderer) for label in labels]
    inside = ax.get_window_extent(renderer)
    for k, box in enumerate(boxes):
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and inside.y0 <= box.y0 and box.y1 <= inside.y1, k
        assert not any(box.overlaps(other) for other in boxes[:k]), f"label {k} covers an earlier one"
        for x, y in (ax.transData.transform(p) for p in points):
            assert not (box.x0 <= x <= box.x1 and box.y0 <= y <= box.y1), f"label {k} covers a point"
    plt.close(fig)

NEXTPNR_LOG = """Info: Max frequency for clock '$glbnet$clk': 50.00 MHz (PASS at 25.00 MHz)
Info: Critical path report for clock '$glbnet$clk' (posedge -> posedge):
Info:       type curr  total name
Info:   clk-to-q  0.52  0.52 Source core.a_TRELLIS_FF_Q.Q
Info:    routing  1.00  1.52 Net core.a (1,1) -> (2,2)
Info:                          Sink core.b_LUT4_Z.A
Info:      logic  0.24  1.76 Source core.b_LUT4_Z.F
Info:    routing  2.00  3.76 Net core.b (2,2) -> (9,9)
Info:                          Sink core.c_TRELLIS_FF_Q.DI
Info:      setup  0.10  3.86 Source core.c_TRELLIS_FF_Q.DI
Info: 0.86 ns logic, 3.00 ns routing

Info: Critical path report for cross-domain path '<async>' -> 'posedge $glbnet$clk':
Info:       type curr  total name
Info:   clk-to-q  0.00  0.00 Source rx_io.O
Info:    routing  1.60  1.60 Net rx (0,0) -> (1,1)
Info:                          Sink core.rx_TRELLIS_FF_Q.M
Info: 0.00 ns logic, 1.60 ns routing

Info: Max frequency for clock '$glbnet$clk': 259.07 MHz (PASS at 25.00 MHz)
"""


def test_the_critical_path_is_the_clocks_not_a_cross_domain_one(tmp_path):
    """nextpnr's log as it writes it: the per-clock report (start cell, end cell, delay, logic and routing)
    is read, the cross-domain reports after it are not; a log without a report has no critical path."""
    from bs4nn.boards.build import critical_path, nextpnr_report

    assert critical_path(NEXTPNR_LOG) == {"from": "core.a_TRELLIS_FF_Q.Q", "to": "core.c_TRELLIS_FF_Q.DI",
                                          "ns": 3.86, "logic_ns": 0.86, "routing_ns": 3.0}
    (tmp_path / f"{NAME}.tim").write_text(NEXTPNR_LOG)
    (tmp_path / "seed2.tim").write_text("Info: Max frequency for clock 'x': 1.00 MHz (PASS at 1.00 MHz)\n")
    report = nextpnr_report(tmp_path)
    assert report["fmax_mhz"] == 259.07  # the build's own log, its last (post-route) figure
    assert report["critical_path"]["ns"] == 3.86
    assert critical_path("Info: Max frequency for clock 'x': 9.00 MHz\n") is None


def test_bitstream_says_when_the_estimate_does_not_fit_the_part(monkeypatch, capsys, tmp_path):
    """The CLI turns the estimate's over_capacity into one line naming each resource that overflows."""
    import bs4nn.boards.build as build_module
    from bs4nn.cli import main

    use = {"LUT": 48487, "FF": 29607, "BRAM36": 144.5, "DSP": 0, "CARRY4": 4653, "LUTRAM": 160}
    summary = {"model_id": "72742476" + "0" * 56, "sizes": [784, 600, 10], "lanes": [600, 10], "events": [16, 600],
               "mode": "early", "baud": 115200, "divisor": 868, "clock_hz": 100e6, "bitstream": None,
               "estimate": {"part": "xc7a100t", "use": use, **against_part(use, "xc7a100t"), "logic_levels": 34,
                            "lut_levels": 27, "lut_level_aim": 6, "over_aim": []}}
    monkeypatch.setattr(build_module, "build", lambda *args, **kwargs: summary)
    assert main(["bitstream", "--board", "arty_a7_100", "--model", str(tmp_path), "--out", str(tmp_path / "b")]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    assert "does NOT fit the xc7a100t: BRAM36 144.5 of 135" in lines


def test_the_design_digest_follows_the_core_generators_source(tmp_path, monkeypatch):
    """Every hw module and the cycle model are in the digest: a change to one of them changes it."""
    import importlib

    from bs4nn.boards import sweep as sweep_module

    before = sweep_module.design_digest()
    for name in ("bs4nn.hw.input_stage", "bs4nn.sw.cycles"):
        source = Path(importlib.import_module(name).__file__)
        copy = tmp_path / source.name
        copy.write_bytes(source.read_bytes() + b"\n# changed\n")
        real_read = Path.read_bytes
        monkeypatch.setattr(Path, "read_bytes",
                            lambda self, real_read=real_read, source=source, copy=copy:
                            real_read(copy if self == source else self))
        assert sweep_module.design_digest() != before, name
        monkeypatch.undo()
    assert sweep_module.design_digest() == before
