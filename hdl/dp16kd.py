"""A synapse lane memory in ECP5 block RAM (``DP16KD``) with the RAM's own output register.

``Dp16kdLaneMemory`` has the signature and the two-clock read of ``LaneMemory(latency=2)``
(``r_addr``/``r_en``/``r_data``, ``w_addr``/``w_en``/``w_data``; ``r_data`` holds the word of
the read issued two clocks before and keeps it while no read is under way), or a three-clock
read (``latency=3``: the bank select and the bypass into a register of their own), and builds
the lane from ``DP16KD`` instances in their 16384 x 1 shape: one per data bit and bank of 16,384
words, written through port A and read through port B, whose output register (``REGMODE_B
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

from amaranth.hdl import Array, Cat, ClockSignal, Const, Elaboratable, Instance, Module, Mux, Signal

from .memory import LaneMemory

__all__ = ["DP16KD_DEPTH", "DP16KD_MODEL", "Dp16kdLaneMemory", "Dp16kdWordMemory", "WORD_DEPTH",
           "dp16kd_blocks", "dp16kd_word_blocks"]

DP16KD_DEPTH = 16384    # words of the 16384 x 1 shape
_AB = 14                # its address bits


def dp16kd_blocks(width, depth):
    """``(columns, banks)``: one block per data bit, one bank per 16,384 words."""
    return width, -(-depth // DP16KD_DEPTH)


WORD_DEPTH = 1024       # words of the 1024 x 18 shape
_WW = 18                # its data bits


def dp16kd_word_blocks(width, depth):
    """``(columns, banks)`` in the 1024 x 18 shape: 18 bits a column, 1,024 words a bank."""
    return -(-width // _WW), -(-depth // WORD_DEPTH)


def _banks(m, shape, width, columns, banks, w_addr, w_addr1, w_data1, w_en, r_addr, ceb, oceb):
    """The ``DP16KD`` instances of a memory, bank by bank: port A writes the registered write
    (``w_*1``; each bank's enable registered from ``w_en`` and ``w_addr``'s bank bits), port B
    reads ``r_addr`` (latched on ``ceb``) into its output register (loaded on ``oceb``).
    ``shape`` 1: 16384 x 1 blocks, one per data bit; 18: 1024 x 18 blocks (the address in
    pins 13..4, both byte enables set). Returns each bank's word."""
    wide = shape == _WW
    bank_bits = 10 if wide else _AB         # the word address bits of one block

    def addr14(addr):       # the block's 14 address pins
        low = min(len(addr), bank_bits)
        bits = [addr[k] if k < low else Const(0, 1) for k in range(bank_bits)]
        return [Const(1, 1), Const(1, 1), Const(0, 1), Const(0, 1)] + bits if wide else bits

    wd = Cat(w_data1, Const(0, columns * shape - width))
    wa, ra = addr14(w_addr1), addr14(r_addr)
    outs = []
    for b in range(banks):
        here = (w_addr[bank_bits:] == b) if banks > 1 else Const(1, 1)
        we = Signal(name=f"we{b}")
        m.d.sync += we.eq(w_en & here)
        q = Signal(columns * shape, name=f"q{b}")
        for k in range(columns):
            ports = {f"i_ADA{i}": wa[i] for i in range(_AB)}
            ports.update({f"i_ADB{i}": ra[i] for i in range(_AB)})
            ports.update({f"i_DIA{i}": wd[shape * k + i] for i in range(shape)})
            ports.update({f"o_DOB{i}": q[shape * k + i] for i in range(shape)})
            m.submodules[f"bram_b{b}d{k}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=shape, p_DATA_WIDTH_B=shape,
                p_REGMODE_A="NOREG", p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC",
                p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="AUTO",
                # port A: writes only
                i_CLKA=ClockSignal(), i_CEA=we, i_WEA=we, i_OCEA=Const(0, 1),
                i_RSTA=Const(0, 1), i_CSA0=Const(0, 1), i_CSA1=Const(0, 1),
                i_CSA2=Const(0, 1),
                # port B: reads only, the word into the output register a clock later
                i_CLKB=ClockSignal(), i_CEB=ceb, i_WEB=Const(0, 1), i_OCEB=oceb,
                i_RSTB=Const(0, 1), i_CSB0=Const(0, 1), i_CSB1=Const(0, 1),
                i_CSB2=Const(0, 1), i_DIB0=Const(0, 1),
                **ports)
        outs.append(q[:width])
    return outs


