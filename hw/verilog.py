"""Standalone Verilog of a core, with AXI4-Stream port names, for any tool flow.

`write_core(artifact, out_dir, lanes, mode)` writes:
- `bs4nn_core.v`: module `bs4nn_core` (ports clk, rst, abort, s_axis_pixels_*, m_axis_result_*,
  m_axis_spikes_l{k}_*); the ROMs are initialised inside the Verilog;
- `rom_l{k}.hex` (one input bank) or `rom_l{k}_b{j}.hex` (bank j of E > 1) and `thresholds_l{k}.hex`: the
  ROM contents the Verilog holds, in the core's word order ($readmemh);
- `core.json`: the configuration, the model_id and every port's tdata field layout.
Everything is written to a temporary directory and renamed into place.
"""
from __future__ import annotations

import json
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Module
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from bs4nn.export.artifact import write_directory

from . import layouts
from .config import CoreConfig, potential_width
from .core import Core
from .layer import bank_rom_words, lane_thresholds

TOP = "bs4nn_core"


def _fields(layout: data.StructLayout) -> dict:
    """Each field's offset and width; an array of slots becomes slots.{j}.{name} fields."""
    fields = {}
    for name, field in layout:
        if isinstance(field.shape, data.ArrayLayout):
            for j, (_, slot) in enumerate(field.shape):
                for sub, sub_field in slot.shape:
                    fields[f"{name}.{j}.{sub}"] = {"offset": field.offset + slot.offset + sub_field.offset,
                                                   "width": sub_field.width}
        else:
            fields[name] = {"offset": field.offset, "width": field.width}
    return fields


def port_map(config: CoreConfig, spike_ports: bool = True) -> dict:
    """Each AXI4-Stream port: direction, tdata width and field layout."""
    ports = {
        "s_axis_pixels": {"direction": "in", "width": 8, "tdata": {"pixel": {"offset": 0, "width": 8}},
                          "tlast": "the image's last pixel (n_in pixels per image, raster order)"},
        "m_axis_result": {"direction": "out", "width": layouts.result(config.n_classes).size,
                          "tdata": _fields(layouts.result(config.n_classes)), "tlast": "always 1"},
    }
    if spike_ports:
        for k, layer in enumerate(config.network.layers):
            banks = config.layer(k).events_out
            lay = layouts.spike(layer.n_out, banks)
            ports[f"m_axis_spikes_l{k}"] = {"direction": "out", "width": lay.size, "tdata": _fields(lay),
                                            "banks": banks}
    return ports


class AxiStreamCore(wiring.Component):
    """The Core with flat, AXI4-Stream-named ports."""

    def __init__(self, config: CoreConfig, spike_ports: bool = True):
        self.config, self.spike_ports = config, spike_ports
        result_width = layouts.result(config.n_classes).size
        members = {
            "abort": In(1),
            "s_axis_pixels_tvalid": In(1), "s_axis_pixels_tready": Out(1),
            "s_axis_pixels_tdata": In(8), "s_axis_pixels_tlast": In(1),
            "m_axis_result_tvalid": Out(1), "m_axis_result_tready": In(1),
            "m_axis_result_tdata": Out(result_width), "m_axis_result_tlast": Out(1),
        }
        if spike_ports:
            for k, layer in enumerate(config.network.layers):
                width = layouts.spike(layer.n_out, config.layer(k).events_out).size
                members |= {f"m_axis_spikes_l{k}_tvalid": Out(1), f"m_axis_spikes_l{k}_tready": In(1),
                            f"m_axis_spikes_l{k}_tdata": Out(width)}
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        m.submodules.core = core = Core(self.config, self.spike_ports)
        m.d.comb += [
            core.abort.eq(self.abort),
            core.pixels.valid.eq(self.s_axis_pixels_tvalid),
            self.s_axis_pixels_tready.eq(core.pixels.ready),
            core.pixels.payload.data.eq(self.s_axis_pixels_tdata),
            core.pixels.payload.last.eq(self.s_axis_pixels_tlast),
            self.m_axis_result_tvalid.eq(core.result.valid),
            core.result.ready.eq(self.m_axis_result_tready),
            self.m_axis_result_tdata.eq(core.result.payload.as_value()),
            self.m_axis_result_tlast.eq(1),
        ]
        if self.spike_ports:
            for k in range(self.config.n_layers):
                port = getattr(core, f"spikes_l{k}")
                m.d.comb += [getattr(self, f"m_axis_spikes_l{k}_tvalid").eq(port.valid),
                             port.ready.eq(getattr(self, f"m_axis_spikes_l{k}_tready")),
                             getattr(self, f"m_axis_spikes_l{k}_tdata").eq(port.payload.as_value())]
        return m


