"""The board side of the host link (sw/link_protocol.py): frames in over the UART, pixels into the core,
answers and error frames out. Every bad frame gets an ERROR answer and the link is ready for the next one;
a frame that stops arriving for `timeout` cycles is answered as truncated, so nothing ever hangs.
"""
from __future__ import annotations

import binascii

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from bs4nn.hw import layouts
from bs4nn.hw.config import index_width
from bs4nn.sw import link_protocol as lp

REPLY_BYTES = 11  # the longest answer payload (CLASSIFY_REPLY)


def crc16_byte(m, crc, byte, name: str):
    """CRC-16/CCITT-FALSE of one more byte, MSB first. The update is linear over GF(2) in the 16 CRC bits
    and the 8 data bits, so each output bit is the XOR of a fixed set of them (taps: binascii's CRC, the
    host's crc16, of each input bit alone): two LUT levels, not a chain of 8 conditional XORs."""
    inputs = [crc[i] for i in range(16)] + [byte[i] for i in range(8)]
    # input bit k alone: CRC bit k with a zero byte, or data bit i with a zero CRC
    columns = ([binascii.crc_hqx(b"\x00", 1 << k) for k in range(16)]
               + [binascii.crc_hqx(bytes([1 << i]), 0) for i in range(8)])
    value = Signal(16, name=f"{name}_next")
    m.d.comb += value.eq(Cat(*(Cat(*(bit for bit, column in zip(inputs, columns) if column >> j & 1)).xor()
                               for j in range(16))))
    return value


