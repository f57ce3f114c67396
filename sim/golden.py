"""The bit-exact golden model: ``docs/numerics.md`` in NumPy, on core images.

Every function here follows the numbered steps of numerics.md section 5; the comments cite them.
All arithmetic is on ``int64`` arrays holding exact integers (the widest intermediate, a 16-bit
factor times a 32-bit trace plus 22 random bits, stays below 2^40), so NumPy never wraps.
No Python loop runs over neurons or synapses.
"""

from __future__ import annotations

import numpy as np

from spikeforge.image import STATE_BITS, STDP_SHIFT, TRACE_BITS, ChipImage, CoreImage
from spikeforge.sim.chip import ChipRunner, input_set
from spikeforge.sim.prng import KIND_DEPRESSION, KIND_POTENTIATION, generator_spikes, rand

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

    @property
    def config(self):
        return self.image.config

    @property
    def state(self):
        return self.image

    def _input_set(self, ext):
        return input_set(self.image.config.n_axons, ext)

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


class GoldenChip(ChipRunner):
    """Golden cores joined by the routing table; spikes of step t are inputs of step t + 1."""
    engine = "golden"
    probe_dtype = np.int64

    def __init__(self, chip: ChipImage):
        if isinstance(chip, CoreImage):
            chip = ChipImage([chip])
        if not isinstance(chip, ChipImage):
            raise TypeError(f"GoldenChip needs a ChipImage, not {type(chip).__name__}")
        chip = chip.copy().validate()
        super().__init__([GoldenCore(c) for c in chip.cores], chip.routes, chip.host_out)

    @property
    def image(self):
        """The current state as a ChipImage (a copy)."""
        return ChipImage([c.image.copy() for c in self.cores], self.routes.copy(),
                         [h.copy() for h in self.host_out])


def simulate(chip, n_steps, inputs=None, probes=(), progress=None):
    """Run the golden model on a ``ChipImage`` (or a single ``CoreImage``); return a ``Trace``."""
    return GoldenChip(chip).run(n_steps, inputs, probes, progress)
