"""The ``spikeforge`` command line.

Each subcommand lives in its own module of this package and exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Errors are mapped to exit codes here, in one
place: a person sees one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from spikeforge import __version__

__all__ = ["main", "CliError", "SUBCOMMANDS"]

# Subcommand modules, in the order ``--help`` lists them.
SUBCOMMANDS = ["demo", "simulate", "compare", "emulate", "push", "run", "pull", "info",
               "boards", "build", "flash", "selftest"]

EXIT_USAGE = 2      # bad input: a file, a value, a network that does not fit
EXIT_DEVICE = 1     # a board or link failure
EXIT_ENV = 3        # the environment: a missing tool
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """An error a person can act on; ``exit_code`` says which kind."""

    def __init__(self, message, exit_code=EXIT_USAGE):
        super().__init__(message)
        self.exit_code = exit_code


def build_parser():
    parser = argparse.ArgumentParser(
        prog="spikeforge",
        description="Open neuromorphic toolchain: LIF cores with STDP, a bit-exact golden model, "
                    "FPGA bitstreams and a virtual board.")
    parser.add_argument("--version", action="version", version=f"spikeforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"spikeforge.cli.{name}")
        p = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args._run(args) or 0)
    except CliError as e:
        print(f"spikeforge {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (ValueError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        # Boundary errors raised by the library name the value and the rule already.
        message = e.strerror + f": {e.filename}" if isinstance(e, OSError) and e.filename else e
        print(f"spikeforge {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:        # output piped into e.g. `head`, which closed early
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(f"spikeforge {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
