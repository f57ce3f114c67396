"""Play many random seeds on one Verilator build and compare them with the golden model.

``run_seeds`` loads every seed's image through the memory port, reads it straight back, runs
``steps`` timesteps with random external input (plus the image's generators), changes the
learning registers at a step boundary half way, and reads back the state at the checkpoints.
All seeds go into one command file and one simulator process. The golden model then replays
each seed; the first divergence (seed, step, neuron or variable, both values) is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from coresim import CoreSim
from netgen import first_difference, random_image, random_inputs

from spikeforge.memmap import Region
from spikeforge.sim.golden import GoldenCore

__all__ = ["SeedRun", "run_seeds"]

_SIMS = {}


def core_sim(config, synapse_memory="block", engine="binary", update_pipeline="long",
             small_ram_style=None, kind="full"):
    """One build per configuration, core kind, synapse memory, engine, pipeline, RAM style and
    process."""
    key = (config, synapse_memory, engine, update_pipeline, small_ram_style, kind)
    if key not in _SIMS:
        _SIMS[key] = CoreSim(config, synapse_memory, engine, update_pipeline, small_ram_style,
                             kind)
    return _SIMS[key]


@dataclass
class SeedRun:
    seed: int
    variant: str
    image: object
    inputs: list
    checkpoints: list
    regions: list
    change_at: int
    change: dict = field(default_factory=dict)
    check_load: bool = True        # read the image back right after loading it


def _plan(config, seed, steps, checkpoints, regions, activity=1.0):
    image, variant, rng = random_image(config, seed, activity=activity)
    inputs = random_inputs(config, rng, variant, steps, activity)
    change = {}
    if config.plastic:
        change = {"learn": 1 - image.learn, "a_plus": int(rng.integers(0, 1 << 16)),
                  "a_minus": int(rng.integers(0, 1 << 16))}
    return SeedRun(seed, variant, image, inputs, sorted(checkpoints), regions, steps // 2,
                   change)


def run_seeds(config, seeds, steps=200, checkpoints=None, regions=None, backpressure=True,
              synapse_memory="block", engine="binary", activity=1.0, update_pipeline="long",
              max_lines=2_000_000, small_ram_style=None, kind="full"):
    """Run ``seeds`` on the RTL and the golden model; return ``(failures, cycles, conflicts)``.

    ``failures`` is a list of messages (empty when everything agrees); ``cycles`` lists the
    clocks of every step of every seed; ``conflicts`` counts the clocks in which a synapse lane
    memory was asked to read and write at once (a failure with ``synapse_memory="spram"``).
    ``regions`` limits the intermediate readbacks (the load check and the last checkpoint
    always read every region). ``engine``: see ``CoreSim``; ``activity``: see
    ``netgen.random_image``; ``small_ram_style``: see ``Core``; ``kind``: ``"full"``
    (``Core``) or ``"small"`` (``SmallCore``).

    Seeds go to the simulator in batches of at most about ``max_lines`` commands (one build,
    one process per batch, bounded memory); the first seed is also read back right after
    loading (a check of the memory port itself; every seed's state is compared at the
    checkpoints).
    """
    sim = core_sim(config, synapse_memory, engine, update_pipeline, small_ram_style, kind)
    mm = sim.memmap
    checkpoints = checkpoints or [steps // 2, steps]
    seeds = list(seeds)
    image_words = len(mm.read_addresses())
    per_seed = image_words * (2 + len(checkpoints)) + steps * (2 + config.n_axons // 4)
    batch = max(1, max_lines // per_seed)
    failures, cycles, conflicts = [], [], 0
    for first in range(0, len(seeds), batch):
        f, c, k = _run_batch(sim, config, seeds[first:first + batch], steps, checkpoints,
                             regions, backpressure, activity, synapse_memory, first == 0)
        failures += f
        cycles += c
        conflicts = None if k is None or conflicts is None else conflicts + k
    return failures, cycles, conflicts


def _run_batch(sim, config, seeds, steps, checkpoints, regions, backpressure, activity,
               synapse_memory, check_load):
    mm = sim.memmap
    prog = sim.program()
    plans = []
    for seed in seeds:
        plan = _plan(config, seed, steps, checkpoints, regions, activity)
        plan.check_load = check_load and not plans
        plans.append(plan)
        prog.mark(seed)
        prog.backpressure(backpressure and seed % 2 == 1)
        prog.load(plan.image)
        if plan.check_load:
            prog.read_image()
        for t, events in enumerate(plan.inputs):
            if t == plan.change_at:
                for name, value in plan.change.items():
                    prog.write([int(mm.address(Region.REGISTERS, mm.register_index(name)))],
                               [value])
            prog.events(events)
            prog.step()
            if t + 1 in plan.checkpoints:
                last = t + 1 == plan.checkpoints[-1]
                prog.read_image(None if last else regions)
    result = sim.run(prog, name=f"n{config.n_neurons}a{config.n_axons}l{config.lanes}")
    del prog
    segments = result.by_mark()
    failures, cycles = [], []
    if result.conflicts is None:
        failures.append(f"{config}: the player did not finish (no conflict count)")
    elif result.conflicts and synapse_memory == "spram":
        failures.append(f"{config}: a single-port synapse memory was read and written in the "
                        f"same clock {result.conflicts} times")
    if result.collisions:
        # the iCE40 build tells Yosys a read at the written address need not be the old word
        failures.append(f"{config}: a block RAM of the small core was read and written at one "
                        f"address in the same clock {result.collisions} times")
    for plan in plans:
        seg = segments.get(plan.seed)
        msg = _check(config, mm, plan, seg, cycles)
        if msg:
            failures.append(f"{config} seed {plan.seed} ({plan.variant}): {msg}")
    return failures, cycles, result.conflicts


def _check(config, mm, plan, seg, cycles):
    if seg is None:
        return "no output from the simulator"
    if len(seg.spikes) != len(plan.inputs):
        return f"{len(seg.spikes)} steps completed, {len(plan.inputs)} expected"
    k = 0
    if plan.check_load:
        loaded = mm.image_from_words(seg.reads[0])
        diff = first_difference(loaded, plan.image)
        if diff:
            return f"readback right after loading: {diff}"
        k = 1
    golden = GoldenCore(plan.image)
    for t, events in enumerate(plan.inputs):
        if t == plan.change_at:
            for name, value in plan.change.items():
                setattr(golden.image, name, value)
        want = golden.step(events)
        got = seg.spike_vector(t, config.n_neurons)
        if not np.array_equal(got, want):
            n = int(np.flatnonzero(got != want)[0])
            return (f"step {t} (t = {int(golden.image.step) - 1}): spike of neuron {n}: "
                    f"rtl {int(got[n])}, golden {int(want[n])}")
        if np.unique(seg.spikes[t]).size != seg.spikes[t].size:
            return f"step {t}: a neuron was emitted twice"
        if t + 1 in plan.checkpoints:
            last = t + 1 == plan.checkpoints[-1]
            regions = None if last else plan.regions
            got_image = mm.image_from_words(seg.reads[k], regions, base=golden.image)
            k += 1
            diff = first_difference(got_image, golden.image)
            if diff:
                return f"state after step {t}: {diff}"
    cycles.extend(seg.cycles)
    return None
