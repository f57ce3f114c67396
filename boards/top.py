"""The board top: board pins to the SoC, status LEDs and (ECP5) the PLL.

Only this module requests pins; the SoC (``spikeforge.hdl.soc.SoC``) has plain ``rx``/``tx``.
LEDs: ``heartbeat`` blinks at about 1 Hz (the clock runs and the design is configured),
``link`` lights for about 50 ms after any UART line activity in either direction, ``running``
lights while the SoC is busy (a step, a command, unacknowledged output), stretched to ~20 ms so
that short bursts are visible. The three count ticks of ``2**TICK_BITS`` clocks from one
prescaler: counters of 3 to 10 bits where clocks would take 18 to 27 (a 21-bit LED counter
was the iCEBreaker's critical path with the firmware link, 17.6 MHz).
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockDomain, ClockSignal, Elaboratable, Instance, Module, Signal
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from spikeforge.hdl.soc import SoC

__all__ = ["BoardTop", "ecp5_pll_params", "ice40_pll_params", "pll_clocks"]

# ECP5 EHXPLLL limits (Lattice TN1263 / the ecppll tool): phase detector and VCO ranges.
_PFD_MHZ = (3.125, 400.0)
_VCO_MHZ = (400.0, 800.0)
_OUT_MHZ = (3.125, 400.0)


def ecp5_pll_params(fin_hz, fout_hz):
    """``(CLKI_DIV, CLKFB_DIV, CLKOP_DIV)`` making exactly ``fout_hz`` from ``fin_hz`` with the
    feedback taken from CLKOP (``fout = fin * CLKFB_DIV / CLKI_DIV``); ``ValueError`` names the
    clock and the nearest clocks the PLL can make when there is no exact setting."""
    fin, fout = fin_hz / 1e6, fout_hz / 1e6
    if not _OUT_MHZ[0] <= fout <= _OUT_MHZ[1]:
        raise ValueError(f"PLL clock {fout:g} MHz is out of range [{_OUT_MHZ[0]}, "
                         f"{_OUT_MHZ[1]:g}] MHz")
    best = None
    for ref in range(1, 129):
        if not _PFD_MHZ[0] <= fin / ref <= _PFD_MHZ[1]:
            continue
        for fb in range(1, 81):
            if fin_hz * fb % ref or fin_hz * fb // ref != fout_hz:
                continue
            for op in range(1, 129):
                if _VCO_MHZ[0] <= fout * op <= _VCO_MHZ[1]:
                    vco_mid = abs(fout * op - sum(_VCO_MHZ) / 2)
                    if best is None or vco_mid < best[0]:
                        best = (vco_mid, (ref, fb, op))
    if best is None:
        near = sorted(pll_clocks(fin_hz), key=lambda f: abs(f - fout_hz))[:2]
        raise ValueError(f"PLL clock {fout:g} MHz cannot be made exactly from {fin:g} MHz "
                         f"(nearest: {', '.join(f'{f / 1e6:g}' for f in sorted(near))} MHz)")
    return best[1]


def pll_clocks(fin_hz, lo_hz=10_000_000, hi_hz=200_000_000):
    """Every whole-hertz clock in ``[lo_hz, hi_hz]`` the ECP5 PLL makes exactly from ``fin_hz``."""
    out = set()
    for ref in range(1, 129):
        if not _PFD_MHZ[0] <= fin_hz / ref / 1e6 <= _PFD_MHZ[1]:
            continue
        for fb in range(1, 81):
            if fin_hz * fb % ref == 0 and lo_hz <= fin_hz * fb // ref <= hi_hz:
                f = fin_hz * fb // ref
                if any(_VCO_MHZ[0] <= f * op / 1e6 <= _VCO_MHZ[1] for op in range(1, 129)):
                    out.add(f)
    return sorted(out)


# iCE40 SB_PLL40 limits (Lattice iCE40 sysCLOCK PLL design guide / the icepll tool).
_ICE40_PFD_MHZ = (10.0, 133.0)
_ICE40_VCO_MHZ = (533.0, 1066.0)
_ICE40_OUT_MHZ = (16.0, 275.0)


def ice40_pll_params(fin_hz, fout_hz):
    """``(DIVR, DIVF, DIVQ, FILTER_RANGE)`` making exactly ``fout_hz`` from ``fin_hz``
    (``fout = fin * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)``); ``ValueError`` otherwise."""
    fout = fout_hz / 1e6
    if not _ICE40_OUT_MHZ[0] <= fout <= _ICE40_OUT_MHZ[1]:
        raise ValueError(f"PLL clock {fout:g} MHz is out of range [{_ICE40_OUT_MHZ[0]:g}, "
                         f"{_ICE40_OUT_MHZ[1]:g}] MHz")
    for divr in range(16):
        pfd = fin_hz / (divr + 1) / 1e6
        if not _ICE40_PFD_MHZ[0] <= pfd <= _ICE40_PFD_MHZ[1]:
            continue
        for divq in range(1, 7):
            num = fout_hz * (divr + 1) * (1 << divq)
            if num % fin_hz:
                continue
            divf = num // fin_hz - 1
            if 0 <= divf <= 127 and _ICE40_VCO_MHZ[0] <= pfd * (divf + 1) <= _ICE40_VCO_MHZ[1]:
                filt = next(k for k, lim in enumerate((17, 26, 44, 66, 101, 133)) if pfd < lim)
                return divr, divf, divq, filt + 1
    raise ValueError(f"PLL clock {fout:g} MHz cannot be made exactly from "
                     f"{fin_hz / 1e6:g} MHz by the iCE40 PLL")


class _ICE40PLL(Elaboratable):
    """``SB_PLL40_PAD`` from the clock pad to ``clk_out``; ``locked`` once stable."""

    def __init__(self, pad, fin_hz, fout_hz):
        self.pad, self.fin_hz, self.fout_hz = pad, fin_hz, fout_hz
        self.divr, self.divf, self.divq, self.filt = ice40_pll_params(fin_hz, fout_hz)
        self.clk_out, self.locked = Signal(name="clk_pll"), Signal(name="pll_locked")

    def elaborate(self, platform):
        m = Module()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD", p_FEEDBACK_PATH="SIMPLE", p_DIVR=self.divr, p_DIVF=self.divf,
            p_DIVQ=self.divq, p_FILTER_RANGE=self.filt,
            i_PACKAGEPIN=self.pad.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=self.clk_out, o_LOCK=self.locked)
        if platform is not None:
            platform.add_clock_constraint(self.clk_out, self.fout_hz)
        return m


def _ecp5_pll_divided(fin_hz, fout_hz, divider):
    """``ecp5_pll_params``, checked for a second output ``divider`` times slower (if any)."""
    ref, fb, op = ecp5_pll_params(fin_hz, fout_hz)
    if divider is not None and not 1 <= op * divider <= 128:
        raise ValueError(f"PLL clock {fout_hz / divider / 1e6:g} MHz (the {fout_hz / 1e6:g} MHz "
                         f"clock / {divider}) needs an output divider of {op * divider}, above "
                         f"128")
    return ref, fb, op


class _ECP5PLL(Elaboratable):
    """``EHXPLLL`` from ``clk_in`` to ``clk_out``; ``locked`` once the output is stable. With a
    ``divider``, also ``clk_div`` at ``fout_hz / divider`` (the secondary output ``CLKOS``, from
    the same VCO)."""

    def __init__(self, fin_hz, fout_hz, divider=None):
        self.fin_hz, self.fout_hz, self.divider = fin_hz, fout_hz, divider
        self.ref, self.fb, self.op = _ecp5_pll_divided(fin_hz, fout_hz, divider)
        self.clk_in = Signal()
        self.clk_out, self.locked = Signal(name="clk_pll"), Signal(name="pll_locked")
        self.clk_div = Signal(name="clk_pll_div")

    def elaborate(self, platform):
        m = Module()
        clk_out, locked = self.clk_out, self.locked
        m.submodules.pll = Instance(
            "EHXPLLL",
            a_FREQUENCY_PIN_CLKI=f"{self.fin_hz / 1e6:g}",
            a_FREQUENCY_PIN_CLKOP=f"{self.fout_hz / 1e6:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1",
            a_MFG_GMCREF_SEL="2",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=self.ref, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=self.op,
            p_CLKOP_CPHASE=self.op - 1, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP",
            p_CLKFB_DIV=self.fb,
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, o_CLKOP=clk_out, i_CLKFB=clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1,
            i_PLLWAKESYNC=0, i_ENCLKOP=0, o_LOCK=locked,
            **({} if self.divider is None else dict(
                a_FREQUENCY_PIN_CLKOS=f"{self.fout_hz / self.divider / 1e6:g}",
                p_CLKOS_ENABLE="ENABLED", p_CLKOS_DIV=self.op * self.divider,
                p_CLKOS_CPHASE=self.op * self.divider - 1, p_CLKOS_FPHASE=0,
                o_CLKOS=self.clk_div)))
        if platform is not None:
            platform.add_clock_constraint(clk_out, self.fout_hz)
            if self.divider is not None:
                platform.add_clock_constraint(self.clk_div, self.fout_hz / self.divider)
        return m


TICK_BITS = 16


def _ticks(clocks):
    """The LED ticks that last at least about ``clocks`` clocks."""
    return max(1, -(-clocks >> TICK_BITS))


def _tick(m):
    """A pulse every ``2**TICK_BITS`` clocks: the carry out of the prescaler."""
    prescaler = Signal(TICK_BITS, name="led_prescaler")
    tick = Signal(name="led_tick")
    m.d.sync += Cat(prescaler, tick).eq(prescaler + 1)
    return tick


def _stretch(m, trigger, ticks, tick, name):
    """A signal high from the clock after each cycle ``trigger`` is high until ``ticks`` pulses
    of ``tick`` have passed.

    ``trigger`` is registered first: an LED does not mind a clock, and the SoC's ``active`` (an
    OR of the link's and the chip's states) would otherwise end at the counter's reset across
    the chip (the ULX3S's critical path at 93.75 MHz, 2026-12-04)."""
    seen = Signal(name=f"{name}_seen")
    m.d.sync += seen.eq(trigger)
    count = Signal(range(ticks + 1), name=f"{name}_count")
    with m.If(seen):
        m.d.sync += count.eq(ticks)
    with m.Elif(tick & (count != 0)):
        m.d.sync += count.eq(count - 1)
    return count != 0


class BoardTop(Elaboratable):
    """The SoC of ``board`` (a ``spikeforge.boards.Board``) with its pins, LEDs and clock.

    ``preset`` overrides the board's SoC preset (its ``clock_hz`` must still be what the board
    makes: the oscillator, or a clock the PLL makes exactly; at the oscillator's frequency the
    PLL is left out). A preset with a ``chip_clock_hz`` (ECP5 boards) gets it from the PLL's
    main output and the link's ``clock_hz`` from its second output (``chip_ratio`` times
    slower, from the same VCO).
    """

    def __init__(self, board, preset=None):
        self.board = board
        self.preset = preset if preset is not None else board.soc_preset()
        clock = self.preset.clock_hz
        self.separate = self.preset.chip_clock_hz is not None
        if self.separate and not (board.pll and board.family == "ecp5"):
            raise ValueError(f"preset {self.preset.name!r} has a chip clock of its own: the "
                             f"{board.title} top makes one only with an ECP5 PLL")
        self.use_pll = board.pll and (clock != board.osc_hz or self.separate)
        if self.separate:                            # fails early on an impossible clock
            _ecp5_pll_divided(board.osc_hz, self.preset.chip_clock_hz, self.preset.chip_ratio)
        elif self.use_pll:
            (ecp5_pll_params if board.family == "ecp5" else ice40_pll_params)(
                board.osc_hz, clock)
        elif clock != board.osc_hz:
            raise ValueError(f"clock {clock / 1e6:g} MHz of preset {self.preset.name!r} is not "
                             f"the {board.title} oscillator's {board.osc_hz / 1e6:g} MHz "
                             f"(the board has no PLL in its top)")
        # a firmware link on a board whose flash it can boot from: the firmware's RAM in the
        # SPRAM block the core's delay slots leave most of (no block RAM for it)
        self.soc = SoC(self.preset, firmware_ram=board.firmware_ram(self.preset))
        self.flash_boot = self.soc.firmware_ram == "spram"

    def elaborate(self, platform):
        m = Module()
        b, p = self.board, self.preset
        if self.use_pll:
            clk = platform.request(platform.default_clk, dir="-")
            if self.separate:
                m.submodules.pll = pll = _ECP5PLL(b.osc_hz, p.chip_clock_hz, p.chip_ratio)
            elif b.family == "ecp5":
                m.submodules.pll = pll = _ECP5PLL(b.osc_hz, p.clock_hz)
            else:                  # the iCE40 PLL takes the pad itself
                m.submodules.pll = pll = _ICE40PLL(clk, b.osc_hz, p.clock_hz)
            if b.family == "ecp5":
                m.submodules.clk_buf = clk_buf = io.Buffer("i", clk)
                m.d.comb += pll.clk_in.eq(clk_buf.i)
            # the SoC's clock domain, held in reset until the PLL locks (the chip's reset follows
            # it, synchronised inside the SoC)
            m.domains.sync = ClockDomain("sync")
            m.d.comb += ClockSignal("sync").eq(pll.clk_div if self.separate else pll.clk_out)
            if self.separate:
                m.d.comb += self.soc.chip_clk.eq(pll.clk_out)
            m.submodules.reset_sync = ResetSynchronizer(~pll.locked, domain="sync")
        m.submodules.soc = soc = self.soc

        uart = platform.request(*b.uart, dir="-")
        m.submodules.uart_rx = uart_rx = io.Buffer("i", uart.rx)
        m.submodules.uart_tx = uart_tx = io.Buffer("o", uart.tx)
        m.d.comb += [soc.rx.eq(uart_rx.i), uart_tx.o.eq(soc.tx)]
        if self.flash_boot:
            pins = platform.request(*b.flash, dir="-")
            for name in ("cs", "clk", "copi", "wp", "hold"):
                m.submodules[f"flash_{name}"] = buf = io.Buffer("o", getattr(pins, name))
                if name not in ("wp", "hold"):          # write-protect and hold: inactive
                    m.d.comb += buf.o.eq(getattr(soc.flash, name))
            m.submodules.flash_cipo = cipo = io.Buffer("i", pins.cipo)
            m.d.comb += soc.flash.cipo.eq(cipo.i)

        tick = _tick(m)
        half = max(1, round(p.clock_hz / 2 / 2**TICK_BITS))
        heartbeat = Signal(range(half), name="heartbeat")
        led_beat = Signal()
        with m.If(tick):
            with m.If(heartbeat == half - 1):
                m.d.sync += [heartbeat.eq(0), led_beat.eq(~led_beat)]
            with m.Else():
                m.d.sync += heartbeat.eq(heartbeat + 1)
        line = ~soc.rx | ~soc.tx
        roles = {"heartbeat": led_beat,
                 "link": _stretch(m, line, _ticks(p.clock_hz // 20), tick, "link"),
                 "running": _stretch(m, soc.active, _ticks(p.clock_hz // 50), tick, "running")}
        for role, (name, number) in b.leds.items():
            led = io.Buffer("o", platform.request(name, number, dir="-"))
            m.submodules[f"led_{role}"] = led
            m.d.comb += led.o.eq(roles[role])
        return m
