"""The firmware's RAM loaded from the board's SPI flash at power-on.

An iCE40 UltraPlus SPRAM block starts with no contents (the bitstream cannot initialise it), so
a ``ControlCPU`` whose RAM is an SPRAM block (``spikeforge.hdl.spram.SharedSpram``) is held
while ``FlashBoot`` copies its firmware from the flash the FPGA configured itself from: the
build writes the image into the flash file after the bitstream, at ``FLASH_OFFSET``
(``spikeforge.boards.build``), and the FPGA ignores what follows its bitstream.

``FlashBoot`` wakes the flash (``0xAB``: a flash left in deep power-down answers nothing
else), waits ``wake_clocks`` (its tRES1, 3 us at most), then reads (``0x03``, the 24-bit
address, bytes from there) ``words`` 32-bit words, little-endian, and writes each into the
RAM on its ``ram`` port (``ram_bus``: it waits for the ``ack``, holding the flash's clock,
which SPI allows). The clock is half the system clock (SPI mode 0: data out on its falling
edge, in on its rising edge; the flash's answer is taken a system clock after the rising
edge). ``done`` rises when the last word is written, and stays.

A ``ControlCPU`` boots its whole RAM (``FlashBoot(ram_words)``), not only its firmware: the
boot loader, so the netlist, does not change with the firmware's length (a longer firmware
moved the iCEBreaker's placement, and its Fmax by 1.4 MHz). ``flash_data`` pads the image to
that length with zeros (the RAM's ``.bss`` and stack, which the firmware clears or writes
before it reads).

``SpiFlashModel`` answers those two commands from ``data`` (bytes), for simulations.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from .spram import ram_bus

__all__ = ["FLASH_OFFSET", "FlashBoot", "SpiFlashModel", "flash_data", "flash_pins", "WAKE",
           "READ"]

# where the firmware's image starts in the flash: past the iCE40UP5K's bitstream (104,090
# bytes), at the next 64 KB sector
FLASH_OFFSET = 0x20000
WAKE, READ = 0xAB, 0x03


def flash_data(image, words):
    """The flash's bytes from ``FLASH_OFFSET`` for a ``FlashBoot`` of ``words`` words: the
    ``image``'s words (32-bit, little-endian), then zeros."""
    if len(image) > words:
        raise ValueError(f"an image of {len(image)} words is longer than the {words} words "
                         f"booted")
    return b"".join(w.to_bytes(4, "little") for w in image) + bytes(4 * (words - len(image)))


def flash_pins():
    """The SPI flash's pins, from the side that drives the clock."""
    return wiring.Signature({"cs": Out(1), "clk": Out(1), "copi": Out(1), "cipo": In(1)})


