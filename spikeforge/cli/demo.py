"""``spikeforge demo``: the main job.

With no ``--port`` it starts a private virtual board (the SoC under Verilator, built once and
cached), pushes the example network, runs it, runs the bit-exact golden model on the same image,
compares the two traces exactly (every spike) and the final state of every memory region
(learned weights, traces, neuron state: the board's CRC of each region against the golden
model's image), prints the verdict and writes the plots. The float reference model's summary
is printed beside it. Exit code 0 only when the board and the golden model agree exactly.
``--golden-only`` skips the board.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

NAME = "demo"
HELP = ("the main job: run the example network on a (private virtual) board and on the golden "
        "model, compare exactly, print the verdict and write plots (exit 0 only if identical)")


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    p.add_argument("--network", default="stdp_demo",
                   help="example name or network file (default: stdp_demo)")
    p.add_argument("--steps", type=int, default=2000, help="timesteps to run (default 2000)")
    p.add_argument("--out", default=os.path.join("build", "demo"),
                   help="folder for the plots and traces (default build/demo)")
    p.add_argument("--golden-only", action="store_true",
                   help="no board: the golden and float models only")
    p.add_argument("--no-check-state", action="store_true",
                   help="do not compare the board's final state (weights, traces, neuron "
                        "state) with the golden model's by CRC")
    add_board_arguments(p)


def _summary(path, net, compiled, steps, trace, ref, golden_chip):
    chip = compiled.chip
    core = chip.cores[0]
    n_neurons = sum(len(v) for v in compiled.neurons.values())
    n_syn = sum(int(np.count_nonzero((c.weight != 0) | (c.mask != 0))) for c in chip.cores)
    n_axons = sum(len(v) for v in compiled.axons.values())
    seconds = steps * net.dt / 1000.0
    rate = trace.spike_count() / max(n_neurons, 1) / seconds
    ref_rate = ref.spike_count() / max(n_neurons, 1) / seconds
    print(f"network      {os.path.basename(path)}: {n_neurons} LIF neurons, "
          f"{n_axons} axons, {n_syn} synapses")
    print(f"core         {compiled.n_cores} x {core.config.n_neurons} neurons x "
          f"{core.config.n_axons} axons, {core.config.weight_bits}-bit weights, weight_exp "
          f"{core.weight_exp}, learning {'on' if core.learn else 'off'}")
    worst = max(compiled.report.rows, key=lambda r: r.rel_error, default=None)
    if worst:
        print(f"quantisation worst relative error {worst.rel_error:.2%} ({worst.name}, "
              f"{worst.where}); weight LSB {compiled.scales.q_w:.4g} mV")
    for note in compiled.report.notes:
        print(f"note         {note}")
    print(f"golden       {trace.spike_count()} spikes in {steps} steps "
          f"({seconds:g} s), {rate:.2f} Hz per neuron")
    print(f"float model  {ref.spike_count()} spikes, {ref_rate:.2f} Hz per neuron "
          f"(rate ratio golden/float {rate / ref_rate if ref_rate else float('nan'):.3f})")
    if core.learn:
        plastic = core.mask != 0
        w0, w1 = core.weight[plastic], golden_chip.cores[0].image.weight[plastic]
        print(f"learning     {int(plastic.sum())} plastic synapses, mean weight "
              f"{w0.mean():.2f} -> {w1.mean():.2f} LSB, {int((w0 != w1).sum())} changed")


def _golden(compiled, steps, probes=()):
    from spikeforge.cli.common import progress
    from spikeforge.sim.golden import GoldenChip

    with progress(steps, "golden model", sys.stderr.isatty()) as update:
        golden = GoldenChip(compiled.chip)
        trace = golden.run(steps, compiled.inputs, probes, progress=update)
    return golden, trace


def _demo_probes(compiled, n_probes):
    """Membrane and current of the first neuron of the first LIF population (if probes)."""
    if not n_probes or not compiled.placement:
        return []
    core, neuron = (int(x) for x in next(iter(compiled.placement.values()))[0])
    return [(core, neuron, "v"), (core, neuron, "i")]


def run(args):
    from spikeforge import examples
    from spikeforge.cli.common import (
        board_preset,
        board_session,
        link_summary,
        load_net,
        progress,
        spinner,
    )
    from spikeforge.host import session
    from spikeforge.host.plot import comparison_png, raster_png
    from spikeforge.sim.compare import compare_traces
    from spikeforge.sim.reference import simulate_reference

    if args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, not {args.steps}")
    path = args.network if os.path.exists(args.network) else examples.path(args.network)
    net = load_net(path)
    os.makedirs(args.out, exist_ok=True)
    name = os.path.basename(path)

    if args.golden_only:
        _, compiled = session.fit_preset(net, args.board and board_preset(args.board))
        golden, gtrace = _golden(compiled, args.steps)
        ref = simulate_reference(compiled.float_chip, args.steps, compiled.inputs)
        _summary(path, net, compiled, args.steps, gtrace, ref, golden)
        gtrace.save(os.path.join(args.out, "golden_trace.npz"))
        png = raster_png(gtrace, os.path.join(args.out, "raster.png"), dt=net.dt,
                         groups=_groups(compiled),
                         title=f"{name}: golden model, {args.steps} steps")
        print(f"raster       {png}")
        return 0

    t_start = time.monotonic()
    with board_session(args, net) as s:
        started = time.monotonic() - t_start
        compiled = session.compile_for(s.board, net)
        where = (f"private virtual board ({s.virtual.preset.name})" if s.virtual is not None
                 else s.url)
        t0 = time.monotonic()
        with spinner(f"pushing {name} to {where}"):
            nbytes, written = session.push(s.board, compiled)
        push_s = time.monotonic() - t0
        probes = _demo_probes(compiled, s.board.info.get("n_probes", 0))
        with progress(args.steps, "board", sys.stderr.isatty()) as update:
            btrace = session.run(s.board, compiled, args.steps, probes=probes,
                                 progress=update, push_if_needed=False)
        golden, gtrace = _golden(compiled, args.steps, probes)
        differ = None
        if not args.no_check_state:
            final = session.final_image(compiled, [c.image for c in golden.cores])
            differ = session.differing_regions(s.board, final)
        link = link_summary(s.board)
    ref = simulate_reference(compiled.float_chip, args.steps, compiled.inputs)
    result = compare_traces(gtrace, btrace)

    _summary(path, net, compiled, args.steps, gtrace, ref, golden)
    if s.virtual is not None:
        kind = ("cached build reused (Verilog conversion and hash only)"
                if s.virtual.build_cached else "cold Verilator build")
        print(f"board        {where}: {kind} {s.virtual.build_seconds:.1f} s, started in "
              f"{started:.1f} s")
    print(f"board        push {nbytes} bytes ({written} written, the rest held) in "
          f"{push_s:.1f} s, {args.steps} steps in "
          f"{btrace.meta['seconds']:.1f} s ({args.steps / btrace.meta['seconds']:.0f} steps/s)")
    print(f"board        {btrace.spike_count()} spikes; {link}")
    gtrace.save(os.path.join(args.out, "golden_trace.npz"))
    btrace.save(os.path.join(args.out, "board_trace.npz"))
    raster = raster_png(btrace, os.path.join(args.out, "raster.png"), dt=net.dt,
                        groups=_groups(compiled),
                        title=f"{name}: board, {args.steps} steps")
    verdict = "identical" if result.identical else str(result.first)
    cmp_png = comparison_png(gtrace, btrace, os.path.join(args.out, "compare.png"),
                             labels=("golden", "board"), dt=net.dt, title=verdict)
    print(f"compare      golden vs board: {result}".rstrip())
    if differ is not None:
        print("final state  " + ("every region (weights, traces, neuron state, registers) "
                                 "has the golden model's CRC" if not differ else
                                 "differs from the golden model in " +
                                 ", ".join(f"core {c} {r}" for c, r in differ)))
    print(f"plots        {raster}, {cmp_png}")
    ok = result.identical and not differ
    print("VERDICT      " + ("IDENTICAL: the board and the golden model agree bit for bit"
                             if ok else "DIFFERENT: the board and the golden model disagree"))
    return 0 if ok else 1


def _groups(compiled):
    return [(label, int(c), rows[rows[:, 0] == c, 1])
            for label, rows in compiled.placement.items() for c in np.unique(rows[:, 0])]
