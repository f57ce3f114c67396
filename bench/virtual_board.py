"""Speed of the virtual board: simulated clocks per second with the host attached.

The ``icebreaker`` SoC runs under Verilator behind TCP (``spikeforge.boards.virtual``) while the
unchanged host (``Board``) drives it. The network keeps the chip busy: 256 LIF neurons, each
driven by about 64 of 256 on-chip Bernoulli generators (``PoissonSource`` at 100 Hz, so 10% of
the inputs spike per step), firing in about 10% of the steps (``activity`` is measured).
Three numbers:

- ``cycles_per_s``: simulated clocks / wall seconds of the client session that runs the network
  (HELLO, RUN, spikes streamed back and acknowledged), host attached;
- ``steps_per_s``: timesteps per wall second of that run, end to end;
- ``raw_cycles_per_s``: the same model fed the same rx bit stream at the same clocks (recorded
  during both sessions, replayed with ``+replay`` and timed over the run's clocks), with no
  socket, no host and no line model output: ``ratio`` = attached / raw is the cost of the I/O.

Side by side, the same replay through the model built as the bitstream is, every block on the
system clock, instead of gated clocks (``spikeforge.hdl.gating``): ``gating_speedup`` is the
gated model's raw rate over that one's, and ``same_output`` says whether both sent the same
bytes at the same clocks (they must: the two are the same machine).

The network is ``spikeforge.boards.virtual.busy_network`` (a smaller one trains the profile of
the board's profile-guided build). The upload happens in an earlier session and is not timed.
Machine load matters (the numbers are wall-clock): the load average is printed with the table,
and the same rates per CPU second of the simulator process (``getrusage``) are given beside
them.

    python bench/virtual_board.py [--preset icebreaker-hwlink] [--steps 2000] [--json FILE]

The default is the private virtual board's preset (``icebreaker-hwlink``: the iCEBreaker's chip
behind the hardware link; the figures below before 2026-12-05 were measured on ``icebreaker``,
which was that configuration then).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from spikeforge.boards.virtual import VirtualBoard, build_vboard, busy_network, replay
from spikeforge.host import session
from spikeforge.host.board import Board
from spikeforge.presets import preset

GOAL = 5e6


def measure(name, steps):
    p = preset(name)
    t0 = time.monotonic()
    build_vboard(p)
    build_s = time.monotonic() - t0
    net = busy_network(p.core.n_neurons)
    with tempfile.TemporaryDirectory() as tmp:
        record = os.path.join(tmp, "rx.txt")
        with VirtualBoard(p, record=record) as vb:
            with Board(vb.url, baud=vb.baud) as board:          # session 1: upload
                board.hello()
                compiled = session.compile_for(board, net)
                session.push(board, compiled)
            vb.session()
            with Board(vb.url, baud=vb.baud) as board:          # session 2: the timed run
                board.hello()
                t = time.monotonic()
                trace = session.run(board, compiled, steps, push_if_needed=False)
                run_s = time.monotonic() - t
            stats = vb.session()
        vb.close()
        # alternating, best of two each (the machine's load varies)
        runs = [replay(p, record, start=stats["start"], clock_gating=gating)
                for _ in range(2) for gating in (True, False)]
    raw = min(runs[0::2], key=lambda r: r["cpu_seconds"])
    plain = min(runs[1::2], key=lambda r: r["cpu_seconds"])
    attached = stats["clocks"] / (stats["usec"] / 1e6)
    attached_cpu = stats["clocks"] / (stats["cpu_usec"] / 1e6)
    raw_cpu = raw["clocks"] / raw["cpu_seconds"]
    plain_cpu = plain["clocks"] / plain["cpu_seconds"]
    activity = trace.spike_count() / (steps * sum(len(v) for v in compiled.neurons.values()))
    return {"preset": name, "steps": steps, "activity": round(activity, 4),
            "clocks": stats["clocks"], "clocks_per_step": round(stats["clocks"] / steps),
            "cycles_per_s": round(attached), "steps_per_s": round(steps / run_s, 1),
            "raw_cycles_per_s": round(raw["clocks"] / raw["seconds"]),
            "ratio": round(attached * raw["seconds"] / raw["clocks"], 3),
            "cycles_per_cpu_s": round(attached_cpu), "raw_cycles_per_cpu_s": round(raw_cpu),
            "ungated_raw_cycles_per_cpu_s": round(plain_cpu),
            "gating_speedup": round(raw_cpu / plain_cpu, 3),
            "same_output": len({(r["hash"], r["tx"]) for r in runs}) == 1,
            "goal_cycles_per_s": GOAL, "build_s_if_cold": round(build_s, 1),
            "load_average": os.getloadavg()[0]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="icebreaker-hwlink")
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    args = ap.parse_args(argv)
    r = measure(args.preset, args.steps)
    rows = [("preset", r["preset"]), ("steps", r["steps"]),
            ("activity (spikes / neuron / step)", r["activity"]),
            ("clocks per step", r["clocks_per_step"]),
            ("cycles/s, host attached", f"{r['cycles_per_s']:.3g}"),
            ("timesteps/s, end to end", r["steps_per_s"]),
            ("cycles/s, raw Verilator replay", f"{r['raw_cycles_per_s']:.3g}"),
            ("attached / raw", r["ratio"]),
            ("cycles per CPU second, attached", f"{r['cycles_per_cpu_s']:.3g}"),
            ("cycles per CPU second, raw", f"{r['raw_cycles_per_cpu_s']:.3g}"),
            ("  same, ungated (as the bitstream)", f"{r['ungated_raw_cycles_per_cpu_s']:.3g}"),
            ("  gated / ungated (same output: "
             f"{'yes' if r['same_output'] else 'NO'})", r["gating_speedup"]),
            ("goal cycles/s", f"{GOAL:.0e}"),
            ("load average (1 min)", f"{r['load_average']:.2f}")]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
    if not r["same_output"]:
        print("the gated and the ungated model sent different bytes")
        return 1
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(r, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
