"""8N1 UART receiver and transmitter with byte streams.

The bit time is an elaboration parameter in clocks (``clocks_per_bit``), so a simulation can use
4 clocks per bit and a 48 MHz board can run an FTDI bridge at 3 Mbaud (16 clocks per bit).
``clocks_per_bit(clk_hz, baud)`` converts a baud rate and checks it is reachable.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import fifo, stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["clocks_per_bit", "UARTReceiver", "UARTTransmitter", "MIN_CLOCKS_PER_BIT"]

# Mid-bit sampling needs a half bit of margin either side of the synchroniser's two clocks.
MIN_CLOCKS_PER_BIT = 4
# A receiver sampling mid-bit tolerates about +-4% over 10 bits; keep half of it for the far end.
BAUD_TOLERANCE = 0.02


def clocks_per_bit(clk_hz, baud, *, tolerance=BAUD_TOLERANCE):
    """Clocks per bit for ``baud`` at ``clk_hz``; ``ValueError`` if too fast or too inexact."""
    if not isinstance(baud, int) or baud <= 0:
        raise ValueError(f"baud rate must be a positive integer, not {baud!r}")
    if not isinstance(clk_hz, (int, float)) or clk_hz <= 0:
        raise ValueError(f"clock frequency must be a positive number, not {clk_hz!r}")
    fastest = int(clk_hz // MIN_CLOCKS_PER_BIT)
    if baud > fastest:
        raise ValueError(f"baud rate {baud} is too high (at most {fastest} at "
                         f"{clk_hz / 1e6:g} MHz)")
    cpb = round(clk_hz / baud)
    error = abs(clk_hz / cpb - baud) / baud
    if error > tolerance:
        raise ValueError(f"baud rate {baud} is off by {error:.1%} at {clk_hz / 1e6:g} MHz "
                         f"({cpb} clocks per bit; at most {tolerance:.0%})")
    return cpb


def _check_cpb(cpb):
    if not isinstance(cpb, int) or cpb < MIN_CLOCKS_PER_BIT:
        raise ValueError(f"clocks per bit must be an integer of at least {MIN_CLOCKS_PER_BIT}, "
                         f"not {cpb!r}")


class UARTReceiver(wiring.Component):
    """8N1 receiver: synchronises ``rx``, samples mid-bit, queues bytes in a FIFO.

    - ``o``: received bytes (a ``SyncFIFOBuffered`` of ``fifo_depth`` bytes absorbs a slow
      consumer).
    - ``error``: one-clock pulse when a stop bit is low (framing error, or a break); the byte is
      dropped and the receiver waits for the line to return high before looking for a start bit.
    - ``overrun``: one-clock pulse when a byte is dropped because the FIFO is full.

    A low pulse shorter than half a bit is a glitch, not a start bit.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    error: Out(1)
    overrun: Out(1)

    def __init__(self, clocks_per_bit, *, fifo_depth=16):
        _check_cpb(clocks_per_bit)
        if not isinstance(fifo_depth, int) or fifo_depth < 1:
            raise ValueError(f"FIFO depth must be a positive integer, not {fifo_depth!r}")
        self.cpb = clocks_per_bit
        self.fifo_depth = fifo_depth
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cpb = self.cpb
        m.submodules.fifo = buf = fifo.SyncFIFOBuffered(width=8, depth=self.fifo_depth)
        wiring.connect(m, wiring.flipped(self.o), buf.r_stream)

        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)

        timer = Signal(range(cpb))
        bits = Signal(range(8))
        shreg = Signal(8)

        with m.If(timer != 0):
            m.d.sync += timer.eq(timer - 1)

        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    # Land on the middle of the start bit.
                    m.d.sync += timer.eq(cpb // 2 - 1)
                    m.next = "START"
            with m.State("START"):
                with m.If(timer == 0):
                    with m.If(rx):
                        m.next = "IDLE"          # a glitch, not a start bit
                    with m.Else():
                        m.d.sync += [timer.eq(cpb - 1), bits.eq(0)]
                        m.next = "DATA"
            with m.State("DATA"):
                with m.If(timer == 0):
                    m.d.sync += [shreg.eq((shreg >> 1) | (rx << 7)), timer.eq(cpb - 1),
                                 bits.eq(bits + 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer == 0):
                    with m.If(rx):
                        # Back to IDLE at mid stop bit: a slightly fast sender's next start
                        # bit is still caught at its edge.
                        m.d.comb += buf.w_en.eq(1)
                        m.d.comb += self.overrun.eq(~buf.w_rdy)
                        m.next = "IDLE"
                    with m.Else():
                        m.d.comb += self.error.eq(1)
                        m.next = "BREAK"
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        m.d.comb += buf.w_data.eq(shreg)
        return m


class UARTTransmitter(wiring.Component):
    """8N1 transmitter: sends each byte of ``i``, LSB first, back to back; ``tx`` idles high."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, clocks_per_bit):
        _check_cpb(clocks_per_bit)
        self.cpb = clocks_per_bit
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cpb = self.cpb
        timer = Signal(range(cpb))
        shreg = Signal(10, init=0x3FF)   # stop, data[7:0], start; shifted out LSB first
        left = Signal(range(11))

        # The next byte is taken in the last clock of a stop bit, so bytes go back to back.
        m.d.comb += [self.tx.eq(shreg[0]), self.busy.eq(left != 0),
                     self.i.ready.eq((left == 0) | ((left == 1) & (timer == 0)))]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [shreg.eq((1 << 9) | (self.i.payload << 1)), left.eq(10),
                         timer.eq(cpb - 1)]
        with m.Elif(left != 0):
            with m.If(timer == 0):
                m.d.sync += [shreg.eq((shreg >> 1) | (1 << 9)), left.eq(left - 1),
                             timer.eq(cpb - 1)]
            with m.Else():
                m.d.sync += timer.eq(timer - 1)
        return m
