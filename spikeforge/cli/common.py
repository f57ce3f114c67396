"""Pieces shared by subcommands: loading a network, progress display, opening a board."""

from __future__ import annotations

import contextlib
import os
import sys
import time

__all__ = ["load_compiled", "load_net", "progress", "spinner", "add_board_arguments",
           "board_preset", "board_session", "device_errors", "link_summary"]


def board_preset(name):
    """``--board NAME``: a SoC preset's name, or a board's (or one of its aliases) for the preset
    that board is built with, so ``--board ulx3s`` means what it means to ``spikeforge build``."""
    from spikeforge.boards import BOARDS, board
    from spikeforge.presets import PRESETS

    if name in PRESETS:
        return name
    try:
        return board(name).preset
    except ValueError:
        aliases = sorted(a for b in BOARDS.values() for a in b.aliases)
        raise ValueError(f"no SoC preset or board named {name!r}; presets are "
                         f"{sorted(PRESETS)}, board aliases {aliases}") from None


def load_net(path):
    """Load a network file; a missing file or bad content is a one-line error."""
    from spikeforge.host.netfile import load

    if not os.path.exists(path):
        from spikeforge.cli import CliError
        raise CliError(f"network file {path} does not exist")
    return load(path)


def load_compiled(path, config=None):
    """Load a network file and compile it; errors name the file and the problem."""
    from spikeforge.host.compiler import compile_network

    net = load_net(path)
    return net, (compile_network(net) if config is None else compile_network(net, config))


@contextlib.contextmanager
def progress(total, description, enabled=True):
    """A progress bar for work that takes more than a second; yields ``update(done)``."""
    if not enabled:
        yield lambda done: None
        return
    from rich.progress import BarColumn, Progress, TimeRemainingColumn

    with Progress("[progress.description]{task.description}", BarColumn(),
                  "{task.completed}/{task.total}", TimeRemainingColumn(),
                  transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda done: bar.update(task, completed=done)


@contextlib.contextmanager
def spinner(description, enabled=None):
    """A spinner with the elapsed time for work of unknown length (a build, an upload)."""
    enabled = sys.stderr.isatty() if enabled is None else enabled
    if not enabled:
        yield
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), "[progress.description]{task.description}",
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True) as bar:
        bar.add_task(description, total=None)
        yield


def add_board_arguments(p, faults=True):
    """``--port``, ``--board`` (and, for a private virtual board, the line's fault options)."""
    p.add_argument("--port", metavar="URL",
                   help="board to use: a serial port or socket://HOST:PORT (default: start a "
                        "private virtual board)")
    p.add_argument("--board", metavar="NAME",
                   help="configuration of the private virtual board (a preset: tiny, "
                        "icebreaker, ulx3s-85f, or a board name such as ulx3s; default: the "
                        "first of icebreaker, ulx3s-85f the network fits)")
    p.add_argument("--baud", type=int, help="line rate of --port (default 1000000)")
    if faults:
        p.add_argument("--drop", type=float, default=0.0, metavar="RATE",
                       help="private virtual board: odds that a byte on the line is lost")
        p.add_argument("--flip", type=float, default=0.0, metavar="RATE",
                       help="private virtual board: odds that a byte gets a bit flipped")
        p.add_argument("--seed", type=int, default=1, help="seed of the line faults")


@contextlib.contextmanager
def device_errors():
    """Board, link and tool failures as one-line ``CliError``s with their exit codes."""
    from spikeforge.cli import EXIT_DEVICE, EXIT_ENV, CliError
    from spikeforge.host.link import BoardResetError, LinkError

    try:
        yield
    except BoardResetError as e:
        raise CliError(f"board reset: {e}", EXIT_DEVICE) from None
    except LinkError as e:
        raise CliError(str(e), EXIT_DEVICE) from None
    except (ConnectionError, TimeoutError) as e:
        raise CliError(f"connection lost: {e}", EXIT_DEVICE) from None
    except OSError as e:
        if isinstance(e, FileNotFoundError | IsADirectoryError | PermissionError):
            raise
        raise CliError(f"I/O error: {e}", EXIT_DEVICE) from None
    except RuntimeError as e:
        if "Verilator" in str(e) or "virtual board" in str(e):
            raise CliError(str(e), EXIT_ENV) from None
        raise


@contextlib.contextmanager
def board_session(args, net=None):
    """The board of ``args.port``, or a private virtual board of ``args.board`` (or of the
    first preset ``net`` fits). Yields a ``spikeforge.host.session.Session``."""
    from spikeforge.host.session import DEFAULT_PRESET, fit_preset, open_board

    with device_errors():
        if args.port:
            with open_board(args.port, baud=args.baud) as s:
                yield s
            return
        name = args.board and board_preset(args.board)
        if net is not None:
            name = fit_preset(net, name)[0].name
        name = name or DEFAULT_PRESET
        t0 = time.monotonic()
        with spinner(f"starting a private virtual board ({name}; the first build takes a "
                     f"few minutes)"):
            cm = open_board(preset_name=name, drop=getattr(args, "drop", 0.0),
                            flip=getattr(args, "flip", 0.0), seed=getattr(args, "seed", 1))
            s = cm.__enter__()
        if time.monotonic() - t0 > 5:
            print(f"virtual board {name} built/started in {time.monotonic() - t0:.1f} s",
                  file=sys.stderr)
        try:
            yield s
        except BaseException:
            if not cm.__exit__(*sys.exc_info()):
                raise
        else:
            cm.__exit__(None, None, None)


def link_summary(board):
    """One line on the link's health: commands resent, corrupted frames dropped."""
    link = board.link
    return f"link: {link.resent} commands resent, {link.decoder.errors} corrupted frames dropped"