class FlashBoot(wiring.Component):
    """Copies ``words`` 32-bit words from the SPI flash at byte ``offset`` to RAM words 0 ..
    ``words - 1`` (``ram``), then raises ``done``."""

    def __init__(self, words, *, offset=FLASH_OFFSET, wake_clocks=100):
        if not 0 < words or 4 * words + offset > 1 << 24:
            raise ValueError(f"{words!r} words at {offset:#x} do not fit a 24-bit address")
        self.words, self.offset, self.wake_clocks = words, offset, wake_clocks
        super().__init__({"flash": Out(flash_pins()),
                          "ram": Out(ram_bus(max(words - 1, 1).bit_length())),
                          "done": Out(1)})

    def elaborate(self, platform):
        m = Module()
        pins, ram = self.flash, self.ram
        # the bits sent, MSB first: the wake command (8), then READ and the address (32); held
        # reversed, bit ``bit`` sent ``bit``-th
        sent = f"{(WAKE << 32) | (READ << 24) | self.offset:040b}"
        out = Const(int(sent[::-1], 2), 40)
        bit = Signal(range(41))             # of ``out``, then of the word coming in
        word = Signal(range(self.words))
        wait = Signal(range(self.wake_clocks + 1))
        shift = Signal(32)                  # the word coming in, first byte in the top bits
        sck = Signal()
        m.d.comb += [pins.clk.eq(sck), pins.copi.eq(out.bit_select(bit, 1)),
                     ram.addr.eq(word), ram.we.eq(1), ram.sel.eq(0xF),
                     # the bytes in the order they came: the word's little-endian bytes
                     ram.w_data.eq(Cat(shift[24:], shift[16:24], shift[8:16], shift[:8]))]

        def clock_bit(last, then):
            """one bit a two clocks (``sck`` low, then high); after bit ``last``, ``then``"""
            with m.If(~sck):
                m.d.sync += sck.eq(1)
            with m.Else():
                m.d.sync += [sck.eq(0), shift.eq(Cat(pins.cipo, shift[:31]))]
                with m.If(bit == last):
                    then()
                with m.Else():
                    m.d.sync += bit.eq(bit + 1)

        m.d.comb += pins.cs.eq(0)
        with m.FSM():
            with m.State("WAKE"):
                m.d.comb += pins.cs.eq(1)

                def woken():
                    m.d.sync += [bit.eq(bit + 1), wait.eq(self.wake_clocks)]
                    m.next = "PAUSE"
                clock_bit(7, woken)
            with m.State("PAUSE"):           # tRES1: the flash wakes
                m.d.sync += wait.eq(wait - 1)
                with m.If(wait == 0):
                    m.next = "COMMAND"
            with m.State("COMMAND"):
                m.d.comb += pins.cs.eq(1)

                def sent():
                    m.d.sync += bit.eq(40 - 32)
                    m.next = "DATA"
                clock_bit(39, sent)
            with m.State("DATA"):
                m.d.comb += pins.cs.eq(1)

                def full():
                    m.next = "WRITE"
                clock_bit(39, full)
            with m.State("WRITE"):           # the clock held while the RAM takes the word
                m.d.comb += [pins.cs.eq(1), ram.stb.eq(1)]
                with m.If(ram.ack):
                    m.d.sync += [bit.eq(40 - 32), word.eq(word + 1)]
                    m.next = "DATA"
                    with m.If(word == self.words - 1):
                        m.next = "DONE"
            with m.State("DONE"):
                m.d.comb += self.done.eq(1)
        return m


class SpiFlashModel(wiring.Component):
    """An SPI flash for simulations: ``data`` (bytes) from address ``offset``, the WAKE and
    READ commands (mode 0, the clock at most half the model's), ``woken`` once it has had
    WAKE. A READ before WAKE answers nothing (the flash in deep power-down)."""

    def __init__(self, data, offset=FLASH_OFFSET):
        self.data, self.offset = bytes(data), offset
        super().__init__({"flash": In(flash_pins()), "woken": Out(1)})

    def elaborate(self, platform):
        m = Module()
        pins = self.flash
        depth = max(len(self.data), 1)
        m.submodules.mem = mem = memory.Memory(shape=unsigned(8), depth=depth,
                                               init=list(self.data))
        rp = mem.read_port(domain="comb")
        # the clock's rising edges in the command (0-7) and address (8-31), then 32-39 again
        # and again for the bits of each byte out
        last_clk, count = Signal(), Signal(range(40))
        cmd, addr, byte = Signal(8), Signal(24), Signal(8)
        m.d.sync += last_clk.eq(pins.clk)
        rise = pins.clk & ~last_clk
        fall = ~pins.clk & last_clk
        m.d.comb += [rp.addr.eq(addr - self.offset), pins.cipo.eq(byte[7])]
        with m.If(~pins.cs):
            m.d.sync += [count.eq(0), cmd.eq(0)]
        with m.Elif(rise):
            m.d.sync += count.eq(Mux(count == 39, 32, count + 1))
            with m.If(count < 8):
                m.d.sync += cmd.eq(Cat(pins.copi, cmd[:7]))
            with m.Elif(count < 32):
                m.d.sync += addr.eq(Cat(pins.copi, addr[:23]))
            with m.If((count == 7) & (Cat(pins.copi, cmd[:7]) == WAKE)):
                m.d.sync += self.woken.eq(1)
        with m.If(pins.cs & fall & (cmd == READ) & self.woken & (count >= 32)):
            # the next bit out; a byte's first bit at each multiple of 8
            with m.If(count[:3] == 0):
                m.d.sync += [byte.eq(rp.data), addr.eq(addr + 1)]
            with m.Else():
                m.d.sync += byte.eq(byte << 1)
        return m
