"""The core image: the integers of every hardware memory of a neuromorphic core.

This module is the single declaration of every field's width and signedness (see
``docs/numerics.md``). The golden model, the quantiser, the hardware generator and the upload code
all read it; it imports neither Amaranth nor the host, so ``spikeforge.sim`` and
``spikeforge.hdl`` can both depend on it without depending on each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "STATE_BITS", "TRACE_BITS", "DECAY_BITS", "THRESHOLD_BITS", "REFRACTORY_BITS",
    "PROFILE_INDEX_BITS", "AMPLITUDE_BITS", "STDP_SHIFT", "GEN_PROB_BITS", "WEIGHT_EXP_BITS",
    "Field", "CoreConfig", "CoreImage", "Route", "ChipImage", "check_routes",
    "NEURON_FIELDS", "PROFILE_FIELDS", "AXON_FIELDS", "SYNAPSE_FIELDS", "REGISTER_FIELDS",
]

STATE_BITS = 24          # v, i, bias, v_reset: signed
THRESHOLD_BITS = 23      # unsigned
DECAY_BITS = 16          # alpha_*: unsigned factor / 2^16
TRACE_BITS = 16          # x, y: unsigned
REFRACTORY_BITS = 4      # refractory period and counter
PROFILE_INDEX_BITS = 4   # up to 16 profiles
AMPLITUDE_BITS = 16      # a_plus, a_minus
STDP_SHIFT = 22          # dw = (a * trace + rand22) >> STDP_SHIFT
GEN_PROB_BITS = 16       # generator probability / 2^16
WEIGHT_EXP_BITS = 4      # weight_exp 0..15
SEED_BITS = 32
STEP_BITS = 32


def _is_pow2(value):
    return isinstance(value, int) and value > 0 and value & (value - 1) == 0


@dataclass(frozen=True)
class Field:
    """One stored quantity: its name, width in bits and signedness."""
    name: str
    bits: int
    signed: bool

    @property
    def lo(self):
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def hi(self):
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def check(self, values, where=""):
        """Raise ``ValueError`` naming the field and its range if any value lies outside it."""
        arr = np.asarray(values)
        if arr.size == 0:
            return
        lo, hi = int(arr.min()), int(arr.max())
        if lo < self.lo or hi > self.hi:
            bad = lo if lo < self.lo else hi
            raise ValueError(
                f"{where}{self.name} value {bad} is out of range "
                f"[{self.lo}, {self.hi}] ({'signed' if self.signed else 'unsigned'} "
                f"{self.bits} bits)")


@dataclass(frozen=True)
class CoreConfig:
    """Elaboration-time parameters of one core (``docs/numerics.md`` section 1)."""
    n_neurons: int = 256
    n_axons: int = 256
    weight_bits: int = 8
    delay_bits: int = 4
    lanes: int = 4
    plastic: bool = True
    n_profiles: int = 16

    def __post_init__(self):
        if not _is_pow2(self.n_neurons) or self.n_neurons > 1024:
            raise ValueError(
                f"n_neurons must be a power of two from 1 to 1024, not {self.n_neurons!r}")
        if not _is_pow2(self.n_axons) or self.n_axons > 1024:
            raise ValueError(
                f"n_axons must be a power of two from 1 to 1024, not {self.n_axons!r}")
        if not isinstance(self.weight_bits, int) or not 2 <= self.weight_bits <= 16:
            raise ValueError(f"weight_bits must be from 2 to 16, not {self.weight_bits!r}")
        if not isinstance(self.delay_bits, int) or not 0 <= self.delay_bits <= 4:
            raise ValueError(f"delay_bits must be from 0 to 4, not {self.delay_bits!r}")
        if self.lanes not in (1, 2, 4, 8):
            raise ValueError(f"lanes must be 1, 2, 4 or 8, not {self.lanes!r}")
        if not _is_pow2(self.n_profiles) or self.n_profiles > 1 << PROFILE_INDEX_BITS:
            raise ValueError(
                f"n_profiles must be a power of two from 1 to 16, not {self.n_profiles!r}")

    @property
    def n_slots(self):
        return 1 << self.delay_bits

    @property
    def max_delay(self):
        return self.n_slots - 1

    @property
    def axon_bits(self):
        return self.n_axons.bit_length() - 1

    @property
    def neuron_bits(self):
        return self.n_neurons.bit_length() - 1

    @property
    def slot_bits(self):
        """Width of a delay-slot accumulator: holds the exact sum of one weight per axon."""
        return self.weight_bits + self.axon_bits

    @property
    def synapse_bits(self):
        """Bits of one packed synapse word: weight, delay and (if plastic) mask."""
        return self.weight_bits + self.delay_bits + (1 if self.plastic else 0)

    @property
    def n_synapses(self):
        return self.n_axons * self.n_neurons

    def to_dict(self):
        return dataclasses.asdict(self)


def _s(name, bits):
    return Field(name, bits, True)


def _u(name, bits):
    return Field(name, bits, False)


# Per-neuron fields (state and parameters).
NEURON_FIELDS = {
    "v": _s("v", STATE_BITS),
    "i": _s("i", STATE_BITS),
    "ref": _u("ref", REFRACTORY_BITS),
    "y": _u("y", TRACE_BITS),
    "profile": _u("profile", PROFILE_INDEX_BITS),
    "bias": _s("bias", STATE_BITS),
}
PROFILE_FIELDS = {
    "threshold": _u("threshold", THRESHOLD_BITS),
    "v_reset": _s("v_reset", STATE_BITS),
    "alpha_v": _u("alpha_v", DECAY_BITS),
    "alpha_i": _u("alpha_i", DECAY_BITS),
    "refractory": _u("refractory", REFRACTORY_BITS),
    "reset_mode": _u("reset_mode", 1),
}
AXON_FIELDS = {
    "x": _u("x", TRACE_BITS),
    "gen_prob": _u("gen_prob", GEN_PROB_BITS),
}


def SYNAPSE_FIELDS(config):
    """Per-synapse fields; widths depend on the core configuration."""
    fields = {
        "weight": _s("weight", config.weight_bits),
        "delay": _u("delay", max(config.delay_bits, 1)),
    }
    if config.plastic:
        fields["mask"] = _u("mask", 1)
    return fields


def REGISTER_FIELDS(config):
    """Per-core registers; ``w_min``/``w_max`` take the weight width."""
    return {
        "weight_exp": _u("weight_exp", WEIGHT_EXP_BITS),
        "learn": _u("learn", 1),
        "trace_mode": _u("trace_mode", 1),
        "alpha_x": _u("alpha_x", DECAY_BITS),
        "alpha_y": _u("alpha_y", DECAY_BITS),
        "x_inc": _u("x_inc", TRACE_BITS),
        "y_inc": _u("y_inc", TRACE_BITS),
        "a_plus": _u("a_plus", AMPLITUDE_BITS),
        "a_minus": _u("a_minus", AMPLITUDE_BITS),
        "w_min": _s("w_min", config.weight_bits),
        "w_max": _s("w_max", config.weight_bits),
        "stdp_seed": _u("stdp_seed", SEED_BITS),
        "gen_seed": _u("gen_seed", SEED_BITS),
        "step": _u("step", STEP_BITS),
    }


def _zeros(shape):
    return np.zeros(shape, dtype=np.int64)


@dataclass
class CoreImage:
    """Every integer of one core's memories and registers.

    Arrays are ``int64``; shapes: neuron fields ``(N,)``, profile fields ``(P,)``, axon fields
    ``(A,)``, synapse fields ``(A, N)`` (row-major: one row per axon), ``slots`` ``(S, N)``.
    Registers are plain ints. ``validate()`` checks every value against its declared width.
    """
    config: CoreConfig
    # neurons
    v: np.ndarray = None
    i: np.ndarray = None
    ref: np.ndarray = None
    y: np.ndarray = None
    profile: np.ndarray = None
    bias: np.ndarray = None
    # profiles
    threshold: np.ndarray = None
    v_reset: np.ndarray = None
    alpha_v: np.ndarray = None
    alpha_i: np.ndarray = None
    refractory: np.ndarray = None
    reset_mode: np.ndarray = None
    # axons
    x: np.ndarray = None
    gen_prob: np.ndarray = None
    # synapses
    weight: np.ndarray = None
    delay: np.ndarray = None
    mask: np.ndarray = None
    # delay slots
    slots: np.ndarray = None
    # registers
    weight_exp: int = 0
    learn: int = 0
    trace_mode: int = 0
    alpha_x: int = 0
    alpha_y: int = 0
    x_inc: int = 0
    y_inc: int = 0
    a_plus: int = 0
    a_minus: int = 0
    w_min: int = 0
    w_max: int = 0
    stdp_seed: int = 0
    gen_seed: int = 0
    step: int = 0

    def __post_init__(self):
        c = self.config
        shapes = {**{k: (c.n_neurons,) for k in NEURON_FIELDS},
                  **{k: (c.n_profiles,) for k in PROFILE_FIELDS},
                  **{k: (c.n_axons,) for k in AXON_FIELDS},
                  "weight": (c.n_axons, c.n_neurons), "delay": (c.n_axons, c.n_neurons),
                  "mask": (c.n_axons, c.n_neurons), "slots": (c.n_slots, c.n_neurons)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if value is None:
                value = _zeros(shape)
            value = np.array(value, dtype=np.int64)
            if value.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, not {value.shape}")
            setattr(self, name, value)
        if self.w_max == 0 and self.w_min == 0:
            self.w_min = -(1 << (c.weight_bits - 1))
            self.w_max = (1 << (c.weight_bits - 1)) - 1

    @classmethod
    def empty(cls, config):
        return cls(config=config)

    def array_names(self):
        names = [*NEURON_FIELDS, *PROFILE_FIELDS, *AXON_FIELDS, "weight", "delay", "mask", "slots"]
        return names

    def validate(self):
        """Check every field against its declared range; raise ``ValueError`` naming the first
        that breaks it."""
        c = self.config
        for name, f in {**NEURON_FIELDS, **PROFILE_FIELDS, **AXON_FIELDS,
                        **SYNAPSE_FIELDS(c)}.items():
            f.check(getattr(self, name))
        if int(self.delay.max(initial=0)) > c.max_delay:
            raise ValueError(f"delay value {int(self.delay.max())} is out of range "
                             f"[0, {c.max_delay}] ({c.delay_bits} delay bits)")
        if int(self.profile.max(initial=0)) >= c.n_profiles:
            raise ValueError(f"profile value {int(self.profile.max())} is out of range "
                             f"[0, {c.n_profiles - 1}] ({c.n_profiles} profiles)")
        if not c.plastic and (self.mask.any() or self.x.any() or self.y.any()):
            raise ValueError("mask and traces must be zero on a core built without plasticity")
        _s("slots", c.slot_bits).check(self.slots)
        for name, f in REGISTER_FIELDS(c).items():
            f.check(getattr(self, name))
        if self.w_min > self.w_max:
            raise ValueError(f"w_min ({self.w_min}) must not exceed w_max ({self.w_max})")
        return self

    def copy(self):
        return dataclasses.replace(
            self, **{n: getattr(self, n).copy() for n in self.array_names()})

    def registers(self):
        return {name: int(getattr(self, name)) for name in REGISTER_FIELDS(self.config)}

    def equal(self, other):
        """True when every array and register is identical."""
        return (self.config == other.config
                and all(np.array_equal(getattr(self, n), getattr(other, n))
                        for n in self.array_names())
                and self.registers() == other.registers())


def check_routes(routes, n_neurons, n_axons):
    """Check a routing table ``(R, 4)`` against the cores' sizes (lists, one entry per core);
    raise ``ValueError`` naming the first entry out of range."""
    routes = np.asarray(routes, dtype=np.int64).reshape(-1, 4)
    k = len(n_neurons)
    for col, what in ((0, "source core"), (2, "destination core")):
        bad = routes[:, col][(routes[:, col] < 0) | (routes[:, col] >= k)]
        if bad.size:
            raise ValueError(f"route {what} {int(bad[0])} is out of range [0, {k - 1}]")
    for col, what, sizes in ((1, "source neuron", n_neurons), (3, "destination axon", n_axons)):
        size = np.asarray(sizes, dtype=np.int64)[routes[:, col - 1]]
        bad = (routes[:, col] < 0) | (routes[:, col] >= size)
        if bad.any():
            j = int(np.flatnonzero(bad)[0])
            raise ValueError(f"route {what} {int(routes[j, col])} is out of range "
                             f"[0, {int(size[j]) - 1}] on core {int(routes[j, col - 1])}")


@dataclass(frozen=True)
class Route:
    """One routing-table entry: the spike of (src_core, src_neuron) goes to (dst_core, dst_axon)."""
    src_core: int
    src_neuron: int
    dst_core: int
    dst_axon: int


@dataclass
class ChipImage:
    """Every core's image plus the routing table joining them and the host output flags.

    ``routes`` is an array of shape ``(R, 4)``: columns src_core, src_neuron, dst_core, dst_axon.
    ``host_out[c]`` is a boolean array ``(N_c,)``: neurons whose spikes go to the host.
    """
    cores: list
    routes: np.ndarray = None
    host_out: list = field(default=None)

    def __post_init__(self):
        if self.routes is None:
            self.routes = np.zeros((0, 4), dtype=np.int64)
        self.routes = np.array(self.routes, dtype=np.int64).reshape(-1, 4)
        if self.host_out is None:
            self.host_out = [np.ones(c.config.n_neurons, dtype=bool) for c in self.cores]
        self.host_out = [np.asarray(h, dtype=bool) for h in self.host_out]

    def validate(self):
        for core in self.cores:
            core.validate()
        check_routes(self.routes, [c.config.n_neurons for c in self.cores],
                     [c.config.n_axons for c in self.cores])
        return self

    def copy(self):
        return ChipImage([c.copy() for c in self.cores], self.routes.copy(),
                         [h.copy() for h in self.host_out])
