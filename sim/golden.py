"""The bit-exact golden model: ``docs/numerics.md`` in NumPy, on core images.

Every function here follows the numbered steps of numerics.md section 5; the comments cite them.
All arithmetic is on ``int64`` arrays holding exact integers (the widest intermediate, a 16-bit
factor times a 32-bit trace plus 22 random bits, stays below 2^40), so NumPy never wraps.
No Python loop runs over neurons or synapses.
"""

from __future__ import annotations

import numpy as np

from spikeforge.image import STATE_BITS, STDP_SHIFT, TRACE_BITS, ChipImage, CoreImage
from spikeforge.sim.prng import KIND_DEPRESSION, KIND_POTENTIATION, generator_spikes, rand
from spikeforge.sim.trace import PROBE_VARS, Trace

__all__ = ["GoldenCore", "GoldenChip", "simulate", "decay", "sat"]

_S_LO, _S_HI = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1
_T_HI = (1 << TRACE_BITS) - 1
_RAND_SHIFT = np.uint64(32 - STDP_SHIFT)   # rand >> 10 leaves 22 uniform bits


def decay(z, alpha):
    """numerics.md 3: ``(z * alpha + 2^15) >> 16``, round half up, exact."""
    return (z * alpha + (1 << 15)) >> 16


def sat(z, bits=STATE_BITS):
    """Clamp exact integers to the signed ``bits``-bit range."""
    return np.clip(z, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _bump(trace, inc, mode):
    """Trace increment on a spike: saturating add (all-to-all) or set (nearest)."""
    return np.minimum(trace + inc, _T_HI) if mode == 0 else np.full_like(trace, inc)


def _stdp_delta(amplitude, trace, seed, t, kind, a, n):
    """``(amplitude * trace + (rand >> 10)) >> 22``: stochastic rounding, unbiased."""
    r = (rand(seed, t, kind, a, n) >> _RAND_SHIFT).astype(np.int64)
    return (amplitude * trace + r) >> STDP_SHIFT


class GoldenCore:
    """One core. ``step(ext)`` runs one timestep; ``image`` is the live state between steps."""

    def __init__(self, image: CoreImage):
        if not isinstance(image, CoreImage):
            raise TypeError(f"GoldenCore needs a CoreImage, not {type(image).__name__}")
        self.image = image.copy().validate()
        c = self.image.config
        self._neurons = np.arange(c.n_neurons)
        self._axons = np.arange(c.n_axons)

    def _input_set(self, ext):
        c = self.image.config
        e = np.zeros(c.n_axons, dtype=bool)
        if ext is None:
            return e
        ext = np.asarray(ext)
        if ext.dtype == bool:
            if ext.shape != (c.n_axons,):
                raise ValueError(f"input mask must have shape ({c.n_axons},), not {ext.shape}")
            return ext.copy()
        ext = ext.astype(np.int64).ravel()
        if ext.size and (ext.min() < 0 or ext.max() >= c.n_axons):
            bad = int(ext.min()) if ext.min() < 0 else int(ext.max())
            raise ValueError(f"input axon {bad} is out of range [0, {c.n_axons - 1}]")
        e[ext] = True     # an axon carries at most one event per step: duplicates merge
        return e

    def step(self, ext=None):
        """Run step ``t = image.step``; return the boolean spike vector ``S_t``."""
        im, c = self.image, self.image.config
        t = int(im.step)
        learn = bool(im.learn) and c.plastic

        # 1. input set: external (and routed, merged by the caller) plus generators
        e = self._input_set(ext)
        if im.gen_prob.any():
            e |= generator_spikes(im.gen_seed, im.gen_prob, t)
        rows = np.flatnonzero(e)

        # 2. presynaptic traces
        if c.plastic:
            im.x = decay(im.x, im.alpha_x)
            im.x[rows] = _bump(im.x[rows], im.x_inc, im.trace_mode)

        # 3. delivery into the delay slots, with depression in the same read-modify-write
        if rows.size:
            w = im.weight[rows]
            slot = (t + im.delay[rows]) % c.n_slots
            flat = (slot * c.n_neurons + self._neurons).ravel()
            # Slot sums are exact (numerics.md 4); float64 holds them exactly (< 2^27).
            add = np.bincount(flat, weights=w.ravel(), minlength=c.n_slots * c.n_neurons)
            im.slots += np.rint(add).astype(np.int64).reshape(c.n_slots, c.n_neurons)
            if learn:
                ai, ni = np.nonzero(im.mask[rows])
                if ai.size:
                    y_now = decay(im.y, im.alpha_y)
                    dep = _stdp_delta(im.a_minus, y_now[ni], im.stdp_seed, t,
                                      KIND_DEPRESSION, rows[ai], ni)
                    im.weight[rows[ai], ni] = np.clip(w[ai, ni] - dep, im.w_min, im.w_max)

        # 4. neuron update
        p = im.profile
        s = t % c.n_slots
        im.i = sat(decay(im.i, im.alpha_i[p]) + (im.slots[s] << int(im.weight_exp)))
        im.slots[s] = 0
        refractory = im.ref > 0
        v = sat(decay(im.v, im.alpha_v[p]) + im.i + im.bias)
        threshold = im.threshold[p]
        spikes = ~refractory & (v > threshold)
        v_after = np.where(im.reset_mode[p] == 0, im.v_reset[p], v - threshold)
        im.v = np.where(refractory, im.v, np.where(spikes, v_after, v))
        im.ref = np.where(refractory, im.ref - 1, np.where(spikes, im.refractory[p], 0))
        if c.plastic:
            im.y = decay(im.y, im.alpha_y)
            im.y[spikes] = _bump(im.y[spikes], im.y_inc, im.trace_mode)

        # 5. potentiation: eager column walk of each post-spiking neuron
        if learn and spikes.any():
            cols = np.flatnonzero(spikes)
            ai, ci = np.nonzero(im.mask[:, cols])
            if ai.size:
                ni = cols[ci]
                pot = _stdp_delta(im.a_plus, im.x[ai], im.stdp_seed, t,
                                  KIND_POTENTIATION, ai, ni)
                im.weight[ai, ni] = np.clip(im.weight[ai, ni] + pot, im.w_min, im.w_max)

        # 6. emit
        im.step = (t + 1) & 0xFFFFFFFF
        return spikes


class GoldenChip:
    """Several cores joined by the routing table; spikes of step t are inputs of step t + 1."""

    def __init__(self, chip: ChipImage):
        if isinstance(chip, CoreImage):
            chip = ChipImage([chip])
        if not isinstance(chip, ChipImage):
            raise TypeError(f"GoldenChip needs a ChipImage, not {type(chip).__name__}")
        chip = chip.copy().validate()
        steps = {int(c.step) for c in chip.cores}
        if len(steps) > 1:
            raise ValueError(f"all cores must be at the same step, not {sorted(steps)}")
        self.cores = [GoldenCore(c) for c in chip.cores]
        self.routes = chip.routes
        self.host_out = chip.host_out
        self._routed = [np.zeros(c.config.n_axons, dtype=bool) for c in chip.cores]
        # Flat indices of route sources and destinations over all cores, for vectorised routing.
        n_off = np.cumsum([0] + [c.config.n_neurons for c in chip.cores])
        a_off = np.cumsum([0] + [c.config.n_axons for c in chip.cores])
        self._src = n_off[self.routes[:, 0]] + self.routes[:, 1]
        self._dst = a_off[self.routes[:, 2]] + self.routes[:, 3]
        self._a_off = a_off

    @property
    def step_counter(self):
        return int(self.cores[0].image.step)

    @property
    def image(self):
        """The current state as a ChipImage (a copy)."""
        return ChipImage([c.image.copy() for c in self.cores], self.routes.copy(),
                         [h.copy() for h in self.host_out])

    def step(self, ext=None):
        if ext is not None and len(ext) != len(self.cores):
            raise ValueError(f"input must list {len(self.cores)} cores, not {len(ext)}")
        out = []
        for k, core in enumerate(self.cores):
            e = core._input_set(None if ext is None else ext[k]) | self._routed[k]
            out.append(core.step(e))
        routed = np.zeros(self._a_off[-1], dtype=bool)
        if len(self.routes):
            routed[self._dst[np.concatenate(out)[self._src]]] = True
        self._routed = np.split(routed, self._a_off[1:-1])
        return out

    def run(self, n_steps, inputs=None, probes=(), progress=None):
        """Run ``n_steps`` steps; return a ``Trace``.

        ``inputs``: int rows ``(step, core, axon)`` with absolute step numbers; ``probes``: list of
        ``(core, neuron, var)`` with ``var`` one of ``v, i, ref, y``, recorded after every step.
        """
        if n_steps < 0:
            raise ValueError(f"n_steps must be non-negative, not {n_steps}")
        probes = [tuple(p) for p in probes]
        for core, neuron, var in probes:
            if var not in PROBE_VARS:
                raise ValueError(f"probe variable {var!r} is not one of {', '.join(PROBE_VARS)}")
            if not 0 <= core < len(self.cores):
                raise ValueError(f"probe core {core} is out of range [0, {len(self.cores) - 1}]")
            n = self.cores[core].image.config.n_neurons
            if not 0 <= neuron < n:
                raise ValueError(f"probe neuron {neuron} is out of range [0, {n - 1}]")
        first = self.step_counter
        inputs = np.zeros((0, 3), np.int64) if inputs is None else np.asarray(inputs, np.int64)
        inputs = inputs.reshape(-1, 3)
        order = np.argsort(inputs[:, 0], kind="stable")
        inputs = inputs[order]
        bounds = np.searchsorted(inputs[:, 0], np.arange(first, first + n_steps + 1))
        spikes, values = [], np.zeros((n_steps, len(probes)), dtype=np.int64)
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
                values[k, j] = getattr(self.cores[c].image, var)[n]
            if progress is not None:
                progress(k + 1)
        spikes = np.concatenate(spikes) if spikes else np.zeros((0, 3), np.int64)
        return Trace(first, n_steps, spikes, probes, values, {"engine": "golden"})


def simulate(chip, n_steps, inputs=None, probes=(), progress=None):
    """Run the golden model on a ``ChipImage`` (or a single ``CoreImage``); return a ``Trace``."""
    return GoldenChip(chip).run(n_steps, inputs, probes, progress)
