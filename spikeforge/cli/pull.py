"""``spikeforge pull``: read the weights back (after learning) into a network file."""

from __future__ import annotations

import os
import sys

NAME = "pull"
HELP = ("read a network's weights back from the board (after learning) and write them as a "
        "network file in user units, ready to push again")


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    p.add_argument("network", help="the network file the board was pushed with (.json)")
    p.add_argument("--out", required=True, help="network file to write (.json)")
    p.add_argument("--steps", type=int, default=0,
                   help="private virtual board only: push and run this many steps first")
    add_board_arguments(p)


def run(args):
    from spikeforge.cli import CliError
    from spikeforge.cli.common import board_session, link_summary, load_net, progress, spinner
    from spikeforge.host import readback, session
    from spikeforge.host.netfile import save_network

    if args.steps < 0:
        raise ValueError(f"--steps must be non-negative, not {args.steps}")
    if args.steps and args.port:
        raise CliError("--steps runs a private virtual board first; with --port, use "
                       "'spikeforge run' before 'pull'")
    net = load_net(args.network)
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise CliError(f"folder {out_dir} of --out does not exist")
    with board_session(args, net) as s:
        compiled = session.compile_for(s.board, net)
        if s.virtual is not None:
            with spinner("pushing to the private virtual board"):
                session.push(s.board, compiled)
            if args.steps:
                with progress(args.steps, "running", sys.stderr.isatty()) as update:
                    session.run(s.board, compiled, args.steps, progress=update,
                                push_if_needed=False)
        with spinner(f"reading back from {s.url}"):
            image = session.pull_image(s.board, compiled)
        learned = readback.network_with_weights(compiled, image)
        save_network(learned, args.out)
        for label, (n, changed, m0, m1) in readback.weight_changes(compiled, image).items():
            print(f"{label:12} {n} synapses, {changed} changed, mean weight {m0:.4g} -> "
                  f"{m1:.4g} mV")
        print(f"learned network -> {args.out}")
        print(link_summary(s.board))
    return 0
