"""Routed events per clock and the step time of a 4-core chip, measured under Verilator.

Two networks on one build of ``K = 4`` cores of ``N`` neurons and ``A = K * N`` axons (every core
has one axon per neuron of the chip, so a spike multicast to every core lands on distinct axons):

``activity``  every neuron fires exactly every 10 steps (bias 100, threshold 999, no decay below
              2^15, phases spread evenly): 10 % of the neurons fire per step, each spike goes to
              its axon on every core (fan-out ``K``), so 10 % of every core's axons get an event.
              Weights are 0: delivery costs its full clocks but activity stays exactly 10 %.
              ``ratio_to_bound`` = chip step clocks / clocks until the busiest core finished
              that step. A core's spike output is never held back (the router's capture list
              has room for all ``N``), so the latter is exactly the busiest core's own time.
``burst``     every neuron fires every step and goes to 4 axons on every core (fan-out 16):
              ``K * N * 16`` events per step. ``events_per_cycle`` = events delivered into the
              cores / clocks from the first to the last delivery (at most ``K``: a core takes
              one input event per clock).

    python bench/router.py                      # N = 64, A = 256, lanes 4, printed
    python bench/router.py --json FILE          # also write the numbers as JSON
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

from chip_sim import ChipSim  # noqa: E402

from spikeforge.image import ChipImage, CoreConfig, CoreImage  # noqa: E402
from spikeforge.routing import RouterLimits  # noqa: E402

K = 4
PERIOD = 10


def periodic_core(config, rng, burst):
    """A core whose neurons fire every ``PERIOD`` steps at evenly spread phases (or, for a
    burst, every step)."""
    im = CoreImage(config)
    im.alpha_v[:] = 65535          # decay(v) = v for 0 <= v <= 2^15
    im.bias[:] = 100
    im.threshold[:] = 0 if burst else 100 * PERIOD - 1
    phase = rng.permutation(np.arange(config.n_neurons) % PERIOD)
    im.v = 100 * phase
    return im.validate()


def network(config, rng, burst):
    n = config.n_neurons
    cores = [periodic_core(config, rng, burst) for _ in range(K)]
    rows = []
    for c in range(K):
        for i in range(n):
            src = c * n + i                         # the neuron's axon on every core
            for d in range(K):
                if burst:
                    rows += [(c, i, d, (4 * src + j) % config.n_axons) for j in range(4)]
                else:
                    rows.append((c, i, d, src))
    return ChipImage(cores, np.array(rows, dtype=np.int64))


def measure(n, lanes, steps, depth):
    config = CoreConfig(n_neurons=n, n_axons=K * n, weight_bits=8, delay_bits=3, lanes=lanes,
                        plastic=False, n_profiles=1)
    limits = RouterLimits(route_entries=16 * n, fan_out=16)
    t0 = time.time()
    sim = ChipSim([config] * K, limits, depth)
    build_s = time.time() - t0
    rng = np.random.default_rng(1)
    prog = sim.program()
    for mark, burst in ((0, False), (1, True)):
        prog.mark(mark)
        prog.load(network(config, rng, burst))
        for _ in range(steps):
            prog.step()
    t0 = time.time()
    seg = sim.run(prog, name="bench-router").by_mark()
    run_s = time.time() - t0
    act, bur = seg[0], seg[1]
    cycles, cores = np.array(act.cycles), np.array(act.core_cycles)
    events = np.array([e[0] for e in act.events])
    b_events = np.array([e[0] for e in bur.events])
    b_window = np.array([e[2] - e[1] + 1 for e in bur.events])
    return {
        "config": config.to_dict(), "cores": K, "fifo_depth": depth, "steps": steps,
        "activity": float(np.mean([len(h) for h in act.host]) / (K * n)),
        "step_cycles": float(cycles.mean()), "busiest_core_cycles": float(cores.mean()),
        "ratio_to_bound": float(cycles.sum() / cores.sum()),
        "worst_step_ratio": float((cycles / cores).max()),
        "routed_events_per_step": float(events.mean()),
        "events_per_cycle": float(b_events.sum() / b_window.sum()),
        "events_per_cycle_limit": K,
        "burst_events_per_step": float(b_events.mean()),
        "burst_step_cycles": float(np.mean(bur.cycles)),
        "burst_busiest_core_cycles": float(np.mean(bur.core_cycles)),
        "build_s": round(build_s, 1), "run_s": round(run_s, 1),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--neurons", type=int, default=64, help="neurons per core (axons: 4x)")
    p.add_argument("--lanes", type=int, default=4)
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--fifo-depth", type=int, default=2)
    p.add_argument("--json", type=Path, help="write the results here")
    args = p.parse_args(argv)
    r = measure(args.neurons, args.lanes, args.steps, args.fifo_depth)
    print(f"4 cores, N = {args.neurons}, A = {4 * args.neurons}, lanes {args.lanes}, "
          f"fifo depth {args.fifo_depth}")
    print(f"activity {100 * r['activity']:.1f} %: step {r['step_cycles']:.0f} clocks, busiest "
          f"core {r['busiest_core_cycles']:.0f}, ratio {r['ratio_to_bound']:.3f} "
          f"(worst step {r['worst_step_ratio']:.3f}), {r['routed_events_per_step']:.0f} "
          f"routed events per step")
    print(f"burst: {r['burst_events_per_step']:.0f} events per step, "
          f"{r['events_per_cycle']:.2f} events per clock while delivering (limit {K}); step "
          f"{r['burst_step_cycles']:.0f} clocks, busiest core {r['burst_busiest_core_cycles']:.0f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(r, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
