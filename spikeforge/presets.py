"""Named SoC configurations: data only (no Amaranth, no host), read by the SoC generator, the
board builds and the virtual board.

A preset names the core configuration, the number of cores, the system clock, the UART rate and
the link's buffer sizes. ``clocks_per_bit`` is derived (and checked) here so that every consumer
agrees on it without importing the hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from spikeforge import protocol
from spikeforge.image import CoreConfig
from spikeforge.routing import ChipMap, RouterLimits

__all__ = ["SocPreset", "PRESETS", "CORE_KINDS", "LINK_KINDS", "preset"]

# Mid-bit sampling needs at least 4 clocks per bit (spikeforge.hdl.uart.MIN_CLOCKS_PER_BIT).
_MIN_CLOCKS_PER_BIT = 4
_BAUD_TOLERANCE = 0.02
_MAX_CORES = 64          # the SPIKES/INPUT core byte; the router's core field is far wider
CORE_KINDS = ("full", "small")
LINK_KINDS = ("hardware", "firmware")


@dataclass(frozen=True)
class SocPreset:
    """One SoC configuration.

    ``window``/``out_window``: commands whose replies are kept, and output frames kept for
    resending (powers of two). ``out_timeout``: clocks without an ``OUT_ACK`` before the
    unacknowledged output frames are sent again. ``input_depth``: entries of the input queue.
    ``n_cores`` equal cores of ``core`` join the router, whose tables hold ``route_entries``
    destinations per core and at most ``fan_out`` per neuron (``spikeforge.routing``).
    ``n_probes``: probes (``PROBE``), each at most one PROBE_DATA frame of at most
    ``probe_payload`` bytes per step (the board keeps one step of them, ``n_probes x
    probe_payload`` bytes, for resending: 1 block RAM of an iCE40 at the defaults).
    """
    name: str
    core: CoreConfig
    clock_hz: int
    baud: int
    n_cores: int = 1
    window: int = 8
    out_window: int = 8
    max_payload: int = protocol.MAX_PAYLOAD
    out_timeout: int = 0
    input_depth: int = 512
    route_entries: int = 1024
    fan_out: int = 16
    n_probes: int = 2
    probe_payload: int = 256
    chip_clock_hz: int | None = None
    # the core design: "full" (``spikeforge.hdl.core.Core``, lanes and pipelines for speed) or
    # "small" (``spikeforge.hdl.small_core.SmallCore``: one lane, one operation at a time, for
    # the logic cells of a small FPGA); left out of ``repr`` when "full", so the build id of
    # the presets that had no such field stays what it was (``spikeforge.hdl.soc.build_id``)
    core_kind: str = field(default="full", repr=False)
    # the link's command processor: "hardware" (``spikeforge.hdl.link.CommandProcessor``, one
    # FSM) or "firmware" (``spikeforge.hdl.firmware_link.FirmwareProcessor``: the protocol's
    # control plane as a program on a bit-serial RISC-V core, for the logic cells of a small
    # FPGA; needs ``pythondata-cpu-serv`` and ``ziglang``); left out of ``repr`` like
    # ``core_kind``
    link_kind: str = field(default="hardware", repr=False)

    def __post_init__(self):
        for name in ("window", "out_window"):
            value = getattr(self, name)
            if value not in (1, 2, 4, 8, 16, 32, 64):
                raise ValueError(f"{name} {value!r} must be a power of two from 1 to 64")
        if not 16 <= self.max_payload <= protocol.MAX_PAYLOAD:
            raise ValueError(f"max payload {self.max_payload!r} is out of range "
                             f"[16, {protocol.MAX_PAYLOAD}]")
        if isinstance(self.n_cores, bool) or not isinstance(self.n_cores, int) \
                or not 1 <= self.n_cores <= _MAX_CORES:
            raise ValueError(f"n_cores {self.n_cores!r} is out of range [1, {_MAX_CORES}]")
        self.limits  # noqa: B018 - validates route_entries and fan_out
        if isinstance(self.n_probes, bool) or not isinstance(self.n_probes, int) \
                or not 1 <= self.n_probes <= 16:
            raise ValueError(f"n_probes {self.n_probes!r} is out of range [1, 16]")
        if not 16 <= self.probe_payload <= self.max_payload:
            raise ValueError(f"probe payload {self.probe_payload!r} is out of range "
                             f"[16, {self.max_payload}] (the max payload)")
        self.clocks_per_bit  # noqa: B018 - validates clock and baud
        if self.core_kind not in CORE_KINDS:
            raise ValueError(f"core kind {self.core_kind!r} is not one of {CORE_KINDS}")
        if self.link_kind not in LINK_KINDS:
            raise ValueError(f"link kind {self.link_kind!r} is not one of {LINK_KINDS}")
        if self.core_kind == "small" and min(self.core.lanes, self.core.n_neurons) != 1:
            raise ValueError(f"the small core has one lane, not {self.core.lanes}")
        if self.chip_clock_hz is not None and (
                isinstance(self.chip_clock_hz, bool) or not isinstance(self.chip_clock_hz, int)
                or self.chip_clock_hz < self.clock_hz or self.chip_clock_hz % self.clock_hz):
            raise ValueError(f"chip clock {self.chip_clock_hz!r} Hz must be a whole multiple of "
                             f"the link clock {self.clock_hz} Hz")

    @property
    def firmware_fits_slot_spram(self):
        """Whether the firmware link's RAM may share core 0's delay-slot SPRAM block
        (``SoC(firmware_ram="spram")``): a firmware link, small cores, one clock."""
        return (self.link_kind == "firmware" and self.core_kind == "small"
                and self.chip_clock_hz is None)

    @property
    def core_clock_hz(self):
        """The cores' clock: ``chip_clock_hz`` when the chip has a clock of its own, else the
        link's ``clock_hz``."""
        return self.chip_clock_hz or self.clock_hz

    @property
    def chip_ratio(self):
        """Chip clocks per link clock (1 when the chip runs on the link's clock)."""
        return self.core_clock_hz // self.clock_hz

    @property
    def limits(self):
        """The router's table sizes (``spikeforge.routing.RouterLimits``)."""
        return RouterLimits(self.route_entries, self.fan_out)

    @property
    def chipmap(self):
        """The chip's memory map: every core's ``MemoryMap`` and every routing table."""
        return ChipMap([self.core] * self.n_cores, self.limits)

    @property
    def clocks_per_bit(self):
        cpb = round(self.clock_hz / self.baud)
        if cpb < _MIN_CLOCKS_PER_BIT:
            raise ValueError(f"baud rate {self.baud} is too high (at most "
                             f"{self.clock_hz // _MIN_CLOCKS_PER_BIT} at "
                             f"{self.clock_hz / 1e6:g} MHz)")
        error = abs(self.clock_hz / cpb - self.baud) / self.baud
        if error > _BAUD_TOLERANCE:
            raise ValueError(f"baud rate {self.baud} is off by {error:.1%} at "
                             f"{self.clock_hz / 1e6:g} MHz (at most {_BAUD_TOLERANCE:.0%})")
        return cpb

    @property
    def resend_clocks(self):
        """``out_timeout`` or, if 0, the line time of ``2 * (out_window + 1)`` largest frames."""
        if self.out_timeout:
            return self.out_timeout
        frame = protocol.frame_overhead(self.max_payload) + self.max_payload
        return 2 * (self.out_window + 1) * frame * 10 * self.clocks_per_bit


