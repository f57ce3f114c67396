"""Compile a ``Network`` onto one core: place, check the fit, quantise, build the images.

The steps are separate functions so that multi-core placement can replace ``place`` later:

1. ``place``: LIF neurons at neuron indices 0.. (population order); sources, then every neuron of
   each LIF population that projects, at axons 0..; one route per projecting neuron.
2. ``check_fit`` (inside ``compile_network``, before anything is built): neurons, axons, delays,
   profiles, one synapse per (axon, neuron), one STDP rule and one generator seed per core.
3. ``choose_scales``: the weight LSB ``q_w`` and ``weight_exp`` (docs/numerics.md 3 and 6).
4. build the ``ChipImage``, the float ``FloatChip`` with the same placement, the input spikes and
   the quantisation report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from spikeforge.host.network import LIFPopulation, Network, PoissonSource, SpikeSource
from spikeforge.image import (
    AMPLITUDE_BITS,
    DECAY_BITS,
    STATE_BITS,
    STDP_SHIFT,
    THRESHOLD_BITS,
    ChipImage,
    CoreConfig,
    CoreImage,
)
from spikeforge.sim.reference import FloatChip, FloatCore

__all__ = ["TRACE_INC", "HEADROOM", "GUARD_EXP", "Placement", "Scales", "Quantity", "Report",
           "Compiled", "place", "choose_scales", "alpha", "compile_network"]

TRACE_INC = 1 << 14     # x_inc = y_inc: one spike; leaves 4 spikes of all-to-all headroom
HEADROOM = 8            # state amplitudes (threshold, reset, bias) times this must fit 24 bits
GUARD_EXP = 9           # weight_exp below this leaves a decay residue above one weight LSB
_STATE_MAX = (1 << (STATE_BITS - 1)) - 1
_THRESHOLD_MAX = (1 << THRESHOLD_BITS) - 1
_AMP_MAX = (1 << AMPLITUDE_BITS) - 1
_ALPHA_ONE = 1 << DECAY_BITS


def alpha(dt, tau):
    """The 16-bit decay factor ``round(2^16 exp(-dt/tau))``, clipped to 65535."""
    return min(int(round(_ALPHA_ONE * math.exp(-dt / tau))), _ALPHA_ONE - 1)


def _tau_of(dt, a):
    """The time constant a 16-bit factor really implements (0 for a factor of 0)."""
    return -dt / math.log(a / _ALPHA_ONE) if a > 0 else 0.0


# ---------------------------------------------------------------------------------- placement

@dataclass
class Placement:
    """Where everything goes on the core. ``profiles`` holds one parameter key per profile."""
    neurons: dict           # LIF population label -> neuron indices
    axons: dict             # source / projecting LIF population label -> axon indices
    profile_of: dict        # LIF population label -> profile index
    profiles: list          # (tau_mem, tau_syn, v_th-v_rest, v_reset-v_rest, refractory, reset)
    routes: np.ndarray      # (R, 4): src_core, src_neuron, dst_core, dst_axon
    n_neurons: int
    n_axons: int


def _profile_key(pop):
    return (pop.tau_mem, pop.tau_syn, pop.v_th - pop.v_rest, pop.v_reset - pop.v_rest,
            pop.refractory_steps, pop.reset)


def place(net):
    """Place the whole network on core 0 (no capacity check: see ``compile_network``)."""
    neurons, axons, profile_of, profiles = {}, {}, {}, []
    n = 0
    for pop in net.populations:
        if isinstance(pop, LIFPopulation):
            neurons[pop.label] = np.arange(n, n + pop.n)
            n += pop.n
            key = _profile_key(pop)
            if key not in profiles:
                profiles.append(key)
            profile_of[pop.label] = profiles.index(key)
    projecting = {p.pre.label for p in net.projections}
    a = 0
    # Sources first, then LIF populations that project: inputs keep the low axons.
    ordered = ([p for p in net.populations if not isinstance(p, LIFPopulation)]
               + [p for p in net.populations
                  if isinstance(p, LIFPopulation) and p.label in projecting])
    routes = []
    for pop in ordered:
        axons[pop.label] = np.arange(a, a + pop.n)
        if isinstance(pop, LIFPopulation):
            src = neurons[pop.label]
            routes.append(np.stack([np.zeros_like(src), src, np.zeros_like(src),
                                    axons[pop.label]], axis=1))
        a += pop.n
    routes = np.concatenate(routes) if routes else np.zeros((0, 4), dtype=np.int64)
    return Placement(neurons, axons, profile_of, profiles, routes, n, a)


# ---------------------------------------------------------------------------------- scales

@dataclass
class Scales:
    """The units of the integers: ``q_w`` mV per weight LSB, ``q_s`` mV per state LSB."""
    q_w: float
    weight_exp: int

    @property
    def q_s(self):
        return self.q_w / (1 << self.weight_exp)


def choose_scales(weight_amp, state_amp, config):
    """``q_w`` makes the largest weight magnitude the largest weight integer; ``weight_exp`` is
    the largest in 0..15 for which ``HEADROOM`` times the largest state amplitude fits 24 bits."""
    w_top = (1 << (config.weight_bits - 1)) - 1
    if weight_amp == 0:
        # No weights: any LSB will do; pick the finest that leaves the headroom.
        q = HEADROOM * state_amp / _STATE_MAX if state_amp > 0 else 1.0
        return Scales(q, 0)
    q_w = weight_amp / w_top
    for exp in range(15, -1, -1):
        if round(HEADROOM * state_amp / (q_w / (1 << exp))) <= _STATE_MAX:
            return Scales(q_w, exp)
    raise ValueError(
        f"state amplitude {state_amp!r} mV (threshold, reset or bias) is {state_amp / q_w:.0f} "
        f"weight LSB; with headroom x{HEADROOM} it must fit {_STATE_MAX} (24-bit v) even at "
        f"weight_exp 0: the largest weight ({weight_amp!r} mV) is too small for it")


# ---------------------------------------------------------------------------------- report

@dataclass(frozen=True)
class Quantity:
    """One quantised parameter: user value, value the integers represent, relative error."""
    name: str
    where: str
    value: float
    quantised: float
    rel_error: float


def _rel(err, ref):
    if ref == 0:
        return 0.0 if err == 0 else math.inf
    return abs(err) / abs(ref)


class Report:
    """The quantisation report: ``rows`` (``Quantity``), ``notes`` (strings), the scales."""

    def __init__(self, scales):
        self.scales = scales
        self.rows = []
        self.notes = []

    def add(self, name, where, value, quantised, ref=None):
        ref = value if ref is None else ref
        self.rows.append(Quantity(name, where, float(value), float(quantised),
                                  _rel(quantised - value, ref)))

    def add_array(self, name, where, values, quantised):
        """Rows for an array: largest magnitude (error relative to it) and, for weights,
        the rms error relative to the same largest magnitude."""
        values, quantised = np.asarray(values, float), np.asarray(quantised, float)
        top = float(np.abs(values).max(initial=0.0))
        err = np.abs(quantised - values)
        self.rows.append(Quantity(f"{name} (max)", where, top,
                                  float(np.abs(quantised).max(initial=0.0)),
                                  _rel(float(err.max(initial=0.0)), top)))
        if name == "weight":
            rms = float(np.sqrt(np.mean(err ** 2))) if err.size else 0.0
            self.rows.append(Quantity(
                f"{name} (rms)", where, float(np.sqrt(np.mean(values ** 2))) if err.size else 0.0,
                float(np.sqrt(np.mean(quantised ** 2))) if err.size else 0.0, _rel(rms, top)))

    def get(self, name, where):
        for row in self.rows:
            if row.name == name and row.where == where:
                return row
        raise KeyError(f"no report row {name!r} for {where!r}")

    def __str__(self):
        s = self.scales
        lines = [f"weight LSB {s.q_w:.6g} mV, weight_exp {s.weight_exp}, "
                 f"state LSB {s.q_s:.6g} mV",
                 f"{'parameter':<16} {'where':<24} {'value':>12} {'quantised':>12} {'rel err':>9}"]
        for r in self.rows:
            lines.append(f"{r.name:<16} {r.where:<24} {r.value:>12.6g} {r.quantised:>12.6g} "
                         f"{r.rel_error:>9.2e}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------- compile

@dataclass
class Compiled:
    """The result of ``compile_network``; see the module docstring."""
    network: Network
    config: CoreConfig
    chip: ChipImage
    float_chip: FloatChip
    inputs: np.ndarray      # (K, 3): step, core, axon
    neurons: dict
    axons: dict
    report: Report
    scales: Scales
    synapses: dict          # projection label -> (axon, neuron, pre, post) index arrays

    def weights_to_user(self, image=None):
        """Weights in mV per projection, as ``(n_pre, n_post)`` matrices with NaN where there
        is no synapse. ``image``: a ``CoreImage`` or ``ChipImage`` (default: the compiled one)."""
        if image is None:
            image = self.chip
        if isinstance(image, ChipImage):
            image = image.cores[0]
        if not isinstance(image, CoreImage):
            raise TypeError(f"image must be a CoreImage or ChipImage, not {type(image).__name__}")
        out = {}
        for proj in self.network.projections:
            axon, neuron, pre, post = self.synapses[proj.label]
            w = np.full((proj.pre.n, proj.post.n), np.nan)
            w[pre, post] = image.weight[axon, neuron] * self.scales.q_w
            out[proj.label] = w
        return out


def _one_stdp(net):
    plastic = [p for p in net.projections if p.stdp is not None]
    for p in plastic[1:]:
        if p.stdp != plastic[0].stdp:
            raise ValueError(f"plastic projections {plastic[0].label!r} and {p.label!r} have "
                             f"different STDP parameters; a core has one set of STDP registers")
    return plastic[0].stdp if plastic else None, plastic


def _gen_seed(net):
    seeds = {}
    for pop in net.populations:
        if isinstance(pop, PoissonSource) and pop.seed is not None:
            seeds.setdefault(pop.seed, pop.label)
    if len(seeds) > 1:
        (s0, l0), (s1, l1) = list(seeds.items())[:2]
        raise ValueError(f"poisson sources {l0!r} (seed {s0}) and {l1!r} (seed {s1}) must share "
                         f"one seed: a core has one generator seed (gen_seed)")
    return next(iter(seeds), 0)


def _synapses(net, placement):
    syn = {}
    for proj in net.projections:
        pre, post, w, d = proj.connections()
        if isinstance(proj.pre, LIFPopulation):
            d = d - 1     # the route takes one step of the user's delay (numerics.md 4)
        syn[proj.label] = (placement.axons[proj.pre.label][pre],
                           placement.neurons[proj.post.label][post], pre, post, w, d)
    return syn


def _check_fit(net, config, placement, syn, stdp, plastic):
    c = config
    if placement.n_neurons > c.n_neurons:
        raise ValueError(f"network needs {placement.n_neurons} neurons but a core has "
                         f"{c.n_neurons} (n_neurons)")
    if placement.n_axons > c.n_axons:
        raise ValueError(f"network needs {placement.n_axons} axons (sources and projecting "
                         f"neurons) but a core has {c.n_axons} (n_axons)")
    if len(placement.profiles) > c.n_profiles:
        raise ValueError(f"network needs {len(placement.profiles)} neuron profiles (distinct "
                         f"parameter sets) but a core has {c.n_profiles} (n_profiles)")
    for label, (_, _, _, _, _, d) in syn.items():
        if d.size and d.max() > c.max_delay:
            raise ValueError(f"projection {label!r} needs delay {int(d.max())} steps but a core "
                             f"has at most {c.max_delay} (delay_bits {c.delay_bits})")
    if stdp is not None and not c.plastic:
        raise ValueError(f"projection {plastic[0].label!r} has STDP but the core is built "
                         f"without plasticity (plastic=False)")
    seen = np.zeros((c.n_axons, c.n_neurons), dtype=np.int64)
    for label, (axon, neuron, *_rest) in syn.items():
        if seen[axon, neuron].any():
            k = int(np.argmax(seen[axon, neuron] > 0))
            raise ValueError(f"projection {label!r} and an earlier projection both connect axon "
                             f"{int(axon[k])} to neuron {int(neuron[k])}: a core holds one "
                             f"synapse per (axon, neuron)")
        seen[axon, neuron] = 1


def _amplitude(name, value, q_w, inc):
    """``round(A / q_w * 2^22 / inc)``: one spike pair changes the weight by ``A``."""
    a = int(round(value / q_w * (1 << STDP_SHIFT) / inc))
    if a > _AMP_MAX:
        top = _AMP_MAX * inc / (1 << STDP_SHIFT) * q_w
        raise ValueError(f"{name} {value!r} mV needs {name.lower()} = {a}, above {_AMP_MAX} "
                         f"({AMPLITUDE_BITS} bits): at most {top:.6g} mV with a weight LSB of "
                         f"{q_w:.6g} mV")
    return a


def compile_network(net, config=None):
    """Compile ``net`` onto one core of ``config`` (default ``CoreConfig()``).

    Raises ``ValueError`` naming the limit when the network does not fit, before building.
    """
    if not isinstance(net, Network):
        raise TypeError(f"compile_network needs a Network, not {type(net).__name__}")
    config = CoreConfig() if config is None else config
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {type(config).__name__}")
    dt = net.dt
    placement = place(net)
    syn = _synapses(net, placement)
    stdp, plastic = _one_stdp(net)
    gen_seed = _gen_seed(net)
    _check_fit(net, config, placement, syn, stdp, plastic)

    lifs = [p for p in net.populations if isinstance(p, LIFPopulation)]
    weight_amp = max([float(np.abs(s[4]).max(initial=0.0)) for s in syn.values()]
                     + ([abs(stdp.w_min), abs(stdp.w_max)] if stdp else []), default=0.0)
    state_amp = max([max(p.v_th - p.v_rest, abs(p.v_reset - p.v_rest),
                         float(np.abs(p.bias_array()).max()) * dt) for p in lifs], default=0.0)
    scales = choose_scales(weight_amp, state_amp, config)
    q_w, q_s = scales.q_w, scales.q_s
    a_plus = a_minus = 0
    if stdp is not None:
        a_plus = _amplitude("A_plus", stdp.A_plus, q_w, TRACE_INC)
        a_minus = _amplitude("A_minus", stdp.A_minus, q_w, TRACE_INC)

    # ---- build the integer image and its float twin, field by field
    image, fc = CoreImage.empty(config), FloatCore(config)
    image.weight_exp = scales.weight_exp
    report = Report(scales)
    for k, (tau_mem, tau_syn, th, vr, refr, reset) in enumerate(placement.profiles):
        image.alpha_v[k], image.alpha_i[k] = alpha(dt, tau_mem), alpha(dt, tau_syn)
        image.threshold[k] = min(int(round(th / q_s)), _THRESHOLD_MAX)
        image.v_reset[k] = int(round(vr / q_s))
        image.refractory[k] = refr
        image.reset_mode[k] = 1 if reset == "subtract" else 0
        fc.alpha_v[k], fc.alpha_i[k] = math.exp(-dt / tau_mem), math.exp(-dt / tau_syn)
        fc.threshold[k], fc.v_reset[k] = th, vr
        fc.refractory[k], fc.reset_mode[k] = refr, image.reset_mode[k]
    for pop in lifs:
        idx, k = placement.neurons[pop.label], placement.profile_of[pop.label]
        image.profile[idx] = fc.profile[idx] = k
        bias = pop.bias_array() * dt
        image.bias[idx] = np.rint(bias / q_s).astype(np.int64)
        fc.bias[idx] = bias
        a_v, a_i = int(image.alpha_v[k]), int(image.alpha_i[k])
        report.add("tau_mem", pop.label, pop.tau_mem, _tau_of(dt, a_v))
        report.add("tau_syn", pop.label, pop.tau_syn, _tau_of(dt, a_i))
        report.add("v_th", pop.label, pop.v_th, image.threshold[k] * q_s + pop.v_rest,
                   ref=pop.v_th - pop.v_rest)
        report.add("v_reset", pop.label, pop.v_reset, image.v_reset[k] * q_s + pop.v_rest,
                   ref=pop.v_reset - pop.v_rest)
        report.add_array("bias", pop.label, pop.bias_array(), image.bias[idx] * q_s / dt)

    for pop in net.populations:
        if isinstance(pop, PoissonSource):
            idx = placement.axons[pop.label]
            image.gen_prob[idx] = fc.gen_prob[idx] = pop.gen_prob()
            rates = np.broadcast_to(np.asarray(pop.rate_hz, float), (pop.n,))
            report.add_array("rate_hz", pop.label, rates,
                             pop.gen_prob() / float(1 << 16) / (dt * 1e-3))
    image.gen_seed = fc.gen_seed = gen_seed

    for proj in net.projections:
        axon, neuron, _, _, w, d = syn[proj.label]
        wq = np.rint(w / q_w).astype(np.int64)
        image.weight[axon, neuron], fc.weight[axon, neuron] = wq, w
        image.delay[axon, neuron] = fc.delay[axon, neuron] = d
        if proj.stdp is not None:
            image.mask[axon, neuron] = fc.mask[axon, neuron] = 1
        report.add_array("weight", proj.label, w, wq * q_w)

    if stdp is not None:
        image.learn = fc.learn = 1
        image.trace_mode = fc.trace_mode = 0 if stdp.mode == "all-to-all" else 1
        image.alpha_x, image.alpha_y = alpha(dt, stdp.tau_plus), alpha(dt, stdp.tau_minus)
        fc.alpha_x, fc.alpha_y = math.exp(-dt / stdp.tau_plus), math.exp(-dt / stdp.tau_minus)
        image.x_inc = image.y_inc = TRACE_INC
        image.a_plus, image.a_minus = a_plus, a_minus
        fc.a_plus, fc.a_minus = stdp.A_plus, stdp.A_minus
        image.w_min, image.w_max = int(round(stdp.w_min / q_w)), int(round(stdp.w_max / q_w))
        fc.w_min, fc.w_max = stdp.w_min, stdp.w_max
        image.stdp_seed = stdp.seed
        where = plastic[0].label
        unit = q_w * TRACE_INC / (1 << STDP_SHIFT)     # mV per unit of a_plus at one spike
        report.add("A_plus", where, stdp.A_plus, a_plus * unit)
        report.add("A_minus", where, stdp.A_minus, a_minus * unit)
        report.add("tau_plus", where, stdp.tau_plus, _tau_of(dt, image.alpha_x))
        report.add("tau_minus", where, stdp.tau_minus, _tau_of(dt, image.alpha_y))
        report.add("w_min", where, stdp.w_min, image.w_min * q_w)
        report.add("w_max", where, stdp.w_max, image.w_max * q_w)

    if scales.weight_exp < GUARD_EXP and weight_amp > 0:
        report.notes.append(
            f"weight_exp is {scales.weight_exp} (< {GUARD_EXP}): fewer guard bits; thresholds "
            f"are large ({state_amp / q_w:.0f} weight LSB) relative to the largest weight")
    image.validate()

    chip = ChipImage([image], placement.routes)
    float_chip = FloatChip([fc], placement.routes.copy())
    rows = []
    for pop in net.populations:
        if isinstance(pop, SpikeSource):
            st = pop.steps()
            ax = placement.axons[pop.label][st[:, 1]]
            rows.append(np.stack([st[:, 0], np.zeros_like(ax), ax], axis=1))
    inputs = np.unique(np.concatenate(rows), axis=0) if rows else np.zeros((0, 3), np.int64)
    return Compiled(net, config, chip, float_chip, inputs.astype(np.int64).reshape(-1, 3),
                    dict(placement.neurons), dict(placement.axons), report, scales,
                    {k: v[:4] for k, v in syn.items()})
