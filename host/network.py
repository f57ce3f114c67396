"""Describe a spiking network in user units (mV, ms, Hz): populations, sources, projections.

This is what a user imports; it depends on NumPy only. Every argument is validated here, at the
boundary, with a ``ValueError``/``TypeError`` naming the value and the rule, so the compiler
(``spikeforge.host.compiler``) only ever sees well-formed networks.

The semantics (docs/numerics.md section 9) of a LIF population, per step of ``dt`` ms, with ``v``
relative to ``v_rest``:

    i <- i * exp(-dt/tau_syn) + (sum of the weights delivered this step, mV)
    v <- v * exp(-dt/tau_mem) + i + bias * dt          (held during the refractory period)
    spike when v > v_th - v_rest; then v <- v_reset - v_rest ("reset") or v - (v_th - v_rest)
    ("subtract"), and v is held for round(refractory / dt) steps.

Delays are whole steps (``round(delay / dt)``) and are the whole latency from a spike to its
targets' currents: a spike in step ``t`` reaches them in step ``t + d``. From an array or Poisson
source ``d`` is 0..15; a LIF neuron's spike crosses the routing table (one step), so its
projections take ``d`` in 1..16 and the core stores ``d - 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_DELAY_STEPS", "MAX_REFRACTORY_STEPS",
    "Network", "LIFPopulation", "SpikeSource", "PoissonSource", "Projection", "STDP",
    "AllToAll", "OneToOne", "FixedProbability", "DenseMatrix", "make_connector",
]

MAX_DELAY_STEPS = 15        # 4 delay bits at most (docs/numerics.md section 1)
MAX_REFRACTORY_STEPS = 15   # 4 refractory bits
_GEN_ONE = 1 << 16          # generator probability unit (16 bits)


# ---------------------------------------------------------------------------------- validation

def _number(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, not {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, not {value!r}")
    return value


def _positive(name, value, unit="ms"):
    value = _number(name, value)
    if value <= 0:
        raise ValueError(f"{name} must be greater than 0 {unit}, not {value!r} {unit}")
    return value


def _count(name, value, minimum=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, not {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value!r}")
    return int(value)


def _seed(name, value):
    if value is None:
        return None
    value = _count(name, value, minimum=0)
    if value >= 1 << 32:
        raise ValueError(f"{name} must fit 32 bits (0 to {(1 << 32) - 1}), not {value}")
    return value


def _float_array(name, value, shape=None, allow_nan=False):
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number or an array of numbers, not {value!r}") from None
    if shape is not None and arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, not {arr.shape}")
    bad = ~np.isfinite(arr) & ~(np.isnan(arr) if allow_nan else False)
    if bad.any():
        raise ValueError(f"{name} must be finite, not {float(arr[bad].flat[0])!r}")
    return arr


def _scalar_or_array(name, value, shape):
    """A float, or a float array of exactly ``shape``."""
    if np.ndim(value) == 0:
        return _number(name, value)
    return _float_array(name, value, shape)


def _steps(name, value, dt, limit):
    """A time in ms rounded to whole steps of ``dt``, checked against 0..limit steps."""
    arr = _float_array(name, value)
    if (arr < 0).any():
        raise ValueError(f"{name} must not be negative, not {float(arr[arr < 0].flat[0])!r} ms")
    steps = np.rint(arr / dt).astype(np.int64)
    if (steps > limit).any():
        worst = float(arr.flat[int(np.argmax(steps))])
        raise ValueError(f"{name} must round to 0..{limit} steps of dt ({dt!r} ms), "
                         f"not {int(steps.max())} steps ({worst!r} ms)")
    return steps


def _equal(a, b):
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True))
    return a == b


# ---------------------------------------------------------------------------------- populations

class _Population:
    """Common part of LIF populations and sources: size, label, and equality by value."""
    kind = ""
    _params = ()

    def __len__(self):
        return self.n

    def params(self):
        """The parameters that define the population (what the file format stores)."""
        return {name: getattr(self, name) for name in ("n", "label", *self._params)}

    def equal(self, other):
        return (type(self) is type(other)
                and all(_equal(v, getattr(other, k)) for k, v in self.params().items()))

    def __repr__(self):
        return f"{type(self).__name__}(n={self.n}, label={self.label!r})"


class LIFPopulation(_Population):
    """``n`` leaky integrate-and-fire neurons with one parameter set (``bias`` may vary)."""
    kind = "lif"
    _params = ("tau_mem", "tau_syn", "v_th", "v_reset", "v_rest", "refractory", "bias",
               "reset")

    def __init__(self, n, *, dt, label, tau_mem=20.0, tau_syn=5.0, v_th=1.0, v_reset=0.0,
                 v_rest=0.0, refractory=0.0, bias=0.0, reset="reset"):
        self.n = _count("n", n)
        self.label = label
        self.tau_mem = _positive("tau_mem", tau_mem)
        self.tau_syn = _positive("tau_syn", tau_syn)
        self.v_th = _number("v_th", v_th)
        self.v_reset = _number("v_reset", v_reset)
        self.v_rest = _number("v_rest", v_rest)
        if self.v_th <= self.v_rest:
            raise ValueError(f"v_th must be above v_rest ({self.v_rest!r} mV), "
                             f"not {self.v_th!r} mV")
        if self.v_reset >= self.v_th:
            raise ValueError(f"v_reset must be below v_th ({self.v_th!r} mV), "
                             f"not {self.v_reset!r} mV")
        self.refractory = _number("refractory", refractory)
        self.refractory_steps = int(_steps("refractory", self.refractory, dt,
                                           MAX_REFRACTORY_STEPS))
        self.bias = _scalar_or_array("bias", bias, (self.n,))
        if reset not in ("reset", "subtract"):
            raise ValueError(f"reset must be 'reset' or 'subtract', not {reset!r}")
        self.reset = reset

    def bias_array(self):
        """Bias per neuron in mV/ms."""
        return np.broadcast_to(np.asarray(self.bias, dtype=np.float64), (self.n,))


class SpikeSource(_Population):
    """``n`` inputs that spike at given times (ms). ``times`` is either a list of ``n``
    per-neuron sequences of times, or a NumPy array of shape ``(K, 2)`` with rows
    ``(neuron, time)``. Times round to steps; two spikes of one neuron in one step merge."""
    kind = "spike_source"
    _params = ("neurons", "times")

    def __init__(self, n, *, dt, label, times=()):
        self.n = _count("n", n)
        self.label = label
        if isinstance(times, np.ndarray) and times.ndim == 2:
            if times.shape[1] != 2:
                raise ValueError(f"times as an array must have shape (K, 2) of (neuron, time), "
                                 f"not {times.shape}")
            idx, t = times[:, 0], _float_array("times", times[:, 1])
        else:
            times = list(times)
            if times and len(times) != self.n:
                raise ValueError(f"times must hold one sequence per neuron ({self.n}), "
                                 f"not {len(times)}")
            per = [_float_array(f"times[{k}]", ts).reshape(-1) for k, ts in enumerate(times)]
            idx = np.concatenate([np.full(len(p), k) for k, p in enumerate(per)] or [[]])
            t = np.concatenate(per or [[]])
        idx = np.asarray(idx).reshape(-1)
        if idx.size and not np.array_equal(idx, np.rint(idx)):
            raise ValueError(f"spike source neuron indices must be integers, not {idx!r}")
        idx = idx.astype(np.int64)
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if idx.shape != t.shape:
            raise ValueError(f"neurons and times must have the same length, "
                             f"not {idx.size} and {t.size}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.n):
            bad = idx[(idx < 0) | (idx >= self.n)][0]
            raise ValueError(f"spike source neuron {bad} is out of range [0, {self.n - 1}]")
        if (t < 0).any():
            raise ValueError(f"spike times must not be negative, not {float(t[t < 0][0])!r} ms")
        order = np.lexsort((idx, t))
        self.neurons, self.times = idx[order], t[order]
        self.dt = dt

    def steps(self):
        """(step, neuron) pairs, one per distinct spike after rounding to steps."""
        pairs = np.stack([np.rint(self.times / self.dt).astype(np.int64), self.neurons], axis=1)
        return np.unique(pairs, axis=0) if pairs.size else pairs.reshape(0, 2)


class PoissonSource(_Population):
    """``n`` Poisson inputs of ``rate_hz`` (scalar or per neuron), mapped to the on-chip
    Bernoulli generators: per step ``p = rate * dt``, ``gen_prob = round(2^16 * p) < 2^16``.
    ``seed`` is the core's generator seed (sources on one core must agree; None: any)."""
    kind = "poisson_source"
    _params = ("rate_hz", "seed")

    def __init__(self, n, *, dt, label, rate_hz, seed=None):
        self.n = _count("n", n)
        self.label = label
        self.rate_hz = _scalar_or_array("rate_hz", rate_hz, (self.n,))
        rates = np.asarray(self.rate_hz)
        if (rates < 0).any():
            bad = float(rates[rates < 0].flat[0])
            raise ValueError(f"rate_hz must not be negative, not {bad!r}")
        limit = (_GEN_ONE - 0.5) / _GEN_ONE / (dt * 1e-3)
        if (rates >= limit).any():
            raise ValueError(f"rate_hz must be below {limit:.6g} Hz at dt {dt!r} ms "
                             f"(spike probability per step < 1), not {float(rates.max())!r}")
        self.seed = _seed("seed", seed)
        self.dt = dt

    def gen_prob(self):
        """The generator integers, one per neuron."""
        p = np.broadcast_to(np.asarray(self.rate_hz, dtype=np.float64), (self.n,)) * self.dt
        return np.rint(p * 1e-3 * _GEN_ONE).astype(np.int64)


