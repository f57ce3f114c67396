"""spikeforge.boards: the boards a bitstream is built for, and the virtual board.

A board file (``icebreaker.py``, ``ulx3s.py``) holds data only: a :class:`Board` naming the
amaranth-boards platform, the pins the board top uses, the PLL (if any), the SoC preset sized to
the board and the memory split. The registry (:data:`BOARDS`, :func:`board`) imports no Amaranth,
so ``spikeforge boards`` and ``spikeforge flash`` work without the synthesis packages.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

__all__ = ["Board", "BOARDS", "board", "board_names"]


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    ``platform``: the amaranth-boards platform class as ``"module:Class"`` (loaded on use).
    ``family``: ``"ice40"`` or ``"ecp5"`` (selects Yosys ``synth_<family>``, nextpnr and the
    packer). ``nextpnr_args``: device and package options. ``osc_hz``: the board oscillator;
    ``pll``: True when the board top makes the preset's clock from it with a PLL (otherwise the
    preset's ``clock_hz`` must equal ``osc_hz``). ``uart``: the UART resource (name, number).
    ``leds``: role (``heartbeat``, ``link``, ``running``) -> LED resource (name, number).
    ``device``: the FPGA's part name as the platform class spells it (``platform.device``); the
    virtual board elaborates the SoC for it, so it builds the same micro-architecture as the
    bitstream (e.g. SPRAM synapses and the short update pipeline on an iCE40 UltraPlus).
    ``extra_resources``: names of resource lists of the platform class to add (e.g. the
    iCEBreaker's break-off PMOD). ``loader_board``: openFPGALoader's ``-b`` name.
    ``flash``: the SPI flash resource (name, number) the FPGA configures from, when a
    firmware-link SoC keeps its firmware's RAM in SPRAM and loads it from there
    (``SoC(firmware_ram="spram")``; the build writes the image after the bitstream).
    ``virtual_presets``: other presets of the board's chip (another link), which the virtual
    board elaborates for this board's device as it does ``preset``.
    ``memory``: where each memory of the SoC lives (stated in ``spikeforge boards`` and in the
    build report). ``synth_opts``: options of Yosys's ``synth_<family>``; ``yosys_commands``:
    Yosys commands run after reading the design (e.g. ``ram_style`` attributes that put small
    memories in LUT RAM).
    """
    name: str
    title: str
    platform: str
    family: str
    nextpnr_args: tuple
    osc_hz: int
    preset: str
    uart: tuple
    leds: dict
    memory: dict
    loader_board: str
    bitstream: str
    pll: bool = False
    device: str = ""
    extra_resources: tuple = ()
    synth_opts: str = ""
    yosys_commands: tuple = ()
    notes: str = ""
    aliases: tuple = field(default=())
    flash: tuple = ()
    virtual_presets: tuple = ()

    def firmware_ram(self, preset):
        """Where a SoC of ``preset`` on this board keeps its link firmware (``SoC``'s
        ``firmware_ram``): ``"spram"``, beside a small core's delay slots and loaded from the
        flash, when the board has a flash to boot from and the preset a firmware link, small
        cores and one clock; else ``"block"``."""
        return "spram" if self.flash and preset.firmware_fits_slot_spram else "block"

    def __post_init__(self):
        if self.family not in ("ice40", "ecp5"):
            raise ValueError(f"board family {self.family!r} is not 'ice40' or 'ecp5'")

    def platform_class(self):
        """The amaranth-boards platform class; ``RuntimeError`` if amaranth-boards is missing."""
        module, _, cls = self.platform.partition(":")
        try:
            return getattr(importlib.import_module(module), cls)
        except ModuleNotFoundError as e:
            raise RuntimeError(f"{e.name} is not installed: install the 'synth' extra "
                               f"(pip install -e '.[synth]')") from None

    def soc_preset(self):
        """The ``spikeforge.presets.SocPreset`` this board is built with."""
        from spikeforge.presets import preset
        return preset(self.preset)

    def capacity(self):
        """``dict(neurons, synapses, cores, clock_mhz, link_clock_mhz)`` of the preset: the
        cores' clock and the link's."""
        p = self.soc_preset()
        return dict(neurons=p.core.n_neurons * p.n_cores,
                    synapses=p.core.n_synapses * p.n_cores,
                    cores=p.n_cores, clock_mhz=p.core_clock_hz / 1e6,
                    link_clock_mhz=p.clock_hz / 1e6)


def _load():
    from . import icebreaker, ulx3s
    return {b.name: b for b in (icebreaker.BOARD, ulx3s.BOARD)}


BOARDS = _load()


def board_names():
    return sorted(BOARDS)


def board(name):
    """The board called ``name`` (or one of its aliases); ``ValueError`` lists the boards."""
    if name in BOARDS:
        return BOARDS[name]
    for b in BOARDS.values():
        if name in b.aliases:
            return b
    raise ValueError(f"no board named {name!r}; boards are {board_names()}")
