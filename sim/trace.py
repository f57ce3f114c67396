"""The trace: spikes per step and probed state, one format for every engine.

A trace holds the output of a run, whoever produced it (golden model, float model, a board):
``spikes`` is an int array of rows ``(step, core, neuron)`` sorted by step, core, neuron; ``probes``
is an array ``(T, P)`` with one column per probe ``(core, neuron, var)`` and one row per step of
``steps``. Traces are saved as ``.npz`` files (see ``docs/traces.md``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Trace", "PROBE_VARS", "TRACE_FORMAT", "TRACE_VERSION"]

TRACE_FORMAT = "spikeforge-trace"
TRACE_VERSION = 1
PROBE_VARS = ("v", "i", "ref", "y")


@dataclass
class Trace:
    first_step: int
    n_steps: int
    spikes: np.ndarray = None
    probe_names: list = field(default_factory=list)
    probes: np.ndarray = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.spikes is None:
            self.spikes = np.zeros((0, 3), dtype=np.int64)
        self.spikes = np.asarray(self.spikes, dtype=np.int64).reshape(-1, 3)
        self.probe_names = [tuple(p) for p in self.probe_names]
        if self.probes is None:
            self.probes = np.zeros((self.n_steps, len(self.probe_names)), dtype=np.int64)

    @property
    def steps(self):
        return np.arange(self.first_step, self.first_step + self.n_steps)

    def raster(self, core=0, n_neurons=None):
        """Boolean array ``(n_steps, n_neurons)`` of one core's spikes."""
        sel = self.spikes[self.spikes[:, 1] == core]
        if n_neurons is None:
            n_neurons = int(sel[:, 2].max()) + 1 if len(sel) else 0
        out = np.zeros((self.n_steps, n_neurons), dtype=bool)
        out[sel[:, 0] - self.first_step, sel[:, 2]] = True
        return out

    def spike_count(self):
        return len(self.spikes)

    def save(self, path):
        header = {"format": TRACE_FORMAT, "version": TRACE_VERSION,
                  "first_step": int(self.first_step), "n_steps": int(self.n_steps),
                  "probe_names": [list(map(lambda x: x if isinstance(x, str) else int(x), p))
                                  for p in self.probe_names],
                  "meta": self.meta}
        with open(path, "wb") as f:
            np.savez_compressed(f, header=np.array(json.dumps(header)), spikes=self.spikes,
                                probes=self.probes)

    @classmethod
    def load(cls, path):
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
                spikes, probes = z["spikes"], z["probes"]
        except (OSError, KeyError, ValueError) as e:
            if isinstance(e, FileNotFoundError):
                raise
            raise ValueError(f"{path} is not a spikeforge trace file ({e})") from None
        if header.get("format") != TRACE_FORMAT:
            raise ValueError(f"{path} is not a spikeforge trace file")
        if header.get("version") != TRACE_VERSION:
            raise ValueError(f"{path} has trace format version {header.get('version')!r}; "
                             f"this spikeforge reads version {TRACE_VERSION}")
        return cls(header["first_step"], header["n_steps"], spikes,
                   [tuple(p) for p in header["probe_names"]], probes, header.get("meta", {}))
