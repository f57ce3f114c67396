"""Shared pieces of the end-to-end tests: the CLI as a subprocess, ``spikeforge emulate``
servers (the ``emulators`` fixture is in ``conftest.py``), small networks for the ``tiny``
preset and their golden runs."""

import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

from spikeforge.host.compiler import compile_network
from spikeforge.host.netfile import save_network
from spikeforge.host.network import STDP, Network
from spikeforge.presets import preset
from spikeforge.sim.golden import GoldenChip
from spikeforge.toolchain import verilator_available

TINY = preset("tiny")


def cli(*args, timeout=300):
    """``spikeforge ARGS`` in a fresh process."""
    return subprocess.run([sys.executable, "-m", "spikeforge", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def one_line_error(r):
    """The process failed with one line on stderr and no traceback."""
    err = r.stderr.strip()
    return r.returncode != 0 and err and "\n" not in err and "Traceback" not in r.stderr


class Emulator:
    """``spikeforge emulate --board tiny ARGS`` running; ``url`` is what it printed."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "spikeforge", "emulate", "--board", "tiny", *map(str, args)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        # The first build of the tiny SoC takes a while; later ones are cached.
        timer = threading.Timer(600, self.proc.kill)
        timer.start()
        self.url = self.proc.stdout.readline().strip()
        timer.cancel()
        if not self.url:
            raise RuntimeError(f"emulate did not start: {self.proc.stderr.read()}")

    def reset_button(self):
        self.proc.send_signal(signal.SIGUSR1)

    def stop(self):
        """SIGTERM (a clean stop); returns (exit code, stderr)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return self.proc.returncode, err


def small_network(path, *, learning, seed=0, n_in=6, n_out=10, duration=150.0):
    """A spike source driving LIF neurons through random dense weights; STDP if ``learning``.
    Saved to ``path``; returns the ``Network``."""
    rng = np.random.default_rng(seed)
    net = Network(dt=1.0)
    times = np.stack([rng.integers(0, n_in, 120), rng.uniform(0, duration, 120)], axis=1)
    src = net.spike_source(n_in, times=times, label="in")
    out = net.population(n_out, tau_mem=10.0, tau_syn=3.0, v_th=1.0, refractory=2.0,
                         label="out")
    w = np.where(rng.random((n_in, n_out)) < 0.7, rng.uniform(0.2, 0.9, (n_in, n_out)), np.nan)
    stdp = STDP(w_max=1.0, w_min=0.0, tau_plus=10.0, tau_minus=10.0, A_plus=0.05,
                A_minus=0.05) if learning else None
    net.connect(src, out, weight=w, delay=1.0, stdp=stdp, label="in->out")
    save_network(net, path)
    return net


def tiny_compiled(net):
    return compile_network(net, TINY.core, n_cores=TINY.n_cores, limits=TINY.limits)


def golden_run(net, steps, probes=()):
    """``(compiled, trace, golden chip)`` of ``net`` on the tiny preset's core."""
    compiled = tiny_compiled(net)
    golden = GoldenChip(compiled.chip)
    return compiled, golden.run(steps, compiled.inputs, probes), golden


def needs_verilator():
    return [pytest.mark.verilator, pytest.mark.slow,
            pytest.mark.skipif(not verilator_available(), reason="needs Verilator")]


__all__ = ["cli", "one_line_error", "Emulator", "small_network", "golden_run", "TINY",
           "needs_verilator"]
