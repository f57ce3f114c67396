"""A synapse lane memory in ECP5 block RAM (``DP16KD``) with the RAM's own output register.

``Dp16kdLaneMemory`` has the signature and the two-clock read of ``LaneMemory(latency=2)``
(``r_addr``/``r_en``/``r_data``, ``w_addr``/``w_en``/``w_data``; ``r_data`` holds the word of
the read issued two clocks before and keeps it while no read is under way) and builds the lane
from ``DP16KD`` instances in their 16384 x 1 shape: one per data bit and bank of 16,384 words,
written through port A and read through port B, whose output register (``REGMODE_B
"OUTREG"``, loaded on the clock after the read: ``OCEB``) is the first of the two clocks. The
register inside the block has about 1 ns clock-to-out where the block's read latch has 5.8 ns,
and nothing sits between the two: the inferred ``LaneMemory`` cannot have that, because Yosys
(0.70) maps its read port's read-before-write meaning across the two ports by emulation (a
delayed write and a bypass multiplexer in front of the register, see ``hdl/memory.py``). The
write is registered here too (a clock late, from flip-flops beside the writer's logic), with
its bypass behind the output registers, where it costs a 2:1 multiplexer after a fast
clock-to-out. A read of the word port A writes on the same clock is undefined on a
``DP16KD``; the simulation model returns the complement of the stored bit for it, so that a
use of such a read (not taken from the bypass) would differ from the golden model.

``DP16KD_MODEL`` is a behavioural Verilog model of the primitive (the subset used here: both
ports 1 bit wide, port A writes and port B reads, ``REGMODE_B`` ``"OUTREG"`` or ``"NOREG"``,
chip selects decoded to 0, resets held inactive) for simulators without the vendor library
(Verilator: the core tests and the virtual board of an ECP5 preset); synthesis maps
``DP16KD`` to the hard block.
"""

from amaranth.hdl import Array, ClockSignal, Const, Instance, Module, Mux, Signal

from .memory import LaneMemory

__all__ = ["DP16KD_DEPTH", "DP16KD_MODEL", "Dp16kdLaneMemory", "dp16kd_blocks"]

DP16KD_DEPTH = 16384    # words of the 16384 x 1 shape
_AB = 14                # its address bits


