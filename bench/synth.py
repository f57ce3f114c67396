"""Board bitstreams: size, speed and synaptic operations per second, per board.

For each board this builds the bitstream (``spikeforge.boards.build.build_board``: cached, a
second run reads the stored report) and prints neurons, synapses, LUTs, block RAM, SPRAM, the
clock, the Fmax and synaptic operations per second:

    SOP/s = clock x cores x (synaptic operations per clock)

where synaptic operations per clock (``lanes`` x the delivery efficiency) is measured on the
board's core configuration by ``bench/core_cycles.py``'s Verilator model (dense core, 10 %
activity, learning off and on), or given with ``--sop-per-cycle``. A step's duration is the
measured clocks per step at that activity over the clock. NeuroCoreX (Artix-7 35T, stated
figures: ~90 neurons, about 1 ms per step, 6,981 LUTs) is the reference row.

    python bench/synth.py                              # both boards
    python bench/synth.py --board icebreaker --json build/bench/synth.json
    python bench/synth.py --sop-per-cycle 3.2          # skip the Verilator measurement
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from spikeforge.boards import BOARDS, board  # noqa: E402
from spikeforge.boards.build import BuildError, build_board  # noqa: E402
from spikeforge.toolchain import build_root  # noqa: E402

NEUROCOREX = {"board": "NeuroCoreX (Artix-7 35T, stated)", "neurons": 90, "synapses": 8100,
              "luts": 6981, "step_us": 1000.0}


def measure_core(config, activity=0.1, steps=8):
    """Synaptic operations and clocks per step of ``config``'s core at ``activity``,
    learning off and on (``bench/core_cycles.py``'s model: a square N x N dense core)."""
    sys.path.insert(0, str(ROOT / "bench"))
    import core_cycles

    n = config.n_neurons
    rows = core_cycles.measure(n, config.lanes, [(activity, 0), (activity, 1)], steps)
    return {("learn" if r["learn"] else "static"): r for r in rows}


def board_row(name, p, report, cycles, activity):
    row = {k: report[k] for k in ("board", "neurons", "synapses", "luts", "ffs", "bram",
                                  "spram", "dsp", "fmax_mhz", "clock_mhz", "timing_met")}
    row["lanes"], row["cores"] = p.core.lanes, p.n_cores
    row["blocks"] = report["blocks"]
    if cycles:
        for mode, r in cycles.items():
            spc = r["sop_per_cycle"]
            row[f"sop_per_cycle_{mode}"] = round(spc, 3)
            row[f"sop_per_s_{mode}"] = report["clock_mhz"] * 1e6 * p.n_cores * spc
            row[f"sop_per_s_at_fmax_{mode}"] = report["fmax_mhz"] * 1e6 * p.n_cores * spc
            row[f"step_us_{mode}"] = r["cycles_per_step"] / report["clock_mhz"]
        row["activity"] = activity
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", nargs="+", default=sorted(BOARDS), choices=sorted(BOARDS))
    ap.add_argument("--activity", type=float, default=0.1)
    ap.add_argument("--sop-per-cycle", type=float,
                    help="a stated synaptic operations per clock instead of measuring it")
    ap.add_argument("--no-cycles", action="store_true", help="no SOP/s (synthesis only)")
    ap.add_argument("--neurons", type=int,
                    help="build with this many neurons per core instead of the preset's (to "
                         "measure what fits when the preset does not); into build/BOARD-nN/")
    ap.add_argument("--clock-mhz", type=float,
                    help="build at this clock instead of the preset's (a clock the board's "
                         "PLL makes exactly); into build/BOARD-fF/")
    ap.add_argument("--force", action="store_true", help="rebuild even if up to date")
    ap.add_argument("--json", type=Path, help="write the rows here, keyed by board")
    args = ap.parse_args(argv)
    rows, failures = {}, {}
    for name in args.board:
        t0 = time.time()
        p, out = board(name).soc_preset(), None
        if args.neurons or args.clock_mhz:
            core = dataclasses.replace(p.core, n_neurons=args.neurons or p.core.n_neurons)
            p = dataclasses.replace(p, core=core, clock_hz=round((args.clock_mhz or 0) * 1e6)
                                    or p.clock_hz)
            out = build_root() / (name + (f"-n{args.neurons}" if args.neurons else "")
                                  + (f"-f{args.clock_mhz:g}" if args.clock_mhz else ""))
        try:
            report = build_board(name, out, preset=p, force=args.force)
        except BuildError as e:
            failures[name] = str(e)
            print(f"{name}: {e}", file=sys.stderr)
            continue
        build_s = time.time() - t0
        cycles = None
        if args.sop_per_cycle:
            cycles = {"stated": {"sop_per_cycle": args.sop_per_cycle,
                                 "cycles_per_step": float("nan")}}
        elif not args.no_cycles:
            cycles = measure_core(p.core, args.activity)
        rows[name] = board_row(name, p, report, cycles, args.activity)
        rows[name]["build_s"] = round(build_s, 1)
        rows[name]["cached"] = bool(report.get("cached"))
    print(f"{'board':<34} {'neurons':>7} {'synapses':>8} {'LUTs':>6} {'BRAM':>4} {'SPRAM':>5} "
          f"{'clock':>6} {'Fmax':>6} {'SOP/s':>9} {'SOP/s@L':>9} {'step us':>8}")
    for name, r in rows.items():
        sop = r.get("sop_per_s_static", r.get("sop_per_s_stated"))
        sopl = r.get("sop_per_s_learn")
        step = r.get("step_us_static")
        print(f"{name:<34} {r['neurons']:>7} {r['synapses']:>8} {r['luts']:>6} {r['bram']:>4} "
              f"{r['spram']:>5} {r['clock_mhz']:>6g} {r['fmax_mhz']:>6.1f} "
              f"{sop or float('nan'):>9.3g} {sopl or float('nan'):>9.3g} "
              f"{step if step is not None else float('nan'):>8.1f}")
    n = NEUROCOREX
    print(f"{n['board']:<34} {n['neurons']:>7} {n['synapses']:>8} {n['luts']:>6} {'':>4} "
          f"{'':>5} {'':>6} {'':>6} {'':>9} {'':>9} {n['step_us']:>8.1f}")
    if args.activity and rows:
        print(f"(SOP/s with learning off, SOP/s@L with learning on, step time at "
              f"{args.activity:.0%} activity and the board clock)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**rows, "neurocorex": NEUROCOREX,
                                         "failures": failures}, indent=2) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