def verilog_text(config: CoreConfig, spike_ports: bool = True) -> str:
    return verilog.convert(AxiStreamCore(config, spike_ports), name=TOP, emit_src=False)


def _bank_rule(layer: int, banks: int) -> str:
    """Where input i of the layer sits, in words (`input_bank` / `bank_input` in sw/cycles.py)."""
    if banks == 1:
        return "one bank: input i at row r = i"
    if layer == 0:
        return "input i (a pixel) in bank (i + i // E) mod E at row r = i // E"
    return "input i (a neuron of the layer before) in bank i mod E at row r = i // E"


def _hex_lines(words, width: int) -> bytes:
    digits = max(1, -(-width // 4))
    return "".join(f"{w:0{digits}x}\n" for w in words).encode()


def write_core(config: CoreConfig, out_dir, model_id: str | None = None, spike_ports: bool = True) -> Path:
    """Write the core's Verilog, ROM files and core.json into `out_dir` (replaced atomically)."""
    out_dir = Path(out_dir)
    files = {f"{TOP}.v": verilog_text(config, spike_ports).encode()}
    layers = []
    for k, lc in enumerate(config.layers()):
        layer = config.network.layers[k]
        width = potential_width(lc.n_in)
        roms = [f"rom_l{k}.hex"] if lc.events == 1 else [f"rom_l{k}_b{j}.hex" for j in range(lc.events)]
        for name, words in zip(roms, bank_rom_words(layer.signs, lc.lanes, lc.events, k), strict=True):
            files[name] = _hex_lines(words, lc.lanes)
        mask = (1 << width) - 1
        files[f"thresholds_l{k}.hex"] = _hex_lines(
            [int(t) & mask for t in lane_thresholds(layer.thresholds, lc.n_in, lc.lanes).ravel()], width)
        layers.append({
            "n_in": lc.n_in, "n_out": lc.n_out, "lanes": lc.lanes, "groups": lc.groups, "banks": lc.events,
            "roms": roms, "rom_words": lc.bank_depth * lc.groups, "rom_width": lc.lanes,
            "bank_of_input": _bank_rule(k, lc.events),
            "rom_order": "word r * groups + g holds the weights of the bank's input at row r to neurons "
                         "g*lanes .. g*lanes + lanes - 1, bit l = 1 for +1; rows past the last input are all -1",
            "thresholds": f"thresholds_l{k}.hex",
            "thresholds_order": "line g * lanes + l: threshold of lane l in group g (neuron g*lanes + l; "
                                "padding lanes hold n_in + 1), two's complement",
            "potential_width": width})
    description = {
        "format": "bs4nn-core", "version": 1, "top": TOP, "model_id": model_id,
        "id32": model_id[:8] if model_id else None, **config.describe(),
        "spike_ports": spike_ports, "clock": "clk (rising edge)", "reset": "rst (synchronous, active high)",
        "abort": "abort (synchronous, active high): drops the image in flight",
        "cycles": "from the cycle after the image's last pixel is accepted to the cycle the result is valid",
        "ports": port_map(config, spike_ports),
        "layers": layers,
    }
    files["core.json"] = (json.dumps(description, indent=2) + "\n").encode()
    return write_directory(out_dir, files)