def dp16kd_blocks(width, depth):
    """``(columns, banks)``: one block per data bit, one bank per 16,384 words."""
    return width, -(-depth // DP16KD_DEPTH)


class Dp16kdLaneMemory(LaneMemory):
    """``depth`` words of ``width`` bits in ``DP16KD`` blocks (16384 x 1, output register);
    read latency two clocks. The ports and their checks are ``LaneMemory``'s."""

    def __init__(self, width, depth):
        super().__init__(width, depth, latency=2)
        self.columns, self.banks = dp16kd_blocks(width, depth)

    def elaborate(self, platform):
        m = Module()
        ab = len(self.r_addr)
        low = min(ab, _AB)
        r_en1 = Signal()
        m.d.sync += r_en1.eq(self.r_en)

        # The write lands a clock late, from registers (the address, the data, each bank's
        # enable): the blocks are spread over the die, and the writer's logic (the learning
        # update's adder and clamp) ends at flip-flops near it instead of at their pins. A read
        # issued on the clock the write lands (of a word written the clock before it) reads the
        # block while it is written, which is undefined: its word comes from the bypass
        # (``hit``, ``byp``: the write's data, along the read's two clocks) instead.
        w_addr1, w_data1 = Signal.like(self.w_addr), Signal.like(self.w_data)
        w_en1 = Signal()
        m.d.sync += [w_addr1.eq(self.w_addr), w_data1.eq(self.w_data), w_en1.eq(self.w_en)]
        hit1, hit2 = Signal(), Signal()
        byp1, byp2 = Signal(self.width), Signal(self.width)
        with m.If(self.r_en):
            m.d.sync += [hit1.eq(w_en1 & (w_addr1 == self.r_addr)), byp1.eq(w_data1)]
        with m.If(r_en1):
            m.d.sync += [hit2.eq(hit1), byp2.eq(byp1)]

        def addr14(addr):       # the block's 14 address bits (the lane's low ones)
            return [addr[k] if k < low else Const(0, 1) for k in range(_AB)]

        outs = []
        for b in range(self.banks):
            here = (self.w_addr[_AB:] == b) if self.banks > 1 else Const(1, 1)
            we = Signal(name=f"we{b}")
            m.d.sync += we.eq(self.w_en & here)
            q = Signal(self.width, name=f"q{b}")
            wa, ra = addr14(w_addr1), addr14(self.r_addr)
            for k in range(self.width):
                ports = {f"i_ADA{i}": wa[i] for i in range(_AB)}
                ports.update({f"i_ADB{i}": ra[i] for i in range(_AB)})
                m.submodules[f"bram_b{b}d{k}"] = Instance(
                    "DP16KD",
                    p_DATA_WIDTH_A=1, p_DATA_WIDTH_B=1,
                    p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
                    p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                    p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                    p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="AUTO",
                    # port A: writes only
                    i_CLKA=ClockSignal(), i_CEA=we, i_WEA=we, i_OCEA=Const(0, 1),
                    i_RSTA=Const(0, 1), i_CSA0=Const(0, 1), i_CSA1=Const(0, 1),
                    i_CSA2=Const(0, 1), i_DIA0=w_data1[k],
                    # port B: reads only, the word into the output register a clock later
                    i_CLKB=ClockSignal(), i_CEB=self.r_en, i_WEB=Const(0, 1), i_OCEB=r_en1,
                    i_RSTB=Const(0, 1), i_CSB0=Const(0, 1), i_CSB1=Const(0, 1),
                    i_CSB2=Const(0, 1), i_DIB0=Const(0, 1), o_DOB0=q[k],
                    **ports)
            outs.append(q)
        if self.banks == 1:
            word = outs[0]
        else:
            # the bank of the read whose word is in the output registers selects it
            sel0, sel = Signal(range(self.banks)), Signal(range(self.banks))
            with m.If(self.r_en):
                m.d.sync += sel0.eq(self.r_addr[_AB:])
            with m.If(r_en1):
                m.d.sync += sel.eq(sel0)
            word = Array(outs)[sel]
        m.d.comb += self.r_data.eq(Mux(hit2, byp2, word))
        return m


_A = ", ".join(f"ADA{k}" for k in reversed(range(_AB)))
_B = ", ".join(f"ADB{k}" for k in reversed(range(_AB)))

DP16KD_MODEL = f"""\
// Behavioural model of the ECP5 DP16KD in the shape spikeforge.hdl.dp16kd uses (16384 x 1,
// port A writes, port B reads; REGMODE_B "OUTREG" or "NOREG"), for simulation only.
module DP16KD(
  input CLKA, CEA, WEA, OCEA, RSTA, CSA0, CSA1, CSA2, DIA0,
  input {_A},
  input CLKB, CEB, WEB, OCEB, RSTB, CSB0, CSB1, CSB2, DIB0,
  input {_B},
  output DOB0);
  parameter DATA_WIDTH_A = 1;
  parameter DATA_WIDTH_B = 1;
  parameter REGMODE_A = "NOREG";
  parameter REGMODE_B = "OUTREG";
  parameter RESETMODE = "SYNC";
  parameter ASYNC_RESET_RELEASE = "SYNC";
  parameter CSDECODE_A = "0b000";
  parameter CSDECODE_B = "0b000";
  parameter WRITEMODE_A = "NORMAL";
  parameter WRITEMODE_B = "NORMAL";
  parameter GSR = "AUTO";
  reg mem [0:16383];
  reg latch_b, reg_b;
  wire [13:0] ada = {{{_A}}};
  wire [13:0] adb = {{{_B}}};
  always @(posedge CLKA)
    if (CEA && WEA) mem[ada] <= DIA0;
  always @(posedge CLKB) begin
    // a read of the word port A writes on the same clock is undefined on the chip: the model
    // returns the complement of the word before the write (never what a read-before-write
    // user may expect), so that a core which used such a read would differ from the golden model
    if (CEB) latch_b <= (CEA && WEA && ada == adb) ? !mem[adb] : mem[adb];
    if (OCEB) reg_b <= latch_b;
  end
  assign DOB0 = REGMODE_B == "OUTREG" ? reg_b : latch_b;
endmodule
"""
