"""Random chips (cores + routing tables) played on a Verilator build and checked against
``GoldenChip``.

Each seed picks a routing *variant* (``CHIP_VARIANTS[seed % len]``):

``random``     0..4 destinations per neuron, anywhere (own core included: recurrent loops);
``multicast``  a third of the neurons at the full ``fan_out``, spread over every core;
``ring``       recurrent loops across cores: core ``c`` to itself and to ``c + 1 mod K``;
``alltoall``   every neuron to every axon of every core, and every neuron fires (the cores'
               ``allfire`` image), so every event queue in the fabric is full at once;
``hostonly``   no routes, every host flag set (the host output at its heaviest).

The cores' images come from ``netgen.random_image`` (every core-level edge case); all cores are
set to one step counter and warmed up for a few steps on ``GoldenChip`` so that the delay slots
hold reachable sums. Host flags are random (or all set on even seeds). Per step: every host spike
and its step tag, the number of routed events delivered (exactly one per spike and destination:
none dropped, none doubled), no link event, and — on seeds with every host flag set — every
spike of every core; at the end the whole state of every core and the routing tables read back.
"""

from __future__ import annotations

import numpy as np
from chip_sim import ChipSim
from netgen import first_difference, random_events, random_image

from spikeforge.image import ChipImage
from spikeforge.sim.golden import GoldenChip

__all__ = ["CHIP_VARIANTS", "random_chip", "chip_sim", "run_chip_seeds"]

CHIP_VARIANTS = ("random", "multicast", "ring", "alltoall", "hostonly")

_SIMS = {}


def chip_sim(configs, limits, fifo_depth):
    """One build per (configs, limits, depth) and process."""
    key = (tuple(configs), limits, fifo_depth)
    if key not in _SIMS:
        _SIMS[key] = ChipSim(list(configs), limits, fifo_depth)
    return _SIMS[key]


def _routes(configs, variant, rng, fan_out):
    k = len(configs)
    rows = []
    for c, config in enumerate(configs):
        for n in range(config.n_neurons):
            if variant == "hostonly":
                break
            if variant == "alltoall":
                dst = [(d, a) for d in range(k) for a in range(configs[d].n_axons)]
            elif variant == "ring":
                dst = [(d, int(rng.integers(configs[d].n_axons)))
                       for d in (c, (c + 1) % k) if rng.random() < 0.7]
            else:
                wide = variant == "multicast" and rng.random() < 1 / 3
                m = fan_out if wide else int(rng.integers(0, min(fan_out, 4) + 1))
                cores = (np.arange(m) % k if wide else rng.integers(0, k, m))
                dst = [(int(d), int(rng.integers(configs[d].n_axons))) for d in cores]
            rows += [(c, n, d, a) for d, a in dst]
    return np.array(rows, dtype=np.int64).reshape(-1, 4)


def random_chip(configs, seed, limits):
    """A random valid ``ChipImage``; returns ``(chip, variant, rng)``."""
    rng = np.random.default_rng(10_000 + seed)
    variant = CHIP_VARIANTS[seed % len(CHIP_VARIANTS)]
    cores = []
    for c, config in enumerate(configs):
        core_variant = "allfire" if variant == "alltoall" else None
        im, _, _ = random_image(config, seed * len(configs) + c, core_variant)
        im.slots[:] = 0
        cores.append(im)
    step = int(cores[0].step)
    for im in cores:
        im.step = step
    if seed % 2 == 0 or variant == "hostonly":
        host = [np.ones(c.n_neurons, dtype=bool) for c in configs]
    else:
        host = [rng.random(c.n_neurons) < rng.uniform(0, 1) for c in configs]
    chip = ChipImage(cores, _routes(configs, variant, rng, limits.fan_out), host).validate()
    warm = GoldenChip(chip)
    for _ in range(int(rng.integers(0, 6))):
        warm.step(chip_inputs(configs, rng, variant))
    return warm.image, variant, rng


def chip_inputs(configs, rng, variant):
    """External events of one step for every core (random order, some duplicates)."""
    core_variant = {"alltoall": "allfire"}.get(variant, "random")
    return [random_events(c, rng, core_variant) if rng.random() > 0.2 else np.zeros(0, np.int64)
            for c in configs]


