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
from spikeforge.sim.chip import ChipRunner, input_set
from spikeforge.sim.prng import generator_spikes

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

    @property
    def config(self):
        return self.core.config

    @property
    def state(self):
        return self.core

    def _input_set(self, ext):
        return input_set(self.core.config.n_axons, ext)

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


class ReferenceChip(ChipRunner):
    """Float cores joined by the routing table; spikes of step t are inputs of step t + 1.
    Probes record floats: mV for ``v`` and ``i``, spikes for ``y``, steps for ``ref``."""
    engine = "reference"
    probe_dtype = np.float64

    def __init__(self, chip: FloatChip):
        if isinstance(chip, FloatCore):
            chip = FloatChip([chip])
        if not isinstance(chip, FloatChip):
            raise TypeError(f"ReferenceChip needs a FloatChip, not {type(chip).__name__}")
        super().__init__([ReferenceCore(c) for c in chip.cores], chip.routes, chip.host_out)

    @property
    def chip(self):
        """The current state as a FloatChip (a copy)."""
        return FloatChip([c.core.copy() for c in self.cores], self.routes.copy(),
                         [h.copy() for h in self.host_out])


def simulate_reference(float_chip, n_steps, inputs=None, probes=(), progress=None):
    """Run the float model on a ``FloatChip`` (or one ``FloatCore``); return a ``Trace``."""
    return ReferenceChip(float_chip).run(n_steps, inputs, probes, progress)
