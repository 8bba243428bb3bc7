"""The whole core: input stage, one unit per layer, FIFOs between them, the result and the counters.

Streams (valid/ready, back-pressure honoured everywhere): `pixels` in (8-bit, raster order, `last` on the
image's last pixel), `result` out (one per image), and with `spike_ports` one `spikes_l{k}` stream per
layer (neuron, bin). `abort` clears every register of the core in one cycle: memories keep their
contents but are invalidated by per-image valid bits, so nothing of an aborted image survives.

Cycles per image: from the cycle after the last pixel is accepted to the cycle the result is valid.
"""
from __future__ import annotations

from amaranth.hdl import Cat, Module, ResetInserter, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from . import layouts
from .config import CoreConfig
from .input_stage import InputStage
from .layer import LayerUnit
from .skid import SkidBuffer


class Core(wiring.Component):
    def __init__(self, config: CoreConfig, spike_ports: bool = True):
        self.config = config
        self.spike_ports = spike_ports
        members = {
            "pixels": In(stream.Signature(layouts.PIXEL)),
            "result": Out(stream.Signature(layouts.result(config.n_classes))),
            "abort": In(1),
        }
        if spike_ports:
            for k, layer in enumerate(config.network.layers):
                members[f"spikes_l{k}"] = Out(stream.Signature(layouts.spike(layer.n_out, config.layer(k).events_out)))
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        cfg = self.config
        early = cfg.mode == "early"
        m.submodules.input_stage = inp = InputStage(cfg.n_in, cfg.skip_input_bin_255, cfg.events[0])
        units = []
        for k, layer in enumerate(cfg.network.layers):
            unit = LayerUnit(cfg.layer(k), layer.signs, layer.thresholds, early=early)
            m.submodules[f"layer{k}"] = unit
            units.append(unit)
        output = units[-1]

        wiring.connect(m, wiring.flipped(self.pixels), inp.pixels)
        wiring.connect(m, inp.events, units[0].events)
        for k in range(cfg.n_layers - 1):
            # every neuron fires at most once and every word holds a spike: at most n_out words (and at most
            # 255 bins times the busiest bank's neurons) and one end marker per image never fill it.
            # Buffered (block RAM, registered read), then a register slice, so neither the block RAM's
            # clock-to-out nor its read control is in a path through the next layer's stage A: a word is
            # offered three cycles after it is sent
            shape = units[k].out_events.payload.shape()
            receiver = cfg.layer(k + 1)  # its n_in is this layer's n_out
            queue = fifo.SyncFIFOBuffered(width=shape.size, depth=min(receiver.n_in, 255 * receiver.bank_depth) + 1)
            m.submodules[f"queue{k}"] = queue
            m.submodules[f"queue{k}_slice"] = queue_slice = SkidBuffer(shape)
            producer, consumer = units[k].out_events, units[k + 1].events
            m.d.comb += [queue.w_data.eq(producer.payload.as_value()), queue.w_en.eq(producer.valid),
                         producer.ready.eq(queue.w_rdy),
                         queue_slice.i.payload.eq(queue.r_data), queue_slice.i.valid.eq(queue.r_rdy),
                         queue.r_en.eq(queue_slice.i.ready)]
            wiring.connect(m, queue_slice.o, consumer)
        for k, unit in enumerate(units):
            if self.spike_ports:
                wiring.connect(m, unit.spikes, wiring.flipped(getattr(self, f"spikes_l{k}")))
            else:
                m.d.comb += unit.spikes.ready.eq(1)

        # per-image control: early exit, counters, result, restart
        stop_bin = Signal(9, init=256)
        stopping = Signal()  # stop_bin != 256, as a flip-flop: the input stage's walk control reads no comparator
        cycles = Signal(32)
        events = Signal(32)
        output_done = Signal()
        for unit in units:
            m.d.comb += unit.stop_bin.eq(stop_bin)
        m.d.comb += inp.stop.eq(stopping)
        # the layers' integration pulses are registered before they are counted (short paths); `events_now`
        # is the count up to the previous cycle, what the result reports
        integrated = Signal(len(units))
        events_now = Signal(32)
        m.d.sync += integrated.eq(Cat(unit.integrated for unit in units))
        m.d.comb += events_now.eq(events + sum(integrated[k] for k in range(len(units))))
        m.d.sync += [cycles.eq(cycles + 1), events.eq(events_now)]
        with m.If(inp.last_pixel):
            m.d.sync += [cycles.eq(1), events.eq(0)]

        result = self.result.payload
        with m.If(self.result.valid & self.result.ready):
            m.d.sync += self.result.valid.eq(0)
        with m.If(output.decide):
            m.d.sync += [
                self.result.valid.eq(1),
                result.decision.eq(output.decision),
                result.first_spike_bin.eq(output.first_spike_bin),
                result.cycles.eq(cycles + 1),
                result.events.eq(events_now),
                result.framing_error.eq(inp.framing_error),
            ]
            if early:
                m.d.sync += [stop_bin.eq(output.first_spike_bin), stopping.eq(output.first_spike_bin != 256)]
        with m.If(output.finished):
            m.d.sync += output_done.eq(1)
        restart = output_done & ~self.result.valid
        m.d.comb += inp.restart.eq(restart)
        with m.If(restart):
            m.d.sync += [output_done.eq(0), stop_bin.eq(256), stopping.eq(0)]
        return ResetInserter(self.abort)(m)
