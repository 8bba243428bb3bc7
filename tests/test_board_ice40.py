"""The open flow end to end on an iCE40: train a small digits net, export it, build the iCEBreaker bitstream
(YoWASP yosys, nextpnr-ice40, icepack from PyPI) and check that it fits and meets the board clock."""
from __future__ import annotations

import json

import pytest

from bs4nn.cli import main

PROVENANCE = {"flow": "bs4nn train -> export -> bitstream --board icebreaker",
              "oracle": "nextpnr's own utilisation and timing report of the placed and routed design"}


@pytest.fixture(scope="module")
def icebreaker_build(tmp_path_factory):
    root = tmp_path_factory.mktemp("ice40")
    assert main(["train", "--dataset", "digits", "--hidden", "16", "--epochs", "3", "--seed", "0",
                 "--out", str(root / "run"), "--quiet"]) == 0
    assert main(["export", "--checkpoint", str(root / "run" / "checkpoint.pt"), "--out", str(root / "model")]) == 0
    assert main(["bitstream", "--board", "icebreaker", "--model", str(root / "model"),
                 "--out", str(root / "build")]) == 0
    return root


def test_the_bitstream_is_written_and_names_the_model(icebreaker_build):
    summary = json.loads((icebreaker_build / "build" / "build_summary.json").read_text())
    model = json.loads((icebreaker_build / "model" / "manifest.json").read_text())
    assert summary["board"] == "icebreaker" and summary["sizes"] == [64, 16, 10]
    assert summary["model_id"] == model["model_id"]
    bitstream = icebreaker_build / "build" / "bs4nn.bin"
    assert summary["bitstream"] and bitstream.stat().st_size > 100_000  # an UP5K image is ~104 kB


def test_the_design_fits_the_up5k_and_meets_its_12_mhz_clock(icebreaker_build):
    summary = json.loads((icebreaker_build / "build" / "build_summary.json").read_text())
    used, available = summary["utilisation"]["ICESTORM_LC"]
    assert available == 5280 and 0 < used <= available
    assert summary["utilisation"]["ICESTORM_RAM"][0] >= 2  # the input stage's lists are in block RAM
    assert summary["clock_hz"] == 12e6 and summary["fmax_mhz"] >= 12.0
    assert summary["placement_seed"] in (1, 2, 3)  # the nextpnr seed that placed it (boards/build.py)
    # the critical path read from the same log: Fmax is one over its delay, and it is logic plus routing
    path = summary["critical_path"]
    assert path["from"] and path["to"] and path["ns"] > 0
    assert summary["fmax_mhz"] == pytest.approx(1000 / path["ns"], rel=1e-3)
    assert path["ns"] == pytest.approx(path["logic_ns"] + path["routing_ns"], abs=0.02)


def test_a_design_too_big_for_the_device_is_named_as_such(tmp_path, monkeypatch):
    """nextpnr's report of the failed run is read back: the error says which resource overflowed."""
    import subprocess

    import numpy as np
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from bs4nn.boards.build import BuildError, build
    from bs4nn.export.artifact import write_artifact
    from bs4nn.sw.network import random_network

    def failing_build(self, top, name, build_dir, do_program=False, nextpnr_opts=""):
        (tmp_path / "build" / f"{name}.tim").write_text(
            "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    8323/   5280   157%\n"
            "Info: \t        ICESTORM_RAM:       4/     30    13%\nERROR: Unable to place cell 'x'\n")
        raise subprocess.CalledProcessError(125, ["sh", f"build_{name}.sh"])

    monkeypatch.setattr(ICEBreakerPlatform, "build", failing_build)
    network = random_network([16, 6, 3], np.random.default_rng(2), input_shape=(4, 4), threshold_range=(1, 4))
    artifact = write_artifact(tmp_path / "model", network, "digits", {"command": "tests", "seed": 0, "commit": None,
                                                                     "created": "2026-11-23T00:00:00+00:00",
                                                                     "source": "trained"})
    with pytest.raises(BuildError, match=r"does not fit the device \(ICESTORM_LC 8323 of 5280\)"):
        build("icebreaker", artifact.path, tmp_path / "build")


def test_a_placement_that_fails_to_legalise_is_tried_again_with_the_next_seed(tmp_path, monkeypatch):
    """nextpnr's placer may fail near the device's capacity with one seed and place with another: the build
    tries seeds 1, 2, 3 and records the one that placed; any other failure is not retried."""
    import subprocess

    import numpy as np
    from amaranth_boards.icebreaker import ICEBreakerPlatform

    from bs4nn.boards.build import BuildError, build
    from bs4nn.export.artifact import write_artifact
    from bs4nn.sw.network import random_network

    seeds = []
    message = {"text": "ERROR: Unable to find legal placement for all cells, "
                       "design is probably at utilisation limit.\n"}

    def flaky_build(self, top, name, build_dir, do_program=False, nextpnr_opts=""):
        assert not getattr(self, "tried", False), "a platform builds once (amaranth asserts not _prepared)"
        self.tried = True
        seeds.append(nextpnr_opts)
        report = "Info: Device utilisation:\nInfo: \t         ICESTORM_LC:    4640/   5280    87%\n"
        if len(seeds) < 2:
            (tmp_path / "build" / f"{name}.tim").write_text(report + message["text"])
            raise subprocess.CalledProcessError(125, ["sh", f"build_{name}.sh"])
        placed = "Info: Max frequency for clock 'cd_sync.clk': 26.20 MHz\n"
        (tmp_path / "build" / f"{name}.tim").write_text(report + placed)

    monkeypatch.setattr(ICEBreakerPlatform, "build", flaky_build)
    network = random_network([16, 6, 3], np.random.default_rng(2), input_shape=(4, 4), threshold_range=(1, 4))
    artifact = write_artifact(tmp_path / "model", network, "digits", {"command": "tests", "seed": 0, "commit": None,
                                                                     "created": "2026-11-23T00:00:00+00:00",
                                                                     "source": "trained"})
    summary = build("icebreaker", artifact.path, tmp_path / "build")
    assert seeds == ["--seed 1", "--seed 2"] and summary["placement_seed"] == 2
    seeds.clear()
    message["text"] = "ERROR: Timing failure\n"  # not a placement failure: no second try
    with pytest.raises(BuildError, match="the toolchain failed"):
        build("icebreaker", artifact.path, tmp_path / "build")
    assert seeds == ["--seed 1"]
