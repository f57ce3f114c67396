"""Pieces shared by subcommands: loading a network, progress display."""

from __future__ import annotations

import contextlib
import os

__all__ = ["load_compiled", "progress"]


def load_compiled(path, config=None):
    """Load a network file and compile it; errors name the file and the problem."""
    from spikeforge.host.compiler import compile_network
    from spikeforge.host.netfile import load

    if not os.path.exists(path):
        from spikeforge.cli import CliError
        raise CliError(f"network file {path} does not exist")
    net = load(path)
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
