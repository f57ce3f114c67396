"""``spikeforge compare``: exact comparison of two traces."""

from __future__ import annotations

NAME = "compare"
HELP = ("compare two trace files exactly: identical, or the first divergent step, neuron and "
        "variable with both values (exit code 0 only when identical)")


def add_arguments(p):
    p.add_argument("a", help="first trace (.npz)")
    p.add_argument("b", help="second trace (.npz)")
    p.add_argument("--plot", metavar="PNG", help="write rasters and probed values side by side")


def run(args):
    from spikeforge.sim.compare import compare_traces
    from spikeforge.sim.trace import Trace

    a, b = Trace.load(args.a), Trace.load(args.b)
    result = compare_traces(a, b)
    print(result)
    if args.plot:
        from spikeforge.host.plot import comparison_png
        comparison_png(a, b, args.plot, labels=(args.a, args.b),
                       title="identical" if result.identical else str(result.first))
        print(f"plot -> {args.plot}")
    return 0 if result.identical else 1
