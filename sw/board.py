"""The host side of a board link: ask the board for its model, send images, compare each answer with the
reference (and with the cycle model when the board's lanes are known).

`HostLink` speaks the protocol of docs/board-protocol.md over any byte transport with `write(bytes)` and
`read(size) -> bytes` (returning what arrived before its own timeout): a pyserial port on real hardware, a
bridge into the simulator in the co-simulation of the board top.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import link_protocol as lp
from .cycles import schedule
from .network import Network
from .reference import run as run_reference
from .semantics import encode_pixels


class BoardError(RuntimeError):
    """The board cannot be used for this comparison (wrong model, no answer, wrong image size)."""


class HostLink:
    def __init__(self, transport, empty_reads: int = 20):
        self.transport = transport
        self.empty_reads = empty_reads  # reads that return nothing before we give up on an answer

    def exchange(self, data: bytes) -> tuple[int, bytes]:
        """Send raw bytes (normally one frame) and return the (command, payload) of the answer."""
        self.transport.write(bytes(data))
        buffer, empty = b"", 0
        while True:
            chunk = self.transport.read(64)
            if chunk:
                buffer += chunk
                parsed = lp.parse(buffer)
                if parsed is not None:
                    return parsed[0], parsed[1]
            else:
                empty += 1
                if empty >= self.empty_reads:
                    raise BoardError(f"no answer from the board ({len(buffer)} bytes received)")

    def request(self, command: int, payload: bytes, expected: int) -> bytes:
        return lp.check_reply(*self.exchange(lp.frame(command, payload)), expected)

    def info(self) -> lp.Info:
        return lp.Info.decode(self.request(lp.INFO, b"", lp.INFO_REPLY))

    def classify(self, pixels: np.ndarray) -> lp.Answer:
        return lp.Answer.decode(self.request(lp.CLASSIFY, np.asarray(pixels, np.uint8).tobytes(), lp.CLASSIFY_REPLY))


@dataclass
class BoardRun:
    answers: list[lp.Answer]
    disagreements: list[str] = field(default_factory=list)

    @property
    def cycles(self) -> np.ndarray:
        return np.array([a.cycles for a in self.answers], np.int64)


def check_model(info: lp.Info, network: Network, id32: str) -> None:
    """Refuse a board that runs another model than the artifact's."""
    if info.id32 != int(id32, 16):
        raise BoardError(f"the board runs model {info.id32:08x}, the artifact is {id32}")
    if info.n_in != network.layers[0].n_in or info.n_classes != network.n_classes:
        raise BoardError(f"the board's core takes {info.n_in} pixels and gives {info.n_classes} classes, "
                         f"the artifact {network.layers[0].n_in} and {network.n_classes}")
    if info.version != lp.PROTOCOL_VERSION:
        raise BoardError(f"the board speaks protocol version {info.version}, this host {lp.PROTOCOL_VERSION}")


def run_images(link: HostLink, network: Network, id32: str, images: np.ndarray, lanes=None, events=None, names=None,
               progress: bool = False) -> BoardRun:
    """Check the model ID, send every image, compare decision and t* with the reference and, given the
    board's lanes, the cycles and events with the cycle model."""
    info = link.info()
    check_model(info, network, id32)
    images = np.asarray(images, np.uint8).reshape(len(images), -1)
    ref = run_reference(network, images)
    plan = schedule(network.sizes, lanes, encode_pixels(images), ref.spikes, events) if lanes is not None else None
    names = names or [f"image {i}" for i in range(len(images))]
    result = BoardRun([])
    indices = range(len(images))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc="board", unit="image")
    for i in indices:
        answer = link.classify(images[i])
        result.answers.append(answer)
        expected = (int(ref.decision[i]), int(ref.first_spike_bin[i]))
        if (answer.decision, answer.first_spike_bin) != expected:
            result.disagreements.append(f"{names[i]}: the board answers class {answer.decision} at bin "
                                        f"{answer.first_spike_bin}, the reference class {expected[0]} at bin {expected[1]}")
        if plan is not None:
            model = (int(plan.cycles(info.mode)[i]), int(plan.words(info.mode)[i]))
            if (answer.cycles, answer.events) != model:
                result.disagreements.append(f"{names[i]}: the board counts {answer.cycles} cycles and "
                                            f"{answer.events} events, the cycle model {model[0]} and {model[1]}")
    return result
