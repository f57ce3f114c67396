"""A memory that holds its own read address register, cut in banks for LUT RAM.

The router's tables are LUT RAM on the ECP5 (``boards/ulx3s.py``). A LUT RAM read of 1024 words
is 64 cells of 16 words behind a 64-to-1 multiplexer, and the address drives every cell: a read
from a register through the whole memory into the read register was the ULX3S's critical path
at 93.75 MHz (10.56 ns, nearly all route: the address register beside the engine's logic, the
cells and the multiplexer spread over the die). ``BankedMemory`` cuts that path in two places:

* the banks (``bank_depth`` words each) read into registers of their own, and the bank select
  follows them: only a small multiplexer lies between a bank's cells and its register;
* each bank reads from a copy of the address register (its low bits), loaded only with the
  addresses that fall in that bank. The copies differ in their enables, so synthesis cannot
  merge them with each other or with ``addr`` (Yosys merges flip-flops whose inputs are equal,
  ``keep`` on the wire notwithstanding), and the placer can put each beside its bank.

The read timing is a synchronous read port's, with its address in a register: ``addr`` loads
``addr_next`` when ``addr_load``; when ``en`` is high, ``data`` has the word at ``addr`` on the
next clock (read before write: a write on the clock of the read is not seen), and keeps it while
``en`` is low. With ``bank_depth=None`` (an iCE40's block RAM) it is one memory read from
``addr``.
"""

from amaranth.hdl import Array, Module, Signal
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BankedMemory"]


class BankedMemory(wiring.Component):
    """``depth`` words of ``width`` bits in banks of ``bank_depth`` words (a power of two;
    ``None``: one bank); one read port with its address register (``addr_next``,
    ``addr_load``, ``addr``, ``en``, ``data``) and one write port (``w_addr``, ``w_en``,
    ``w_data``)."""

    def __init__(self, width, depth, *, bank_depth=None):
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"Memory width must be a positive integer, not {width!r}")
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"Memory depth must be a positive integer, not {depth!r}")
        if bank_depth is not None and (not isinstance(bank_depth, int) or bank_depth < 2
                                       or bank_depth & (bank_depth - 1)):
            raise ValueError(f"Bank depth must be a power of two of at least 2, not "
                             f"{bank_depth!r}")
        self.width, self.depth = width, depth
        self.bank_depth = depth if bank_depth is None or bank_depth >= depth else bank_depth
        self.banks = -(-depth // self.bank_depth)
        ab = max((depth - 1).bit_length(), 1)
        super().__init__({
            "addr_next": In(ab), "addr_load": In(1), "addr": Out(ab),
            "en": In(1), "data": Out(width),
            "w_addr": In(ab), "w_en": In(1), "w_data": In(width),
        })

    def elaborate(self, platform):
        m = Module()
        with m.If(self.addr_load):
            m.d.sync += self.addr.eq(self.addr_next)
        if self.banks == 1:
            m.submodules.mem = mem = memory.Memory(shape=self.width, depth=self.depth, init=[])
            rp, wp = mem.read_port(), mem.write_port()
            m.d.comb += [rp.addr.eq(self.addr), rp.en.eq(self.en), self.data.eq(rp.data),
                         wp.addr.eq(self.w_addr), wp.en.eq(self.w_en), wp.data.eq(self.w_data)]
            return m
        lb = (self.bank_depth - 1).bit_length()
        bank = self.addr[lb:]                     # the bank of the address held
        sel = Signal(range(self.banks), name="sel")
        with m.If(self.en):
            m.d.sync += sel.eq(bank)
        outs = []
        for b in range(self.banks):
            m.submodules[f"mem{b}"] = mem = memory.Memory(
                shape=self.width, depth=min(self.bank_depth, self.depth - b * self.bank_depth),
                init=[])
            rp, wp = mem.read_port(), mem.write_port()
            # this bank's copy of the address: right whenever ``addr`` is in this bank, the
            # only time this bank's word is selected
            ra = Signal(lb, name=f"ra{b}")
            with m.If(self.addr_load & (self.addr_next[lb:] == b)):
                m.d.sync += ra.eq(self.addr_next[:lb])
            m.d.comb += [rp.addr.eq(ra), rp.en.eq(self.en & (bank == b)),
                         wp.addr.eq(self.w_addr[:lb]), wp.data.eq(self.w_data),
                         wp.en.eq(self.w_en & (self.w_addr[lb:] == b))]
            outs.append(rp.data)
        m.d.comb += self.data.eq(Array(outs)[sel])
        return m
