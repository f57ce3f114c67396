"""``spikeforge emulate``: serve a virtual board (the Verilated SoC) on a TCP port or a pty."""

from __future__ import annotations

import dataclasses
import signal
import sys

NAME = "emulate"
HELP = ("serve a virtual board: the SoC under Verilator behind a TCP port or a pseudo-terminal "
        "(prints the URL; Ctrl-C stops it)")


def add_arguments(p):
    which = p.add_mutually_exclusive_group()
    which.add_argument("--preset", metavar="NAME", help="SoC preset (default icebreaker)")
    which.add_argument("--board", metavar="NAME",
                       help="match a real board's configuration (icebreaker, ulx3s-85f or "
                            "its alias ulx3s)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--tcp", type=int, metavar="PORT", default=0,
                       help="TCP port on 127.0.0.1 (default: any free port)")
    where.add_argument("--pty", action="store_true", help="serve a pseudo-terminal instead")
    p.add_argument("--clocks-per-bit", type=int, metavar="N",
                   help="clocks per bit of the SoC's UART and the line model (default: the "
                        "preset's; a smaller N is a faster line, a separate cached build)")
    p.add_argument("--drop", type=float, default=0.0, metavar="RATE",
                   help="odds that a byte on the line is lost (either direction)")
    p.add_argument("--flip", type=float, default=0.0, metavar="RATE",
                   help="odds that a byte on the line gets one bit flipped")
    p.add_argument("--seed", type=int, default=1, help="seed of the line faults")
    p.add_argument("--once", action="store_true", help="exit after the first client session")
    p.add_argument("--fst", metavar="FILE", help="write a wave dump (FST) of a window of cycles")
    p.add_argument("--fst-from", type=int, default=0, metavar="CYCLE",
                   help="first cycle of the wave dump")
    p.add_argument("--fst-cycles", type=int, default=100_000, metavar="N",
                   help="cycles in the wave dump (default 100000)")


def _check(args):
    from spikeforge.cli.common import board_preset
    from spikeforge.presets import preset

    name = args.preset or (args.board and board_preset(args.board)) or "icebreaker"
    p = preset(name)
    n = args.clocks_per_bit
    if n is not None and n != p.clocks_per_bit:
        # The SoC's UART divider is built in: a SoC of that line rate, the line model agrees.
        if n < 4:
            raise ValueError(f"--clocks-per-bit {n} is below the minimum 4 (mid-bit sampling)")
        p = dataclasses.replace(p, baud=round(p.clock_hz / n))
        if p.clocks_per_bit != n:
            raise ValueError(f"--clocks-per-bit {n} gives no baud rate within 2% at "
                             f"{p.clock_hz / 1e6:g} MHz")
    if not 0 <= args.tcp <= 65535:
        raise ValueError(f"--tcp {args.tcp} is out of range [0, 65535]")
    for flag in ("fst_from", "fst_cycles"):
        if getattr(args, flag) < 0:
            raise ValueError(f"--{flag.replace('_', '-')} must be non-negative, "
                             f"not {getattr(args, flag)}")
    return p


def run(args):
    from spikeforge.boards.virtual import VirtualBoard
    from spikeforge.cli.common import device_errors, spinner

    p = _check(args)
    with device_errors():
        with spinner(f"building the {p.name} virtual board (cached after the first time)"):
            vb = VirtualBoard(p, drop=args.drop, flip=args.flip, seed=args.seed, pty=args.pty,
                              port=args.tcp, once=args.once, fst=args.fst,
                              fst_from=args.fst_from, fst_cycles=args.fst_cycles)
    # The reset button (SIGUSR1) and a clean stop (SIGTERM) reach the simulation. Ctrl-C
    # (SIGINT) must stop it even when started in the background by a non-interactive shell,
    # which starts its children with SIGINT ignored (Python then keeps it ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGUSR1, lambda *_: vb.press_reset())
    signal.signal(signal.SIGTERM, lambda *_: vb.proc.terminate())
    print(vb.url, flush=True)
    print(f"virtual board {p.name}: {p.core.n_neurons} neurons x {p.core.n_axons} axons, "
          f"{vb.clocks_per_bit} clocks per bit; Ctrl-C stops it", file=sys.stderr, flush=True)
    try:
        for line in vb.proc.stdout:
            words = line.split()
            if words[:1] == ["session"]:
                stats = dict(zip(words[1::2], words[2::2], strict=False))
                clocks, usec = int(stats["clocks"]), max(int(stats["usec"]), 1)
                print(f"session ended: {stats['rx']} bytes in, {stats['tx']} bytes out, "
                      f"{clocks} clocks in {usec / 1e6:.2f} s "
                      f"({clocks / usec:.2f} M clocks/s), resets {stats['resets']}",
                      file=sys.stderr, flush=True)
            elif words[:1] == ["bye"]:
                print("virtual board stopped", file=sys.stderr, flush=True)
        code = vb.proc.wait()
    except KeyboardInterrupt:
        vb.close()
        print("virtual board stopped", file=sys.stderr)
        return 0
    vb.close()
    if args.fst:
        print(f"wave dump -> {args.fst}", file=sys.stderr)
    return 0 if code == 0 else 1
