"""Compile a ``Network`` onto one or several cores: place, check the fit, quantise, build.

1. ``place`` (``spikeforge.host.placement``): LIF neurons onto cores, axons per core, the
   routing table. On one core: neurons 0.. in population order; sources, then the projecting LIF
   neurons, at axons 0..; one route per projecting neuron.
2. The fit check (``_check_fit``, before anything is built) names the limit a network breaks:
   neurons (``n_cores x n_neurons``), axons, profiles, routing entries and fan-out per core,
   delays, plasticity, one synapse per (axon, neuron), one STDP rule and one generator seed.
3. ``choose_scales``: one weight LSB ``q_w`` and one ``weight_exp`` for the whole chip
   (docs/numerics.md 3 and 6), so a weight means the same on every core; every core gets the
   same registers (STDP, ``gen_seed``).
4. Build the ``ChipImage``, the float ``FloatChip`` with the same placement, the input spikes
   ``(step, core, axon)`` and the quantisation report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from spikeforge.host.network import LIFPopulation, Network, PoissonSource, SpikeSource
from spikeforge.host.placement import Placement, RoutingLimits, place
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

__all__ = ["TRACE_INC", "HEADROOM", "GUARD_EXP", "Placement", "RoutingLimits", "Scales",
           "Quantity", "Report", "Compiled", "place", "choose_scales", "alpha",
           "compile_network"]

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
    """The result of ``compile_network``.

    ``placement``: LIF label -> ``(n, 2)`` rows (core, neuron index); ``neurons``: LIF label ->
    chip-wide neuron ids ``core * n_neurons + index`` (on one core: the index); ``axon_placement``:
    pre label -> ``(K, 3)`` rows (pre neuron, core, axon); ``axons``: the same as chip-wide ids
    ``core * n_axons + axon`` (on one core: one axon per neuron); ``synapses``: projection label ->
    ``(axon, neuron, pre, post, core)`` index arrays; ``inputs``: ``(K, 3)`` step, core, axon.
    """
    network: Network
    config: CoreConfig
    chip: ChipImage
    float_chip: FloatChip
    inputs: np.ndarray
    neurons: dict
    axons: dict
    report: Report
    scales: Scales
    synapses: dict
    placement: dict = field(default_factory=dict)
    axon_placement: dict = field(default_factory=dict)
    n_cores: int = 1
    limits: RoutingLimits = field(default_factory=RoutingLimits)

    def _chip(self, image):
        if image is None:
            return self.chip
        if isinstance(image, CoreImage):
            if self.n_cores != 1:
                raise ValueError(f"a CoreImage holds one core but the network spans "
                                 f"{self.n_cores} cores: pass a ChipImage")
            return ChipImage([image])
        if not isinstance(image, ChipImage):
            raise TypeError(f"image must be a CoreImage or ChipImage, not {type(image).__name__}")
        if len(image.cores) != self.n_cores:
            raise ValueError(f"image has {len(image.cores)} cores but the network was compiled "
                             f"for {self.n_cores}")
        return image

    def weights_to_user(self, image=None):
        """Weights in mV per projection, as ``(n_pre, n_post)`` matrices with NaN where there
        is no synapse. ``image``: a ``ChipImage`` (or, on one core, a ``CoreImage``); default:
        the compiled one."""
        chip = self._chip(image)
        out = {}
        for proj in self.network.projections:
            axon, neuron, pre, post, core = self.synapses[proj.label]
            w = np.full((proj.pre.n, proj.post.n), np.nan)
            for c in np.unique(core):
                sel = core == c
                w[pre[sel], post[sel]] = chip.cores[c].weight[axon[sel], neuron[sel]]
            out[proj.label] = w * self.scales.q_w
        return out

    def neuron_state(self, var, image=None):
        """One state variable (``v``, ``i``, ``ref``, ``y``) per LIF population, in population
        index order, read from ``image`` (a ``ChipImage``; default: the compiled one)."""
        chip = self._chip(image)
        return {label: np.array([getattr(chip.cores[c], var)[n] for c, n in rows],
                                dtype=np.int64).reshape(-1)
                for label, rows in self.placement.items()}

    def population_spikes(self, trace):
        """A trace's spikes per LIF population: label -> ``(K, 2)`` rows (step, index in the
        population), sorted."""
        n = self.config.n_neurons
        pop_id = np.full(self.n_cores * n, -1)
        idx = np.full(self.n_cores * n, -1)
        labels = list(self.placement)
        for j, label in enumerate(labels):
            flat = self.placement[label][:, 0] * n + self.placement[label][:, 1]
            pop_id[flat], idx[flat] = j, np.arange(len(flat))
        s = np.asarray(trace.spikes, dtype=np.int64).reshape(-1, 3)
        flat = s[:, 1] * n + s[:, 2]
        out = {}
        for j, label in enumerate(labels):
            sel = pop_id[flat] == j
            rows = np.stack([s[sel, 0], idx[flat[sel]]], axis=1)
            out[label] = rows[np.lexsort((rows[:, 1], rows[:, 0]))] if len(rows) else rows
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


def _synapses(net, placement, conns):
    """Projection label -> (axon, neuron, pre, post, core, weight mV, stored delay)."""
    syn = {}
    for proj in net.projections:
        pre, post, w, d = conns[proj.label]
        if isinstance(proj.pre, LIFPopulation):
            d = d - 1     # the route takes one step of the user's delay (numerics.md 4)
        core, neuron = placement.neurons[proj.post.label][post].T
        axon = placement.axon_of[proj.pre.label][pre, core]
        syn[proj.label] = (axon, neuron, pre, post, core, w, d)
    return syn


def _check_fit(net, config, placement, syn, stdp, plastic, limits):
    """Every limit, in order; the first broken one raises ``ValueError`` naming it."""
    c, k = config, placement.n_cores

    def on(core):
        return "" if k == 1 else f" on core {core}"

    for core in range(k):
        n = int(placement.n_axons[core])
        if n > c.n_axons:
            raise ValueError(f"network needs {n} axons (sources and projecting neurons){on(core)} "
                             f"but a core has {c.n_axons} (n_axons)")
    offset = 0
    for pop in net.populations:
        if isinstance(pop, PoissonSource) and offset + pop.n > c.n_axons:
            raise ValueError(f"poisson source {pop.label!r} needs generator axons up to "
                             f"{offset + pop.n - 1} (its index among the source neurons, the same "
                             f"on every core) but a core has {c.n_axons} (n_axons)")
        offset += 0 if isinstance(pop, LIFPopulation) else pop.n
    for core in range(k):
        n = len(placement.profiles[core])
        if n > c.n_profiles:
            raise ValueError(f"network needs {n} neuron profiles (distinct parameter sets)"
                             f"{on(core)} but a core has {c.n_profiles} (n_profiles)")
    routes = placement.routes
    entries = np.bincount(routes[:, 0], minlength=k)
    for core in range(k):
        if entries[core] > limits.route_entries:
            raise ValueError(f"network needs {int(entries[core])} routing entries{on(core)} but a "
                             f"table holds {limits.route_entries} (route_entries)")
    for label, rows in placement.axons.items():
        if label not in placement.neurons:
            continue
        fan = np.bincount(rows[:, 0], minlength=len(placement.neurons[label]))
        if fan.max(initial=0) > limits.fan_out:
            j = int(np.argmax(fan))
            raise ValueError(f"neuron {label!r}[{j}] fans out to {int(fan[j])} (core, axon) "
                             f"destinations but at most {limits.fan_out} are allowed (fan_out)")
    for label, s in syn.items():
        d = s[6]
        if d.size and d.max() > c.max_delay:
            raise ValueError(f"projection {label!r} needs delay {int(d.max())} steps but a core "
                             f"has at most {c.max_delay} (delay_bits {c.delay_bits})")
    if stdp is not None and not c.plastic:
        raise ValueError(f"projection {plastic[0].label!r} has STDP but the core is built "
                         f"without plasticity (plastic=False)")
    seen = np.zeros(k * c.n_axons * c.n_neurons, dtype=bool)
    for label, (axon, neuron, _, _, core, *_rest) in syn.items():
        flat = (core * c.n_axons + axon) * c.n_neurons + neuron
        if seen[flat].any():
            j = int(np.argmax(seen[flat]))
            raise ValueError(f"projection {label!r} and an earlier projection both connect axon "
                             f"{int(axon[j])} to neuron {int(neuron[j])}{on(int(core[j]))}: a "
                             f"core holds one synapse per (axon, neuron)")
        seen[flat] = True


def _amplitude(name, value, q_w, inc):
    """``round(A / q_w * 2^22 / inc)``: one spike pair changes the weight by ``A``."""
    a = int(round(value / q_w * (1 << STDP_SHIFT) / inc))
    if a > _AMP_MAX:
        top = _AMP_MAX * inc / (1 << STDP_SHIFT) * q_w
        raise ValueError(f"{name} {value!r} mV needs {name.lower()} = {a}, above {_AMP_MAX} "
                         f"({AMPLITUDE_BITS} bits): at most {top:.6g} mV with a weight LSB of "
                         f"{q_w:.6g} mV")
    return a


def _check_args(net, config, n_cores, limits):
    if not isinstance(net, Network):
        raise TypeError(f"compile_network needs a Network, not {type(net).__name__}")
    if not isinstance(config, CoreConfig):
        raise TypeError(f"config must be a CoreConfig, not {type(config).__name__}")
    if isinstance(n_cores, bool) or not isinstance(n_cores, int) or n_cores < 1:
        raise ValueError(f"n_cores must be a positive integer, not {n_cores!r}")
    if not isinstance(limits, RoutingLimits):
        raise TypeError(f"limits must be a RoutingLimits, not {type(limits).__name__}")


def compile_network(net, config=None, n_cores=1, limits=None, record=None):
    """Compile ``net`` onto up to ``n_cores`` identical cores of ``config`` (default
    ``CoreConfig()``) joined by a router of ``limits`` (default ``RoutingLimits()``).

    ``record``: labels of the LIF populations whose spikes go to the host (``host_out``); None
    sends every neuron's. Raises ``ValueError`` naming the limit when the network does not fit,
    before building anything.
    """
    config = CoreConfig() if config is None else config
    limits = RoutingLimits() if limits is None else limits
    _check_args(net, config, n_cores, limits)
    labels = {p.label for p in net.populations if isinstance(p, LIFPopulation)}
    record = None if record is None else list(record)
    for label in record or ():
        if label not in labels:
            raise ValueError(f"record names {label!r}, which is not a LIF population of the "
                             f"network ({', '.join(sorted(labels))})")
    dt = net.dt
    conns = {p.label: p.connections() for p in net.projections}
    placement = place(net, config, n_cores, {k: v[:2] for k, v in conns.items()})
    syn = _synapses(net, placement, conns)
    stdp, plastic = _one_stdp(net)
    gen_seed = _gen_seed(net)
    _check_fit(net, config, placement, syn, stdp, plastic, limits)

    lifs = [p for p in net.populations if isinstance(p, LIFPopulation)]
    weight_amp = max([float(np.abs(s[5]).max(initial=0.0)) for s in syn.values()]
                     + ([abs(stdp.w_min), abs(stdp.w_max)] if stdp else []), default=0.0)
    state_amp = max([max(p.v_th - p.v_rest, abs(p.v_reset - p.v_rest),
                         float(np.abs(p.bias_array()).max()) * dt) for p in lifs], default=0.0)
    scales = choose_scales(weight_amp, state_amp, config)
    a_plus = a_minus = 0
    if stdp is not None:
        a_plus = _amplitude("A_plus", stdp.A_plus, scales.q_w, TRACE_INC)
        a_minus = _amplitude("A_minus", stdp.A_minus, scales.q_w, TRACE_INC)
    report = Report(scales)
    images, fcs = _build(net, config, placement, syn, scales, report)
    _registers(images, fcs, stdp, plastic, (a_plus, a_minus), gen_seed, scales, dt, report)
    if scales.weight_exp < GUARD_EXP and weight_amp > 0:
        report.notes.append(
            f"weight_exp is {scales.weight_exp} (< {GUARD_EXP}): fewer guard bits; thresholds "
            f"are large ({state_amp / scales.q_w:.0f} weight LSB) relative to the largest weight")
    for image in images:
        image.validate()

    host_out = [np.full(config.n_neurons, record is None) for _ in range(n_cores)]
    for label in record or ():
        for c, n in placement.neurons[label]:
            host_out[c][n] = True
    chip = ChipImage(images, placement.routes, host_out)
    float_chip = FloatChip(fcs, placement.routes.copy(), [h.copy() for h in host_out])
    neurons = {k: v[:, 0] * config.n_neurons + v[:, 1] for k, v in placement.neurons.items()}
    axons = {k: v[:, 1] * config.n_axons + v[:, 2] for k, v in placement.axons.items()}
    return Compiled(net, config, chip, float_chip, _inputs(net, placement), neurons, axons,
                    report, scales, {k: v[:5] for k, v in syn.items()},
                    dict(placement.neurons), dict(placement.axons), n_cores, limits)


def _inputs(net, placement):
    """Array-source spikes as rows (step, core, axon): one per core where the neuron has an
    axon."""
    rows = []
    for pop in net.populations:
        if isinstance(pop, SpikeSource):
            st = pop.steps()
            table = placement.axon_of[pop.label][st[:, 1]]          # (K, n_cores)
            j, c = np.nonzero(table >= 0)
            rows.append(np.stack([st[j, 0], c, table[j, c]], axis=1))
    if not rows:
        return np.zeros((0, 3), np.int64)
    return np.unique(np.concatenate(rows).reshape(-1, 3), axis=0).astype(np.int64)


def _build(net, config, placement, syn, scales, report):
    """Per-core images and float twins: profiles, neurons, generators, synapses."""
    dt, q_w, q_s = net.dt, scales.q_w, scales.q_s
    images = [CoreImage.empty(config) for _ in range(placement.n_cores)]
    fcs = [FloatCore(config) for _ in range(placement.n_cores)]
    for image, fc, keys in zip(images, fcs, placement.profiles, strict=True):
        image.weight_exp = scales.weight_exp
        for k, (tau_mem, tau_syn, th, vr, refr, reset) in enumerate(keys):
            image.alpha_v[k], image.alpha_i[k] = alpha(dt, tau_mem), alpha(dt, tau_syn)
            image.threshold[k] = min(int(round(th / q_s)), _THRESHOLD_MAX)
            image.v_reset[k] = int(round(vr / q_s))
            image.refractory[k] = refr
            image.reset_mode[k] = 1 if reset == "subtract" else 0
            fc.alpha_v[k], fc.alpha_i[k] = math.exp(-dt / tau_mem), math.exp(-dt / tau_syn)
            fc.threshold[k], fc.v_reset[k] = th, vr
            fc.refractory[k], fc.reset_mode[k] = refr, image.reset_mode[k]
    for pop in net.populations:
        if not isinstance(pop, LIFPopulation):
            continue
        rows, prof = placement.neurons[pop.label], placement.profile_of[pop.label]
        bias = pop.bias_array() * dt
        qbias = np.rint(bias / q_s).astype(np.int64)
        for c in np.unique(rows[:, 0]):
            sel = rows[:, 0] == c
            idx = rows[sel, 1]
            images[c].profile[idx] = fcs[c].profile[idx] = prof[sel]
            images[c].bias[idx], fcs[c].bias[idx] = qbias[sel], bias[sel]
        im, k = images[rows[0, 0]], prof[0]
        report.add("tau_mem", pop.label, pop.tau_mem, _tau_of(dt, int(im.alpha_v[k])))
        report.add("tau_syn", pop.label, pop.tau_syn, _tau_of(dt, int(im.alpha_i[k])))
        report.add("v_th", pop.label, pop.v_th, im.threshold[k] * q_s + pop.v_rest,
                   ref=pop.v_th - pop.v_rest)
        report.add("v_reset", pop.label, pop.v_reset, im.v_reset[k] * q_s + pop.v_rest,
                   ref=pop.v_reset - pop.v_rest)
        report.add_array("bias", pop.label, pop.bias_array(), qbias * q_s / dt)
    for pop in net.populations:
        if isinstance(pop, PoissonSource):
            k, c, a = placement.axons[pop.label].T
            prob = pop.gen_prob()
            for core in np.unique(c):
                sel = c == core
                images[core].gen_prob[a[sel]] = fcs[core].gen_prob[a[sel]] = prob[k[sel]]
            rates = np.broadcast_to(np.asarray(pop.rate_hz, float), (pop.n,))
            report.add_array("rate_hz", pop.label, rates, prob / float(1 << 16) / (dt * 1e-3))
    for proj in net.projections:
        axon, neuron, _, _, core, w, d = syn[proj.label]
        wq = np.rint(w / q_w).astype(np.int64)
        for c in np.unique(core):
            sel = core == c
            im, fc, a, n = images[c], fcs[c], axon[sel], neuron[sel]
            im.weight[a, n], fc.weight[a, n] = wq[sel], w[sel]
            im.delay[a, n] = fc.delay[a, n] = d[sel]
            if proj.stdp is not None:
                im.mask[a, n] = fc.mask[a, n] = 1
        report.add_array("weight", proj.label, w, wq * q_w)
    return images, fcs


def _registers(images, fcs, stdp, plastic, amplitudes, gen_seed, scales, dt, report):
    """The core registers, identical on every core (one STDP rule, one generator seed)."""
    a_plus, a_minus = amplitudes
    q_w = scales.q_w
    for image, fc in zip(images, fcs, strict=True):
        image.gen_seed = fc.gen_seed = gen_seed
        if stdp is None:
            continue
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
    if stdp is not None:
        image, where = images[0], plastic[0].label
        unit = q_w * TRACE_INC / (1 << STDP_SHIFT)     # mV per unit of a_plus at one spike
        report.add("A_plus", where, stdp.A_plus, a_plus * unit)
        report.add("A_minus", where, stdp.A_minus, a_minus * unit)
        report.add("tau_plus", where, stdp.tau_plus, _tau_of(dt, image.alpha_x))
        report.add("tau_minus", where, stdp.tau_minus, _tau_of(dt, image.alpha_y))
        report.add("w_min", where, stdp.w_min, image.w_min * q_w)
        report.add("w_max", where, stdp.w_max, image.w_max * q_w)
