"""A synapse lane memory in iCE40 UltraPlus single-port RAM (``SB_SPRAM256KA``).

The UP5K has four SPRAM blocks of 16384 x 16 bits, which only exist when instantiated
explicitly. ``SpramLaneMemory`` has the signature of ``LaneMemory`` (``r_addr``/``r_en``/
``r_data``, ``w_addr``/``w_en``/``w_data``; read latency one clock; read data held while no
read is made) and builds the lane from ``columns x banks`` blocks: a word wider than 16 bits
spans several blocks side by side (columns), a lane deeper than 16384 words is split by the
high address bits into banks. A block has one port, so a clock can read *or* write a lane:
``single_port = True`` tells the core, which then never asserts ``r_en`` and ``w_en`` in the
same clock (a learning read-modify-write costs a read clock and a write clock). If both were
asserted the write would win and the read data would be stale: the core guarantees they are
not, and the Verilator tests check it on every clock.

``SPRAM_MODEL`` is a behavioural Verilog model of the primitive (the subset used here:
``MASKWREN`` nibble masks, ``CHIPSELECT``, data out held except after a read, ``STANDBY``,
``SLEEP`` and ``POWEROFF`` tied inactive) for simulators that do not have the vendor
library; synthesis maps ``SB_SPRAM256KA`` to the hard block.
"""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Signal

from .memory import LaneMemory

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAM_BLOCKS_UP5K", "SPRAM_MODEL", "SpramLaneMemory",
           "spram_blocks"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAM_BLOCKS_UP5K = 4


def spram_blocks(width, depth):
    """``(columns, banks)``: blocks side by side for ``width`` bits, stacked for ``depth``."""
    return -(-width // SPRAM_WIDTH), -(-depth // SPRAM_DEPTH)


class SpramLaneMemory(LaneMemory):
    """``depth`` words of ``width`` bits in ``SB_SPRAM256KA`` blocks; one access per clock.

    The ports and their checks are ``LaneMemory``'s; only the storage differs."""

    single_port = True

    def __init__(self, width, depth):
        super().__init__(width, depth)
        self.columns, self.banks = spram_blocks(width, depth)

    def elaborate(self, platform):
        m = Module()
        ab = len(self.r_addr)
        low = min(ab, 14)
        addr = Signal(max(ab, 1))
        m.d.comb += addr.eq(self.r_addr)
        with m.If(self.w_en):
            m.d.comb += addr.eq(self.w_addr)
        bank = addr[14:] if ab > 14 else Const(0, 1)
        din = Cat(self.w_data, Const(0, self.columns * SPRAM_WIDTH - self.width))
        outs = []
        for b in range(self.banks):
            cs = Signal(name=f"cs{b}")
            m.d.comb += cs.eq((self.r_en | self.w_en) & (bank == b))
            dout = Signal(self.columns * SPRAM_WIDTH, name=f"dout{b}")
            for k in range(self.columns):
                m.submodules[f"spram_b{b}c{k}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=Cat(addr[:low], Const(0, 14 - low)),
                    i_DATAIN=din[k * SPRAM_WIDTH:(k + 1) * SPRAM_WIDTH],
                    i_MASKWREN=Const(0xF, 4), i_WREN=self.w_en, i_CHIPSELECT=cs,
                    i_CLOCK=ClockSignal(), i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1),
                    i_POWEROFF=Const(1, 1),
                    o_DATAOUT=dout[k * SPRAM_WIDTH:(k + 1) * SPRAM_WIDTH])
            outs.append(dout)
        if self.banks == 1:
            m.d.comb += self.r_data.eq(outs[0][:self.width])
        else:
            # the bank of the last read selects the output (blocks hold their data out)
            sel = Signal(range(self.banks))
            with m.If(self.r_en & ~self.w_en):
                m.d.sync += sel.eq(bank)
            m.d.comb += self.r_data.eq(Array(outs)[sel][:self.width])
        return m


SPRAM_MODEL = """\
// Behavioural model of the iCE40 UltraPlus SB_SPRAM256KA (16384 x 16, single port), for
// simulation only (spikeforge.hdl.spram): read latency one clock, data out held otherwise.
module SB_SPRAM256KA(
  input [13:0] ADDRESS, input [15:0] DATAIN, input [3:0] MASKWREN, input WREN,
  input CHIPSELECT, input CLOCK, input STANDBY, input SLEEP, input POWEROFF,
  output reg [15:0] DATAOUT);
  reg [15:0] mem [0:16383];
  wire on = POWEROFF && !SLEEP && !STANDBY;
  always @(posedge CLOCK) begin
    if (on && CHIPSELECT) begin
      if (WREN) begin
        if (MASKWREN[0]) mem[ADDRESS][3:0] <= DATAIN[3:0];
        if (MASKWREN[1]) mem[ADDRESS][7:4] <= DATAIN[7:4];
        if (MASKWREN[2]) mem[ADDRESS][11:8] <= DATAIN[11:8];
        if (MASKWREN[3]) mem[ADDRESS][15:12] <= DATAIN[15:12];
      end else begin
        DATAOUT <= mem[ADDRESS];
      end
    end
  end
endmodule
"""
