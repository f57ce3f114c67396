"""The counter-based PRNG of ``docs/numerics.md`` section 6 as combinational Amaranth logic.

``mix32`` is two add-xor-shift rounds and a fold: only adders, XORs and fixed shifts, no
state. It is split in two halves (``mix32_first``: the first round and the golden-ratio XOR;
``mix32_second``: the second round and the fold) so that the core can put a pipeline register
between them; ``mix32_pipelined`` cuts it in three (two registers), which the core uses.
``rand_word`` builds the counter word ``kind << 30 | a << 15 | n``; a lane computes
``mix32(key ^ word)`` with the per-step ``key`` computed once per step by the core.
``SerialMix32`` is the same function one operation a clock (one adder, one XOR), for the small
core (``spikeforge.hdl.small_core``), which has clocks to spare and few logic cells. Every
intermediate is a named signal: each value is used twice by the next operation, so an
expression tree would double in size at every one of the twelve operations.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MIX_LATENCY", "MIX_SERIAL_CLOCKS", "SerialMix32", "mix32", "mix32_first",
           "mix32_second", "mix32_pipelined", "rand_word"]

_GOLDEN = 0x9E3779B9

_ROUND = (
    lambda v: v + (v << 10), lambda v: v ^ (v >> 6), lambda v: v + (v << 3),
    lambda v: v ^ (v >> 11), lambda v: v + (v << 15),
)
_FIRST = (*_ROUND, lambda v: v ^ _GOLDEN)
_SECOND = (*_ROUND, lambda v: v ^ (v >> 16))


def _chain(m, x, ops, name):
    value = Value.cast(x).as_unsigned()[:32]
    for k, op in enumerate(ops):
        nxt = Signal(32, name=f"{name}_{k}")
        m.d.comb += nxt.eq(op(value)[:32])
        value = nxt
    return value


def mix32_first(m, x, name="mix_a"):
    """First half of ``mix32``: ``round(x) ^ 0x9E3779B9``."""
    return _chain(m, x, _FIRST, name)


def mix32_second(m, x, name="mix_b"):
    """Second half of ``mix32``: ``y = round(x); y ^ (y >> 16)``."""
    return _chain(m, x, _SECOND, name)


def mix32(m, x, name="mix"):
    """Add the logic of ``mix32(x)`` to module ``m``; returns the 32-bit result signal."""
    return mix32_second(m, mix32_first(m, x, name + "_a"), name + "_b")


MIX_LATENCY = 2


def mix32_pipelined(m, x, name="mixp", *, alt=None, use_alt=None):
    """``mix32(x)`` in three groups of four operations (at most two adders each) with a register
    after each of the first two: the returned (combinational) value is ``mix32`` of the ``x``
    of ``MIX_LATENCY`` clocks earlier. The registers load every clock.

    With ``alt`` and ``use_alt`` the input is ``alt`` where ``use_alt`` is 1: the first
    addition is made on both and chosen after it, so that the choice (a late signal) runs
    beside an adder rather than in front of the group's two."""
    ops = (*_FIRST, *_SECOND)
    r1 = Signal(32, name=f"{name}_r1")
    r2 = Signal(32, name=f"{name}_r2")
    if alt is None:
        g1 = _chain(m, x, ops[0:4], f"{name}_g1")
    else:
        first = Signal(32, name=f"{name}_g1_0")
        m.d.comb += first.eq(Mux(use_alt, _chain(m, alt, ops[0:1], f"{name}_alt"),
                                 _chain(m, x, ops[0:1], f"{name}_g1_x")))
        g1 = _chain(m, first, ops[1:4], f"{name}_g1")
    m.d.sync += r1.eq(g1)
    m.d.sync += r2.eq(_chain(m, r1, ops[4:8], f"{name}_g2"))
    return _chain(m, r2, ops[8:12], f"{name}_g3")


def rand_word(kind, a, n):
    """The 32-bit counter word of ``(kind, a, n)``: ``kind << 30 | a << 15 | n``."""
    a = Value.cast(a).as_unsigned()
    n = Value.cast(n).as_unsigned()
    return Cat(n, Const(0, 15 - len(n)), a, Const(0, 15 - len(a)), Const(kind, 2))


MIX_SERIAL_CLOCKS = 13


class SerialMix32(wiring.Component):
    """``mix32`` one of its twelve operations a clock: ``start`` takes ``x`` (into a register:
    no path runs from the caller's logic into the operations); ``busy`` is high for the
    ``MIX_SERIAL_CLOCKS`` clocks after, and then ``out`` holds ``mix32(x)`` until the next
    ``start``. One 32-bit adder (``v + (v << k)``, ``k`` 10, 3 or 15), one XOR (``v ^ (v >>
    k)``, ``k`` 6, 11 or 16, or the golden-ratio constant) and the register ``out``."""

    start: In(1)
    x: In(32)
    busy: Out(1)
    out: Out(32)

    def elaborate(self, platform):
        m = Module()
        v = self.out
        x = Signal(32)              # the input, taken with ``start``
        load = Signal()             # ``x`` goes into ``v`` at the next clock edge
        run = Signal()
        j = Signal(range(6))        # the operation within a round (and its XOR after)
        second = Signal()           # the second round: the fold instead of the constant
        add = Signal(32)
        xor = Signal(32)
        m.d.comb += [
            add.eq(v + Mux(j == 0, v << 10, Mux(j == 2, v << 3, v << 15))[:32]),
            xor.eq(v ^ Mux(j == 1, v >> 6, Mux(j == 3, v >> 11,
                                               Mux(second, v >> 16, Const(_GOLDEN, 32))))),
            self.busy.eq(load | run),
        ]
        m.d.sync += load.eq(self.start)
        with m.If(self.start):
            m.d.sync += x.eq(self.x)
        with m.If(load):
            m.d.sync += [v.eq(x), run.eq(1), j.eq(0), second.eq(0)]
        with m.Elif(run):
            m.d.sync += v.eq(Mux(j[0], xor, add))
            with m.If(j == 5):
                m.d.sync += [j.eq(0), second.eq(1)]
                with m.If(second):
                    m.d.sync += run.eq(0)
            with m.Else():
                m.d.sync += j.eq(j + 1)
        return m