class Dp16kdLaneMemory(LaneMemory):
    """``depth`` words of ``width`` bits in ``DP16KD`` blocks with the output register; read
    latency two clocks, or three with ``latency=3`` (the bank select and the bypass
    registered: the core's synapse lanes). The ports and their checks are ``LaneMemory``'s.
    ``shape``: 1 for 16384 x 1 blocks (one per data bit: the synapse lanes, whose 12-bit words
    would waste a third of an 18-bit block), 18 for 1024 x 18 (the core's delay slots, 16-bit
    words)."""

    def __init__(self, width, depth, shape=1, *, latency=2):
        if shape not in (1, _WW):
            raise ValueError(f"shape must be 1 or {_WW}, not {shape!r}")
        if latency not in (2, 3):
            raise ValueError(f"Read latency must be 2 or 3, not {latency!r}")
        super().__init__(width, depth, latency=2)
        self.latency = latency
        self.shape = shape
        self.columns, self.banks = (dp16kd_blocks(width, depth) if shape == 1
                                    else dp16kd_word_blocks(width, depth))

    def elaborate(self, platform):
        m = Module()
        bank_bits = 10 if self.shape == _WW else _AB   # the word address bits of one block
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

        outs = _banks(m, self.shape, self.width, self.columns, self.banks, self.w_addr,
                      w_addr1, w_data1, self.w_en, self.r_addr, self.r_en, r_en1)
        if self.banks == 1:
            word = outs[0]
        else:
            # the bank of the read whose word is in the output registers selects it
            sel0, sel = Signal(range(self.banks)), Signal(range(self.banks))
            with m.If(self.r_en):
                m.d.sync += sel0.eq(self.r_addr[bank_bits:])
            with m.If(r_en1):
                m.d.sync += sel.eq(sel0)
            word = Array(outs)[sel]
        if self.latency == 2:
            m.d.comb += self.r_data.eq(Mux(hit2, byp2, word))
        else:
            # a third clock: the bank select and the bypass into a register (``r_data``), so
            # that the route from the blocks, spread over the die, ends at a flip-flop and not
            # at the users' logic (the ULX3S's critical path at 90 MHz, 10.85 ns: a lane's
            # output register -> the bank select and bypass -> the deliverer's ``d2`` word)
            r_en2 = Signal()
            m.d.sync += r_en2.eq(r_en1)
            with m.If(r_en2):
                m.d.sync += self.r_data.eq(Mux(hit2, byp2, word))
        return m


