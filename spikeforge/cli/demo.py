"""``spikeforge demo``: the main job.

At this stage: an example network through the golden model and the float reference model, a
summary, and a spike raster. (With the virtual board, the demo will run the network on it and
compare with the golden model.)
"""

from __future__ import annotations

import os
import sys

import numpy as np

NAME = "demo"
HELP = "run the example network through the golden model; print a summary, write a raster"


def add_arguments(p):
    p.add_argument("--network", default="stdp_demo",
                   help="example name or network file (default: stdp_demo)")
    p.add_argument("--steps", type=int, default=2000, help="timesteps to run (default 2000)")
    p.add_argument("--out", default=os.path.join("build", "demo"),
                   help="folder for the raster and trace (default build/demo)")


def run(args):
    from spikeforge import examples
    from spikeforge.cli.common import load_compiled, progress
    from spikeforge.host.plot import raster_png
    from spikeforge.sim.golden import GoldenChip
    from spikeforge.sim.reference import simulate_reference

    path = args.network if os.path.exists(args.network) else examples.path(args.network)
    net, compiled = load_compiled(path)
    chip = compiled.chip
    core = chip.cores[0]
    n_neurons = sum(len(v) for v in compiled.neurons.values())
    n_syn = int(np.count_nonzero((core.weight != 0) | (core.mask != 0)))
    with progress(args.steps, "golden model", sys.stderr.isatty()) as update:
        golden = GoldenChip(chip)
        trace = golden.run(args.steps, compiled.inputs, progress=update)
    ref = simulate_reference(compiled.float_chip, args.steps, compiled.inputs)
    seconds = args.steps * net.dt / 1000.0
    rate = trace.spike_count() / max(n_neurons, 1) / seconds
    ref_rate = ref.spike_count() / max(n_neurons, 1) / seconds

    os.makedirs(args.out, exist_ok=True)
    trace.save(os.path.join(args.out, "golden_trace.npz"))
    groups = [(label, int(c), rows[rows[:, 0] == c, 1])
              for label, rows in compiled.placement.items() for c in np.unique(rows[:, 0])]
    png = raster_png(trace, os.path.join(args.out, "raster.png"), dt=net.dt, groups=groups,
                     title=f"{os.path.basename(path)}: golden model, {args.steps} steps")

    n_axons = sum(len(v) for v in compiled.axons.values())
    print(f"network      {os.path.basename(path)}: {n_neurons} LIF neurons, "
          f"{n_axons} axons, {n_syn} synapses")
    print(f"core         {core.config.n_neurons} neurons x {core.config.n_axons} axons, "
          f"{core.config.weight_bits}-bit weights, weight_exp {core.weight_exp}, "
          f"learning {'on' if core.learn else 'off'}")
    worst = max(compiled.report.rows, key=lambda r: r.rel_error, default=None)
    if worst:
        print(f"quantisation worst relative error {worst.rel_error:.2%} ({worst.name}, "
              f"{worst.where}); weight LSB {compiled.scales.q_w:.4g} mV")
    for note in compiled.report.notes:
        print(f"note         {note}")
    print(f"golden       {trace.spike_count()} spikes in {args.steps} steps "
          f"({seconds:g} s), {rate:.2f} Hz per neuron")
    print(f"float model  {ref.spike_count()} spikes, {ref_rate:.2f} Hz per neuron "
          f"(rate ratio golden/float {rate / ref_rate if ref_rate else float('nan'):.3f})")
    if core.learn:
        plastic = core.mask != 0
        w0, w1 = core.weight[plastic], golden.cores[0].image.weight[plastic]
        print(f"learning     {int(plastic.sum())} plastic synapses, mean weight "
              f"{w0.mean():.2f} -> {w1.mean():.2f} LSB, {int((w0 != w1).sum())} changed")
    print(f"raster       {png}")
    return 0
