"""``spikeforge simulate``: run a network through the golden model and write a trace."""

from __future__ import annotations

import sys

NAME = "simulate"
HELP = "run a network file through the bit-exact golden model and write a trace"


def add_arguments(p):
    p.add_argument("network", help="network file (.json)")
    p.add_argument("--steps", type=int, required=True, help="number of timesteps")
    p.add_argument("--out", required=True, help="trace file to write (.npz)")
    p.add_argument("--probe", action="append", default=[], metavar="POP:INDEX:VAR",
                   help="record a state variable (v, i, ref, y) of one neuron every step")
    p.add_argument("--float", action="store_true", dest="use_float",
                   help="run the float reference model instead of the golden model")


def parse_probe(text, compiled):
    try:
        pop, index, var = text.split(":")
        core, neuron = (int(x) for x in compiled.placement[pop][int(index)])
    except (ValueError, KeyError, IndexError):
        names = ", ".join(compiled.neurons)
        raise ValueError(f"probe {text!r} must be POPULATION:INDEX:VAR naming a population of "
                         f"the network ({names}) and an index in it") from None
    return core, neuron, var


def run(args):
    from spikeforge.cli.common import load_compiled, progress

    if args.steps < 0:
        raise ValueError(f"--steps must be non-negative, not {args.steps}")
    _, compiled = load_compiled(args.network)
    probes = [parse_probe(p, compiled) for p in args.probe]
    with progress(args.steps, "simulating", sys.stderr.isatty()) as update:
        if args.use_float:
            from spikeforge.sim.reference import simulate_reference
            trace = simulate_reference(compiled.float_chip, args.steps, compiled.inputs, probes)
        else:
            from spikeforge.sim.golden import simulate
            trace = simulate(compiled.chip, args.steps, compiled.inputs, probes, progress=update)
    trace.save(args.out)
    print(f"{trace.spike_count()} spikes in {args.steps} steps -> {args.out}")
    return 0
