"""Exact comparison of two traces: identical, or the first divergence with both values.

"Bit-exact" has one meaning here: the same spikes in every step (same step, core, neuron) and the
same value of every probe after every step. A comparison reports the first divergent step, the
neuron and the variable, with both values, plus a summary of how far the traces differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Divergence", "Comparison", "compare_traces"]


@dataclass(frozen=True)
class Divergence:
    step: int
    core: int
    neuron: int
    variable: str        # "spike" or a probe variable
    a: object
    b: object

    def __str__(self):
        return (f"first divergence at step {self.step}, core {self.core}, neuron {self.neuron}, "
                f"{self.variable}: {self.a} vs {self.b}")


@dataclass
class Comparison:
    identical: bool
    first: Divergence | None
    summary: dict = field(default_factory=dict)

    def __str__(self):
        s = self.summary
        head = "identical" if self.identical else str(self.first)
        return (f"{head}\n"
                f"  steps {s['first_step']}..{s['last_step']}, spikes {s['spikes_a']} vs "
                f"{s['spikes_b']} ({s['spikes_only_a']} only in A, "
                f"{s['spikes_only_b']} only in B), "
                f"probes {s['probes']} with {s['probe_mismatches']} differing values, "
                f"{s['divergent_steps']} divergent steps")


def _spike_keys(spikes):
    # One integer per (step, core, neuron) so set operations stay vectorised.
    s = spikes.astype(np.int64)
    return (s[:, 0] << 32) | (s[:, 1] << 16) | s[:, 2]


def compare_traces(a, b):
    """Compare traces ``a`` and ``b`` over the steps both cover; probes are compared by name."""
    first = max(a.first_step, b.first_step)
    last = min(a.first_step + a.n_steps, b.first_step + b.n_steps) - 1
    if last < first:
        raise ValueError(f"the traces share no step: A covers {a.first_step}.."
                         f"{a.first_step + a.n_steps - 1}, B {b.first_step}.."
                         f"{b.first_step + b.n_steps - 1}")
    sa = a.spikes[(a.spikes[:, 0] >= first) & (a.spikes[:, 0] <= last)]
    sb = b.spikes[(b.spikes[:, 0] >= first) & (b.spikes[:, 0] <= last)]
    ka, kb = _spike_keys(sa), _spike_keys(sb)
    only_a, only_b = np.setdiff1d(ka, kb), np.setdiff1d(kb, ka)

    candidates = []   # (step, core, neuron, order, Divergence)
    for keys, in_a in ((only_a, True), (only_b, False)):
        if keys.size:
            k = int(keys.min())
            step, core, neuron = k >> 32, (k >> 16) & 0xFFFF, k & 0xFFFF
            d = Divergence(step, core, neuron, "spike", in_a, not in_a)
            candidates.append((step, core, neuron, 1, d))

    common = [p for p in a.probe_names if p in b.probe_names]
    mismatches = 0
    bad_steps = set(int(k >> 32) for k in np.concatenate([only_a, only_b]))
    for name in common:
        ca = a.probes[first - a.first_step:last - a.first_step + 1, a.probe_names.index(name)]
        cb = b.probes[first - b.first_step:last - b.first_step + 1, b.probe_names.index(name)]
        diff = np.flatnonzero(ca != cb)
        mismatches += diff.size
        bad_steps.update(int(first + k) for k in diff)
        if diff.size:
            k = int(diff[0])
            core, neuron, var = name
            d = Divergence(first + k, int(core), int(neuron), var, ca[k].item(), cb[k].item())
            candidates.append((first + k, int(core), int(neuron), 0, d))
    candidates.sort(key=lambda c: c[:4])
    summary = {"first_step": first, "last_step": last, "spikes_a": int(len(sa)),
               "spikes_b": int(len(sb)), "spikes_only_a": int(only_a.size),
               "spikes_only_b": int(only_b.size), "probes": len(common),
               "probe_mismatches": int(mismatches), "divergent_steps": len(bad_steps)}
    return Comparison(not candidates, candidates[0][4] if candidates else None, summary)
