"""The counter-based PRNG of ``docs/numerics.md`` section 6, vectorised.

``rand(seed, t, kind, a, n)`` is a pure function: no stored sequence, identical for any lane
count or delivery order, and cheap in hardware (adds, XORs and fixed shifts only).
"""

from __future__ import annotations

import numpy as np

__all__ = ["KIND_DEPRESSION", "KIND_POTENTIATION", "KIND_GENERATOR",
           "mix32", "step_key", "rand", "generator_spikes"]

KIND_DEPRESSION = 0
KIND_POTENTIATION = 1
KIND_GENERATOR = 2

_M = np.uint64(0xFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B9)


def _round(x):
    x = (x + (x << np.uint64(10))) & _M
    x ^= x >> np.uint64(6)
    x = (x + (x << np.uint64(3))) & _M
    x ^= x >> np.uint64(11)
    return (x + (x << np.uint64(15))) & _M


def mix32(x):
    """The 32-bit mixer: two add-xor-shift rounds and a final fold. Accepts ints or arrays."""
    x = np.asarray(x, dtype=np.uint64) & _M
    y = _round(_round(x) ^ _GOLDEN)
    return y ^ (y >> np.uint64(16))


def step_key(seed, t):
    """Per-step key of one PRNG stream (computed once per step in hardware)."""
    return mix32(np.uint64(int(seed) & 0xFFFFFFFF) ^ mix32(np.uint64(int(t) & 0xFFFFFFFF)))


def rand(seed, t, kind, a, n):
    """32-bit random words for (seed, step t, kind, axon a, neuron n); a and n broadcast."""
    a = np.asarray(a, dtype=np.uint64)
    n = np.asarray(n, dtype=np.uint64)
    word = (np.uint64(kind) << np.uint64(30)) | (a << np.uint64(15)) | n
    return mix32(step_key(seed, t) ^ word)


def generator_spikes(gen_seed, gen_prob, t):
    """Boolean array: which axons the on-chip generators fire in step ``t``."""
    gen_prob = np.asarray(gen_prob, dtype=np.int64)
    r = rand(gen_seed, t, KIND_GENERATOR, np.arange(gen_prob.shape[0]), 0)
    return (r >> np.uint64(16)).astype(np.int64) < gen_prob