class LinkEngine(wiring.Component):
    def __init__(self, n_in: int, n_classes: int, id32: int, mode: str, timeout: int):
        self.n_in, self.n_classes, self.id32, self.mode, self.timeout = n_in, n_classes, id32, mode, timeout
        super().__init__({
            "rx_bytes": In(stream.Signature(8)),
            "rx_busy": In(1),  # the receiver is inside a byte (not idle)
            "tx_bytes": Out(stream.Signature(8)),
            "pixels": Out(stream.Signature(layouts.PIXEL)),
            "result": In(stream.Signature(layouts.result(n_classes))),
            "abort": Out(1),
            "last_class": Out(index_width(n_classes)),
            "frames": Out(16),  # frames answered (for LEDs and debugging)
        })

    def elaborate(self, platform):
        m = Module()
        byte = self.rx_bytes.payload
        crc, command, length, count = Signal(16), Signal(8), Signal(16), Signal(16)
        received_crc = Signal(16)
        error = Signal(3)  # 0 = none, else an error code
        fed = Signal()  # pixels of this frame went into the core
        idle = Signal(range(self.timeout + 1))
        reply_command, reply_length = Signal(8), Signal(8)
        reply = Signal(8 * REPLY_BYTES)
        sent = Signal(range(REPLY_BYTES + 1))
        crc_rx = crc16_byte(m, crc, byte, "crc_rx")
        tx_byte = Signal(8)
        crc_tx = crc16_byte(m, crc, tx_byte, "crc_tx")
        take = self.rx_bytes.valid & self.rx_bytes.ready
        is_classify, is_info = command == lp.CLASSIFY, command == lp.INFO
        feeding = is_classify & (length == self.n_in) & (error == 0)

        info = lp.Info(self.id32, self.n_in, self.n_classes, self.mode, lp.PROTOCOL_VERSION).encode()
        result = self.result.payload

        def answer_error(code):
            """Answer with an ERROR frame: the code and the offending command."""
            code = Const(code, 8) if isinstance(code, int) else Cat(code, Const(0, 8 - len(code)))
            m.d.sync += [reply_command.eq(lp.ERROR), reply_length.eq(2), reply.eq(Cat(code, command))]
            m.next = "SEND_SOF"

        def unless_timed_out():
            """Inside a frame: when bytes stop arriving, answer it as truncated (this overrides m.next)."""
            with m.If(timed_out):
                m.d.comb += self.abort.eq(fed | (feeding & (count != 0)))
                answer_error(lp.TRUNCATED)

        in_frame = Signal()
        with m.If(in_frame & ~take & ~self.rx_busy):
            m.d.sync += idle.eq(idle + 1)
        with m.Else():
            m.d.sync += idle.eq(0)
        timed_out = in_frame & (idle == self.timeout)

        with m.FSM():
            with m.State("HUNT"):
                m.d.comb += self.rx_bytes.ready.eq(1)
                with m.If(take & (byte == lp.SOF)):
                    m.d.sync += [crc.eq(0xFFFF), error.eq(0), fed.eq(0), count.eq(0)]
                    m.next = "COMMAND"
            for state, target, nxt in (("COMMAND", command, "LENGTH0"), ("LENGTH0", length[:8], "LENGTH1")):
                with m.State(state):
                    m.d.comb += [self.rx_bytes.ready.eq(1), in_frame.eq(1)]
                    with m.If(take):
                        m.d.sync += [target.eq(byte), crc.eq(crc_rx)]
                        m.next = nxt
                    unless_timed_out()
            with m.State("LENGTH1"):
                m.d.comb += [self.rx_bytes.ready.eq(1), in_frame.eq(1)]
                with m.If(take):
                    full_length = Cat(length[:8], byte)
                    m.d.sync += [length[8:].eq(byte), crc.eq(crc_rx)]
                    with m.If(~is_classify & ~is_info):
                        m.d.sync += error.eq(lp.UNKNOWN_COMMAND)
                    with m.Elif(full_length != Mux(is_classify, self.n_in, 0)):
                        m.d.sync += error.eq(lp.BAD_LENGTH)
                    with m.If(full_length == 0):
                        m.next = "CRC0"
                    with m.Else():
                        m.next = "PAYLOAD"
                unless_timed_out()
            with m.State("PAYLOAD"):
                m.d.comb += in_frame.eq(1)
                with m.If(feeding):  # pixels pass straight into the core
                    m.d.comb += [self.pixels.valid.eq(self.rx_bytes.valid), self.pixels.payload.data.eq(byte),
                                 self.pixels.payload.last.eq(count == self.n_in - 1),
                                 self.rx_bytes.ready.eq(self.pixels.ready)]
                with m.Else():
                    m.d.comb += self.rx_bytes.ready.eq(1)
                with m.If(take):
                    m.d.sync += [crc.eq(crc_rx), count.eq(count + 1), fed.eq(fed | feeding)]
                    with m.If(count == length - 1):
                        m.next = "CRC0"
                unless_timed_out()
            with m.State("CRC0"):
                m.d.comb += [self.rx_bytes.ready.eq(1), in_frame.eq(1)]
                with m.If(take):
                    m.d.sync += received_crc[:8].eq(byte)
                    m.next = "CRC1"
                unless_timed_out()
            with m.State("CRC1"):
                m.d.comb += [self.rx_bytes.ready.eq(1), in_frame.eq(1)]
                with m.If(take):
                    with m.If(Cat(received_crc[:8], byte) != crc):
                        m.d.comb += self.abort.eq(fed)
                        answer_error(lp.BAD_CRC)
                    with m.Elif(error != 0):
                        answer_error(error)
                    with m.Elif(is_info):
                        m.d.sync += [reply_command.eq(lp.INFO_REPLY), reply_length.eq(len(info)),
                                     reply.eq(int.from_bytes(info, "little"))]
                        m.next = "SEND_SOF"
                    with m.Else():
                        m.next = "WAIT_RESULT"
                unless_timed_out()
            with m.State("WAIT_RESULT"):
                m.d.comb += self.result.ready.eq(1)
                with m.If(self.result.valid):
                    m.d.sync += [reply_command.eq(lp.CLASSIFY_REPLY), reply_length.eq(REPLY_BYTES),
                                 reply.eq(Cat(result.decision, Const(0, 8 - len(result.decision)),
                                              result.first_spike_bin, Const(0, 7), result.cycles, result.events)),
                                 self.last_class.eq(result.decision)]
                    m.next = "SEND_SOF"

            # ---- the answer: SOF, command, length (2), payload, CRC (2)
            def send(state, value, nxt, with_crc=True):
                with m.State(state):
                    m.d.comb += [self.tx_bytes.valid.eq(1), self.tx_bytes.payload.eq(value), tx_byte.eq(value)]
                    with m.If(self.tx_bytes.ready):
                        if with_crc:
                            m.d.sync += crc.eq(crc_tx)
                        m.next = nxt

            with m.State("SEND_SOF"):
                m.d.comb += [self.tx_bytes.valid.eq(1), self.tx_bytes.payload.eq(lp.SOF)]
                with m.If(self.tx_bytes.ready):
                    m.d.sync += [crc.eq(0xFFFF), sent.eq(0)]
                    m.next = "SEND_COMMAND"
            send("SEND_COMMAND", reply_command, "SEND_LENGTH0")
            send("SEND_LENGTH0", reply_length, "SEND_LENGTH1")
            send("SEND_LENGTH1", 0, "SEND_PAYLOAD")
            with m.State("SEND_PAYLOAD"):
                value = reply.word_select(sent, 8)
                m.d.comb += [self.tx_bytes.valid.eq(sent != reply_length), self.tx_bytes.payload.eq(value),
                             tx_byte.eq(value)]
                with m.If(sent == reply_length):
                    m.next = "SEND_CRC0"
                with m.Elif(self.tx_bytes.ready):
                    m.d.sync += [crc.eq(crc_tx), sent.eq(sent + 1)]
            send("SEND_CRC0", crc[:8], "SEND_CRC1", with_crc=False)
            with m.State("SEND_CRC1"):
                m.d.comb += [self.tx_bytes.valid.eq(1), self.tx_bytes.payload.eq(crc[8:])]
                with m.If(self.tx_bytes.ready):
                    m.d.sync += self.frames.eq(self.frames + 1)
                    m.next = "HUNT"
        return m