# ---------------------------------------------------------------------------------- connectors

@dataclass(frozen=True)
class AllToAll:
    """Every pre neuron to every post neuron; ``allow_self=False`` drops i->i on a recurrent
    projection."""
    allow_self: bool = True
    kind = "all-to-all"


@dataclass(frozen=True)
class OneToOne:
    """Pre neuron k to post neuron k; both populations have the same size."""
    kind = "one-to-one"


@dataclass(frozen=True)
class FixedProbability:
    """Each (pre, post) pair is connected with probability ``p``, drawn with
    ``numpy.random.default_rng(seed)`` as ``rng.random((n_pre, n_post)) < p``."""
    p: float
    seed: int = 0
    allow_self: bool = True
    kind = "fixed-probability"

    def __post_init__(self):
        p = _number("p", self.p)
        if not 0 <= p <= 1:
            raise ValueError(f"p must be a probability in [0, 1], not {p!r}")
        object.__setattr__(self, "p", p)
        object.__setattr__(self, "seed", _seed("seed", self.seed))


@dataclass(frozen=True)
class DenseMatrix:
    """The weight is an ``(n_pre, n_post)`` matrix; NaN marks an absent synapse. A zero entry is
    a synapse of weight 0 (the same as absent when static; able to grow under STDP)."""
    kind = "dense"


