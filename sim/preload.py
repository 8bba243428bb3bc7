"""Fast co-simulation: images preloaded into a Verilog harness, results logged by the simulator itself.

The per-cycle Python of the cocotb testbench (`cocotb_core`) is what bounds its speed (~3k cycles/s under
Verilator), and even a cocotb run that only clocks the design pays the VPI's price on every edge (and
Verilator's `--public-flat-rw`, which cocotb needs, keeps every signal of the core from being optimised).
So the whole-test-set path runs without cocotb: a plain Verilog harness (`bs4nn_preload`) holds the images
in a memory read with `$readmemh`, streams them into the core back to back at one pixel per cycle with
every output always ready, `$fwrite`s each first and last pixel (with its cycle), each result and each
spike to a log, and calls `$finish` after the last image. Under Verilator a small C++ loop
(`preload_main.cpp`) clocks it; under Icarus a Verilog clock module (`bs4nn_preload_clock`) does. A
watchdog ends the run when no result comes for longer than any image can take. The log is then checked
exactly as the cocotb testbench's observations are (`scoreboard.check_and_report`). Shards run in parallel
processes, each with its own slice of the images and its own run directory, on one compiled simulator.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOP = "bs4nn_preload"
CLOCK_TOP = "bs4nn_preload_clock"  # Icarus: the harness under a Verilog clock
MAIN_CPP = Path(__file__).with_name("preload_main.cpp")  # Verilator: the harness under a C++ loop
RESET_CYCLES = 3  # as the cocotb testbench; preload_main.cpp spells it out too


def harness_verilog(core: dict, core_verilog: str, capacity: int) -> str:
    """The harness for a core (its core.json and Verilog text) holding up to `capacity` images."""
    n_in = core["sizes"][0]
    n_layers = len(core["layers"])
    ports = core["ports"]
    result_width = ports["m_axis_result"]["width"]
    digest = hashlib.sha256(core_verilog.encode()).hexdigest()
    lines = [
        f"// bs4nn preload harness for the core with Verilog sha256 {digest}",
        f"module {TOP}(input wire clk, input wire rst);",
        f"  localparam N_IN = {n_in};",
        f"  localparam CAPACITY = {capacity};",
        "  reg [7:0] pixels [0:N_IN*CAPACITY-1];",
        "  reg [8*1024-1:0] pixel_file, log_file;",
        "  integer n_images, fd, watchdog;",
        "  reg [31:0] cycle, image, column, answered, idle;",
        "  initial begin",
        '    if (!$value$plusargs("images=%d", n_images)) n_images = 0;',
        '    if (!$value$plusargs("watchdog=%d", watchdog)) watchdog = 0;',
        '    if (!$value$plusargs("pixels=%s", pixel_file)) $fatal(1, "+pixels=FILE missing");',
        '    if (!$value$plusargs("log=%s", log_file)) $fatal(1, "+log=FILE missing");',
        "    if (n_images > CAPACITY) $fatal(1, \"more images than the harness holds\");",
        "    $readmemh(pixel_file, pixels);",
        '    fd = $fopen(log_file, "w");',
        "  end",
        "  wire pixel_ready;",
        "  wire pixel_valid = !rst && image < n_images;",
        "  wire [7:0] pixel_data = pixels[image * N_IN + column];",
        "  wire pixel_last = column == N_IN - 1;",
        "  wire result_valid;",
        f"  wire [{result_width - 1}:0] result_data;",
    ]
    connections = [".clk(clk)", ".rst(rst)", ".abort(1'b0)",
                   ".s_axis_pixels_tvalid(pixel_valid)", ".s_axis_pixels_tready(pixel_ready)",
                   ".s_axis_pixels_tdata(pixel_data)", ".s_axis_pixels_tlast(pixel_last)",
                   ".m_axis_result_tvalid(result_valid)", ".m_axis_result_tready(1'b1)",
                   ".m_axis_result_tdata(result_data)", ".m_axis_result_tlast()"]
    spike_logs = []
    for k in range(n_layers):
        width = ports[f"m_axis_spikes_l{k}"]["width"]
        lines += [f"  wire spike{k}_valid;", f"  wire [{width - 1}:0] spike{k}_data;"]
        connections += [f".m_axis_spikes_l{k}_tvalid(spike{k}_valid)", f".m_axis_spikes_l{k}_tready(1'b1)",
                        f".m_axis_spikes_l{k}_tdata(spike{k}_data)"]
        spike_logs.append(f'      if (spike{k}_valid) $fwrite(fd, "S {k} %0d\\n", spike{k}_data);')
    lines += [
        "  bs4nn_core core(" + ", ".join(connections) + ");",
        "  always @(posedge clk) begin",
        "    if (rst) begin",
        "      cycle <= 0; image <= 0; column <= 0; answered <= 0; idle <= 0;",
        "    end else begin",
        "      cycle <= cycle + 1;",
        "      if (pixel_valid && pixel_ready) begin",
        '        if (column == 0) $fwrite(fd, "P %0d\\n", cycle);',
        "        if (pixel_last) begin",
        '          $fwrite(fd, "L %0d\\n", cycle);',
        "          column <= 0; image <= image + 1;",
        "        end else column <= column + 1;",
        "      end",
        '      if (result_valid) begin $fwrite(fd, "R %0d %0d\\n", cycle, result_data); answered <= answered + 1; end',
        *spike_logs,
        "      idle <= result_valid ? 0 : idle + 1;",
        # the last image is finished (its drain included) once the core takes pixels again
        "      if (answered == n_images && image == n_images && pixel_ready) begin",
        "        $fclose(fd); $finish;",
        "      end else if (watchdog != 0 && idle >= watchdog) begin",
        '        $fwrite(fd, "T %0d %0d\\n", cycle, idle); $fclose(fd); $finish;',
        "      end",
        "    end",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


def clock_verilog() -> str:
    """Icarus's top: the harness clocked at 100 MHz after RESET_CYCLES cycles of reset."""
    return "\n".join([
        "`timescale 1ns/1ps",
        f"module {CLOCK_TOP};",
        "  reg clk = 0, rst = 1;",
        f"  {TOP} harness(.clk(clk), .rst(rst));",
        "  always #5 clk = ~clk;",
        f"  initial begin repeat ({RESET_CYCLES}) @(posedge clk); #1 rst = 0; end",
        "endmodule",
        "",
    ])


