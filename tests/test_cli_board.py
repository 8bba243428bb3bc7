"""`bs4nn board run` against a board emulated on a local TCP socket (pyserial's socket:// URL): the model
check, the comparison with the reference, and the exit codes."""
from __future__ import annotations

import socket
import threading

import numpy as np
import pytest

from bs4nn.export.artifact import write_artifact
from bs4nn.sw import link_protocol as lp
from bs4nn.sw import reference
from bs4nn.sw.network import random_network
from test_cli import run_cli

PROVENANCE = {"command": "tests", "seed": 0, "commit": None, "created": "2026-11-23T00:00:00+00:00",
              "source": "trained"}


class EmulatedBoard(threading.Thread):
    """Answers frames like the board would, from the reference; `wrong_id` / `wrong_class` break it."""

    def __init__(self, network, id32: str, wrong_id=False, wrong_class=False):
        super().__init__(daemon=True)
        self.network, self.id32, self.wrong_id, self.wrong_class = network, id32, wrong_id, wrong_class
        self.server = socket.create_server(("127.0.0.1", 0))
        reference.run(network, np.zeros((1, network.layers[0].n_in), np.uint8))  # compile before answering
        self.port = self.server.getsockname()[1]

    def run(self):
        conn, _ = self.server.accept()
        buffer = b""
        with conn:
            while True:
                data = conn.recv(4096)
                if not data:
                    return
                buffer += data
                while (parsed := lp.parse(buffer)) is not None:
                    command, payload, buffer = parsed
                    conn.sendall(self.answer(command, payload))

    def answer(self, command, payload):
        if command == lp.INFO:
            id32 = int(self.id32, 16) ^ (1 if self.wrong_id else 0)
            info = lp.Info(id32, self.network.layers[0].n_in, self.network.n_classes, "early", lp.PROTOCOL_VERSION)
            return lp.frame(lp.INFO_REPLY, info.encode())
        pixels = np.frombuffer(payload, np.uint8)[None]
        ref = reference.run(self.network, pixels)
        decision = (int(ref.decision[0]) + int(self.wrong_class)) % self.network.n_classes
        return lp.frame(lp.CLASSIFY_REPLY, lp.Answer(decision, int(ref.first_spike_bin[0]), 100, 10).encode())


@pytest.fixture
def model(tmp_path):
    network = random_network([64, 16, 10], np.random.default_rng(8), input_shape=(8, 8), threshold_range=(1, 6))
    return write_artifact(tmp_path / "model", network, "digits", PROVENANCE)


def _run(capsys, model, board, *extra):
    board.start()
    return run_cli(capsys, "board", "run", "--port", f"socket://127.0.0.1:{board.port}", "--model", model.path,
                   "--dataset", "digits", "--limit", "5", "--timeout", "60", *extra)


def test_board_run_agrees(capsys, model, tmp_path):
    code, out, err = _run(capsys, model, EmulatedBoard(model.network, model.id32), "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "agree" in out and (tmp_path / "r.json").exists()


def test_board_run_refuses_another_model(capsys, model):
    code, _, err = _run(capsys, model, EmulatedBoard(model.network, model.id32, wrong_id=True))
    assert code == 2 and "the board runs model" in err and err.count("\n") == 1


def test_board_run_fails_on_a_wrong_answer(capsys, model):
    code, _, err = _run(capsys, model, EmulatedBoard(model.network, model.id32, wrong_class=True))
    assert code == 1 and "the board answers class" in err