_BY_NAME = {"all-to-all": AllToAll, "one-to-one": OneToOne, "dense": DenseMatrix}


def make_connector(connector, weight=None):
    """A connector object from a connector, a name, or None (dense for a 2-D weight, else
    all-to-all)."""
    if connector is None:
        return DenseMatrix() if np.ndim(weight) == 2 else AllToAll()
    if isinstance(connector, str):
        if connector not in _BY_NAME:
            raise ValueError(f"connector must be one of {sorted(_BY_NAME)} or a "
                             f"FixedProbability, not {connector!r}")
        return _BY_NAME[connector]()
    if isinstance(connector, (AllToAll, OneToOne, FixedProbability, DenseMatrix)):
        return connector
    raise TypeError(f"connector must be a connector name or object, not {connector!r}")


@dataclass(frozen=True)
class STDP:
    """Additive pair-based STDP (PyNN's SpikePairRule + AdditiveWeightDependence).

    ``A_plus``/``A_minus``: weight change in mV per spike pair at zero lag; ``w_min``/``w_max``
    in mV; ``mode``: "all-to-all" (traces add) or "nearest" (traces reset to one spike); ``seed``
    seeds the stochastic rounding of weight updates.
    """
    w_max: float
    tau_plus: float = 20.0
    tau_minus: float = 20.0
    A_plus: float = 0.01
    A_minus: float = 0.012
    w_min: float = 0.0
    mode: str = "all-to-all"
    seed: int = 0

    def __post_init__(self):
        for name in ("tau_plus", "tau_minus"):
            object.__setattr__(self, name, _positive(name, getattr(self, name)))
        for name in ("A_plus", "A_minus"):
            value = _number(name, getattr(self, name))
            if value < 0:
                raise ValueError(f"{name} must not be negative (it is a magnitude), "
                                 f"not {value!r} mV")
            object.__setattr__(self, name, value)
        w_min, w_max = _number("w_min", self.w_min), _number("w_max", self.w_max)
        if w_min > w_max:
            raise ValueError(f"w_min ({w_min!r} mV) must not exceed w_max ({w_max!r} mV)")
        object.__setattr__(self, "w_min", w_min)
        object.__setattr__(self, "w_max", w_max)
        if self.mode not in ("all-to-all", "nearest"):
            raise ValueError(f"mode must be 'all-to-all' or 'nearest', not {self.mode!r}")
        object.__setattr__(self, "seed", _seed("seed", self.seed))


