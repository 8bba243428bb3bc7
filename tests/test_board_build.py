"""`make bitstream BOARD=arty_a7` without Vivado: the Vivado build tree and the open yosys estimate."""
from __future__ import annotations

import re
import subprocess

import numpy as np
import pytest

from bs4nn.boards.build import NAME, board_pins, build, estimable_verilog, platform_for
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
