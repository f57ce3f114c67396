"""``spikeforge build``: a board's bitstream and its resource report."""

from __future__ import annotations

NAME = "build"
HELP = "build a board's bitstream with YoWASP (Yosys, nextpnr) and print its resource report"


def add_arguments(p):
    p.add_argument("--board", required=True, help="board name (see `spikeforge boards`)")
    p.add_argument("--out", help="output folder (default build/BOARD/); the report is "
                                 "OUT/report.json")
    p.add_argument("--force", action="store_true", help="rebuild even if up to date")
    p.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args):
    import json

    from spikeforge.boards import board
    from spikeforge.boards.build import BuildError, ToolMissing, build_board, format_report
    from spikeforge.cli import EXIT_ENV, CliError

    board(args.board)         # an unknown board is a one-line usage error
    try:
        report = build_board(args.board, args.out, force=args.force)
    except ToolMissing as e:
        raise CliError(str(e), EXIT_ENV) from None
    except BuildError as e:
        raise CliError(str(e)) from None
    except RuntimeError as e:          # amaranth-boards missing
        raise CliError(str(e), EXIT_ENV) from None
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0
