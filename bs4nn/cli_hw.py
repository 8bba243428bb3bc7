"""The hardware commands of `bs4nn`: hdl (Verilog of a core), sim (co-simulation), trace (latency).

Registered by `bs4nn.cli.build_parser`; the same error conventions apply (one line, exit code 2 for bad
input). `bs4nn sim` exits with 1 when the hardware disagrees with the reference or the cycle model.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .cli import DATASETS, SPLITS, CLIError, _add_data_dir, _check_outputs, _Help, _positive_int, load_checked, \
    write_json_atomic

from .sw.cycles import MODES
SIMULATORS = ("icarus", "verilator")


def _config_spec(text: str) -> tuple[str, str, str]:
    """'early:max', 'full:60,10' or 'early:max:4,max' -> (mode, lanes, events per cycle)."""
    mode, _, rest = text.partition(":")
    lanes, _, events = rest.partition(":")
    if mode not in MODES:
        raise argparse.ArgumentTypeError(f"configuration {text!r}: give MODE:LANES[:EVENTS] with MODE one of {MODES}")
    return mode, lanes or "max", events or "1"


EVENTS_HELP = ("events per cycle E, one number or one per layer (max = every input): layer k takes one event "
               "from each of E banks of its inputs per word (default 1)")


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), got {text!r}")
    return value


def _select(images, labels, indices, limit):
    import numpy as np

    if indices:
        bad = [i for i in indices if not 0 <= i < len(images)]
        if bad:
            raise CLIError(f"--index {bad[0]} is outside the split's {len(images)} images")
        pick = np.asarray(indices)
    else:
        pick = np.arange(min(limit, len(images)) if limit else len(images))
    return images[pick].reshape(len(pick), -1), labels[pick], pick


def cmd_hdl(args, argv) -> int:
    from .export.artifact import read_artifact
    from .hw.config import CoreConfig
    from .hw.verilog import TOP, write_core

    artifact = read_artifact(args.model)
    config = CoreConfig(artifact.network, lanes=args.lanes, mode=args.mode, events=args.events)
    out = write_core(config, args.out, artifact.model_id, spike_ports=not args.no_spike_ports)
    print(f"core     {TOP} for model {artifact.id32} ({'-'.join(map(str, artifact.network.sizes))}), "
          f"mode {config.mode}, lanes {','.join(map(str, config.lanes))}, events {','.join(map(str, config.events))}")
    print(f"wrote    {out}/{TOP}.v, rom_l*.hex (one per layer and input bank), thresholds_l*.hex, core.json")
    return 0


def _replay_command(args, index: int) -> str:
    parts = ["bs4nn", "sim", "--model", args.model, "--dataset", args.dataset, "--split", args.split,
             "--index", str(index), "--simulator", args.simulator, "--mode", args.mode, "--lanes", args.lanes,
             "--trace", "replay.npz", "--waves"]
    if args.data_dir:
        parts += ["--data-dir", args.data_dir]
    return shlex.join(parts)


def cmd_sim(args, argv) -> int:
    import numpy as np

    from .export.artifact import read_artifact
    from .sim.cosim import cosimulate, write_trace
    from .sim.runner import SimulationError

    _check_outputs(args.trace)
    if args.preload and args.stall:
        raise CLIError("--preload streams images back to back: --stall needs the cocotb testbench (leave out --preload)")
    artifact = read_artifact(args.model)
    data, images, labels = load_checked(artifact.network, args.dataset, args.split, args.data_dir, None,
                                        artifact.dataset_name, "sim")
    images, labels, picked = _select(images, labels, args.index, args.limit)
    work = Path(args.work) if args.work else Path(args.trace).with_suffix("")
    names = [f"{data.name} {args.split} image {int(i)}" for i in picked]
    try:
        result = cosimulate(artifact.path, images, simulator=args.simulator, mode=args.mode, lanes=args.lanes,
                            events=args.events, names=names, stall=args.stall, seed=args.seed, work_dir=work,
                            chunk=args.chunk,
                            progress=sys.stderr.isatty(), waves_on_failure=3 if not args.waves else len(images),
                            preload=args.preload, shards=args.shards)
    except SimulationError as error:
        raise CLIError(str(error)) from None
    trace, table = write_trace(args.trace, result, labels=labels,
                               config={"dataset": data.name, "split": args.split, "simulator": args.simulator,
                                       "indices": picked.tolist()})
    cycles = np.array([o.cycles for o in result.outcomes])
    decisions = np.array([o.decision for o in result.outcomes])
    print(f"core       {artifact.id32}, mode {args.mode}, lanes {','.join(map(str, result.config.lanes))}, "
          f"events per cycle {','.join(map(str, result.config.events))}, {args.simulator}")
    print(f"images     {len(images)} of {data.name} {args.split}; strict accuracy of the hardware "
          f"{100 * (decisions == labels).mean():.2f}%")
    print(f"cycles     mean {cycles.mean():.1f}, p95 {np.percentile(cycles, 95):.0f}, max {cycles.max()} "
          f"(after the last pixel; {len(images[0])} pixels at one per cycle before that)")
    if result.image_intervals and not args.stall:
        interval = float(np.mean(result.image_intervals))
        print(f"throughput {interval:.1f} cycles from one image's first pixel to the next one's "
              f"({len(images[0])} pixel cycles included): {100e6 / interval:,.0f} images/s at 100 MHz")
    agree = int((cycles == result.model_cycles).sum())
    print(f"model      {agree} of {len(images)} images take exactly the cycles the cycle model predicts")
    print(f"trace      {trace}  {table}")
    if result.mismatches or args.stall == 0 and agree != len(images):
        print(f"MISMATCH   {len(result.failed)} image(s) disagree with the reference or the cycle model:",
              file=sys.stderr)
        for line in result.mismatches[:20]:
            print(f"  {line}", file=sys.stderr)
        for i, path in result.waveforms.items():
            print(f"  waveform of {names[i]}: {path}", file=sys.stderr)
        if result.failed:
            print(f"  replay: {_replay_command(args, int(picked[result.failed[0]]))}", file=sys.stderr)
        return 1
    print("bit-exact  every decision, first-spike bin and spike bin equals the reference's")
    return 0


def cmd_trace(args, argv) -> int:
    from .sw import latency

    paths = [Path(p) for p in args.read or []]
    if args.model:
        paths += _run_traces(args)
    if not paths:
        raise CLIError("give traces to read (--read T.npz ...) or a model to run (--model DIR --dataset ...)")
    traces = [latency.read_trace(p) for p in paths]
    report = latency.write_report(traces, args.out, raster_image=args.raster_image)
    print(f"{'configuration':<28} {'images':>6} {'mean':>7} {'p95':>6} {'max':>6} {'words':>7} "
          f"{'syn. updates':>12} {'model =':>8} {'floor':>7} {'/floor':>6} {'pfloor':>7} {'/pfloor':>7}")
    for row in report["summary"]:
        print(f"{row['name']:<28} {row['images']:>6} {row['cycles_mean']:>7.1f} {row['cycles_p95']:>6.0f} "
              f"{row['cycles_max']:>6} {row.get('events_mean', float('nan')):>7.1f} "
              f"{row.get('synaptic_updates_mean', float('nan')):>12.0f} {row.get('model_agrees', '-'):>8} "
              f"{row.get('floor_mean', float('nan')):>7.1f} {row.get('cycles_over_floor', float('nan')):>6.3f} "
              f"{row.get('pipeline_floor_mean', float('nan')):>7.1f} "
              f"{row.get('cycles_over_pipeline_floor', float('nan')):>7.3f}")
    print(f"wrote      {args.out}/: {', '.join(report['files'])}")
    return 0


def _run_traces(args) -> list[Path]:
    """Run each --config (co-simulation, or the cycle model with --model-only) and write its trace."""
    from .export.artifact import read_artifact

    if not args.dataset:
        raise CLIError("--model needs --dataset")
    artifact = read_artifact(args.model)
    data, images, labels = load_checked(artifact.network, args.dataset, args.split, args.data_dir, None,
                                        artifact.dataset_name, "trace")
    images, labels, picked = _select(images, labels, None, args.limit)
    paths = []
    for mode, lanes, events in args.config or [("early", "max", "1"), ("full", "max", "1")]:
        name = f"trace_{mode}_{lanes.replace(',', '-')}" + (f"_e{events.replace(',', '-')}" if events != "1" else "")
        path = Path(args.out) / f"{name}.npz"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.model_only:
            _model_trace(artifact, images, labels, mode, lanes, events, path, data.name, args.split)
        else:
            from .sim.cosim import cosimulate, write_trace

            result = cosimulate(artifact.path, images, simulator=args.simulator, mode=mode, lanes=lanes, events=events,
                                work_dir=path.with_suffix(""), progress=sys.stderr.isatty(), preload=args.preload,
                                shards=args.shards)
            if result.mismatches:
                raise CLIError(f"{mode}:{lanes}: the hardware disagrees with the reference: {result.mismatches[0]}")
            write_trace(path, result, labels=labels, config={"dataset": data.name, "split": args.split,
                                                            "simulator": args.simulator})
        paths.append(path)
    return paths


def _model_trace(artifact, images, labels, mode, lanes, events, path, dataset, split) -> None:
    """A trace from the reference and the cycle model alone (source "model"): the whole test set in seconds."""
    import numpy as np

    from .sim.cosim import Cosim, write_trace
    from .sim.scoreboard import ImageOutcome
    from .hw.config import CoreConfig
    from .sw import reference
    from .sw.cycles import schedule
    from .sw.semantics import encode_pixels

    network = artifact.network
    config = CoreConfig(network, lanes=lanes, mode=mode, events=events)
    ref = reference.run(network, images)
    plan = schedule(network.sizes, config.lanes, encode_pixels(images), ref.spikes, config.events)
    cycles, events = plan.cycles(mode), plan.words(mode)
    outcomes = [ImageOutcome(int(ref.decision[i]), int(ref.first_spike_bin[i]), int(cycles[i]), int(events[i]),
                             [{int(n): int(b) for n, b in enumerate(s[i]) if b < 256} for s in ref.spikes])
                for i in range(len(images))]
    result = Cosim(config, artifact.model_id, outcomes, cycles, events, plan.layer_events(mode), [], [],
                   floor_cycles=plan.floor(mode), pipeline_floor_cycles=plan.pipeline_floor(mode))
    write_trace(path, result, labels=labels, config={"dataset": dataset, "split": split, "source": "model"})


def cmd_board_run(args, argv) -> int:
    import numpy as np

    from .export.artifact import read_artifact
    from .sw.board import BoardError, HostLink, run_images

    try:
        import serial
    except ImportError:
        raise CLIError("pyserial is not installed (pip install pyserial==3.5; `make setup` does)") from None
    _check_outputs(args.json)
    artifact = read_artifact(args.model)
    data, images, labels = load_checked(artifact.network, args.dataset, args.split, args.data_dir, args.limit,
                                        artifact.dataset_name, "board run")
    try:
        port = serial.serial_for_url(args.port, baudrate=args.baud, timeout=0.1)
    except (serial.SerialException, ValueError) as error:
        raise CLIError(f"{args.port}: {error}") from None
    import time

    began = time.perf_counter()
    with port:
        try:
            run = run_images(HostLink(port, empty_reads=max(1, int(args.timeout / 0.1))), artifact.network,
                             artifact.id32, images, lanes=args.lanes, events=args.events,
                             progress=sys.stderr.isatty(),
                             names=[f"{data.name} {args.split} image {i}" for i in range(len(images))])
        except BoardError as error:
            raise CLIError(str(error)) from None
    seconds = time.perf_counter() - began
    decisions = np.array([a.decision for a in run.answers])
    cycles = run.cycles
    report = {"model_id": artifact.model_id, "port": args.port, "baud": args.baud, "dataset": data.name,
              "split": args.split, "images": len(images), "strict": float((decisions == labels).mean()),
              "cycles_mean": float(cycles.mean()), "cycles_p95": float(np.percentile(cycles, 95)),
              "cycles_max": int(cycles.max()), "seconds": seconds, "disagreements": run.disagreements}
    if args.json:
        write_json_atomic(args.json, report)
    print(f"board      model {artifact.id32} on {args.port} at {args.baud} baud")
    print(f"images     {len(images)} of {data.name} {args.split}: strict accuracy {100 * report['strict']:.2f}%")
    print(f"latency    cycles after the last pixel: mean {report['cycles_mean']:.1f}, p95 {report['cycles_p95']:.0f}, "
          f"max {report['cycles_max']}; {len(images) / seconds:.1f} images/s over the link")
    if run.disagreements:
        print(f"DISAGREE   {len(run.disagreements)} answer(s) differ from the reference or the cycle model:",
              file=sys.stderr)
        for line in run.disagreements[:20]:
            print(f"  {line}", file=sys.stderr)
        return 1
    print("agree      every decision and first-spike bin equals the reference's"
          + (" and every cycle count the model's" if args.lanes is not None else ""))
    return 0


def cmd_bitstream(args, argv) -> int:
    from .boards.build import BuildError, build

    try:
        summary = build(args.board, args.model, args.out, lanes=args.lanes, events=args.events, mode=args.mode,
                        baud=args.baud, estimate=not args.no_estimate)
    except BuildError as error:
        raise CLIError(str(error)) from None
    print(f"board      {args.board}: model {summary['model_id'][:8]} {'-'.join(map(str, summary['sizes']))}, "
          f"lanes {','.join(map(str, summary['lanes']))}, events {','.join(map(str, summary['events']))}, "
          f"{summary['mode']} mode, UART {summary['baud']} baud "
          f"(divisor {summary['divisor']} at {summary['clock_hz'] / 1e6:g} MHz)")
    if summary.get("bitstream"):
        print(f"bitstream  {summary['bitstream']}")
    if summary.get("note"):
        print(f"note       {summary['note']}")
    estimate = summary.get("estimate")
    if estimate:
        print(f"estimate   yosys synth_xilinx for {estimate['part']} (open estimate, not Vivado):")
        for key, value in estimate["use"].items():
            percent = estimate["percent"].get(key)
            print(f"           {key:<7} {value:>8g}" + (f"  {percent:5.1f} %" if percent is not None else ""))
        over_capacity = estimate.get("over_capacity")
        if over_capacity:
            print(f"           does NOT fit the {estimate['part']}: " + ", ".join(
                f"{key} {used:g} of {available:g}" for key, (used, available) in over_capacity.items()))
        print(f"           depth   {estimate['logic_levels']} logic levels between registers "
              f"({estimate['lut_levels']} LUT levels; LUT, LUTRAM read, MUXF and CARRY4 each count one)")
        over = estimate["over_aim"]
        print(f"           {sum(row['count'] for row in over)} register signals over {estimate['lut_level_aim']} "
              f"LUT levels, in {len(over)} groups" + (", deepest:" if over else ""))
        for row in over[:8]:
            print(f"             {row['lut_levels']:>2} LUT levels  {row['count']:>4} x {row['registers']}")
    if summary.get("fmax_mhz") is not None:
        print(f"fmax       {summary['fmax_mhz']:.2f} MHz (nextpnr), board clock {summary['clock_hz'] / 1e6:g} MHz")
    path = summary.get("critical_path")
    if path:
        print(f"critical   {path['ns']:.2f} ns ({path['logic_ns']:.2f} logic, {path['routing_ns']:.2f} routing): "
              f"{path['from']} -> {path['to']}")
    print(f"summary    {args.out}/build_summary.json")
    return 0


def cmd_sweep(args, argv) -> int:
    from .boards.build import BuildError
    from .boards.sweep import SweepError, parse_point, sweep
    from .export.artifact import read_artifact

    artifact = read_artifact(args.model)
    data, images, labels = load_checked(artifact.network, args.dataset, args.split, args.data_dir, args.limit,
                                        artifact.dataset_name, "sweep")
    points = [parse_point(text) for text in args.point]
    for point in points:  # every configuration is checked before the first build starts
        try:
            from .hw.config import CoreConfig

            CoreConfig(artifact.network, lanes=point.lanes, mode=args.mode, events=point.events)
        except ValueError as error:
            raise CLIError(f"--point {point.lanes}/{point.events}: {error}") from None
    try:
        rows = sweep(args.model, images, points, args.out, mode=args.mode, progress=sys.stderr.isatty(),
                     resume=args.resume)
    except (BuildError, SweepError) as error:
        raise CLIError(str(error)) from None
    print(f"{'lanes':<10} {'events':<10} {'LUT':>7} {'35T %':>6} {'BRAM36':>6} {'levels':>6} {'mean':>7} "
          f"{'p95':>5} {'floor':>6} {'img/s':>8}")
    for row in rows:
        print(f"{row['lanes']:<10} {row['events']:<10} {row['LUT']:>7} {row['lut_pct_35t']:>6} {row['BRAM36']:>6g} "
              f"{row['logic_levels']:>6} {row['cycles_mean']:>7.1f} {row['cycles_p95']:>5.0f} {row['floor_mean']:>6.1f} "
              f"{row['images_per_s_bound']:>8}")
    print(f"wrote      {args.out}/sweep.csv, sweep.json, sweep.png ({len(images)} {data.name} {args.split} images)")
    return 0


def _add_images(p, required: bool) -> None:
    """--model, --dataset, --split, --limit: the artifact and the images it runs on."""
    p.add_argument("--model", required=required, metavar="DIR", default=None,
                   help="artifact directory" + ("" if required else " to run (with --dataset and --config)"))
    p.add_argument("--dataset", required=required, choices=DATASETS, default=None)
    p.add_argument("--split", choices=SPLITS, default="test")
    p.add_argument("--limit", type=_positive_int, metavar="N", default=None, help="the first N images (default: all)")


def add_commands(sub) -> None:
    p = sub.add_parser(
        "hdl", formatter_class=_Help, help="write the Verilog core of a model artifact",
        description="Generate the event-driven core of an artifact as standalone Verilog (module bs4nn_core, "
                    "AXI4-Stream port names), with its ROM contents as $readmemh files and core.json (ports, "
                    "tdata field layouts, configuration).",
        epilog="Example:\n  bs4nn hdl --model runs/digits/model --out build/digits-core --lanes max --mode early")
    p.add_argument("--model", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--out", required=True, metavar="DIR", help="output directory (replaced atomically)")
    p.add_argument("--lanes", default="max", metavar="P|P0,P1,...",
                   help="neurons updated per cycle, one number or one per layer; max = a whole layer (default)")
    p.add_argument("--events", default="1", metavar="E|E0,E1,...", help=EVENTS_HELP)
    p.add_argument("--mode", choices=MODES, default="full",
                   help="full: every neuron's bin up to t_max; early: stop at the first output spike (default: full)")
    p.add_argument("--no-spike-ports", action="store_true", help="leave out the per-layer spike streams")
    p.set_defaults(func=cmd_hdl)

    p = sub.add_parser(
        "sim", formatter_class=_Help, help="co-simulate the core on dataset images, bit for bit",
        description="Build the core of an artifact, run images through it under Icarus or Verilator (cocotb) and "
                    "check every decision, first-spike bin, spike bin and cycle count against the reference and "
                    "the cycle model. Writes the trace (dump format with cycles) and a per-image CSV beside it. "
                    "Exit code 1 on any mismatch, with the failing images' waveforms and a replay command.",
        epilog="Example:\n  bs4nn sim --model runs/digits/model --dataset digits --limit 20 --simulator icarus \\\n"
               "      --mode early --trace runs/digits/hw_trace.npz")
    _add_images(p, required=True)
    p.add_argument("--index", type=int, action="append", metavar="I", default=None,
                   help="only image I of the split (repeatable; replays one image)")
    p.add_argument("--simulator", choices=SIMULATORS, default="icarus")
    p.add_argument("--mode", choices=MODES, default="full")
    p.add_argument("--lanes", default="max", metavar="P|P0,P1,...")
    p.add_argument("--events", default="1", metavar="E|E0,E1,...", help=EVENTS_HELP)
    p.add_argument("--trace", required=True, metavar="OUT.npz", help="trace file (a CSV is written beside it)")
    p.add_argument("--stall", type=_probability, default=0.0,
                   help="probability of an idle/back-pressure cycle on every port (cycles are then not compared)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stalls")
    p.add_argument("--chunk", type=_positive_int, default=100, help="images per simulator run (default: 100)")
    p.add_argument("--work", metavar="DIR", default=None, help="build and run directory (default: beside the trace)")
    p.add_argument("--waves", action="store_true", help="keep the waveform of every failing image")
    _add_preload(p, "no --stall")
    _add_data_dir(p)
    p.set_defaults(func=cmd_sim)

    board = sub.add_parser("board", formatter_class=_Help, help="talk to a board running the core (UART)",
                           description="Commands for a board that runs the core behind the UART link "
                                       "(docs/board-protocol.md).")
    board_sub = board.add_subparsers(dest="board_command", metavar="ACTION", required=True,
                                     parser_class=board.__class__)
    p = board_sub.add_parser(
        "run", formatter_class=_Help, help="send test images to the board and compare with the reference",
        description="Read the board's model ID (refusing another model), send images, compare every decision "
                    "and first-spike bin with the reference (and, with --lanes, every cycle count with the cycle "
                    "model), print accuracy and latency. Exit code 1 on any disagreement.",
        epilog="Example:\n  bs4nn board run --port /dev/ttyUSB1 --baud 115200 --model runs/mnist/model \\\n"
               "      --dataset mnist --limit 200 --lanes max")
    p.add_argument("--port", required=True, help="serial port or pyserial URL (/dev/ttyUSB1, COM3, socket://host:port)")
    p.add_argument("--baud", type=_positive_int, default=115200, help="baud rate (default 115200)")
    _add_images(p, required=True)
    p.add_argument("--lanes", default=None, metavar="P|P0,P1,...",
                   help="the board core's lanes: also compare cycles and events with the cycle model")
    p.add_argument("--events", default="1", metavar="E|E0,E1,...", help="the board core's events per cycle")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for an answer (default 5)")
    p.add_argument("--json", metavar="OUT", default=None, help="write the report as JSON here")
    _add_data_dir(p)
    p.set_defaults(func=cmd_board_run)

    from .boards.build import BOARDS

    p = sub.add_parser(
        "bitstream", formatter_class=_Help, help="build a board: the core behind the UART",
        description="Build the board top (the core behind the UART link, LEDs showing the last class). Arty A7: "
                    "the .bit with Vivado on PATH, else the complete Vivado build tree plus an open yosys estimate. "
                    "ULX3S (ECP5) and iCEBreaker (iCE40): bitstreams with the YoWASP tools from PyPI.",
        epilog="Example:\n  bs4nn bitstream --board arty_a7 --model runs/mnist/model --out build/arty_a7")
    p.add_argument("--board", required=True, choices=sorted(BOARDS))
    p.add_argument("--model", required=True, metavar="DIR", help="artifact directory")
    p.add_argument("--out", required=True, metavar="DIR", help="build directory")
    p.add_argument("--lanes", default="max", metavar="P|P0,P1,...")
    p.add_argument("--events", default="1", metavar="E|E0,E1,...", help=EVENTS_HELP)
    p.add_argument("--mode", choices=MODES, default="early")
    p.add_argument("--baud", type=_positive_int, default=115200)
    p.add_argument("--no-estimate", action="store_true", help="Arty without Vivado: skip the yosys estimate")
    p.set_defaults(func=cmd_bitstream)

    p = sub.add_parser(
        "sweep", formatter_class=_Help, help="design-space sweep: lanes and events per cycle against area and cycles",
        description="For each --point LANES/EVENTS: the Arty A7 board build's open yosys estimate (LUT, FF, BRAM36, "
                    "logic levels; against the A7-35T and A7-100T) and the cycle model's cycles per image on the "
                    "images (exact, as co-simulation checks), as sweep.csv / sweep.json and sweep.png.",
        epilog="Example:\n  bs4nn sweep --model models/mnist-784-600-10 --dataset mnist --point max/1 \\\n"
               "      --point max/4,max --point 300,10/2,16 --out runs/sweep")
    _add_images(p, required=True)
    p.add_argument("--point", action="append", required=True, metavar="LANES/EVENTS",
                   help="a configuration: --lanes and --events values joined by '/' (repeatable), e.g. max/4,max")
    p.add_argument("--mode", choices=MODES, default="early")
    p.add_argument("--out", required=True, metavar="DIR", help="sweep directory (one build directory per point)")
    p.add_argument("--resume", action="store_true",
                   help="keep the rows DIR/sweep.json already holds for these points (same model, images and mode) "
                        "and build only the others: to finish an interrupted sweep or add points to one")
    _add_data_dir(p)
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser(
        "trace", formatter_class=_Help, help="latency traces: cycles per image across configurations",
        description="Read hardware traces (from `bs4nn sim`) or run them for several configurations, and report "
                    "mean / p95 / max cycles, events and synaptic updates per image, and the agreement with the "
                    "cycle model, as summary.json / summary.csv and PNG plots (latency histogram, cycles against "
                    "events, hardware against the model, one image's spike raster per layer).",
        epilog="Examples:\n  bs4nn trace --read runs/digits/hw_trace.npz --out runs/digits/traces\n"
               "  bs4nn trace --model runs/digits/model --dataset digits --limit 50 \\\n"
               "      --config early:max --config early:1 --config early:max:4,max --config full:max --out runs/digits/traces\n"
               "  bs4nn trace --model M --dataset mnist --model-only --config early:max --out traces  # all images, no HDL")
    p.add_argument("--read", nargs="+", metavar="T.npz", help="traces to read")
    _add_images(p, required=False)
    p.add_argument("--config", type=_config_spec, action="append", metavar="MODE:LANES[:EVENTS]",
                   help="a configuration to run (repeatable; default early:max and full:max; EVENTS as --events "
                        "of `bs4nn sim`, e.g. early:max:4,max)")
    p.add_argument("--simulator", choices=SIMULATORS, default="icarus")
    p.add_argument("--model-only", action="store_true",
                   help="cycles from the cycle model instead of co-simulation (exact, as `bs4nn sim` checks)")
    _add_preload(p, "ignored with --model-only")
    p.add_argument("--raster-image", type=int, default=0, metavar="I", help="image for the spike raster (default 0)")
    p.add_argument("--out", required=True, metavar="DIR", help="report directory")
    _add_data_dir(p)
    p.set_defaults(func=cmd_trace)


def _add_preload(p, note: str) -> None:
    p.add_argument("--preload", action="store_true",
                   help="images preloaded into a Verilog harness that logs results and spikes itself and runs without "
                        f"cocotb (the fast path for whole test sets: 10,000 MNIST images in minutes; {note})")
    p.add_argument("--shards", type=_positive_int, default=1, metavar="N",
                   help="with --preload: parallel simulator processes, each on a slice of the images (default: 1)")