# ---------------------------------------------------------------------------------- projections

class Projection:
    """Synapses from ``pre`` (a source or LIF population) to ``post`` (a LIF population)."""

    def __init__(self, pre, post, *, dt, label, weight, delay=1.0, connector=None, stdp=None):
        self.pre, self.post, self.label = pre, post, label
        self.connector = make_connector(connector, weight)
        if stdp is not None and not isinstance(stdp, STDP):
            raise TypeError(f"stdp must be an STDP or None, not {stdp!r}")
        self.stdp = stdp
        kind = self.connector.kind
        shape = {"one-to-one": (pre.n,)}.get(kind, (pre.n, post.n))
        if kind == "one-to-one" and pre.n != post.n:
            raise ValueError(f"one-to-one needs populations of one size, not {pre.n} and "
                             f"{post.n}")
        if kind == "dense":
            if np.ndim(weight) != 2:
                raise ValueError(f"a dense connector needs a weight matrix of shape {shape}, "
                                 f"not {np.shape(weight)}")
            self.weight = _float_array("weight", weight, shape, allow_nan=True)
        else:
            self.weight = _scalar_or_array("weight", weight, shape)
        self.delay = _scalar_or_array("delay", delay, shape)
        # The user's delay is the whole latency from a spike to its targets' currents. A LIF
        # neuron's spike crosses the routing table, which takes one step (docs/numerics.md 4),
        # so its projections need at least one step and may have one more than a source's.
        routed = isinstance(pre, LIFPopulation)
        self.delay_steps = _steps("delay", self.delay, dt, MAX_DELAY_STEPS + routed)
        if routed and (self.delay_steps < 1).any():
            raise ValueError(f"delay of a projection from LIF population {pre.label!r} must be "
                             f"at least dt ({dt!r} ms): a neuron's spike reaches its targets in "
                             f"the next step at the earliest, not "
                             f"{float(np.min(self.delay))!r} ms")
        if stdp is not None:
            w = self.connections()[2]
            out = w[(w < stdp.w_min) | (w > stdp.w_max)]
            if out.size:
                raise ValueError(f"initial weight {float(out[0])!r} mV of plastic projection "
                                 f"{label!r} "
                                 f"is outside [w_min, w_max] = [{stdp.w_min!r}, {stdp.w_max!r}]")

    def connections(self):
        """Arrays ``(pre, post, weight_mV, delay_steps)``, one entry per synapse, sorted by
        (pre, post)."""
        c, n_pre, n_post = self.connector, self.pre.n, self.post.n
        if c.kind == "one-to-one":
            present = np.eye(n_pre, dtype=bool)
            full = lambda a: np.diag(np.broadcast_to(np.asarray(a), (n_pre,)))  # noqa: E731
        else:
            full = lambda a: np.broadcast_to(np.asarray(a), (n_pre, n_post))  # noqa: E731
            if c.kind == "dense":
                present = ~np.isnan(self.weight)
            elif c.kind == "fixed-probability":
                present = np.random.default_rng(c.seed).random((n_pre, n_post)) < c.p
            else:
                present = np.ones((n_pre, n_post), dtype=bool)
            if c.kind != "dense" and not c.allow_self and self.pre is self.post:
                np.fill_diagonal(present, False)
        pre, post = np.nonzero(present)
        return (pre.astype(np.int64), post.astype(np.int64),
                full(self.weight)[pre, post].astype(np.float64),
                full(self.delay_steps)[pre, post].astype(np.int64))

    def params(self):
        return {"label": self.label, "pre": self.pre.label, "post": self.post.label,
                "connector": self.connector, "weight": self.weight, "delay": self.delay,
                "stdp": self.stdp}

    def equal(self, other):
        return all(_equal(v, other.params()[k]) for k, v in self.params().items())

    def __repr__(self):
        return f"Projection({self.label!r}, {self.connector.kind})"


