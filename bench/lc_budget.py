"""Where an iCE40 build's logic cells go: LUT4s, and the flip-flops that take a cell alone.

An iCE40 logic cell holds a LUT4 and a flip-flop; nextpnr packs a flip-flop into the cell of
the LUT4 that drives its D input only when that LUT4 drives nothing else. Every other
flip-flop (fed by another flip-flop, a block RAM, a DSP, a LUT4 with other loads, a constant,
or from another block of the kept hierarchy) takes a cell of its own, with a pass-through
LUT. A design over the UP5K's 5,280 cells is therefore over by its LUT4s *and* by these
flip-flops: this script counts them per block of a build (Yosys's ``top.json`` and
``top.stat.json``, kept by ``spikeforge build``), so the block that wastes cells shows.

    spikeforge build --board icebreaker --out build/icebreaker   # a build that does not fit
    python bench/lc_budget.py build/icebreaker [--json FILE]     # still leaves both files

Columns: LUT4, flip-flops, those paired with their LUT4 (``paired``), and those alone, by what
feeds them: ``ff`` (a copy or a shift register), ``lut+`` (a LUT4 with other loads), ``ram``
(block RAM, SPRAM or DSP outputs), ``in`` (a port of the block: its driver is in another
block; nextpnr may pair it there); ``cells`` is LUT4 + the alone ones (an estimate: nextpnr
also spends cells on carry chains and may pair across blocks).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

_MEMORIES = ("SB_RAM40_4K", "SB_SPRAM256KA", "SB_MAC16")


def budget(netlist):
    """``{module: counts}`` of a Yosys JSON netlist of iCE40 cells."""
    rows = {}
    for name, mod in netlist["modules"].items():
        cells = mod.get("cells", {})
        driver, loads = {}, collections.Counter()
        for cell in cells.values():
            for port, bits in cell["connections"].items():
                out = cell.get("port_directions", {}).get(port) == "output"
                for bit in bits:
                    if out:
                        driver[bit] = cell["type"]
                    else:
                        loads[bit] += 1
        for port in mod.get("ports", {}).values():
            for bit in port["bits"]:
                if port["direction"] == "input":
                    driver[bit] = "PORT"
                else:
                    loads[bit] += 1
        ffs = [c for c in cells.values() if c["type"].startswith("SB_DFF")]
        luts = sum(c["type"] == "SB_LUT4" for c in cells.values())
        if not ffs and not luts:
            continue
        kinds = collections.Counter()
        for cell in ffs:
            bit = cell["connections"]["D"][0]
            kind = driver.get(bit, "CONST")
            if kind == "SB_LUT4":
                kinds["paired" if loads[bit] == 1 else "lut+"] += 1
            elif kind.startswith("SB_DFF"):
                kinds["ff"] += 1
            elif kind in _MEMORIES:
                kinds["ram"] += 1
            elif kind == "PORT":
                kinds["in"] += 1
            else:
                kinds["other"] += 1
        alone = len(ffs) - kinds["paired"]
        rows[name.lstrip("\\")] = {"lut4": luts, "ffs": len(ffs), **{
            k: kinds[k] for k in ("paired", "ff", "lut+", "ram", "in", "other")},
            "cells": luts + alone}
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("build", type=Path, help="a build folder with top.json")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    path = args.build / "top.json"
    if not path.exists():
        sys.exit(f"lc_budget: {path} is not there: build first (spikeforge build --out "
                 f"{args.build})")
    rows = budget(json.loads(path.read_text()))
    cols = ("lut4", "ffs", "paired", "ff", "lut+", "ram", "in", "other", "cells")
    print(f"{'block':34s}" + "".join(f"{c:>8s}" for c in cols))
    for name, row in sorted(rows.items(), key=lambda kv: -kv[1]["cells"]):
        print(f"{name[:34]:34s}" + "".join(f"{row[c]:8d}" for c in cols))
    total = {c: sum(r[c] for r in rows.values()) for c in cols}
    print(f"{'total':34s}" + "".join(f"{total[c]:8d}" for c in cols))
    stat = args.build / "report.json"
    if stat.exists():
        report = json.loads(stat.read_text())
        over = {name: used for name, used, _ in report.get("overused", [])}
        if "ICESTORM_LC" in over:
            print(f"nextpnr: {over['ICESTORM_LC']} logic cells (this estimate: "
                  f"{total['cells']})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"blocks": rows, "total": total}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
