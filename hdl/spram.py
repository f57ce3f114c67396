"""A synapse lane memory in iCE40 UltraPlus single-port RAM (``SB_SPRAM256KA``).

The UP5K has four SPRAM blocks of 16384 x 16 bits, which only exist when instantiated
explicitly. ``SpramLaneMemory`` has the signature of ``LaneMemory`` (``r_addr``/``r_en``/
``r_data``, ``w_addr``/``w_en``/``w_data``; read latency one clock; read data held while no
read is made). A word is cut into *parts* (``spram_parts``): 16-bit columns side by side, or,
when that takes fewer blocks, 16-bit columns and then an 8-bit and a 4-bit part, of which a
block row holds two and four words (written alone through the block's ``MASKWREN`` nibble
enables). A 12-bit synapse word (7-bit weight, 4-bit delay, mask) of 65,536 synapses thus takes
three blocks (two of bytes, one of nibbles), not four, and leaves the fourth free. A part
deeper than a block is split by its high row bits into banks.

A block has one port, so a clock can read *or* write a lane: ``single_port = True`` tells the
core, which then never asserts ``r_en`` and ``w_en`` in the same clock (a learning
read-modify-write costs a read clock and a write clock). If both were asserted the write would
win and the read data would be stale: the core guarantees they are not, and the Verilator tests
check it on every clock.

``SPRAM_MODEL`` is a behavioural Verilog model of the primitive (the subset used here:
``MASKWREN`` nibble masks, ``CHIPSELECT``, data out held except after a read, ``STANDBY``,
``SLEEP`` and ``POWEROFF`` tied inactive) for simulators that do not have the vendor
library; synthesis maps ``SB_SPRAM256KA`` to the hard block.
"""

from amaranth.hdl import Array, Cat, ClockSignal, Const, Instance, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .memory import LaneMemory

__all__ = ["SPRAM_DEPTH", "SPRAM_WIDTH", "SPRAM_BLOCKS_UP5K", "SPRAM_MODEL", "SpramLaneMemory",
           "SharedSpram", "ram_bus", "spare_words", "spram_block_count", "spram_parts"]

SPRAM_DEPTH = 16384
SPRAM_WIDTH = 16
SPRAM_BLOCKS_UP5K = 4


