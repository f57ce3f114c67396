"""The replaceable memory piece of the core: one lane of the synapse memory.

The core reads a lane-wide synapse word per clock during delivery and potentiation and writes it
back two clocks later (read-modify-write at one word per clock, never the same address twice in
flight). ``LaneMemory`` is that contract: a simple dual-port RAM with one synchronous read port
(data the clock after the address, held while ``r_en`` is low) and one write port. The generic
implementation uses ``amaranth.lib.memory`` (block RAM on every FPGA); a board may substitute a
component with the same signature: ``hdl/spram.py`` puts the lane in iCE40 SPRAM, which has one
port and so needs a read clock and a write clock per learning update (``single_port``).
"""

from amaranth.hdl import Module, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["LaneMemory"]


class LaneMemory(wiring.Component):
    """``depth`` words of ``width`` bits; read latency one clock; read-before-write.

    ``single_port`` is the property the core honours: ``False`` here (a read and a write may
    share a clock); ``True`` for ``spikeforge.hdl.spram.SpramLaneMemory``, where the core never
    asserts ``r_en`` and ``w_en`` in the same clock.
    """

    single_port = False

    def __init__(self, width, depth):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"Memory width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Memory depth must be a positive integer, not {depth!r}")
        self.width, self.depth = width, depth
        addr = unsigned((depth - 1).bit_length())
        super().__init__({
            "r_addr": In(addr), "r_en": In(1), "r_data": Out(width),
            "w_addr": In(addr), "w_en": In(1), "w_data": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = memory.Memory(shape=unsigned(self.width), depth=self.depth,
                                               init=[])
        wp = mem.write_port()
        rp = mem.read_port()
        m.d.comb += [
            rp.addr.eq(self.r_addr), rp.en.eq(self.r_en), self.r_data.eq(rp.data),
            wp.addr.eq(self.w_addr), wp.en.eq(self.w_en), wp.data.eq(self.w_data),
        ]
        return m