def run_chip_seeds(configs, limits, fifo_depth, seeds, steps):
    """Play ``seeds`` on one build; return ``(failures, per-seed (cycles, core_cycles))``."""
    sim = chip_sim(configs, limits, fifo_depth)
    cm = sim.chipmap
    prog = sim.program()
    plans = []
    for seed in seeds:
        chip, variant, rng = random_chip(configs, seed, limits)
        inputs = [chip_inputs(configs, rng, variant) for _ in range(steps)]
        entries = [int((chip.routes[:, 0] == c).sum()) for c in range(len(configs))]
        plans.append((seed, variant, chip, inputs, entries))
        prog.mark(seed)
        prog.backpressure(seed % 2 == 1)
        prog.load(chip)
        prog.read(cm.table_read_addresses(entries))
        prog.read(cm.read_addresses())
        for ext in inputs:
            for c, axons in enumerate(ext):
                prog.inject(c, axons)
            prog.step()
        prog.read(cm.read_addresses())
        # the events routed by the last step wait in the cores' input bitmaps: a step without
        # routes consumes them before the next seed loads
        prog.clear_tables()
        prog.step()
    result = sim.run(prog, name=f"chip{len(configs)}d{fifo_depth}")
    segments = result.by_mark()
    failures, timing = [], []
    for seed, variant, chip, inputs, entries in plans:
        msg = _check(cm, chip, inputs, entries, segments.get(seed))
        if msg:
            failures.append(f"seed {seed} ({variant}): {msg}")
        else:
            seg = segments[seed]
            timing.append((seg.cycles[:steps], seg.core_cycles[:steps]))
    return failures, timing


def _flat_sources(chip):
    """Index of every route's source neuron in the concatenated spike vectors of the cores."""
    offsets = np.cumsum([0] + [c.config.n_neurons for c in chip.cores])
    return offsets[chip.routes[:, 0]] + chip.routes[:, 1]


def _check(cm, chip, inputs, entries, seg):
    if seg is None:
        return "no output from the simulator"
    if len(seg.cycles) != len(inputs) + 1:
        return f"{len(seg.cycles)} steps completed, {len(inputs) + 1} expected"
    if len(seg.reads) != 2:
        return f"{len(seg.reads)} groups of read words, 2 expected"
    n_table = len(cm.table_read_addresses(entries))
    loaded = cm.chip_from_words(seg.reads[0][n_table:], seg.reads[0][:n_table], entries)
    def by_all(r):
        return r[np.lexsort(r.T[::-1])]

    if not np.array_equal(by_all(loaded.routes), by_all(chip.routes)):
        return "routing tables read back differ from the ones loaded"
    for c in range(len(chip.cores)):
        if not np.array_equal(loaded.host_out[c], chip.host_out[c]):
            return f"host flags of core {c} read back differ"
        diff = first_difference(loaded.cores[c], chip.cores[c])
        if diff:
            return f"core {c} readback right after loading: {diff}"
    golden = GoldenChip(chip)
    every = all(h.all() for h in chip.host_out)
    for t, ext in enumerate(inputs):
        tag = golden.step_counter
        out = golden.step(ext)
        want = sorted((tag, c, int(n)) for c, s in enumerate(out)
                      for n in np.flatnonzero(s & chip.host_out[c]))
        got = sorted(map(tuple, seg.host[t].tolist()))
        if got != want:
            extra = sorted(set(got) - set(want))[:3]
            missing = sorted(set(want) - set(got))[:3]
            what = "every spike" if every else "host spikes"
            return (f"step {t} (t = {tag}): {what} differ: rtl extra {extra}, "
                    f"missing {missing} (of {len(want)})")
        fired = np.concatenate(out)[_flat_sources(chip)]
        if seg.events[t][0] != int(fired.sum()):
            return (f"step {t}: {seg.events[t][0]} routed events delivered, "
                    f"{int(fired.sum())} (spike, destination) pairs expected")
        if len(seg.link[t]):
            return f"step {t}: {len(seg.link[t])} events left on the link port"
    images = cm.images_from_words(seg.reads[1])
    for c, core in enumerate(golden.cores):
        diff = first_difference(images[c], core.image)
        if diff:
            return f"core {c} state after the last step: {diff}"
    return None
