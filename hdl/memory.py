"""The replaceable memory piece of the core: one lane of the synapse memory.

The core reads a lane-wide synapse word per clock during delivery and potentiation and writes it
back some clocks later (read-modify-write at one word per clock, never the same address twice in
flight). ``LaneMemory`` is that contract: a simple dual-port RAM with one synchronous read port
(data ``latency`` clocks after the address, held while no read is under way) and one write
port. The generic implementation uses ``amaranth.lib.memory`` (block RAM on every FPGA); a
board may substitute a component with the same signature: ``hdl/spram.py`` puts the lane in
iCE40 SPRAM, which has one port and so needs a read clock and a write clock per learning update
(``single_port``).

With ``latency=2`` (the core's long pipeline, for the ECP5) the lane is cut in banks of
``bank_depth`` words (16,384: one DP16KD per data bit in its 16384 x 1 shape), each bank's read
word goes into a register of its own, and the bank select follows: a block RAM's slow
clock-to-out (5.8 ns on the ECP5 without its output register, which Yosys does not infer) is
meant to end at a flip-flop beside it, with only the short bank multiplexer left in front of
the long route to the word's users. Yosys (0.70, ``memory_libmap``) keeps this read port's
read-before-write meaning across the DP16KD's two ports by emulation: it delays each write by a
clock and puts a bypass multiplexer (the delayed write's data when its address is read)
between the RAM and ``q``, and nextpnr may then place ``q`` far from the RAM (6.8 ns of route
after the clock-to-out at 80 MHz, 2026-12-02; ``no_rw_check`` does not remove it). On the
ECP5 the core uses ``hdl/dp16kd.py`` instead: DP16KD instances with their output register
(``REGMODE "OUTREG"``) and a simulation model, as ``hdl/spram.py`` does for the iCE40's SPRAM.
"""

from amaranth.hdl import Array, Module, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LaneMemory"]


class LaneMemory(wiring.Component):
    """``depth`` words of ``width`` bits; read latency ``latency`` (1 or 2) clocks;
    read-before-write.

    ``single_port`` is the property the core honours: ``False`` here (a read and a write may
    share a clock); ``True`` for ``spikeforge.hdl.spram.SpramLaneMemory``, where the core never
    asserts ``r_en`` and ``w_en`` in the same clock. ``latency``: ``r_data`` holds the word of
    the read issued ``latency`` clocks before (``r_en`` high then), and keeps it while no
    further read arrives; a write is seen by a read issued on a later clock.
    """

    single_port = False
    latency = 1

    def __init__(self, width, depth, *, latency=1, bank_depth=16384):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"Memory width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Memory depth must be a positive integer, not {depth!r}")
        if latency not in (1, 2):
            raise ValueError(f"Read latency must be 1 or 2, not {latency!r}")
        if not isinstance(bank_depth, int) or bank_depth < 1 or bank_depth & (bank_depth - 1):
            raise ValueError(f"Bank depth must be a power of two, not {bank_depth!r}")
        self.width, self.depth, self.latency, self.bank_depth = width, depth, latency, bank_depth
        super().__init__(self._members())

    def _members(self):
        """The component's ports (a memory that shares its storage adds its other user's)."""
        addr = unsigned((self.depth - 1).bit_length())
        return {"r_addr": In(addr), "r_en": In(1), "r_data": Out(self.width),
                "w_addr": In(addr), "w_en": In(1), "w_data": In(self.width)}

    def elaborate(self, platform):
        m = Module()
        if self.latency == 1:
            m.submodules.mem = mem = memory.Memory(shape=unsigned(self.width),
                                                   depth=self.depth, init=[])
            wp = mem.write_port()
            rp = mem.read_port()
            m.d.comb += [
                rp.addr.eq(self.r_addr), rp.en.eq(self.r_en), self.r_data.eq(rp.data),
                wp.addr.eq(self.w_addr), wp.en.eq(self.w_en), wp.data.eq(self.w_data),
            ]
            return m
        # two clocks: the banks' words into their registers (``r_en1``: a read was issued the
        # clock before), then the bank of that read selected
        bd = min(self.bank_depth, 1 << (self.depth - 1).bit_length())
        banks = -(-self.depth // bd)
        ab = (bd - 1).bit_length()
        r_en1 = Signal()
        m.d.sync += r_en1.eq(self.r_en)
        outs = []
        for b in range(banks):
            m.submodules[f"mem{b}" if banks > 1 else "mem"] = mem = memory.Memory(
                shape=unsigned(self.width), depth=min(bd, self.depth - b * bd), init=[])
            wp, rp = mem.write_port(), mem.read_port()
            here = (self.w_addr[ab:] == b) if banks > 1 else 1
            m.d.comb += [rp.addr.eq(self.r_addr[:ab]), rp.en.eq(self.r_en),
                         wp.addr.eq(self.w_addr[:ab]), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en & here)]
            q = Signal(self.width, name=f"q{b}")
            with m.If(r_en1):
                m.d.sync += q.eq(rp.data)
            outs.append(q)
        if banks > 1:
            sel0, sel = Signal(range(banks)), Signal(range(banks))
            with m.If(self.r_en):
                m.d.sync += sel0.eq(self.r_addr[ab:])
            with m.If(r_en1):
                m.d.sync += sel.eq(sel0)
            m.d.comb += self.r_data.eq(Array(outs)[sel])
        else:
            m.d.comb += self.r_data.eq(outs[0])
        return m