# ---------------------------------------------------------------------------------- network

class Network:
    """A network in user units: ``dt`` in ms; populations in creation order."""

    def __init__(self, dt=1.0):
        self.dt = _positive("dt", dt)
        self.populations = []
        self.projections = []

    def _label(self, label, default, taken):
        if label is None:
            label, k = default, 1
            while label in taken:
                label, k = f"{default}_{k}", k + 1
        if not isinstance(label, str) or not label:
            raise TypeError(f"label must be a non-empty string, not {label!r}")
        if label in taken:
            raise ValueError(f"label {label!r} is already used in this network")
        return label

    def _add(self, cls, n, label, **kwargs):
        taken = {p.label for p in self.populations}
        label = self._label(label, f"{cls.kind}{len(self.populations)}", taken)
        pop = cls(n, dt=self.dt, label=label, **kwargs)
        self.populations.append(pop)
        return pop

    def population(self, n, *, label=None, **params):
        """Add ``n`` LIF neurons (parameters as ``LIFPopulation``; mV, ms, mV/ms)."""
        return self._add(LIFPopulation, n, label, **params)

    def spike_source(self, n, *, times=(), label=None):
        """Add ``n`` inputs spiking at the given times (see ``SpikeSource``)."""
        return self._add(SpikeSource, n, label, times=times)

    def poisson_source(self, n, *, rate_hz, seed=None, label=None):
        """Add ``n`` Poisson inputs of ``rate_hz`` mapped to on-chip generators."""
        return self._add(PoissonSource, n, label, rate_hz=rate_hz, seed=seed)

    def connect(self, pre, post, *, weight, delay=1.0, connector=None, stdp=None, label=None):
        """Connect ``pre`` to the LIF population ``post``. ``weight`` in mV (scalar, a matrix
        ``(n_pre, n_post)``, or ``(n,)`` for one-to-one), ``delay`` in ms."""
        for name, pop in (("pre", pre), ("post", post)):
            if not isinstance(pop, _Population) or not any(pop is p for p in self.populations):
                raise ValueError(f"{name} must be a population of this network, not {pop!r}")
        if not isinstance(post, LIFPopulation):
            raise ValueError(f"post must be a LIF population, not the source {post.label!r}")
        taken = {p.label for p in self.projections}
        label = self._label(label, f"{pre.label}->{post.label}", taken)
        proj = Projection(pre, post, dt=self.dt, label=label, weight=weight, delay=delay,
                          connector=connector, stdp=stdp)
        self.projections.append(proj)
        return proj

    def __getitem__(self, label):
        for pop in self.populations:
            if pop.label == label:
                return pop
        raise KeyError(f"no population labelled {label!r}")

    def equal(self, other):
        """True when both networks have the same dt, populations and projections (by value)."""
        def same(xs, ys):
            return len(xs) == len(ys) and all(a.equal(b) for a, b in zip(xs, ys, strict=True))
        return (self.dt == other.dt and same(self.populations, other.populations)
                and same(self.projections, other.projections))
