"""The float reference model: the structure of ``docs/numerics.md`` in physical units.

No rounding and no saturation: decays multiply by ``exp(-dt/tau)``, weights and potentials are
floats in mV (relative to rest), traces count spikes (one spike adds 1.0). It uses the same input
spikes as the golden model (generator spikes come from the same PRNG and the same integer
``gen_prob``), so the two models differ only by quantisation.

``ReferenceCore.step`` follows the order of ``docs/numerics.md`` section 5 step for step (the
comments cite the numbers); ``ReferenceChip`` and ``simulate_reference`` mirror ``GoldenChip`` and
``simulate`` and return the same ``Trace`` type, with float probe values in physical units.
How far the two models may drift apart is derived in numerics.md, "Float model vs golden model".
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from spikeforge.image import CoreConfig
from spikeforge.sim.prng import generator_spikes
from spikeforge.sim.trace import PROBE_VARS, Trace

__all__ = ["FloatCore", "FloatChip", "ReferenceCore", "ReferenceChip", "simulate_reference"]


@dataclass
class FloatCore:
    """One core in physical units; field names and shapes follow ``CoreImage``.

    Units: ``v``, ``i``, ``bias`` (per step), ``threshold``, ``v_reset``, ``weight``, ``w_min``,
    ``w_max``, ``a_plus``, ``a_minus`` (per unit trace) and ``slots`` in mV; ``alpha_*`` are
    decay factors ``exp(-dt/tau)``; ``x``, ``y`` in spikes; ``refractory``, ``reset_mode``,
    ``profile``, ``delay``, ``mask``, ``gen_prob`` (the integer of the image), ``learn``,
    ``trace_mode``, ``gen_seed``, ``step`` are the integers of the image.
    """
    config: CoreConfig
    v: np.ndarray = None
    i: np.ndarray = None
    ref: np.ndarray = None
    y: np.ndarray = None
    profile: np.ndarray = None
    bias: np.ndarray = None
    threshold: np.ndarray = None
    v_reset: np.ndarray = None
    alpha_v: np.ndarray = None
    alpha_i: np.ndarray = None
    refractory: np.ndarray = None
    reset_mode: np.ndarray = None
    x: np.ndarray = None
    gen_prob: np.ndarray = None
    weight: np.ndarray = None
    delay: np.ndarray = None
    mask: np.ndarray = None
    slots: np.ndarray = None
    learn: int = 0
    trace_mode: int = 0
    alpha_x: float = 0.0
    alpha_y: float = 0.0
    a_plus: float = 0.0
    a_minus: float = 0.0
    w_min: float = -np.inf
    w_max: float = np.inf
    gen_seed: int = 0
    step: int = 0

    _INT_FIELDS = ("ref", "profile", "refractory", "reset_mode", "gen_prob", "delay", "mask")

    def __post_init__(self):
        c = self.config
        shapes = {"v": (c.n_neurons,), "i": (c.n_neurons,), "ref": (c.n_neurons,),
                  "y": (c.n_neurons,), "profile": (c.n_neurons,), "bias": (c.n_neurons,),
                  **{k: (c.n_profiles,) for k in ("threshold", "v_reset", "alpha_v", "alpha_i",
                                                   "refractory", "reset_mode")},
                  "x": (c.n_axons,), "gen_prob": (c.n_axons,),
                  "weight": (c.n_axons, c.n_neurons), "delay": (c.n_axons, c.n_neurons),
                  "mask": (c.n_axons, c.n_neurons), "slots": (c.n_slots, c.n_neurons)}
        for name, shape in shapes.items():
            dtype = np.int64 if name in self._INT_FIELDS else np.float64
            value = getattr(self, name)
            value = np.zeros(shape, dtype) if value is None else np.array(value, dtype=dtype)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, not {value.shape}")
            setattr(self, name, value)

    def array_names(self):
        return [f.name for f in dataclasses.fields(self)
                if isinstance(getattr(self, f.name), np.ndarray)]

    def copy(self):
        return dataclasses.replace(
            self, **{n: getattr(self, n).copy() for n in self.array_names()})


@dataclass
class FloatChip:
    """Float cores plus the same routing table and host flags as ``ChipImage``."""
    cores: list
    routes: np.ndarray = None
    host_out: list = field(default=None)

    def __post_init__(self):
        if self.routes is None:
            self.routes = np.zeros((0, 4), dtype=np.int64)
        self.routes = np.array(self.routes, dtype=np.int64).reshape(-1, 4)
        if self.host_out is None:
            self.host_out = [np.ones(c.config.n_neurons, dtype=bool) for c in self.cores]


def _input_set(n_axons, ext):
    """Axon mask of the external events of one step (bool mask or axon ids; duplicates merge)."""
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
    e[ext] = True
    return e


def _bump(trace, mode):
    """A spike on a trace in units of one spike: add 1 (all-to-all) or set to 1 (nearest)."""
    return trace + 1.0 if mode == 0 else np.ones_like(trace)


class ReferenceCore:
    """One float core. ``step(ext)`` runs one timestep; ``core`` is the live state between steps.

    The order is numerics.md section 5 exactly; only the arithmetic differs (section 9): every
    decay is a float multiplication, nothing rounds and nothing saturates.
    """

    def __init__(self, core: FloatCore):
        if not isinstance(core, FloatCore):
            raise TypeError(f"ReferenceCore needs a FloatCore, not {type(core).__name__}")
        self.core = core.copy()
        c = self.core.config
        self._neurons = np.arange(c.n_neurons)

    def _input_set(self, ext):
        return _input_set(self.core.config.n_axons, ext)

    def step(self, ext=None):
        """Run step ``t = core.step``; return the boolean spike vector ``S_t``."""
        fc, c = self.core, self.core.config
        t = int(fc.step)
        learn = bool(fc.learn) and c.plastic

        # 1. input set: external (and routed, merged by the caller) plus the same generators as
        # the golden model (same PRNG, same integer gen_prob), so both see identical inputs.
        e = self._input_set(ext)
        if fc.gen_prob.any():
            e |= generator_spikes(fc.gen_seed, fc.gen_prob, t)
        rows = np.flatnonzero(e)

        # 2. presynaptic traces, in spikes: no saturation in the float model
        if c.plastic:
            fc.x = fc.x * fc.alpha_x
            fc.x[rows] = _bump(fc.x[rows], fc.trace_mode)

        # 3. delivery into the delay slots; depression uses the weight as read, before the
        # update, and the post trace decayed to step t (before step t's post spikes).
        if rows.size:
            w = fc.weight[rows]
            slot = (t + fc.delay[rows]) % c.n_slots
            flat = (slot * c.n_neurons + self._neurons).ravel()
            add = np.bincount(flat, weights=w.ravel(), minlength=c.n_slots * c.n_neurons)
            fc.slots += add.reshape(c.n_slots, c.n_neurons)
            if learn:
                m = fc.mask[rows].astype(bool)
                if m.any():
                    y_now = fc.y * fc.alpha_y
                    dep = np.clip(w - fc.a_minus * y_now, fc.w_min, fc.w_max)
                    fc.weight[rows] = np.where(m, dep, w)

        # 4. neuron update
        p = fc.profile
        s = t % c.n_slots
        fc.i = fc.i * fc.alpha_i[p] + fc.slots[s]
        fc.slots[s] = 0.0
        refractory = fc.ref > 0
        v = fc.v * fc.alpha_v[p] + fc.i + fc.bias
        threshold = fc.threshold[p]
        spikes = ~refractory & (v > threshold)
        v_after = np.where(fc.reset_mode[p] == 0, fc.v_reset[p], v - threshold)
        fc.v = np.where(refractory, fc.v, np.where(spikes, v_after, v))
        fc.ref = np.where(refractory, fc.ref - 1, np.where(spikes, fc.refractory[p], 0))
        if c.plastic:
            fc.y = fc.y * fc.alpha_y
            fc.y[spikes] = _bump(fc.y[spikes], fc.trace_mode)

        # 5. potentiation by the presynaptic trace as updated in 2
        if learn and spikes.any():
            cols = np.flatnonzero(spikes)
            m = fc.mask[:, cols].astype(bool)
            if m.any():
                w = fc.weight[:, cols]
                pot = np.clip(w + fc.a_plus * fc.x[:, None], fc.w_min, fc.w_max)
                fc.weight[:, cols] = np.where(m, pot, w)

        # 6. emit
        fc.step = (t + 1) & 0xFFFFFFFF
        return spikes


class ReferenceChip:
    """Float cores joined by the routing table; spikes of step t are inputs of step t + 1."""

    def __init__(self, chip: FloatChip):
        if isinstance(chip, FloatCore):
            chip = FloatChip([chip])
        if not isinstance(chip, FloatChip):
            raise TypeError(f"ReferenceChip needs a FloatChip, not {type(chip).__name__}")
        steps = {int(c.step) for c in chip.cores}
        if len(steps) > 1:
            raise ValueError(f"all cores must be at the same step, not {sorted(steps)}")
        self.cores = [ReferenceCore(c) for c in chip.cores]
        self.routes = np.array(chip.routes, dtype=np.int64).reshape(-1, 4)
        self.host_out = [np.asarray(h, dtype=bool).copy() for h in chip.host_out]
        k = len(self.cores)
        n_off = np.cumsum([0] + [c.config.n_neurons for c in chip.cores])
        a_off = np.cumsum([0] + [c.config.n_axons for c in chip.cores])
        for col, what in ((0, "source core"), (2, "destination core")):
            bad = self.routes[:, col][(self.routes[:, col] < 0) | (self.routes[:, col] >= k)]
            if bad.size:
                raise ValueError(f"route {what} {int(bad[0])} is out of range [0, {k - 1}]")
        for col, what, off in ((1, "source neuron", n_off), (3, "destination axon", a_off)):
            size = np.diff(off)[self.routes[:, col - 1]]
            bad = (self.routes[:, col] < 0) | (self.routes[:, col] >= size)
            if bad.any():
                j = int(np.flatnonzero(bad)[0])
                raise ValueError(f"route {what} {int(self.routes[j, col])} is out of range "
                                 f"[0, {int(size[j]) - 1}] on core {int(self.routes[j, col - 1])}")
        self._routed = [np.zeros(c.config.n_axons, dtype=bool) for c in chip.cores]
        # Flat indices over all cores, as in GoldenChip, so routing is one vectorised scatter.
        self._src = n_off[self.routes[:, 0]] + self.routes[:, 1]
        self._dst = a_off[self.routes[:, 2]] + self.routes[:, 3]
        self._a_off = a_off

    @property
    def step_counter(self):
        return int(self.cores[0].core.step)

    @property
    def chip(self):
        """The current state as a FloatChip (a copy)."""
        return FloatChip([c.core.copy() for c in self.cores], self.routes.copy(),
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
        """Run ``n_steps`` steps; return a ``Trace`` (same layout as the golden model's).

        ``inputs``: int rows ``(step, core, axon)`` with absolute step numbers; ``probes``: list of
        ``(core, neuron, var)`` with ``var`` one of ``v, i, ref, y``, recorded after every step as
        floats (mV for ``v`` and ``i``, spikes for ``y``, steps for ``ref``).
        """
        if n_steps < 0:
            raise ValueError(f"n_steps must be non-negative, not {n_steps}")
        probes = [tuple(p) for p in probes]
        for core, neuron, var in probes:
            if var not in PROBE_VARS:
                raise ValueError(f"probe variable {var!r} is not one of {', '.join(PROBE_VARS)}")
            if not 0 <= core < len(self.cores):
                raise ValueError(f"probe core {core} is out of range [0, {len(self.cores) - 1}]")
            n = self.cores[core].core.config.n_neurons
            if not 0 <= neuron < n:
                raise ValueError(f"probe neuron {neuron} is out of range [0, {n - 1}]")
        first = self.step_counter
        inputs = np.zeros((0, 3), np.int64) if inputs is None else np.asarray(inputs, np.int64)
        inputs = inputs.reshape(-1, 3)
        inputs = inputs[np.argsort(inputs[:, 0], kind="stable")]
        bounds = np.searchsorted(inputs[:, 0], np.arange(first, first + n_steps + 1))
        spikes, values = [], np.zeros((n_steps, len(probes)), dtype=np.float64)
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
                values[k, j] = getattr(self.cores[c].core, var)[n]
            if progress is not None:
                progress(k + 1)
        spikes = np.concatenate(spikes) if spikes else np.zeros((0, 3), np.int64)
        return Trace(first, n_steps, spikes, probes, values, {"engine": "reference"})


def simulate_reference(float_chip, n_steps, inputs=None, probes=(), progress=None):
    """Run the float model on a ``FloatChip`` (or one ``FloatCore``); return a ``Trace``."""
    return ReferenceChip(float_chip).run(n_steps, inputs, probes, progress)