def watchdog_cycles(core: dict) -> int:
    """More cycles than any image can take from the previous result to its own: its pixels, every input
    event of every layer at one group per cycle, and a generous allowance for bins and hand-overs."""
    layers = core["layers"]
    return core["sizes"][0] + sum(layer["n_in"] * layer["groups"] for layer in layers) + 4096 * len(layers)


@dataclass
class NativeBuild:
    """A compiled preload harness: `command` + plusargs runs it."""

    simulator: str
    command: list[str]
    build_dir: Path


def _compile(cmd: list[str], env: dict, build_dir: Path, what: str) -> None:
    from .runner import SimulationError

    log = build_dir / "build.log"
    with open(log, "w") as f:
        done = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=os.environ | env, cwd=build_dir)
    if done.returncode:
        raise SimulationError(f"{what} could not build the preload harness (exit {done.returncode}; log: {log})")


def build_native(harness_dir: Path, core_verilog: Path, simulator: str, cache_dir: Path) -> NativeBuild:
    """Compile the harness (and the core) for `simulator` into a directory keyed by the sources' hash."""
    from .runner import VERILATOR_SPLIT_CFUNCS, simulator_env

    env = simulator_env(simulator)
    sources = [harness_dir / f"{TOP}.v", Path(core_verilog)]
    if simulator == "icarus":
        (harness_dir / f"{CLOCK_TOP}.v").write_text(clock_verilog())
        sources.insert(0, harness_dir / f"{CLOCK_TOP}.v")
    else:
        sources.insert(0, MAIN_CPP)
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:16]
    build_dir = Path(cache_dir) / f"{simulator}-preload-{digest}"
    stamp = build_dir / "built"
    build_dir.mkdir(parents=True, exist_ok=True)
    sources = [str(p.resolve()) for p in sources]
    if simulator == "icarus":
        command = ["vvp", "-n", str((build_dir / "preload.vvp").resolve())]
        if not stamp.exists():
            _compile(["iverilog", "-g2005", "-s", CLOCK_TOP, "-o", "preload.vvp", *sources], env, build_dir, "iverilog")
    else:
        command = [str((build_dir / f"V{TOP}").resolve())]
        if not stamp.exists():
            _compile(["verilator", "--cc", "--exe", "--build", "-j", str(os.cpu_count() or 1), "-Wno-fatal",
                      "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "--output-split-cfuncs", str(VERILATOR_SPLIT_CFUNCS),
                      "--top-module", TOP, "-Mdir", ".", *sources], env, build_dir, "verilator")
    stamp.write_text(" ".join(command) + "\n")
    return NativeBuild(simulator, command, build_dir)