def _blocks(part, depth):
    """Blocks of a ``part``-bit part (16, 8 or 4) of ``depth`` words: ``16 // part`` a row."""
    rows = -(-depth // (SPRAM_WIDTH // part))
    return -(-rows // SPRAM_DEPTH)


def spram_parts(width, depth):
    """The widths of the parts of a ``width``-bit word, low bits first: 16-bit columns, and
    the last ``width % 16`` bits as an 8-bit and/or a 4-bit part when that takes fewer blocks
    for ``depth`` words than one more column (a 12-bit word: ``[8, 4]``)."""
    plain = [SPRAM_WIDTH] * -(-width // SPRAM_WIDTH)
    rest = width % SPRAM_WIDTH
    if not 0 < rest <= 12:
        return plain
    tail = ([8] if rest > 4 else []) + ([4] if rest % 8 and rest % 8 <= 4 else [])
    packed = [SPRAM_WIDTH] * (width // SPRAM_WIDTH) + tail
    count = sum(_blocks(p, depth) for p in packed)
    return packed if count < sum(_blocks(p, depth) for p in plain) else plain


def spram_block_count(width, depth):
    """The SPRAM blocks ``SpramLaneMemory(width, depth)`` instantiates."""
    return sum(_blocks(p, depth) for p in spram_parts(width, depth))


class SpramLaneMemory(LaneMemory):
    """``depth`` words of ``width`` bits in ``SB_SPRAM256KA`` blocks; one access per clock.

    The ports and their checks are ``LaneMemory``'s; only the storage differs."""

    single_port = True

    def __init__(self, width, depth):
        super().__init__(width, depth)
        self.parts = spram_parts(width, depth)

    def elaborate(self, platform):
        m = Module()
        ab = len(self.r_addr)
        addr = Signal(max(ab, 1))
        m.d.comb += addr.eq(self.r_addr)
        with m.If(self.w_en):
            m.d.comb += addr.eq(self.w_addr)
        # the address of the last read: its row slot and bank select each part's output
        # (blocks hold their data out)
        last = Signal.like(addr)
        with m.If(self.r_en & ~self.w_en):
            m.d.sync += last.eq(addr)
        din = Cat(self.w_data, Const(0, sum(self.parts) - self.width))
        words, lsb = [], 0
        for j, part in enumerate(self.parts):
            sub = (SPRAM_WIDTH // part).bit_length() - 1     # address bits of the row slot
            row, last_row = addr[sub:], last[sub:]
            rb = max(len(row), 1)
            low = min(rb, 14)
            bank = row[14:] if rb > 14 else Const(0, 1)
            slot = addr[:sub] if sub else Const(0, 1)
            # nibble enables of the slot: a part of 4 * n bits covers n nibbles
            nib = part // 4
            mask = Signal(4, name=f"mask{j}")
            m.d.comb += mask.eq(Const((1 << nib) - 1, 4) << (slot * nib) if sub else 0xF)
            data = din[lsb:lsb + part]
            outs = []
            for b in range(_blocks(part, self.depth)):
                cs = Signal(name=f"cs{j}_{b}")
                m.d.comb += cs.eq((self.r_en | self.w_en) & (bank == b))
                dout = Signal(SPRAM_WIDTH, name=f"dout{j}_{b}")
                m.submodules[f"spram_p{j}b{b}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=Cat(row[:low], Const(0, 14 - low)),
                    i_DATAIN=Cat(*[data] * (SPRAM_WIDTH // part)),
                    i_MASKWREN=mask, i_WREN=self.w_en, i_CHIPSELECT=cs,
                    i_CLOCK=ClockSignal(), i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1),
                    i_POWEROFF=Const(1, 1), o_DATAOUT=dout)
                outs.append(dout)
            out = outs[0] if len(outs) == 1 else Array(outs)[last_row[14:]]
            words.append(out.word_select(last[:sub], part) if sub else out)
            lsb += part
        m.d.comb += self.r_data.eq(Cat(*words)[:self.width])
        return m


def ram_bus(addr_bits):
    """A 32-bit word RAM's port, from the side that asks (``ControlCPU``'s RAM when it is not
    its own): ``stb`` with ``addr`` (a word), ``we``, ``w_data`` and ``sel`` (a write's bytes)
    held until ``ack``, a one-clock pulse; a read's word is in ``r_data`` while ``ack``. A new
    access starts at the earliest the clock after ``ack``."""
    return wiring.Signature({
        "addr": Out(addr_bits), "we": Out(1), "w_data": Out(32), "sel": Out(4), "stb": Out(1),
        "r_data": In(32), "ack": In(1)})


def spare_words(depth):
    """The 32-bit words a ``SharedSpram`` block holds beside a lane of ``depth`` words (the
    lane takes ``depth`` rounded up to a power of two of its 16-bit rows)."""
    return (SPRAM_DEPTH - (1 << max(depth - 1, 1).bit_length())) // 2


class SharedSpram(LaneMemory):
    """One ``SB_SPRAM256KA`` shared by a lane of ``depth`` words of ``width`` <= 16 bits (the
    ``LaneMemory`` ports; a core's delay slots) and a RAM of ``bus_words`` 32-bit words on the
    ``bus`` port (``ram_bus``; a ``ControlCPU``'s RAM).

    The lane has the block whenever it asks (it never waits, as with a block of its own); the
    bus takes the clocks the lane leaves, a 16-bit half a clock: a word is ready two clocks
    after the bus asks when the lane leaves both free. The lane's rows are the block's top
    ``depth`` rounded up to a power of two (its address ORed with their base: no adder), the
    bus's word ``k`` rows ``2k`` (bits 0-15) and ``2k + 1``. ``single_port``: the core never
    reads and writes the lane in one clock.

    Unlike ``LaneMemory``'s, the lane's read data is the word only in the clock after its read
    (a read of the bus's changes the block's output after it): what ``SmallCore`` needs of its
    delay slots, which it takes then (the sequencer's next state, the memory port's response,
    taken by the SoC in its clock). No register holds it: 15 flip-flops and as many LUTs
    fewer."""

    single_port = True

    def __init__(self, width, depth, bus_words):
        if not 1 <= width <= SPRAM_WIDTH:
            raise ValueError(f"a shared SPRAM lane is at most {SPRAM_WIDTH} bits wide, not "
                             f"{width!r}")
        if depth > SPRAM_DEPTH or bus_words > spare_words(depth):
            raise ValueError(f"a lane of {depth} words and {bus_words} 32-bit words do not fit "
                             f"one SPRAM block of {SPRAM_DEPTH} 16-bit words (room for "
                             f"{max(spare_words(depth), 0)} words beside the lane)")
        self.bus_words = bus_words
        self.lane_base = 2 * spare_words(depth)       # the rows above the bus's
        super().__init__(width, depth)

    def _members(self):
        return super()._members() | {"bus": In(ram_bus(max(self.bus_words - 1, 1).bit_length()))}

    def elaborate(self, platform):
        m = Module()
        bus = self.bus
        dout = Signal(SPRAM_WIDTH)
        lane = self.r_en | self.w_en
        # the bus's access: ``half`` the next half to ask for, ``ack`` once both are done
        half, ack, low, take_low = Signal(), Signal(), Signal(16), Signal()
        go = bus.stb & ~ack & ~lane
        m.d.sync += [ack.eq(go & half), take_low.eq(go & ~half & ~bus.we)]
        with m.If(go):
            m.d.sync += half.eq(~half)
        with m.If(take_low):
            m.d.sync += low.eq(dout)
        m.d.comb += [bus.ack.eq(ack), bus.r_data.eq(Cat(low, dout))]
        m.d.comb += self.r_data.eq(dout[:self.width])

        lane_addr = Mux(self.w_en, self.w_addr, self.r_addr) | self.lane_base
        sel = Mux(half, bus.sel[2:], bus.sel[:2])
        m.submodules.spram = Instance(
            "SB_SPRAM256KA",
            i_ADDRESS=Mux(lane, lane_addr, Cat(half, bus.addr)),
            i_DATAIN=Mux(lane, self.w_data, Mux(half, bus.w_data[16:], bus.w_data[:16])),
            i_MASKWREN=Mux(lane, 0xF, Cat(sel[0], sel[0], sel[1], sel[1])),
            i_WREN=Mux(lane, self.w_en, bus.we), i_CHIPSELECT=lane | go,
            i_CLOCK=ClockSignal(), i_STANDBY=Const(0, 1), i_SLEEP=Const(0, 1),
            i_POWEROFF=Const(1, 1), o_DATAOUT=dout)
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
