"""Clocks per timestep of the Amaranth core, measured under Verilator, against a lower bound.

The bound counts the memory words a step must touch at ``L`` synapses per word:

    bound = |E_t| * N / L            (delivery: one lane-wide synapse word per event and word)
          + N                        (neuron update: one state word per neuron)
          + learn * W_t * A          (eager column walk: A words per lane-wide word of neurons
                                      holding at least one post spike, W_t of them)

``ratio_to_bound`` is measured clocks / bound; ``sop_per_cycle`` is synaptic operations
(``|E_t| * N``) per clock. A dense ``N x N`` core gets random weights; a fraction ``activity``
of the axons receives an event each step and the same fraction of the neurons fires every step
(chosen by bias), so both the delivery and the learning terms scale with the activity.

On single-port synapse memory (``--synapse-memory spram``, the iCEBreaker's SPRAM) a learning
write costs a clock of its own, so the bound counts it: ``|E_t| * N / L * (1 + learn)`` for
delivery and ``learn * W_t * A * 2`` for the walk.

    python bench/core_cycles.py                      # the sweep, printed as a table
    python bench/core_cycles.py --quick --json FILE  # only the 1024 x 1024, 4-lane, 10 % points
    python bench/core_cycles.py --neurons 256 --lanes 1 --activity 0.1 --synapse-memory spram
    python bench/core_cycles.py --neurons 256 --lanes 1 --activity 0.1 --synapse-memory spram \
        --core both                                  # Core and SmallCore side by side

``--core small`` measures the core for small FPGAs (``SmallCore``: one lane, an operation at a
time); ``--core both`` both, one lane, with the ratio of their clocks (``small/full``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "hdl"))

from coresim import CoreSim  # noqa: E402

from spikeforge.image import CoreConfig, CoreImage  # noqa: E402
from spikeforge.memmap import Region  # noqa: E402

BIG = 1 << 22


def dense_image(config, rng):
    c = config
    im = CoreImage(c)
    im.weight = rng.integers(-8, 8, (c.n_axons, c.n_neurons))
    im.delay = rng.integers(0, c.n_slots, (c.n_axons, c.n_neurons))
    if c.plastic:
        im.mask[:] = 1
        im.x_inc = im.y_inc = 1 << 14
        im.alpha_x = im.alpha_y = 60000
        im.a_plus = im.a_minus = 300
    im.bias[:] = -BIG
    return im.validate()


def measure(n, lanes, points, steps, seed=1, synapse_memory="block", kind="full"):
    """Measure ``points`` = [(activity, learn)] on one build; returns a list of result dicts."""
    config = CoreConfig(n_neurons=n, n_axons=n, weight_bits=8, delay_bits=3, lanes=lanes,
                        plastic=True, n_profiles=1)
    t0 = time.time()
    sim = CoreSim(config, synapse_memory, kind=kind)
    rw = 2 if synapse_memory == "spram" else 1     # clocks per learning read-modify-write
    build_s = time.time() - t0
    mm = sim.memmap
    rng = np.random.default_rng(seed)
    prog = sim.program()
    prog.load(dense_image(config, rng))
    plans = []
    for k, (activity, learn) in enumerate(points):
        prog.mark(k)
        firing = rng.random(n) < activity
        bias = np.where(firing, BIG, -BIG)
        prog.write(mm.address(Region.PARAM, np.arange(n)).tolist(),
                   [int(w) for w in mm[Region.PARAM].pack(bias=bias, profile=np.zeros(n))])
        prog.write([int(mm.address(Region.REGISTERS, mm.register_index("learn")))], [learn])
        prog.step()                      # settle: the first step after the bias change
        events = [np.flatnonzero(rng.random(n) < activity) for _ in range(steps)]
        for ev in events:
            prog.events(ev)
            prog.step()
        words = firing.reshape(-1, mm.lanes).any(axis=1).sum()
        plans.append((activity, learn, events, int(firing.sum()), int(words)))
    t1 = time.time()
    result = sim.run(prog, name=f"bench-n{n}-l{lanes}-{kind}")
    sim_s = time.time() - t1
    segments = result.by_mark()
    out = []
    for k, (activity, learn, events, n_fire, words) in enumerate(plans):
        cycles = np.array(segments[k].cycles[1:], dtype=np.float64)
        n_events = np.array([ev.size for ev in events], dtype=np.float64)
        fired = np.array([s.size for s in segments[k].spikes[1:]])
        if not np.all(fired == n_fire):
            raise RuntimeError(f"expected {n_fire} spikes per step, got {sorted(set(fired))}")
        bound = n_events * n / mm.lanes * (1 + (rw - 1) * learn) + n + learn * words * n * rw
        out.append({
            "n_neurons": n, "n_axons": n, "lanes": lanes, "activity": activity,
            "synapse_memory": synapse_memory, "core": kind,
            "learn": bool(learn), "cycles_per_step": float(cycles.mean()),
            "bound_per_step": float(bound.mean()),
            "ratio_to_bound": float(cycles.sum() / bound.sum()),
            "sop_per_cycle": float((n_events * n).sum() / cycles.sum()),
            "build_s": round(build_s, 1), "sim_s": round(sim_s, 1),
        })
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, nargs="+", default=[256, 1024])
    p.add_argument("--lanes", type=int, nargs="+", default=[1, 2, 4, 8])
    p.add_argument("--activity", type=float, nargs="+", default=[0.01, 0.05, 0.1, 0.2, 0.5])
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--synapse-memory", choices=["block", "spram"], default="block")
    p.add_argument("--core", choices=["full", "small", "both"], default="full")
    p.add_argument("--quick", action="store_true",
                   help="only N = A = 1024, 4 lanes, 10 %% activity, learning off and on")
    p.add_argument("--json", type=Path, help="write the 1024 x 1024, 4-lane, 10 %% points here")
    args = p.parse_args(argv)
    if args.quick:
        args.neurons, args.lanes, args.activity = [1024], [4], [0.1]
    kinds = ["full", "small"] if args.core == "both" else [args.core]
    if "small" in kinds:
        args.lanes = [1]                    # the small core has one lane
    rows = []
    for n in args.neurons:
        for lanes in args.lanes:
            points = [(a, learn) for a in args.activity for learn in (0, 1)]
            for kind in kinds:
                rows.extend(measure(n, lanes, points, args.steps,
                                    synapse_memory=args.synapse_memory, kind=kind))
    full = {(r["n_neurons"], r["lanes"], r["activity"], r["learn"]): r["cycles_per_step"]
            for r in rows if r["core"] == "full"}
    for r in rows:
        key = (r["n_neurons"], r["lanes"], r["activity"], r["learn"])
        if r["core"] == "small" and key in full:
            r["small_over_full"] = r["cycles_per_step"] / full[key]
    print(f"{'core':>5} {'N':>5} {'L':>2} {'act':>5} {'learn':>5} {'cycles':>9} {'bound':>9} "
          f"{'ratio':>6} {'SOP/cyc':>8} {'small/full':>10}")
    for r in rows:
        rel = f"{r['small_over_full']:>10.2f}" if "small_over_full" in r else f"{'':>10}"
        print(f"{r['core']:>5} {r['n_neurons']:>5} {r['lanes']:>2} {r['activity']:>5.2f} "
              f"{int(r['learn']):>5} {r['cycles_per_step']:>9.0f} {r['bound_per_step']:>9.0f} "
              f"{r['ratio_to_bound']:>6.3f} {r['sop_per_cycle']:>8.3f}{rel}")
    if args.json:
        key = [r for r in rows if r["n_neurons"] == 1024 and r["lanes"] == 4
               and abs(r["activity"] - 0.1) < 1e-9]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "what": "dense 1024 x 1024 core, 4 lanes, 10 % activity, Verilator",
            "points": key, "all": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