def parse_log(text: str, core: dict) -> tuple[list[dict], list[list[dict]], list[int], list[int], str | None]:
    """(results, spikes per image and layer, first-pixel cycles, measured cycles, watchdog message or None)
    from a harness log."""
    from .scoreboard import field_value, spike_word

    n_layers = len(core["layers"])
    result_fields = core["ports"]["m_axis_result"]["tdata"]
    spike_fields = [core["ports"][f"m_axis_spikes_l{k}"]["tdata"] for k in range(n_layers)]
    results, spikes, firsts, lasts, measured, hung = [], [], [], [], [], None
    for line in text.splitlines():
        kind, *values = line.split()
        if kind == "P":
            firsts.append(int(values[0]))
            spikes.append([{} for _ in range(n_layers)])
        elif kind == "L":
            lasts.append(int(values[0]))
        elif kind == "R":
            cycle, value = int(values[0]), int(values[1])
            results.append({name: field_value(value, f) for name, f in result_fields.items()})
            measured.append(cycle - lasts[len(results) - 1])
        elif kind == "S":
            k, value = int(values[0]), int(values[1])
            neurons, b = spike_word(value, spike_fields[k])
            layer = spikes[-1][k]
            for neuron in neurons:
                if neuron in layer:
                    raise ValueError(f"image {len(spikes) - 1} layer {k}: neuron {neuron} spiked twice")
                layer[neuron] = b
        elif kind == "T":
            hung = (f"the core gave no result for {values[1]} cycles (cycle {values[0]}, {len(results)} images "
                    f"answered, {len(lasts)} fed): it hangs")
    return results, spikes, firsts, measured, hung


def write_pixels(path: Path, images: np.ndarray) -> None:
    """Images as one hex byte per line, for $readmemh."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(-1)
    table = np.array([f"{v:02x}" for v in range(256)])
    Path(path).write_text("\n".join(table[flat].tolist()) + "\n")


def _run_shard(built: NativeBuild, images, model_dir, run_dir, names, core_json) -> dict:
    from .runner import SimulationError, simulator_env
    from .scoreboard import check_and_report

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    core = json.loads(Path(core_json).read_text())
    log = run_dir / "harness.log"
    log.unlink(missing_ok=True)
    write_pixels(run_dir / "pixels.hex", images)
    plusargs = [f"+images={len(images)}", f"+pixels={(run_dir / 'pixels.hex').resolve()}", f"+log={log.resolve()}",
                f"+watchdog={watchdog_cycles(core)}"]
    with open(run_dir / "sim.log", "w") as f:
        done = subprocess.run(built.command + plusargs, stdout=f, stderr=subprocess.STDOUT, cwd=run_dir,
                              env=os.environ | simulator_env(built.simulator))
    if done.returncode or not log.exists():
        raise SimulationError(f"the {built.simulator} preload run failed (exit {done.returncode}; "
                              f"log: {run_dir / 'sim.log'})")
    results, spikes, firsts, measured, hung = parse_log(log.read_text(), core)
    job = {"model": str(Path(model_dir).resolve()), "out": str((run_dir / "report.json").resolve())}
    report = check_and_report(job, core, images, names, results, spikes, measured,
                              extra={"image_intervals": np.diff(firsts).tolist()})
    if hung:
        report["mismatches"].insert(0, hung)
    return report


def run_preloaded(core_dir: Path, images: np.ndarray, model_dir, work_dir: Path, simulator: str = "verilator",
                  shards: int = 1, names=None, progress: bool = False) -> list[dict]:
    """Build the harness around the core in `core_dir`, run `images` in `shards` parallel processes; return
    each shard's report (in image order)."""
    core = json.loads((Path(core_dir) / "core.json").read_text())
    core_verilog = (Path(core_dir) / "bs4nn_core.v").read_text()
    shards = max(1, min(shards, len(images)))
    bounds = np.linspace(0, len(images), shards + 1).astype(int)
    capacity = int(max(np.diff(bounds)))
    harness_dir = Path(work_dir) / "harness"
    harness_dir.mkdir(parents=True, exist_ok=True)
    (harness_dir / f"{TOP}.v").write_text(harness_verilog(core, core_verilog, capacity))
    built = build_native(harness_dir, Path(core_dir) / "bs4nn_core.v", simulator, Path(work_dir) / "build")
    names = names or [f"image {i}" for i in range(len(images))]
    jobs = [(built, images[a:b], model_dir, Path(work_dir) / f"shard{s}", names[a:b], Path(core_dir) / "core.json")
            for s, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))]
    if shards == 1:
        return [_run_shard(*jobs[0])]
    # spawned, not forked: each shard checks its log with the numba reference, whose thread pool a fork of a
    # process that already ran it cannot use (the child dies)
    with ProcessPoolExecutor(max_workers=shards, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_run_shard, *job) for job in jobs]
        if progress:
            from tqdm import tqdm

            for _ in tqdm(futures, desc=f"co-simulation ({simulator}, {shards} shards)", unit="shard"):
                _.result()
        return [f.result() for f in futures]
