"""End to end over a simulated UART under Icarus: the host code of `bs4nn board run` against the board top
(UART, link engine, core), with corrupted frames."""
from __future__ import annotations

import numpy as np

from bs4nn.boards.top import TOP, write_uart_top
from bs4nn.export.artifact import write_artifact
from bs4nn.hw.config import CoreConfig
from bs4nn.sim import runner
from bs4nn.sw import datasets, reference
from bs4nn.sw import link_protocol as lp
from bs4nn.sw.network import random_network

PROVENANCE = {"command": "tests", "seed": 0, "commit": None, "created": "2026-11-23T00:00:00+00:00",
              "source": "trained"}


def test_host_code_over_a_simulated_uart(tmp_path):
    network = random_network([64, 20, 10], np.random.default_rng(21), input_shape=(8, 8), threshold_range=(1, 6))
    artifact = write_artifact(tmp_path / "model", network, "digits", PROVENANCE)
    config = CoreConfig(network, lanes=(5, 10), mode="early", events=(3, 20))  # banked inputs and spikes
    top_dir = write_uart_top(config, artifact.model_id, divisor=8, out_dir=tmp_path / "top", timeout_bits=32)
    images = datasets.load("digits", "test").images[:4].reshape(4, -1)
    built = runner.build(top_dir, "icarus", tmp_path / "build", top=TOP)
    report = runner.run(built, images, artifact.path, tmp_path / "run", test_module="bs4nn.sim.cocotb_board",
                        extra={"divisor": 8, "timeout_bits": 32, "lanes": list(config.lanes),
                                                                    "events": list(config.events)})
    assert not report["disagreements"], report["disagreements"]
    ref = reference.run(network, images)
    assert [a[0] for a in report["answers"]] == ref.decision.tolist()
    assert [a[1] for a in report["answers"]] == ref.first_spike_bin.tolist()
    assert report["recovered"] == [int(ref.decision[0])] * 4
    assert {name: (c, code) for name, (c, code, _) in report["errors"].items()} == {
        "bad_crc": (lp.ERROR, lp.BAD_CRC), "short": (lp.ERROR, lp.BAD_LENGTH),
        "unknown": (lp.ERROR, lp.UNKNOWN_COMMAND), "truncated": (lp.ERROR, lp.TRUNCATED)}
