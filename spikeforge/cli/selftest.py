"""``spikeforge selftest``: bring-up checks of a board (link, memories, clock, LEDs)."""

from __future__ import annotations

NAME = "selftest"
HELP = ("bring-up checks of a board: link loopback, write/read of every memory, the clock "
        "against the host's (default: a private virtual board)")


def add_arguments(p):
    from spikeforge.cli.common import add_board_arguments

    add_board_arguments(p, faults=False)
    p.add_argument("--steps", type=int, default=40,
                   help="steps of the clock measurement (10 ms each on a real board)")
    p.add_argument("--no-memory", action="store_true", help="skip the memory write/read test")
    p.add_argument("--seed", type=int, default=1, help="seed of the memory patterns")


def run(args):
    from spikeforge.boards.selftest import selftest
    from spikeforge.cli import EXIT_DEVICE, CliError
    from spikeforge.cli.common import board_session

    if args.steps < 1:
        raise ValueError(f"--steps must be at least 1, not {args.steps}")
    with board_session(args) as s:
        where = "private virtual board" if s.virtual is not None else s.url
        print(f"selftest of {where}")
        checks = selftest(s.board, virtual=s.virtual is not None, seed=args.seed,
                          steps=args.steps, memory=not args.no_memory)
    failed = [c for c in checks if c.ok is False]
    for c in checks:
        mark = "info" if c.ok is None else ("ok" if c.ok else "FAIL")
        print(f"  {mark:<4}  {c.name:<28} {c.detail}")
    if failed:
        raise CliError(f"{len(failed)} check(s) failed: {', '.join(c.name for c in failed)}",
                       EXIT_DEVICE)
    print("selftest passed")
    return 0
