"""The link's event counters (the STATUS reply's error, refusal and overrun counts) in one RAM.

Each counter was a 32-bit register and an adder in the block whose events it counted, and the
STATUS reply gathered them through a wide multiplexer; on an iCE40 that was several hundred LUTs
for numbers the host reads a few times a second. ``StatsBank`` keeps them as full 32-bit values,
two 16-bit half-words each, in one block RAM, and adds to them with one 16-bit adder:

- every source has a *pending* count that takes its events as they come (``inc``: an amount,
  most often a 1-bit pulse) and is emptied when the engine takes it;
- the engine visits the counters in turn: a counter with nothing pending costs one clock, one
  with events three (the low half-word read and written back with the pending amount, then the
  high half-word with the carry; always written, which needs no carry-dependent write enable);
- ``rd_index`` with ``rd_req`` reads one counter whole into ``value`` (``rd_done`` pulses when
  it is there), between two additions, so no value read is ever torn by a carry;
- ``clear`` (the RESET command) zeroes the counters from ``first_cleared`` on, by a write walk
  between two additions; their pending events before ``clear`` are dropped, later ones count;
- ``shared`` half-words of the RAM (below the counters) belong to another block (the command
  processor's reply history), which reaches them through the ``sh_*`` ports whenever it wants:
  the engine waits in those clocks, and redoes the read it may have lost. One block RAM of an
  iCE40 (256 half-words) holds both. The bank's ``wake`` (``hdl/gating.py``) does not count
  those clocks: the other block must keep the bank's clock running while it uses the RAM (in
  the SoC the command processor does, as the two share a gate and it uses the RAM only
  outside IDLE, where its own ``wake`` holds; its RAM enables are comb from its state, and
  through the gate's enable they were the ULX3S's worst path).

Why no event is lost (the bound): a round of the engine, from one visit of a counter to its
next, is at most ``3 n`` clocks of additions, one read (3 clocks: STATUS asks for one counter per
4 bytes it sends, UART bytes are at least 40 clocks apart) and one clear walk (``2 n`` clocks,
once per RESET command), one read and one clear walk, and the clocks the other block takes
the RAM (``shared_stall``): ``R = 5 n + 3 + shared_stall`` clocks (59 for the SoC's 9 counters
and a history that takes at most 11 clocks per command, and commands are frames, hundreds of
clocks apart). A source whose
events are at least ``gap`` clocks apart (its entry of ``gaps``: a UART byte time for what
happens once a byte or a frame, the resend timeout for resent frames, 4 clocks for what happens
once a step, as a step is at least the stepper's four states) has at most ``ceil(R / gap)``
events waiting when the engine takes them, and its pending count is sized for that many of its
largest amount: it cannot overflow.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["StatsBank"]


class StatsBank(wiring.Component):
    """32-bit event counters in one block RAM of 16-bit half-words.

    ``amounts`` is the width of each counter's amount, in counter order: counter ``k`` adds
    ``inc<k>`` every clock and is read with ``rd_index == k``; ``gaps`` the fewest clocks
    between two events of each (1 when left out); counters ``first_cleared`` and later are
    zeroed by ``clear`` (none when it is left out).
    """

    def __init__(self, amounts, *, gaps=None, first_cleared=None, shared=0, shared_stall=0):
        if not amounts or any(not isinstance(w, int) or w < 1 for w in amounts):
            raise ValueError(f"amounts must be widths of at least 1 bit, not {amounts!r}")
        n = len(amounts)
        gaps = [1] * n if gaps is None else list(gaps)
        if len(gaps) != n or any(not isinstance(g, int) or g < 1 for g in gaps):
            raise ValueError(f"gaps must be {n} clock counts of at least 1, not {gaps!r}")
        self.amounts = list(amounts)
        self.first_cleared = n if first_cleared is None else first_cleared
        if not 0 <= self.first_cleared <= n:
            raise ValueError(f"first cleared counter {first_cleared!r} is not one of {n}")
        self.shared = shared
        self.round = 5 * n + 3 + shared_stall   # the bound of the module's docstring
        # events that may wait for one visit, each of the largest amount
        self.pending_bits = [w + (-(-self.round // g)).bit_length()
                             for w, g in zip(self.amounts, gaps, strict=True)]
        super().__init__({
            **{f"inc{k}": In(w) for k, w in enumerate(self.amounts)}, "clear": In(1),
            "rd_req": In(1), "rd_index": In(range(n)), "rd_done": Out(1), "value": Out(32),
            "wake": Out(1),     # a register may change at the next clock (``gating``)
            **({"sh_addr": In(range(shared)), "sh_en": In(1), "sh_we": In(1),
                "sh_data": In(16), "sh_q": Out(16)} if shared else {}),
        })

    def elaborate(self, platform):
        m = Module()
        n = len(self.amounts)
        ib = max((n - 1).bit_length(), 1)
        words = 2 << ib                     # the counters' half-words, after the shared ones
        base = -(-self.shared // words)     # in blocks of ``words``: their address is a Cat
        m.submodules.ram = ram = Memory(shape=16, depth=(base + 1) * words, init=[])
        wp = ram.write_port()
        rp = ram.read_port()
        # the engine's side of the ports (the other block's take over when it uses them)
        e_raddr, e_waddr = Signal(ib + 1), Signal(ib + 1)
        e_wdata, e_we = Signal(16), Signal()
        stolen = Signal()
        if self.shared:
            m.d.comb += [stolen.eq(self.sh_en | self.sh_we), self.sh_q.eq(rp.data),
                         rp.addr.eq(Mux(stolen, self.sh_addr, Cat(e_raddr, Const(base)))),
                         wp.addr.eq(Mux(stolen, self.sh_addr, Cat(e_waddr, Const(base)))),
                         wp.data.eq(Mux(stolen, self.sh_data, e_wdata)),
                         wp.en.eq(Mux(stolen, self.sh_we, e_we))]
        else:
            m.d.comb += [rp.addr.eq(e_raddr), wp.addr.eq(e_waddr), wp.data.eq(e_wdata),
                         wp.en.eq(e_we)]

        idx = Signal(ib)                    # the counter the engine visits
        amount = Signal(max(self.pending_bits))
        hi = Signal()                       # the high half-word's turn (the carry is added)
        carry = Signal()
        clearing = Signal()
        walk = Signal(ib + 1)               # the half-word the clear walk writes
        take = Signal()
        pending = []
        for k, width in enumerate(self.pending_bits):
            p = Signal(width, name=f"pending{k}")
            inc = getattr(self, f"inc{k}")
            taken = take & (idx == k)
            if k >= self.first_cleared:
                with m.If(self.clear):
                    m.d.sync += p.eq(0)
                with m.Else():
                    m.d.sync += p.eq(Mux(taken, 0, p) + inc)
            else:
                m.d.sync += p.eq(Mux(taken, 0, p) + inc)
            pending.append(p)
        if self.first_cleared < n:
            with m.If(self.clear):
                m.d.sync += clearing.eq(1)

        # one adder: the pending amount into the low half-word, then the carry into the high one
        total = Signal(17)
        m.d.comb += [total.eq(rp.data + Mux(hi, carry, amount)), rp.en.eq(1),
                     e_waddr.eq(Cat(hi, idx)), e_wdata.eq(total[:16])]
        last = Const(n - 1, ib)
        with m.FSM() as fsm:
            with m.State("PICK"):
                # the low half-word of the counter read next (a read asked for, or the one
                # visited); while the RAM is taken or cleared the answer is not used, so neither
                # choice waits on ``stolen`` or ``clearing``
                m.d.comb += e_raddr.eq(Cat(0, Mux(self.rd_req, self.rd_index, idx)))
                with m.If(stolen):
                    pass
                with m.Elif(clearing):
                    m.d.sync += walk.eq(2 * self.first_cleared)
                    m.next = "CLEAR"
                with m.Elif(self.rd_req):
                    m.next = "READ_LO"
                with m.Else():
                    m.d.comb += take.eq(1)
                    m.d.sync += amount.eq(Array(pending)[idx])
                    with m.If(Array(pending)[idx] != 0):
                        m.next = "ADD"
                    with m.Else():
                        m.d.sync += idx.eq(Mux(idx == last, 0, idx + 1))
            with m.State("READ"):
                # the read of half-word ``hi`` again: the other block took the ports
                m.d.comb += e_raddr.eq(Cat(hi, idx))
                with m.If(~stolen):
                    m.next = "ADD"
            with m.State("ADD"):
                # half-word ``hi`` arrives and is written back; the high one is read after the low
                m.d.comb += e_raddr.eq(Cat(1, idx))
                with m.If(stolen):
                    m.next = "READ"
                with m.Else():
                    m.d.comb += e_we.eq(1)
                    m.d.sync += [carry.eq(total[16]), hi.eq(~hi)]
                    with m.If(hi):
                        m.d.sync += idx.eq(Mux(idx == last, 0, idx + 1))
                        m.next = "PICK"
            with m.State("READ_LO"):
                # the low half-word arrives; the high one is read (the index is still held)
                m.d.comb += e_raddr.eq(Cat(1, self.rd_index))
                m.d.sync += self.value[:16].eq(rp.data)
                with m.If(stolen):
                    m.next = "PICK"             # asked again
                with m.Else():
                    m.next = "READ_HI"
            with m.State("READ_HI"):
                m.d.comb += self.rd_done.eq(1)
                m.d.sync += self.value[16:].eq(rp.data)
                m.next = "PICK"
            with m.State("CLEAR"):
                m.d.comb += [e_we.eq(~stolen), e_waddr.eq(walk), e_wdata.eq(0)]
                with m.If(~stolen):
                    m.d.sync += walk.eq(walk + 1)
                    with m.If(walk == 2 * n - 1):
                        m.d.sync += clearing.eq(0)
                        m.next = "PICK"
        # At rest: visiting counters with nothing to add (only ``idx`` would move on). The
        # clocks the other block takes the RAM (``stolen``) are its to wake (module docstring).
        m.d.comb += self.wake.eq(~fsm.ongoing("PICK") | clearing | self.clear
                                 | self.rd_req | Cat(p != 0 for p in pending).any()
                                 | Cat(getattr(self, f"inc{k}") != 0 for k in range(n)).any())
        return m
