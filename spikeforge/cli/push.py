"""``spikeforge push``: compile a network for a board, check the fit, upload and verify."""

from __future__ import annotations

import os
import time

NAME = "push"
HELP = "compile a network for the board, check that it fits, upload it and verify it by CRC"


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    p.add_argument("network", help="network file (.json)")
    p.add_argument("--no-verify", action="store_true", help="skip the CRC check of each region")
    add_board_arguments(p)


def run(args):
    from spikeforge.cli.common import board_session, link_summary, load_net, spinner
    from spikeforge.host import session

    net = load_net(args.network)
    with board_session(args, net) as s:
        compiled = session.compile_for(s.board, net)
        t0 = time.monotonic()
        with spinner(f"uploading to {s.url}"):
            nbytes, written = session.push(s.board, compiled, verify=not args.no_verify)
        seconds = time.monotonic() - t0
        where = "private virtual board" if s.virtual is not None else s.url
        print(f"pushed {os.path.basename(args.network)} to {where}: {nbytes} bytes "
              f"({written} written, the rest already on the board) in {seconds:.2f} s, "
              f"{'not verified' if args.no_verify else 'verified'}")
        print(link_summary(s.board))
    return 0
