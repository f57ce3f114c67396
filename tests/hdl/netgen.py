"""Random seeded core images and inputs for the RTL-versus-golden comparisons.

Each seed picks a *variant* (``VARIANTS[seed % len(VARIANTS)]``) so that every batch of seeds
covers the edge cases: saturation at both ends, every neuron firing, empty steps, maximum delay,
weights pinned at ``w_min``/``w_max`` by strong learning, and back-to-back events that hit the
same (neuron, slot). The delay slots of the initial image are made by running the golden model
for a few warm-up steps from empty slots, so they are sums the hardware could really hold (slot
sums are exact only for reachable states, numerics.md 4).
"""

from __future__ import annotations

import numpy as np

from spikeforge.image import CoreImage
from spikeforge.sim.golden import GoldenCore

__all__ = ["VARIANTS", "random_image", "random_inputs", "first_difference"]

VARIANTS = ("random", "saturate", "allfire", "quiet", "maxdelay", "pinned", "hazard")

_S_LO, _S_HI = -(1 << 23), (1 << 23) - 1


def _log_uniform(rng, hi_bits, size=None):
    return (2.0 ** rng.uniform(0, hi_bits, size)).astype(np.int64) - 1


def random_image(config, seed, variant=None, learn=None, activity=1.0):
    """A random valid ``CoreImage`` for ``config``; returns ``(image, variant, rng)``.

    ``activity`` below 1 (for the large board configurations, to keep CI time in check)
    scales the generator probabilities down and gives the ``allfire`` neurons a refractory
    period of ``round(1 / activity) - 1`` steps: they still all fire in the same step, but
    only every ``round(1 / activity)`` steps. The random draws are the same for any value."""
    c = config
    rng = np.random.default_rng(seed)
    variant = variant or VARIANTS[seed % len(VARIANTS)]
    N, A, P, S, W = c.n_neurons, c.n_axons, c.n_profiles, c.n_slots, c.weight_bits
    wlo, whi = -(1 << (W - 1)), (1 << (W - 1)) - 1
    im = CoreImage(c)

    im.weight = rng.integers(wlo, whi + 1, (A, N))
    im.weight[rng.random((A, N)) > rng.uniform(0.2, 1.0)] = 0
    im.delay = rng.integers(0, S, (A, N))
    if variant == "maxdelay":
        im.delay[:] = S - 1
    if variant == "hazard":
        im.delay[:] = rng.integers(0, S)
    if c.plastic:
        im.mask = (rng.random((A, N)) < rng.uniform(0.3, 1.0)).astype(np.int64)

    im.threshold = _log_uniform(rng, 20, P)
    im.v_reset = rng.integers(-(1 << 12), 1 << 12, P)
    im.alpha_v = rng.integers(0, 1 << 16, P)
    im.alpha_i = rng.integers(0, 1 << 16, P)
    im.alpha_v[rng.random(P) < 0.2] = 65535
    im.alpha_i[rng.random(P) < 0.2] = 0
    im.refractory = rng.integers(0, 16, P)
    im.refractory[rng.random(P) < 0.5] = 0
    im.reset_mode = rng.integers(0, 2, P)

    im.profile = rng.integers(0, P, N)
    im.bias = rng.integers(-(1 << 8), 1 << 10, N)
    im.v = rng.integers(-(1 << 12), 1 << 12, N)
    im.i = rng.integers(-(1 << 12), 1 << 12, N)
    im.ref = rng.integers(0, 16, N) * (rng.random(N) < 0.3)
    if c.plastic:
        im.y = rng.integers(0, 1 << 16, N)
        im.x = rng.integers(0, 1 << 16, A)
    im.gen_prob = rng.integers(0, 1 << 13, A) * (rng.random(A) < 0.5)

    im.weight_exp = int(rng.integers(0, 10))
    im.learn = int(rng.integers(0, 2) if learn is None else learn) if c.plastic else 0
    im.trace_mode = int(rng.integers(0, 2))
    im.alpha_x, im.alpha_y = (int(v) for v in rng.integers(0, 1 << 16, 2))
    im.x_inc, im.y_inc = (int(v) for v in rng.integers(0, 1 << 16, 2))
    im.a_plus, im.a_minus = (int(v) for v in _log_uniform(rng, 16, 2))
    lo, hi = sorted(int(v) for v in rng.integers(wlo, whi + 1, 2))
    im.w_min, im.w_max = (lo, hi) if rng.random() < 0.5 else (wlo, whi)
    im.stdp_seed, im.gen_seed = (int(v) for v in rng.integers(0, 1 << 32, 2))
    im.step = int(rng.integers(0, 1 << 32)) if rng.random() < 0.5 else (1 << 32) - 3

    if variant == "saturate":
        im.weight_exp = 15
        im.threshold[:] = (1 << 23) - 1
        im.alpha_v[:] = 65535
        im.alpha_i[:] = 65535
        im.v = rng.choice([_S_LO, _S_HI, _S_LO + 5, _S_HI - 5], N)
        im.i = rng.choice([_S_LO, _S_HI], N)
        im.bias = rng.choice([_S_LO, _S_HI, 0], N)
        im.x_inc = im.y_inc = 65535
    elif variant == "allfire":
        im.threshold[:] = 0
        im.refractory[:] = min(15, round(1 / activity) - 1)
        im.bias[:] = 1 << 20
        im.ref[:] = 0
        im.v_reset[:] = 0
    elif variant == "quiet":
        im.gen_prob[:] = 0
        im.bias[:] = 0
    elif variant == "pinned":
        im.learn = int(c.plastic)
        im.a_plus = im.a_minus = 65535
        im.x_inc = im.y_inc = 65535
        span = max(1, (whi - wlo) // 8)
        im.w_min, im.w_max = -span, span
    if c.plastic and variant == "pinned":
        im.mask[:] = 1
    if not c.plastic:
        im.learn = 0
    if activity != 1.0:
        im.gen_prob = (im.gen_prob * activity).astype(np.int64)
    im.validate()

    warm = int(rng.integers(0, S + 2))
    if warm:
        golden = GoldenCore(im)
        for _ in range(warm):
            golden.step(random_events(c, rng, variant, activity))
        im = golden.image
    return im, variant, rng


def random_events(config, rng, variant, activity=1.0):
    """External input of one step: axon numbers in random order, with some duplicates;
    ``activity`` scales the rate of every variant."""
    A = config.n_axons
    if variant == "quiet":
        return np.zeros(0, dtype=np.int64)
    rate = {"hazard": 0.9, "allfire": 0.5, "saturate": 0.5}.get(variant, rng.uniform(0, 0.3))
    rate *= activity
    events = np.flatnonzero(rng.random(A) < rate)
    if events.size and rng.random() < 0.3:
        events = np.concatenate([events, rng.choice(events, size=1 + events.size // 4)])
    return rng.permutation(events)


def random_inputs(config, rng, variant, steps, activity=1.0):
    """``steps`` external inputs; a random fifth of the steps of every variant are empty."""
    out = []
    for _ in range(steps):
        ev = random_events(config, rng, variant, activity)
        out.append(ev if rng.random() > 0.2 else ev[:0])
    return out


def first_difference(got, want):
    """``None`` if the images agree, else a message naming the first differing variable, its
    index and both values (the RTL value first)."""
    for name in want.array_names():
        a, b = getattr(got, name), getattr(want, name)
        if not np.array_equal(a, b):
            idx = tuple(int(k) for k in np.argwhere(a != b)[0])
            where = ", ".join(str(k) for k in idx)
            return f"{name}[{where}]: rtl {int(a[idx])}, golden {int(b[idx])}"
    ra, rb = got.registers(), want.registers()
    for name in rb:
        if ra[name] != rb[name]:
            return f"register {name}: rtl {ra[name]}, golden {rb[name]}"
    return None
