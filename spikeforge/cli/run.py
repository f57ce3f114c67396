"""``spikeforge run``: run a network on a board (push it first if needed) into a trace file."""

from __future__ import annotations

import os
import sys

NAME = "run"
HELP = ("run a network on a board (pushing it first unless the board holds it unchanged) and "
        "write its spikes to a trace file")


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    p.add_argument("network", help="network file (.json)")
    p.add_argument("--steps", type=int, required=True, help="number of timesteps")
    p.add_argument("--input", metavar="FILE",
                   help="spike times for the network's spike sources: JSON "
                        '{"LABEL": [[neuron, time_ms], ...]} (replaces the file\'s own)')
    p.add_argument("--out", required=True, help="trace file to write (.npz)")
    p.add_argument("--probe", action="append", default=[], metavar="POP:INDEX:VAR",
                   help="record a state variable (v, i, ref, y) of one neuron every step "
                        "(through the board's probes)")
    add_board_arguments(p)


def run(args):
    from spikeforge.cli import EXIT_USAGE, CliError
    from spikeforge.cli.common import board_session, link_summary, load_net, progress, spinner
    from spikeforge.cli.simulate import parse_probe
    from spikeforge.host import session

    if args.steps < 1:
        raise ValueError(f"--steps must be a positive integer, not {args.steps}")
    net = load_net(args.network)
    if args.input:
        if not os.path.exists(args.input):
            raise CliError(f"input file {args.input} does not exist")
        net = session.load_inputs(net, args.input)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise CliError(f"folder {out_dir} of --out does not exist")
    with board_session(args, net) as s:
        compiled = session.compile_for(s.board, net)
        if args.probe and not s.board.info.get("n_probes"):
            raise CliError(f"{s.url} has no probes; run without --probe or use 'spikeforge "
                           f"simulate --probe'", EXIT_USAGE)
        probes = [parse_probe(p, compiled) for p in args.probe]
        if not session.on_board(s.board, compiled):
            with spinner(f"pushing to {s.url}"):
                session.push(s.board, compiled)
        print(f"running {args.steps} steps on {s.url}", file=sys.stderr, flush=True)
        with progress(args.steps, "running", sys.stderr.isatty()) as update:
            trace = session.run(s.board, compiled, args.steps, probes=probes,
                                progress=update)
        trace.save(args.out)
        m = trace.meta
        print(f"{trace.spike_count()} spikes in {args.steps} steps from {s.url} in "
              f"{m['seconds']:.2f} s ({args.steps / max(m['seconds'], 1e-9):.0f} steps/s) "
              f"-> {args.out}")
        print(link_summary(s.board))
    return 0