PRESETS = {
    # Small enough that a Verilator build takes seconds and a step a few hundred clocks.
    "tiny": SocPreset("tiny", CoreConfig(n_neurons=16, n_axons=16, weight_bits=8, delay_bits=2,
                                         lanes=2, plastic=True, n_profiles=4),
                      clock_hz=4_000_000, baud=1_000_000, max_payload=256, input_depth=256,
                      route_entries=64, fan_out=8),
    # Two tiny cores joined by the router (multi-core tests).
    "tiny2": SocPreset("tiny2", CoreConfig(n_neurons=16, n_axons=16, weight_bits=8,
                                           delay_bits=2, lanes=2, plastic=True, n_profiles=4),
                       clock_hz=4_000_000, baud=1_000_000, n_cores=2, max_payload=256,
                       input_depth=256, route_entries=64, fan_out=8),
    # iCEBreaker: 12 MHz oscillator, no PLL; the FTDI bridge takes 1 Mbaud (3 MHz / 3) exactly.
    # The link's buffers are sized to the 30 EBR that the core leaves little of (a 512-byte
    # frame buffer is one EBR; a one-core chip needs about one route entry per neuron).
    # One lane: more lanes need more DSPs (9 > 8 at two lanes) and EBR (32 > 30 at four) than
    # the UP5K has (docs/architecture.md, core section). 7-bit weights: a synapse word (weight,
    # 4-bit delay, mask) of 12 bits is a byte and a nibble, packed into 3 of the 4 SPRAM blocks
    # (``hdl/spram.py``): the fourth is left for the link.
    # The small core (``SmallCore``): the full one takes most of the UP5K's logic cells alone.
    # The firmware link (``FirmwareProcessor``, SERV; window 2: its receive FIFO holds two
    # largest frames): the hardware link does not fit beside the core (9,858 of 5,280 LCs).
    # 30 MHz from the PLL (12 x 80 / 32); 1 Mbaud is 30 clocks a bit.
    "icebreaker": SocPreset("icebreaker", CoreConfig(n_neurons=256, n_axons=256, weight_bits=7,
                                                     delay_bits=4, lanes=1, plastic=True,
                                                     n_profiles=4),
                            clock_hz=30_000_000, baud=1_000_000, max_payload=512,
                            input_depth=256, route_entries=256, probe_payload=256,
                            window=2, core_kind="small", link_kind="firmware"),
    # ULX3S-85F: the PLL makes 100 MHz from the 25 MHz oscillator (25 x 4); the full SoC met
    # timing at 100 MHz (Fmax 100.83 MHz, nextpnr --seed 4, 2026-12-04; docs/boards.md);
    # 1 Mbaud: 100 clocks per bit, exact.
    "ulx3s-85f": SocPreset("ulx3s-85f", CoreConfig(n_neurons=1024, n_axons=256, weight_bits=8,
                                                   delay_bits=3, lanes=4, plastic=True,
                                                   n_profiles=16),
                           clock_hz=100_000_000, baud=1_000_000),
}
# ``tiny2`` with small cores (one lane each): the small core in the SoC's tests
PRESETS["tiny2-small"] = replace(PRESETS["tiny2"], name="tiny2-small",
                                 core=replace(PRESETS["tiny2"].core, lanes=1), core_kind="small")