class Dp16kdWordMemory(Elaboratable):
    """``depth`` words of ``width`` bits in ``DP16KD`` blocks of 1024 x 18 with the output
    register: the core's per-neuron state and parameter words on an ECP5 (the long update
    pipeline's two-clock reads, ``Core``'s ``mem2``), where LUT RAM would take about 1,300
    ``DPR16X4`` cells and a read multiplexer 64 deep per bit behind one address register.

    Read: ``addr_next`` is the address of the next clock (the block registers it itself);
    ``q`` holds the word of the ``addr_next`` of two clocks before once ``en`` was high on
    the clock after it (the output register's enable, ``OCEB``), and keeps it while ``en`` is
    low: the meaning of a read port register loaded from a registered address, including
    the words written up to the clock of that address (``w_*``). The write is registered
    (from flip-flops beside the writer) and lands a clock late; a read of a word written on
    the two clocks before the block's read takes the word from a bypass, as in
    ``Dp16kdLaneMemory``.
    """

    def __init__(self, width, depth):
        self.width, self.depth = width, depth
        self.columns, self.banks = dp16kd_word_blocks(width, depth)
        self.addr_next = Signal(range(max(depth, 2)))
        self.en = Signal()
        self.q = Signal(width)
        self.w_addr = Signal(range(max(depth, 2)))
        self.w_en = Signal()
        self.w_data = Signal(width)

    def elaborate(self, platform):
        m = Module()
        ab = 10
        w_addr1, w_data1, w_en1 = Signal.like(self.w_addr), Signal.like(self.w_data), Signal()
        w_addr2, w_data2, w_en2 = Signal.like(self.w_addr), Signal.like(self.w_data), Signal()
        m.d.sync += [w_addr1.eq(self.w_addr), w_data1.eq(self.w_data), w_en1.eq(self.w_en),
                     w_addr2.eq(w_addr1), w_data2.eq(w_data1), w_en2.eq(w_en1)]
        # the bypass: the blocks read ``addr_next`` at a clock's edge, before the write that
        # lands at it (undefined on the chip) and the one being registered then; both are
        # compared a clock later, from registers (``ra_q``, ``w_*1``, ``w_*2``), so that no
        # comparator sits on ``addr_next`` (the core's next-clock logic)
        ra_q = Signal.like(self.addr_next)
        m.d.sync += ra_q.eq(self.addr_next)
        hit2, byp2 = Signal(), Signal(self.width)
        new = w_en1 & (w_addr1 == ra_q)
        old = w_en2 & (w_addr2 == ra_q)
        with m.If(self.en):
            m.d.sync += [hit2.eq(new | old), byp2.eq(Mux(new, w_data1, w_data2))]

        # the block latches ``addr_next`` on every clock (``CEB``); ``en`` loads the output
        # register
        outs = _banks(m, _WW, self.width, self.columns, self.banks, self.w_addr, w_addr1,
                      w_data1, self.w_en, self.addr_next, Const(1, 1), self.en)
        if self.banks == 1:
            word = outs[0]
        else:
            sel = Signal(range(self.banks))
            with m.If(self.en):
                m.d.sync += sel.eq(ra_q[ab:])
            word = Array(outs)[sel]
        m.d.comb += self.q.eq(Mux(hit2, byp2, word))
        return m


_A = ", ".join(f"ADA{k}" for k in reversed(range(_AB)))
_B = ", ".join(f"ADB{k}" for k in reversed(range(_AB)))
_DIA = ", ".join(f"DIA{k}" for k in reversed(range(18)))
_DOB = ", ".join(f"DOB{k}" for k in range(18))

DP16KD_MODEL = f"""\
// Behavioural model of the ECP5 DP16KD in the shapes spikeforge.hdl.dp16kd uses (16384 x 1 and
// 1024 x 18 with both byte enables; port A writes, port B reads; REGMODE_B "OUTREG" or "NOREG"),
// for simulation only.
module DP16KD(
  input CLKA, CEA, WEA, OCEA, RSTA, CSA0, CSA1, CSA2,
  input {_DIA},
  input {_A},
  input CLKB, CEB, WEB, OCEB, RSTB, CSB0, CSB1, CSB2, DIB0,
  input {_B},
  output {_DOB});
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
  wire [13:0] ada = {{{_A}}};
  wire [13:0] adb = {{{_B}}};
  wire [17:0] dia = {{{_DIA}}};
  reg [17:0] latch_b, reg_b;
  wire [17:0] dob = REGMODE_B == "OUTREG" ? reg_b : latch_b;
  assign {{{", ".join(f"DOB{k}" for k in reversed(range(18)))}}} = dob;
  // a read of the word port A writes on the same clock is undefined on the chip: the model
  // returns the complement of the word before the write (never what a read-before-write
  // user may expect), so that a core which used such a read would differ from the golden model
  generate if (DATA_WIDTH_A == 18) begin : w18
    reg [17:0] mem [0:1023];
    always @(posedge CLKA)
      if (CEA && WEA) begin
        if (ADA0) mem[ada[13:4]][8:0] <= dia[8:0];
        if (ADA1) mem[ada[13:4]][17:9] <= dia[17:9];
      end
    always @(posedge CLKB)
      if (CEB) latch_b <= (CEA && WEA && ada[13:4] == adb[13:4]) ? ~mem[adb[13:4]]
                                                                 : mem[adb[13:4]];
  end else begin : w1
    reg mem [0:16383];
    always @(posedge CLKA)
      if (CEA && WEA) mem[ada] <= dia[0];
    always @(posedge CLKB)
      if (CEB) latch_b <= {{17'b0, (CEA && WEA && ada == adb) ? !mem[adb] : mem[adb]}};
  end endgenerate
  always @(posedge CLKB)
    if (OCEB) reg_b <= latch_b;
endmodule
"""
