"""The framed protocol between a host and a board running the core (over a UART).

Frame (both directions): SOF 0xB5 | command (1 byte) | payload length (2 bytes, little-endian) | payload |
CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, 2 bytes little-endian) over command, length and payload.
Host commands: INFO (no payload) and CLASSIFY (n_in pixels). The board answers each frame with one frame:
INFO_REPLY, CLASSIFY_REPLY or ERROR (code, offending command). Bytes before a SOF are skipped; a frame
that stops arriving for `timeout` bit times is answered with ERROR truncated, and the link is ready for
the next frame.
"""
from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass

from .cycles import MODES  # encoded by index: 0 full, 1 early

SOF = 0xB5
INFO, CLASSIFY = 0x01, 0x02
INFO_REPLY, CLASSIFY_REPLY, ERROR = 0x81, 0x82, 0xEE
BAD_CRC, BAD_LENGTH, UNKNOWN_COMMAND, TRUNCATED = 1, 2, 3, 4
ERROR_NAMES = {BAD_CRC: "bad CRC", BAD_LENGTH: "wrong length", UNKNOWN_COMMAND: "unknown command",
               TRUNCATED: "truncated frame"}
PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """A frame that cannot be decoded, or an ERROR frame from the board."""


def crc16(data: bytes) -> int:
    return binascii.crc_hqx(bytes(data), 0xFFFF)


def frame(command: int, payload: bytes = b"") -> bytes:
    body = bytes([command]) + struct.pack("<H", len(payload)) + bytes(payload)
    return bytes([SOF]) + body + struct.pack("<H", crc16(body))


def parse(data: bytes) -> tuple[int, bytes, bytes] | None:
    """(command, payload, rest) of the first whole frame in `data` (bytes before SOF are skipped), or None
    if it is not complete yet. A CRC mismatch raises ProtocolError."""
    start = data.find(bytes([SOF]))
    if start < 0 or len(data) < start + 4:
        return None
    command = data[start + 1]
    length = struct.unpack_from("<H", data, start + 2)[0]
    end = start + 4 + length + 2
    if len(data) < end:
        return None
    body = data[start + 1:start + 4 + length]
    if struct.unpack_from("<H", data, end - 2)[0] != crc16(body):
        raise ProtocolError(f"reply frame with a bad CRC (command {command:#04x}, {length} bytes)")
    return command, bytes(data[start + 4:start + 4 + length]), bytes(data[end:])


@dataclass(frozen=True)
class Info:
    id32: int
    n_in: int
    n_classes: int
    mode: str
    version: int

    @classmethod
    def decode(cls, payload: bytes) -> "Info":
        if len(payload) != 9:
            raise ProtocolError(f"INFO reply of {len(payload)} bytes, expected 9")
        id32, n_in, n_classes, mode, version = struct.unpack("<IHBBB", payload)
        return cls(id32, n_in, n_classes, MODES[mode] if mode < len(MODES) else f"mode {mode}", version)

    def encode(self) -> bytes:
        return struct.pack("<IHBBB", self.id32, self.n_in, self.n_classes, MODES.index(self.mode), self.version)


@dataclass(frozen=True)
class Answer:
    decision: int
    first_spike_bin: int
    cycles: int
    events: int

    @classmethod
    def decode(cls, payload: bytes) -> "Answer":
        if len(payload) != 11:
            raise ProtocolError(f"CLASSIFY reply of {len(payload)} bytes, expected 11")
        return cls(*struct.unpack("<BHII", payload))

    def encode(self) -> bytes:
        return struct.pack("<BHII", self.decision, self.first_spike_bin, self.cycles, self.events)


def check_reply(command: int, payload: bytes, expected: int) -> bytes:
    """The payload of a reply, or ProtocolError naming the board's error code."""
    if command == ERROR:
        code = payload[0] if payload else 0
        raise ProtocolError(f"the board answered ERROR {code} ({ERROR_NAMES.get(code, 'unknown code')})")
    if command != expected:
        raise ProtocolError(f"the board answered command {command:#04x}, expected {expected:#04x}")
    return payload
