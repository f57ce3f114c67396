"""Blocks that only need their clock while they have work: ``add_gated``.

Each block names its own ``wake`` condition (an output, combinational): true in every clock
after which its state may change in a way that matters: a request or pulse arriving, a pulse of
its own to end, work under way. Registers that merely follow an input a clock or two late may
stand still meanwhile: the gate stays open ``SETTLE`` clocks after the last ``wake``, and such
copies are refreshed before anything reads them. A gate serves several blocks that idle at the
same times, open when any of them has work.

Gating is the virtual board's alone. In the bitstream the blocks run on the system clock
like every other (no clock enable: it cost an iCE40 a logic cell per flip-flop, and on the
ECP5 the comb ``wake`` terms reached ~1,500 enable pins and became the SoC's critical path).
In the virtual board (a platform with ``clock_gating`` true) they run in a clock domain of
their own whose clock is the system clock gated by the gate, latched on the falling edge:
Verilator evaluates a domain's logic only on its clock's edges, so a gated block at rest costs
only what depends on other domains' signals. The two are the same machine exactly when every
``wake`` is right: a block left unclocked in a clock where its state would have changed makes
the virtual board differ from the bitstream. ``tests/e2e/test_gating.py`` checks that both send
the same bytes at the same clocks on a recorded session; ``bench/virtual_board.py`` measures
what gating saves (and checks the same on its own run).

The gate is open while the system reset is high; the blocks' own reset is that reset as the
gate saw it at its last open edge (a register of their domain: one clock later than the other
blocks', on entry and on release).
"""

from amaranth.hdl import (
    Cat,
    ClockDomain,
    ClockSignal,
    DomainRenamer,
    ResetSignal,
    Signal,
)

__all__ = ["add_gated", "gated_domain", "SETTLE"]

SETTLE = 2      # clocks a gate stays open after the last one with ``wake``


def gated_domain(name):
    """The clock domain of gate ``name`` (``add_gated``), for registers of the module that adds
    the gate which only its blocks read (so that the blocks read no other domain's signal)."""
    return f"{name}_gated"


def add_gated(m, platform, name, blocks, wake):
    """Add ``blocks`` (submodule name: elaboratable) to ``m``, their ``sync`` domains clocked
    only in the clocks that follow one with ``wake`` high, or ``SETTLE`` clocks later (or the
    domain's reset), when ``platform.clock_gating`` is true; on every clock otherwise (the
    bitstream).

    Blocks that idle at the same times share one gate (``name``), ``wake`` the OR of theirs:
    a block clocked in a clock it did not need behaves as it would without the gate, and each
    gate costs Verilator a trigger it checks on every edge.
    """
    # The blocks' reset is the system reset as the gate last saw it (a clock late): a register
    # of their own domain, so that no logic of theirs reads a signal of another domain just
    # for the reset (Verilator evaluates such logic on every clock of that domain).
    rst = Signal(init=1, reset_less=True, name=f"{name}_rst")
    gated = gated_domain(name)
    m.domains += ClockDomain(gated, local=True)
    m.d.comb += ResetSignal(gated).eq(rst)
    m.d[gated] += rst.eq(ResetSignal("sync"))
    for sub, block in blocks.items():
        m.submodules[sub] = DomainRenamer({"sync": gated})(block)
    if not getattr(platform, "clock_gating", False):
        m.d.comb += ClockSignal(gated).eq(ClockSignal("sync"))
        return
    # Two clocks more after any work: registers that follow a block's memory outputs or
    # inputs a clock or two late (``stale`` flags, output copies) settle before it stops.
    en, after = Signal(name=f"{name}_wake"), Signal(SETTLE, name=f"{name}_after")
    m.d.sync += after.eq(Cat(wake, after))
    m.d.comb += en.eq(wake | after.any() | ResetSignal("sync") | rst)
    latch = f"{name}_latch"
    m.domains += ClockDomain(latch, clk_edge="neg", reset_less=True, local=True)
    en_l = Signal(init=1, name=f"{name}_wake_l")
    m.d[latch] += en_l.eq(en)
    m.d.comb += [ClockSignal(latch).eq(ClockSignal("sync")),
                 ClockSignal(gated).eq(ClockSignal("sync") & en_l)]
