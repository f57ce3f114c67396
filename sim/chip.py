"""What every engine shares above its cores: input sets, routing between steps, the run loop.

An engine (the golden model, the float model) provides a core class with ``config``, ``state``
(the live image), ``step(e)`` taking a boolean axon mask; ``ChipRunner`` joins such cores with the
routing table (spikes of step t are inputs of step t + 1) and runs them into a ``Trace``.
"""

from __future__ import annotations

import numpy as np

from spikeforge.image import check_routes
from spikeforge.sim.trace import PROBE_VARS, Trace

__all__ = ["input_set", "ChipRunner"]


def input_set(n_axons, ext):
    """Axon mask of one step's external events (bool mask or axon ids; duplicates merge)."""
    e = np.zeros(n_axons, dtype=bool)
    if ext is None:
        return e
    ext = np.asarray(ext)
    if ext.dtype == bool:
        if ext.shape != (n_axons,):
            raise ValueError(f"input mask must have shape ({n_axons},), not {ext.shape}")
        return ext.copy()
    ext = ext.astype(np.int64).ravel()
    if ext.size and (ext.min() < 0 or ext.max() >= n_axons):
        bad = int(ext.min()) if ext.min() < 0 else int(ext.max())
        raise ValueError(f"input axon {bad} is out of range [0, {n_axons - 1}]")
    e[ext] = True     # an axon carries at most one event per step
    return e


class ChipRunner:
    """Cores joined by a routing table. Subclasses set ``engine`` and ``probe_dtype``."""
    engine = "engine"
    probe_dtype = np.int64

    def __init__(self, cores, routes, host_out):
        steps = {int(c.state.step) for c in cores}
        if len(steps) > 1:
            raise ValueError(f"all cores must be at the same step, not {sorted(steps)}")
        self.cores = cores
        self.routes = np.array(routes, dtype=np.int64).reshape(-1, 4)
        self.host_out = [np.asarray(h, dtype=bool).copy() for h in host_out]
        configs = [c.config for c in cores]
        check_routes(self.routes, [c.n_neurons for c in configs], [c.n_axons for c in configs])
        # Flat indices of route sources and destinations over all cores: routing is one scatter.
        n_off = np.cumsum([0] + [c.n_neurons for c in configs])
        a_off = np.cumsum([0] + [c.n_axons for c in configs])
        self._src = n_off[self.routes[:, 0]] + self.routes[:, 1]
        self._dst = a_off[self.routes[:, 2]] + self.routes[:, 3]
        self._a_off = a_off
        self._routed = [np.zeros(c.n_axons, dtype=bool) for c in configs]

    @property
    def step_counter(self):
        return int(self.cores[0].state.step)

    def step(self, ext=None):
        """One step of every core; ``ext``: None or one input (mask or axon ids) per core."""
        if ext is not None and len(ext) != len(self.cores):
            raise ValueError(f"input must list {len(self.cores)} cores, not {len(ext)}")
        out = []
        for k, core in enumerate(self.cores):
            e = input_set(core.config.n_axons, None if ext is None else ext[k])
            out.append(core.step(e | self._routed[k]))
        routed = np.zeros(self._a_off[-1], dtype=bool)
        if len(self.routes):
            routed[self._dst[np.concatenate(out)[self._src]]] = True
        self._routed = np.split(routed, self._a_off[1:-1])
        return out

    def _check_probes(self, probes):
        probes = [tuple(p) for p in probes]
        for core, neuron, var in probes:
            if var not in PROBE_VARS:
                raise ValueError(f"probe variable {var!r} is not one of {', '.join(PROBE_VARS)}")
            if not 0 <= core < len(self.cores):
                raise ValueError(f"probe core {core} is out of range [0, {len(self.cores) - 1}]")
            n = self.cores[core].config.n_neurons
            if not 0 <= neuron < n:
                raise ValueError(f"probe neuron {neuron} is out of range [0, {n - 1}]")
        return probes

    def run(self, n_steps, inputs=None, probes=(), progress=None):
        """Run ``n_steps`` steps; return a ``Trace``.

        ``inputs``: int rows ``(step, core, axon)`` with absolute step numbers; ``probes``: list of
        ``(core, neuron, var)`` with ``var`` one of ``v, i, ref, y``, recorded after every step.
        ``progress``: called with the number of steps done.
        """
        if n_steps < 0:
            raise ValueError(f"n_steps must be non-negative, not {n_steps}")
        probes = self._check_probes(probes)
        first = self.step_counter
        inputs = np.zeros((0, 3), np.int64) if inputs is None else np.asarray(inputs, np.int64)
        inputs = inputs.reshape(-1, 3)
        inputs = inputs[np.argsort(inputs[:, 0], kind="stable")]
        bounds = np.searchsorted(inputs[:, 0], np.arange(first, first + n_steps + 1))
        spikes, values = [], np.zeros((n_steps, len(probes)), dtype=self.probe_dtype)
        for k in range(n_steps):
            chunk = inputs[bounds[k]:bounds[k + 1]]
            ext = [chunk[chunk[:, 1] == c, 2] for c in range(len(self.cores))]
            t = self.step_counter
            out = self.step(ext)
            for c, s in enumerate(out):
                n = np.flatnonzero(s & self.host_out[c])
                if n.size:
                    spikes.append(np.column_stack([np.full(n.size, t), np.full(n.size, c), n]))
            for j, (c, n, var) in enumerate(probes):
                values[k, j] = getattr(self.cores[c].state, var)[n]
            if progress is not None:
                progress(k + 1)
        spikes = np.concatenate(spikes) if spikes else np.zeros((0, 3), np.int64)
        return Trace(first, n_steps, spikes, probes, values, {"engine": self.engine})
