"""``spikeforge flash``: program a board with openFPGALoader."""

from __future__ import annotations

NAME = "flash"
HELP = "program a board's bitstream (default: its last build) with openFPGALoader"


def add_arguments(p):
    p.add_argument("--board", required=True, help="board name (see `spikeforge boards`)")
    p.add_argument("bitstream", nargs="?", help="bitstream file (default build/BOARD/top.*)")
    p.add_argument("--persist", action="store_true",
                   help="write the SPI flash so the design survives a power cycle (ECP5; "
                        "iCE40 boards are always written to flash)")


def run(args):
    from spikeforge.boards.flash import FlashError, ProgrammerMissing, flash
    from spikeforge.cli import EXIT_DEVICE, EXIT_ENV, CliError

    try:
        output = flash(args.board, args.bitstream, persist=args.persist)
    except ProgrammerMissing as e:
        raise CliError(str(e), EXIT_ENV) from None
    except FlashError as e:
        raise CliError(str(e), EXIT_DEVICE) from None
    if args.verbose and output:
        print(output)
    print(f"programmed {args.board}")
    return 0