# ``tiny`` with the firmware link (``FirmwareProcessor``; the SoC's tests of it), at a tenth of
# the baud rate (SERV decodes a byte in about 2,000 clocks: 40 clocks a bit leave it 400, and
# the receive FIFO takes up the rest) and a window of 2 commands (the receive FIFO holds two
# largest frames: a client that waits for a reply before its third frame never overflows it,
# however slow the firmware)
# The iCEBreaker's chip behind the hardware link: the private virtual board's default
# (``spikeforge.host.session.DEFAULT_PRESET``; the virtual board elaborates it for the
# iCEBreaker's device, ``Board.virtual_presets``). The chip, and so every result, is the board's;
# the board's firmware link carries memory commands out at SERV's pace (about 1,900 clocks a
# word for a REGION_CRC: seconds for a 64k-synapse upload on the board, many minutes under
# Verilator).
# ``spikeforge emulate --board icebreaker`` runs the board's own configuration.
PRESETS["icebreaker-hwlink"] = replace(PRESETS["icebreaker"], name="icebreaker-hwlink",
                                       window=8, link_kind="hardware")
PRESETS["tiny-fw"] = replace(PRESETS["tiny"], name="tiny-fw", baud=100_000, window=2,
                             link_kind="firmware")
PRESETS["tiny2-fw"] = replace(PRESETS["tiny2"], name="tiny2-fw", baud=100_000, window=2,
                              link_kind="firmware")
# ``tiny`` with the chip on a clock of its own, twice the link's (the chip crossing's tests)
PRESETS["tiny-chipclock"] = replace(PRESETS["tiny"], name="tiny-chipclock",
                                    chip_clock_hz=2 * PRESETS["tiny"].clock_hz)


def preset(name):
    """The preset called ``name``; ``ValueError`` lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"no SoC preset named {name!r}; presets are {sorted(PRESETS)}") \
            from None
