"""The core for small FPGAs: ``docs/numerics.md`` bit for bit, one operation at a time.

``SmallCore`` has the ports, the memory map and the results of ``spikeforge.hdl.core.Core``
(the golden model is the contract of both), built for the fewest logic cells rather than the
most synaptic operations per clock: an iCE40 UltraPlus has 5,280 logic cells, and the
256-neuron preset has clocks to spare (a 1 ms step at 30 MHz is 30,000 clocks). One lane; one
sequencer; one 34-bit adder, one multiplier (a 25 x 17 signed product, in DSP blocks) and one
``SerialMix32`` (the PRNG, an operation a clock) shared by every phase; each memory's read
data is the operand while its address holds, so few values are copied into registers.

A step (``start`` .. ``done``):

``KEY``      the PRNG keys ``mix32(seed ^ mix32(t))`` of learning and of the generators
             (four ``mix32``, 52 clocks).
``SCAN``     every axon in turn: its input bit (16 to a word of the ``misc`` memory, cleared as
             read), its generator (``mix32`` only where ``gen_prob != 0``), its trace decay and
             bump; an axon with an event then delivers its row at once: each synapse word read,
             its weight added into its delay slot (two clocks a synapse), and with learning and
             the mask set the depression written back (``mix32`` and two products).
``UPDATE``   every neuron in turn (about ten clocks): decay, integrate the slot of ``t mod S``
             (cleared), bias, threshold, reset, refractory, post trace; a spiking neuron is
             sent on ``spike_out`` at once and, with learning, its column walked (the eager
             potentiation: the weights of its column are changed by nothing else in the step,
             and the presynaptic traces are final after ``SCAN``).
``END``      ``step <- t + 1`` and ``done``.

Memories: ``state`` (``v, i, ref``), ``param`` (``bias, profile``), ``y`` (post traces),
``axon`` (``x, gen_prob``), ``slot`` (delay slots), the synapse lane (``LaneMemory``, or
``SpramLaneMemory`` on an iCE40 UltraPlus: one port, so no clock both reads and writes it; the
slots then go in a block the synapses leave, when one is left: ``slots_fit_spram``), and
``misc``: 16-bit words, eight per profile (its fields in seven) and then the input bitmap. The
profiles are read a word at a time as the update needs them (a profile costs no flip-flops);
the memory port reads and writes a profile in seven clocks.
"""

from collections import namedtuple

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from ..image import REGISTER_FIELDS, STATE_BITS, TRACE_BITS, CoreConfig
from ..memmap import MemoryMap, Region
from .core import core_ports, synapse_memory_for
from .memory import LaneMemory
from .prng import SerialMix32, rand_word
from .spram import SPRAM_BLOCKS_UP5K, SpramLaneMemory, spram_block_count

__all__ = ["SmallCore", "PROFILE_WORDS", "MISC_REGISTERS", "slots_fit_spram"]

# The profile word (``memmap``: threshold 23, v_reset 24, alpha_v 16, alpha_i 16, refractory 4,
# reset_mode 1 bits, LSB first) as ``misc`` words: (lsb, bits) of each
PROFILE_WORDS = ((0, 16), (16, 7), (23, 16), (39, 8), (47, 16), (63, 16), (79, 5))
_THR_LO, _THR_HI, _VR_LO, _VR_HI, _ALPHA_V, _ALPHA_I, _REFR = range(7)
# The registers kept in ``misc`` (a 16-bit word at ``8 * n_profiles + 2 * index``, a seed's high
# half after it); the others are flip-flops. ``misc`` holds the profiles from 0, eight words
# each, then the registers and the step's two PRNG keys (32 words), then the input bitmap:
# every address the sequencer forms is wiring or an OR, no adder.
MISC_REGISTERS = ("alpha_x", "alpha_y", "x_inc", "y_inc", "a_plus", "a_minus", "stdp_seed",
                  "gen_seed")
_REG_AREA = 32      # misc words of the registers (2 a register, 14 registers) and the two keys
_KEYS = ("skey", "gkey")        # the step's PRNG keys: learning, the generators
_ACC = 34           # the adder's and accumulator's width
_T_MAX = (1 << TRACE_BITS) - 1


# a memory port as the sequencer uses it: ``addr``, ``en`` and ``data`` (a read port's or a
# write port's of ``amaranth.lib.memory``, or the matching ports of a ``LaneMemory``)
_Port = namedtuple("_Port", "addr en data")


def slots_fit_spram(config, synapse_width):
    """Whether the delay slots of ``config`` fit in the SPRAM blocks the synapse lane (of
    ``synapse_width``-bit words, in SPRAM) leaves free: ``SmallCore`` then puts them there."""
    n = config.n_neurons
    return (spram_block_count(synapse_width, config.n_axons * n)
            + spram_block_count(config.slot_bits, config.n_slots * n)) <= SPRAM_BLOCKS_UP5K


def _register_word(n_profiles, index, half=0):
    """The ``misc`` address of (half of) register ``index`` (``REGISTER_FIELDS`` order) kept
    there; ``index`` 14 and 15 are the keys' (``_KEYS``)."""
    return 8 * n_profiles + 2 * index + half


def _log2(value):
    return value.bit_length() - 1


def _sat(value, bits):
    """Clamp a signed ``value`` to ``bits`` signed bits."""
    top = value[bits - 1:]
    ok = (top == 0) | (top == (1 << len(top)) - 1)
    sign = value[-1]
    return Mux(ok, value[:bits], Cat((~sign).replicate(bits - 1), sign)).as_signed()


class SmallCore(wiring.Component):
    """One core for a ``CoreConfig`` of one lane: the ports of ``spikeforge.hdl.core.Core``.

    ``synapse_memory``: ``"block"`` (``LaneMemory``), ``"spram"`` (``SpramLaneMemory``) or
    ``None`` (``"spram"`` on an iCE40 UltraPlus when the lane fits its SPRAM, else
    ``"block"``). ``slot_memory``: the delay slots' memory, a single-port lane given from
    outside (``spram.SharedSpram``: a block shared with the link's processor), which the core
    adds as its submodule; by default its own.
    """

    def __init__(self, config, *, synapse_memory=None, slot_memory=None):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        mm = MemoryMap(config)
        if mm.lanes != 1:
            raise ValueError(f"the small core has one lane, not {mm.lanes} "
                             f"(lanes={config.lanes}): use spikeforge.hdl.core.Core")
        if synapse_memory not in (None, "block", "spram"):
            raise ValueError(f"synapse_memory must be None, 'block' or 'spram', not "
                             f"{synapse_memory!r}")
        self.config = config
        self.memmap = mm
        self.synapse_memory = synapse_memory
        if slot_memory is not None and (
                not slot_memory.single_port or slot_memory.width != config.slot_bits
                or slot_memory.depth != config.n_slots * config.n_neurons):
            raise ValueError(f"the slot memory must be a single-port lane of "
                             f"{config.n_slots * config.n_neurons} words of "
                             f"{config.slot_bits} bits")
        self.slot_memory = slot_memory
        # ``collision``: high in a clock in which a block RAM of the core is read and written
        # at one address. Never, by design (the sequencer's states and the memory port use
        # each memory for one access a clock, or two at different words; the core tests count
        # it): so a read need not be the old word then, and the iCE40 bitstream tells Yosys so
        # (``boards/icebreaker.py``), which otherwise emulates "read first" around each EBR
        # memory (their widths in flip-flops and multiplexers, ~300 logic cells). Nothing
        # reads it in the SoC: it costs no logic there.
        super().__init__(core_ports(config) | {"collision": Out(1)})

    def elaborate(self, platform):  # noqa: C901 - one sequencer, read top to bottom
        m = Module()
        c, mm = self.config, self.memmap
        N, A, P, W, D = c.n_neurons, c.n_axons, c.n_profiles, c.weight_bits, c.delay_bits
        nb, ab, pb = c.neuron_bits, c.axon_bits, _log2(P)
        plastic = c.plastic
        lay = {r: mm[r] for r in Region}
        fields = REGISTER_FIELDS(c)
        names = list(fields)

        # -- registers: those of MISC_REGISTERS in ``misc``, the others flip-flops --------------
        regs = {name: Signal(signed(f.bits) if f.signed else unsigned(f.bits), name=name)
                for name, f in fields.items() if name not in MISC_REGISTERS}
        t = regs["step"]
        learn = regs["learn"] if plastic else Const(0, 1)
        mode = regs["trace_mode"]
        m.d.comb += self.step.eq(t)
        m.d.sync += self.step_moved.eq(0)

        def reg_word(name, half=0):
            """The ``misc`` address of (half of) a register kept there."""
            return _register_word(P, names.index(name), half)

        def key_word(name, half=0):
            """The ``misc`` address of (half of) a step's PRNG key, after the registers."""
            return _register_word(P, len(names) + _KEYS.index(name), half)

        # -- memories ----------------------------------------------------------------------
        collisions = []

        def mem(name, width, depth, granularity=None):
            m.submodules[name] = mo = memory.Memory(shape=unsigned(width), depth=depth, init=[])
            wp = mo.write_port(granularity=granularity)
            rp = mo.read_port()
            m.d.comb += rp.en.eq(0)
            collisions.append(rp.en & wp.en.any() & (rp.addr == wp.addr))
            return rp, wp

        # a neuron's state (v, i, ref, and y if plastic) and parameters (bias, profile) in one
        # word, written a part at a time (granules of 4 bits)
        nf = lay[Region.NEURON].width
        pw = lay[Region.PARAM].width
        neuron_rp, neuron_wp = mem("neuron", nf + pw, N, granularity=4)
        n_gran, p_gran = nf // 4, pw // 4
        axon_rp, axon_wp = mem("axon", lay[Region.AXON].width, A)
        kind = self.synapse_memory or synapse_memory_for(c, platform)
        syn_width = lay[Region.SYNAPSE].width
        if self.slot_memory is not None or (kind == "spram" and slots_fit_spram(c, syn_width)):
            # the delay slots in an SPRAM block the synapses leave (16 EBR fewer on the
            # iCEBreaker), of their own or shared (``slot_memory``: the rest of the block is
            # the link processor's RAM): one port, which suits the sequencer (it reads a slot
            # in one clock and writes it in a later one; the memory port does one or the other)
            m.submodules.slot = sm = (self.slot_memory if self.slot_memory is not None
                                      else SpramLaneMemory(c.slot_bits, c.n_slots * N))
            slot_rp, slot_wp = _Port(sm.r_addr, sm.r_en, sm.r_data), _Port(sm.w_addr, sm.w_en,
                                                                             sm.w_data)
            m.d.comb += [sm.r_en.eq(0), sm.w_en.eq(0)]
        else:
            slot_rp, slot_wp = mem("slot", c.slot_bits, c.n_slots * N)
        # the bitmap's words from a multiple of their number's power of two (an address is
        # the base's bits and the axon's)
        bw = max(ab - 4, 0)
        bitmap_base = -(-(8 * P + _REG_AREA) >> bw) << bw
        misc_depth = bitmap_base + -(-A // 16)
        misc_rp, misc_wp = mem("misc", 16, misc_depth)
        syn_cls = SpramLaneMemory if kind == "spram" else LaneMemory
        m.submodules.syn0 = syn = syn_cls(syn_width, A * N)
        m.d.comb += [syn.r_en.eq(0), syn.w_en.eq(0)]

        # the fields of the words as the memories hold them
        nd = neuron_rp.data
        v_old = nd[:STATE_BITS].as_signed()
        i_old = nd[STATE_BITS:2 * STATE_BITS].as_signed()
        ref_old = nd[2 * STATE_BITS:2 * STATE_BITS + 4]
        y_old = nd[2 * STATE_BITS + 4:nf] if plastic else Const(0, TRACE_BITS)
        bias = nd[nf:nf + STATE_BITS].as_signed()
        prof = nd[nf + STATE_BITS:][:pb]
        af = lay[Region.AXON].offsets()
        gen_prob = axon_rp.data[af["gen_prob"][0]:][:16]
        x_old = axon_rp.data[:TRACE_BITS] if plastic else Const(0, TRACE_BITS)
        sf = lay[Region.SYNAPSE].offsets()
        # a synapse word as the lane gives it (the walk), and delivery's copy in a register
        # (``sw``: the lane's bank select and the SPRAM's slow output are not in front of the
        # slot's adder and address)
        sw = Signal(lay[Region.SYNAPSE].width)
        w_old, w_sw = syn.r_data[:W].as_signed(), sw[:W].as_signed()
        delay = sw[sf["delay"][0]:][:D] if D else Const(0, 1)
        mask = syn.r_data[sf["mask"][0]] if plastic else Const(0, 1)
        mask_sw = sw[sf["mask"][0]] if plastic else Const(0, 1)
        md = misc_rp.data

        # -- the shared datapath -----------------------------------------------------------
        # The multiplier: operands chosen in a state (``mz``, ``ma``, ``mul``) are registered,
        # multiplied at the next clock: the product is in ``p`` two clocks after the choice,
        # and held until the next. The adder likewise: ``s`` is ``aa + bb + ci`` of the
        # operands chosen two clocks before. No path runs from the sequencer's state through
        # an operand multiplexer into a carry chain or a DSP block.
        mz, ma, mul = Signal(signed(STATE_BITS + 1)), Signal(16), Signal()
        mz_r, ma_r, mul_r = Signal.like(mz), Signal.like(ma), Signal()
        m.d.sync += [mz_r.eq(mz), ma_r.eq(ma), mul_r.eq(mul)]
        p = Signal(signed(STATE_BITS + 1 + 17))
        with m.If(mul_r):
            m.d.sync += p.eq(mz_r * ma_r)
        p_hi = p[16:].as_signed()                 # with ``p[15]`` as carry in: the rounded decay
        aa, bb, ci = Signal(signed(_ACC)), Signal(signed(_ACC)), Signal()
        aa_r, bb_r, ci_r = Signal.like(aa), Signal.like(bb), Signal()
        m.d.sync += [aa_r.eq(aa), bb_r.eq(bb), ci_r.eq(ci)]
        s = Signal(signed(_ACC))
        m.d.sync += s.eq(aa_r + bb_r + ci_r)

        acc = Signal(signed(_ACC))                # slot << weight_exp; v_reset or v - threshold
        q = Signal(STATE_BITS)                    # the threshold, then the new v
        inew = Signal(signed(STATE_BITS))         # the new current
        rinfo = Signal(5)                         # refractory, reset_mode of the profile
        sh = Signal(4)                            # shifts of the slot left to make
        fire = Signal()
        act = Signal()                            # the axon carries an event
        # the synapse word just read is to learn: a register, so that no decision runs from the
        # SPRAM's slow output through the sequencer
        learning = Signal()
        bm = Signal(16)                           # the bitmap word of the axons being scanned
        # between steps the port assembles a profile or a register read from ``misc`` here
        rbuf = Cat(acc[:], q, inew[:], rinfo)

        m.submodules.mix = mix = SerialMix32()

        n = Signal(max(nb, 1))
        a = Signal(max(ab, 1))
        pk = Signal(3)                            # a word of the port's ``misc`` access
        n_last = n == N - 1
        a_last = a == A - 1
        syn_addr = Cat(n[:nb], a[:ab])            # a * N + n
        bm_addr = Cat(a[4:ab], Const(bitmap_base >> bw, range(misc_depth))) if bw else \
            Const(bitmap_base)
        bm_bit = a[:min(ab, 4)] if ab else Const(0, 1)

        def misc_read(addr):
            m.d.comb += [misc_rp.addr.eq(addr), misc_rp.en.eq(1)]

        def prof_word(k):
            return Cat(Const(k, 3), prof)

        # the adder's ``s`` clamped to ``w_min``..``w_max``, a clock later: a register, so that
        # the comparisons' carry chains do not run into the synapse memory's data pins (the
        # iCEBreaker's critical path at 30 MHz, into the SPRAM's ``DATAIN``)
        w_new = Signal(W)
        lo, hi = regs["w_min"], regs["w_max"]
        v18 = s[:18].as_signed()
        m.d.sync += w_new.eq(Mux(v18 < lo, lo, Mux(v18 > hi, hi, v18[:W].as_signed()))[:W])

        def trace_clamped(v):
            """``v`` (signed) clamped to ``_T_MAX`` above: ``v > _T_MAX`` is its high bits'
            OR, not a comparison's carry chain (this one runs into the memories' data pins)"""
            return Mux(~v[-1] & v[TRACE_BITS:-1].any(), _T_MAX, v[:TRACE_BITS])

        def weight_write(word):
            """Synapse word ``word`` with the clamped weight ``w_new``."""
            m.d.comb += [syn.w_addr.eq(syn_addr), syn.w_en.eq(1),
                         syn.w_data.eq(Cat(w_new, word[W:]))]

        # -- control -----------------------------------------------------------------------
        running = Signal()
        start_latch = Signal()
        go = self.start | start_latch
        with m.If(self.start):
            m.d.sync += start_latch.eq(1)
        m.d.comb += self.busy.eq(running)

        req, rsp = self.mem_req, self.mem_rsp
        rsp_valid = Signal()
        rsp_region = Signal(3)
        m_addr = Signal(range(misc_depth))        # the port's ``misc`` words: the first
        m_last = Signal(3)                        # and their number
        m_final = Signal(3)                       # their number less one (no subtractor)
        p_misc = Signal()                         # the request is for ``misc`` words
        m.d.comb += rsp.valid.eq(rsp_valid)
        with m.If(rsp_valid & rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        free = ~rsp_valid | rsp.ready             # a new response may be made

        def advance(counter, last, again, done):
            """``counter`` on to its next value and state ``again``; after its last value,
            ``done()`` instead."""
            with m.If(last):
                done()
            with m.Else():
                m.d.sync += counter.eq(counter + 1)
                m.next = again

        def update_from_0():
            m.d.sync += n.eq(0)
            m.next = "UPD0"

        def end():
            m.next = "END"

        def next_axon():
            advance(a, a_last, "SCAN0", update_from_0)

        def next_neuron():
            advance(n, n_last, "UPD0", end)

        def nop(name, nxt):
            with m.State(name):
                m.next = nxt

        with m.FSM(name="seq") as fsm:
            # -- between steps: input events, the memory port, the start -------------------
            with m.State("IDLE"):
                m.d.sync += pk.eq(0)
                with m.If(self.spike_in.valid):
                    # taken now; its bitmap word read next clock, and written with the bit
                    m.d.comb += self.spike_in.ready.eq(1)
                    m.d.sync += a.eq(self.spike_in.payload)
                    m.next = "IN_READ"
                with m.Elif(go & ~rsp_valid):
                    m.d.sync += [start_latch.eq(0), running.eq(1)]
                    m.d.comb += [mix.x.eq(t), mix.start.eq(1)]
                    misc_read(reg_word("stdp_seed"))
                    m.next = "KEY0"
                with m.Elif(req.valid & free):
                    self._decode(m, names, rsp_region, m_addr, m_last, m_final, p_misc)
                    m.next = "PORT"
            with m.State("PORT"):
                # The memories' accesses are made from the registers of the request in hand,
                # not from ``req.valid``: the chip's port gating (its ``port_open``) then does
                # not run on into the SPRAM blocks' pins (the iCEBreaker's critical path at 30
                # MHz, 36 ns). A request withdrawn (a step starting: the links send none then)
                # would have its word written early and again when it is taken.
                self._port_memories(m, rsp_region, nf, n_gran, p_gran, neuron_rp, neuron_wp,
                                    axon_rp, axon_wp, slot_rp, slot_wp, syn)
                with m.If(~req.valid):
                    m.next = "IDLE"                 # withdrawn (a step is starting)
                with m.Else():
                    self._port(m, regs, names, pk, rsp_valid, rsp_region, m_addr, m_final,
                               p_misc, rbuf, misc_wp)
            with m.State("IN_READ"):
                misc_read(bm_addr)
                m.next = "IN_SET"
            with m.State("IN_SET"):
                m.d.comb += [misc_wp.addr.eq(bm_addr), misc_wp.en.eq(1),
                             misc_wp.data.eq(md | (1 << bm_bit))]
                m.next = "IDLE"
            with m.State("MREAD"):
                # word pk of the port's read asked for; word pk - 1 is out
                misc_read(m_addr | pk)          # a profile's words from 8p, a register's even
                m.d.sync += pk.eq(pk + 1)
                with m.Switch(Cat(pk, rsp_region == Region.PROFILE)):
                    for k, (lsb, bits) in enumerate(PROFILE_WORDS):
                        with m.Case(8 + k + 1):
                            m.d.sync += rbuf[lsb:lsb + bits].eq(md[:bits])
                    for k in range(2):
                        with m.Case(k + 1):
                            m.d.sync += rbuf[16 * k:16 * k + 16].eq(md)
                with m.If(pk == m_last):
                    m.d.sync += rsp_valid.eq(1)
                    m.next = "IDLE"

            # -- KEY: mix32(stdp_seed ^ mix32(t)), mix32(gen_seed ^ mix32(t)) ------------
            # (the seeds' halves read from ``misc`` while the mixer runs, the low one into q;
            # the keys written to ``misc``, a half a clock)
            for k, (seed, key, nxt) in enumerate((("stdp_seed", "skey", "KEY3"),
                                                  ("gen_seed", "gkey", "SCAN0"))):
                with m.State(f"KEY{3 * k}"):
                    m.d.sync += q[:16].eq(md)
                    misc_read(reg_word(seed, 1))
                    m.next = f"KEY{3 * k + 1}"
                with m.State(f"KEY{3 * k + 1}"):
                    with m.If(~mix.busy):           # mix32(t) is out: mixed with the seed
                        m.d.comb += [mix.x.eq(mix.out ^ Cat(q[:16], md)), mix.start.eq(1)]
                        m.next = f"KEY{3 * k + 2}"
                with m.State(f"KEY{3 * k + 2}"):
                    with m.If(~mix.busy):
                        m.d.comb += [misc_wp.addr.eq(key_word(key)), misc_wp.en.eq(1),
                                     misc_wp.data.eq(mix.out[:16])]
                        if k == 0:
                            m.d.comb += [mix.x.eq(t), mix.start.eq(1)]
                            misc_read(reg_word("gen_seed"))
                        m.next = f"KEY{3 * k + 2}H"
                with m.State(f"KEY{3 * k + 2}H"):
                    # ``out`` still holds the key (a start loads the mixer a clock later)
                    m.d.comb += [misc_wp.addr.eq(key_word(key, 1)), misc_wp.en.eq(1),
                                 misc_wp.data.eq(mix.out[16:])]
                    if k == 1:
                        m.d.sync += a.eq(0)
                    m.next = nxt

            def stdp_update(name, w, word, depress, after):
                """States from ``name``: once the mixer is done, ``delta = (p + (rand >> 10))
                >> 22`` (``p``: the amplitude times the trace), then ``w - delta`` (``depress``)
                or ``w + delta`` clamped (``w_new``, a clock after the sum) and written back
                into synapse word ``word``, then ``after()``."""
                with m.State(name):
                    with m.If(~mix.busy):
                        m.d.comb += [aa.eq(p[:_ACC]), bb.eq(mix.out[10:])]
                        m.next = name + "_D"
                nop(name + "_D", name + "_W")
                with m.State(name + "_W"):
                    delta = Cat(s[22:], Const(0, 22))
                    m.d.comb += [aa.eq(w), bb.eq(~delta if depress else delta), ci.eq(depress)]
                    m.next = name + "_S"
                nop(name + "_S", name + "_E")
                nop(name + "_E", name + "_C")
                with m.State(name + "_C"):
                    weight_write(word)
                    after()

            def next_synapse():
                advance(n, n_last, "DEL0", next_axon)

            def next_in_column():
                advance(a, a_last, "WALK0", next_neuron)

            def keyed_mix(name, key, kind, then, nxt):
                """States ``name`` and ``name + "X"``, entered with the low half of ``key``
                asked for: ``mix32(key ^ word(kind, a, n))`` started, then ``misc`` word
                ``then`` asked for."""
                with m.State(name):
                    m.d.sync += q[:16].eq(md)
                    misc_read(key_word(key, 1))
                    m.next = name + "X"
                with m.State(name + "X"):
                    word = rand_word(kind, a, n if kind != 2 else Const(0, 1))
                    m.d.comb += [mix.x.eq(Cat(q[:16], md) ^ word), mix.start.eq(1)]
                    if then is not None:
                        misc_read(then)
                    m.next = nxt

            # -- SCAN: one axon -----------------------------------------------------------
            first = (a[:4] == 0) if ab else Const(1)
            with m.State("SCAN0"):
                m.d.comb += [axon_rp.addr.eq(a), axon_rp.en.eq(1)]
                with m.If(first):
                    misc_read(bm_addr)
                m.next = "SCAN1"
            with m.State("SCAN1"):
                # the axon word is out, and the bitmap word if ``first`` (kept in ``bm``)
                word = Mux(first, md, bm)
                m.d.sync += [bm.eq(word), act.eq(word.bit_select(bm_bit, 1))]
                with m.If(first):
                    m.d.comb += [misc_wp.addr.eq(bm_addr), misc_wp.data.eq(0),
                                 misc_wp.en.eq(1)]
                with m.If(gen_prob != 0):
                    misc_read(key_word("gkey"))
                    m.next = "SCAN_K"
                with m.Else():
                    if plastic:
                        misc_read(reg_word("alpha_x"))
                    m.next = "SCAN2" if plastic else "SCAN_ACT"
            keyed_mix("SCAN_K", "gkey", 2, reg_word("alpha_x") if plastic else None,
                      "SCAN_GEN")
            with m.State("SCAN_GEN"):
                with m.If(~mix.busy):
                    with m.If(mix.out[16:] < gen_prob):
                        m.d.sync += act.eq(1)
                    m.next = "SCAN2" if plastic else "SCAN_ACT"
            if plastic:
                # x <- decay(x, alpha_x), then bumped if the axon carries an event
                with m.State("SCAN2"):
                    m.d.comb += [mz.eq(x_old), ma.eq(md), mul.eq(1)]
                    misc_read(reg_word("x_inc"))
                    m.next = "SCAN3"
                nop("SCAN3", "SCAN4")
                with m.State("SCAN4"):
                    m.d.comb += [aa.eq(p_hi), bb.eq(Mux(act & ~mode, md, 0)), ci.eq(p[15])]
                    m.next = "SCAN5"
                nop("SCAN5", "SCAN6")
                with m.State("SCAN6"):
                    x_new = Mux(act & mode, md, trace_clamped(s))
                    m.d.comb += [axon_wp.addr.eq(a), axon_wp.en.eq(1),
                                 axon_wp.data.eq(Cat(x_new, gen_prob))]
                    m.next = "SCAN_ACT"
            with m.State("SCAN_ACT"):
                with m.If(act):
                    m.d.sync += n.eq(0)
                    m.next = "DEL0"
                with m.Else():
                    next_axon()

            # -- DELIVER: the row of axon a, a synapse in two clocks -----------------------
            # (read into ``sw``; slot read; slot written while the next word comes into ``sw``)
            slot_d = Cat(n[:nb], (t[:D] + delay)[:D]) if D else n[:nb]
            with m.State("DEL0"):
                m.d.comb += [syn.r_addr.eq(syn_addr), syn.r_en.eq(1)]
                m.next = "DEL1"
            with m.State("DEL1"):
                m.d.sync += sw.eq(syn.r_data)
                m.next = "DEL2"
            with m.State("DEL2"):
                m.d.comb += [slot_rp.addr.eq(slot_d), slot_rp.en.eq(1)]
                if plastic:
                    m.d.comb += [neuron_rp.addr.eq(n), neuron_rp.en.eq(1)]
                m.d.sync += learning.eq(learn & mask_sw)
                with m.If(~(learn & mask_sw) & ~n_last):
                    # the next word read now: this one is not written back
                    m.d.comb += [syn.r_addr.eq(Cat((n + 1)[:nb], a[:ab])), syn.r_en.eq(1)]
                m.next = "DEL3"
            with m.State("DEL3"):
                m.d.comb += [slot_wp.addr.eq(slot_d), slot_wp.en.eq(1),
                             slot_wp.data.eq(slot_rp.data.as_signed() + w_sw)]
                with m.If(learning):
                    if plastic:
                        misc_read(key_word("skey"))
                        m.next = "DEP_K"
                with m.Elif(n_last):
                    next_axon()
                with m.Else():
                    m.d.sync += [n.eq(n + 1), sw.eq(syn.r_data)]
                    m.next = "DEL2"
            if plastic:
                # depression: w <- clamp(w - ((a_minus * decay(y, alpha_y) + rand) >> 22))
                keyed_mix("DEP_K", "skey", 0, reg_word("alpha_y"), "DEP0")
                with m.State("DEP0"):
                    m.d.comb += [mz.eq(y_old), ma.eq(md), mul.eq(1)]
                    misc_read(reg_word("a_minus"))
                    m.next = "DEP1"
                nop("DEP1", "DEP2")
                with m.State("DEP2"):
                    m.d.comb += [aa.eq(p_hi), ci.eq(p[15])]
                    m.next = "DEP3"
                nop("DEP3", "DEP4")
                with m.State("DEP4"):
                    m.d.comb += [mz.eq(s[:TRACE_BITS]), ma.eq(md), mul.eq(1)]
                    m.next = "DEP5"
                nop("DEP5", "DEP6")
                stdp_update("DEP6", w_sw, sw, True, next_synapse)

            # -- UPDATE: neuron n ---------------------------------------------------------
            slot_u = Cat(n[:nb], t[:D]) if D else n[:nb]
            with m.State("UPD0"):
                m.d.comb += [neuron_rp.addr.eq(n), neuron_rp.en.eq(1),
                             slot_rp.addr.eq(slot_u), slot_rp.en.eq(1)]
                m.next = "UPD1"
            with m.State("UPD1"):
                misc_read(prof_word(_ALPHA_I))
                m.d.comb += [slot_wp.addr.eq(slot_u), slot_wp.data.eq(0), slot_wp.en.eq(1)]
                m.d.sync += [acc.eq(slot_rp.data.as_signed()), sh.eq(regs["weight_exp"])]
                m.next = "UPD2"
            with m.State("UPD2"):
                m.d.comb += [mz.eq(i_old), ma.eq(md), mul.eq(1)]
                misc_read(prof_word(_ALPHA_V))
                m.next = "UPD_SHIFT"
            with m.State("UPD_SHIFT"):
                # slot << weight_exp, a bit a clock; a value beyond +-2^25 saturates i
                # whatever it is, so it stops growing there
                with m.If(sh != 0):
                    top = acc[25:]
                    with m.If((top == 0) | (top == (1 << len(top)) - 1)):
                        m.d.sync += acc.eq(acc << 1)
                    m.d.sync += sh.eq(sh - 1)
                with m.Else():
                    m.next = "UPD3"
            with m.State("UPD3"):
                # decay(i, alpha_i) + slot << weight_exp; v * alpha_v
                m.d.comb += [aa.eq(p_hi), bb.eq(acc), ci.eq(p[15]),
                             mz.eq(v_old), ma.eq(md), mul.eq(1)]
                misc_read(prof_word(_REFR))
                m.next = "UPD4"
            with m.State("UPD4"):
                m.d.sync += rinfo.eq(md[:5])
                misc_read(prof_word(_THR_LO))
                m.next = "UPD5"
            with m.State("UPD5"):
                # i <- sat(...); decay(v, alpha_v) + bias
                m.d.sync += [inew.eq(_sat(s, STATE_BITS)), q[:16].eq(md)]
                m.d.comb += [aa.eq(p_hi), bb.eq(bias), ci.eq(p[15])]
                misc_read(prof_word(_THR_HI))
                m.next = "UPD6"
            with m.State("UPD6"):
                m.d.sync += q[16:].eq(md[:7])
                misc_read(reg_word("alpha_y"))
                m.next = "UPD7"
            with m.State("UPD7"):
                # ... + i; y * alpha_y
                m.d.comb += [aa.eq(s), bb.eq(inew), mz.eq(y_old), ma.eq(md), mul.eq(1)]
                misc_read(prof_word(_VR_LO))
                m.next = "UPD8"
            with m.State("UPD8"):
                m.d.sync += acc[:16].eq(md)
                misc_read(prof_word(_VR_HI))
                m.next = "UPD9"
            with m.State("UPD9"):
                # v <- sat(decay(v, alpha_v) + i + bias); v - threshold
                v_new = _sat(s, STATE_BITS)
                m.d.sync += [acc[16:STATE_BITS].eq(md[:8]), q.eq(v_new)]
                m.d.comb += [aa.eq(v_new), bb.eq(~Cat(q, Const(0, 1)).as_signed()), ci.eq(1)]
                misc_read(reg_word("y_inc"))
                m.next = "UPD10"
            with m.State("UPD10"):
                m.d.comb += [aa.eq(p_hi), ci.eq(p[15])]          # decay(y, alpha_y)
                m.next = "UPD11"
            with m.State("UPD11"):
                # the spike decision, and v after a spike in reset_mode 1 (else v_reset)
                m.d.sync += fire.eq((ref_old == 0) & ~s[-1] & (s != 0))
                with m.If(rinfo[4]):
                    m.d.sync += acc[:STATE_BITS].eq(s[:STATE_BITS])
                m.next = "UPD12"
            with m.State("UPD12"):
                # the post trace bumped on a spike
                m.d.comb += [aa.eq(s[:TRACE_BITS]), bb.eq(Mux(fire & ~mode, md, 0))]
                m.next = "UPD13"
            nop("UPD13", "UPD14")
            with m.State("UPD14"):
                refr = ref_old != 0
                v_fin = Mux(refr, v_old, Mux(fire, acc[:STATE_BITS], q))
                ref_new = Mux(refr, ref_old - 1, Mux(fire, rinfo[:4], 0))
                state = Cat(v_fin[:STATE_BITS], inew, ref_new[:4])
                if plastic:
                    y_new = Mux(fire & mode, md, trace_clamped(s))
                    state = Cat(state, y_new)
                m.d.comb += [neuron_wp.addr.eq(n), neuron_wp.data.eq(state),
                             neuron_wp.en.eq((1 << n_gran) - 1)]
                with m.If(fire):
                    m.next = "EMIT"
                with m.Else():
                    next_neuron()
            with m.State("EMIT"):
                m.d.comb += [self.spike_out.valid.eq(1), self.spike_out.payload.eq(n)]
                with m.If(self.spike_out.ready):
                    with m.If(learn):
                        if plastic:
                            m.d.sync += a.eq(0)
                            m.next = "WALK0"
                    with m.Else():
                        next_neuron()

            # -- POT: the column of neuron n ----------------------------------------------
            if plastic:
                with m.State("WALK0"):
                    m.d.comb += [syn.r_addr.eq(syn_addr), syn.r_en.eq(1)]
                    m.next = "WALK1"
                with m.State("WALK1"):
                    m.d.sync += learning.eq(mask)
                    m.next = "WALK1D"
                with m.State("WALK1D"):
                    with m.If(learning):
                        m.d.comb += [axon_rp.addr.eq(a), axon_rp.en.eq(1)]
                        misc_read(key_word("skey"))
                        m.next = "WALK_K"
                    with m.Elif(a_last):
                        next_neuron()
                    with m.Else():
                        # no mask: the next synapse of the column read now
                        m.d.sync += a.eq(a + 1)
                        m.d.comb += [syn.r_addr.eq(Cat(n[:nb], (a + 1)[:ab])),
                                     syn.r_en.eq(1)]
                        m.next = "WALK1"
                keyed_mix("WALK_K", "skey", 1, reg_word("a_plus"), "WALK2")
                with m.State("WALK2"):
                    m.d.comb += [mz.eq(x_old), ma.eq(md), mul.eq(1)]
                    m.next = "WALK3"
                nop("WALK3", "WALK4")
                stdp_update("WALK4", w_old, syn.r_data, False, next_in_column)

            with m.State("END"):
                m.d.sync += [t.eq(t + 1), self.step_moved.eq(1), running.eq(0)]
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        # one flip-flop a state: Yosys leaves a state register with an initial value alone
        # unless told, and the binary state's decoding ran in front of every choice
        fsm.state.attrs["fsm_encoding"] = "one-hot"

        # -- the response word ---------------------------------------------------------------
        word = Signal.like(rsp.payload)
        m.d.comb += rsp.payload.eq(word)
        with m.Switch(rsp_region):
            with m.Case(Region.REGISTERS):
                m.d.comb += word.eq(rbuf[:32])
            with m.Case(Region.PROFILE):
                m.d.comb += word.eq(rbuf[:lay[Region.PROFILE].width])
            with m.Case(Region.NEURON):
                m.d.comb += word.eq(nd[:nf])
            with m.Case(Region.PARAM):
                m.d.comb += word.eq(nd[nf:])
            with m.Case(Region.AXON):
                m.d.comb += word.eq(axon_rp.data)
            with m.Case(Region.SYNAPSE):
                m.d.comb += word.eq(syn.r_data)
            with m.Case(Region.SLOT):
                m.d.comb += word.eq(slot_rp.data)
        m.d.comb += self.collision.eq(Cat(*collisions).any())
        return m

    def _decode(self, m, names, region_r, base_r, last_r, final_r, misc_r):
        """A request's target, registered as the port takes it in hand (``PORT`` acts on it
        a clock later, from these registers): its region; whether it is for ``misc`` words (a
        profile, or a register kept there), their first address, their number and it less one."""
        c = self.config
        pb = _log2(c.n_profiles)
        req = self.mem_req
        ib = self.memmap.index_bits
        region, index = req.payload.addr[ib:], req.payload.addr[:ib]
        m.d.sync += [region_r.eq(region), misc_r.eq(0)]
        with m.If(region == Region.PROFILE):
            m.d.sync += [misc_r.eq(1), base_r.eq(Cat(Const(0, 3), index[:pb])),
                         last_r.eq(len(PROFILE_WORDS)), final_r.eq(len(PROFILE_WORDS) - 1)]
        with m.If(region == Region.REGISTERS):
            for k, name in enumerate(names):
                if name in MISC_REGISTERS:
                    with m.If(index == k):
                        bits = REGISTER_FIELDS(c)[name].bits
                        m.d.sync += [misc_r.eq(1), base_r.eq(_register_word(c.n_profiles, k)),
                                     last_r.eq(-(-bits // 16)), final_r.eq(-(-bits // 16) - 1)]

    def _port(self, m, regs, names, pk, rsp_valid, region, base, final, in_misc, rbuf,
              misc_wp):
        """One memory-port request, in ``PORT`` (``region``, ``base``, ``final`` and
        ``in_misc`` from ``_decode``; the memories' accesses are ``_port_memories``). A read of a
        memory is answered from the next clock on (its word held: nothing reads that memory
        before the response is taken); a register in flip-flops is copied into ``rbuf``; a
        profile or a register kept in ``misc`` is read a word a clock into ``rbuf``
        (``MREAD``). A write is made at once, or a ``misc`` word a clock with the request held
        until the last."""
        req = self.mem_req
        ib = self.memmap.index_bits
        index = req.payload.addr[:ib]
        wdata = req.payload.data
        rd = ~req.payload.write
        m.next = "IDLE"
        with m.If(in_misc & ~rd):
            # the words one a clock; the request taken with the last
            m.d.comb += [misc_wp.addr.eq(base | pk), misc_wp.en.eq(1)]
            with m.Switch(Cat(pk, region == Region.PROFILE)):
                for k, (lsb, bits) in enumerate(PROFILE_WORDS):
                    with m.Case(8 + k):
                        m.d.comb += misc_wp.data.eq(wdata[lsb:lsb + bits])
                for k in range(2):
                    with m.Case(k):
                        m.d.comb += misc_wp.data.eq(wdata[16 * k:16 * k + 16])
            m.d.sync += pk.eq(pk + 1)
            with m.If(pk == final):
                m.d.comb += req.ready.eq(1)
            with m.Else():
                m.next = "PORT"
        with m.Else():
            m.d.comb += req.ready.eq(1)
        with m.If(rd):
            with m.If(in_misc):
                m.d.sync += rbuf[:32].eq(0)
                m.next = "MREAD"
            with m.Else():
                m.d.sync += rsp_valid.eq(1)
                with m.If(region == Region.REGISTERS):
                    m.d.sync += rbuf[:32].eq(0)             # no register there: reads 0
                    for k, name in enumerate(names):
                        if name in regs:
                            with m.If(index == k):
                                m.d.sync += rbuf[:32].eq(regs[name].as_unsigned())
        with m.Switch(region):
            with m.Case(Region.REGISTERS):
                with m.If(~rd):
                    for k, name in enumerate(names):
                        if name in regs:
                            with m.If(index == k):
                                r = regs[name]
                                m.d.sync += r.eq(wdata[:len(r)])
                                if name == "step":
                                    m.d.sync += self.step_moved.eq(1)

    def _port_memories(self, m, region, nf, n_gran, p_gran, neuron_rp, neuron_wp, axon_rp,
                       axon_wp, slot_rp, slot_wp, syn):
        """The memory accesses of the request in ``PORT`` (its ``region`` from ``_decode``):
        a read issued at once (its word the response from the next clock on), a write made."""
        c = self.config
        req = self.mem_req
        ib = self.memmap.index_bits
        index = req.payload.addr[:ib]
        wdata = req.payload.data
        n = index[:c.neuron_bits]
        rd = ~req.payload.write
        with m.Switch(region):
            with m.Case(Region.NEURON):
                m.d.comb += [neuron_rp.addr.eq(n), neuron_rp.en.eq(rd),
                             neuron_wp.addr.eq(n), neuron_wp.data.eq(wdata[:nf]),
                             neuron_wp.en.eq(Mux(rd, 0, (1 << n_gran) - 1))]
            with m.Case(Region.PARAM):
                m.d.comb += [neuron_rp.addr.eq(n), neuron_rp.en.eq(rd),
                             neuron_wp.addr.eq(n), neuron_wp.data.eq(Cat(Const(0, nf), wdata)),
                             neuron_wp.en.eq(Mux(rd, 0, ((1 << p_gran) - 1) << n_gran))]
            with m.Case(Region.AXON):
                m.d.comb += [axon_rp.addr.eq(index), axon_rp.en.eq(rd), axon_wp.addr.eq(index),
                             axon_wp.data.eq(wdata), axon_wp.en.eq(~rd)]
            with m.Case(Region.SYNAPSE):
                m.d.comb += [syn.r_addr.eq(index), syn.r_en.eq(rd), syn.w_addr.eq(index),
                             syn.w_data.eq(wdata), syn.w_en.eq(~rd)]
            with m.Case(Region.SLOT):
                m.d.comb += [slot_rp.addr.eq(index), slot_rp.en.eq(rd), slot_wp.addr.eq(index),
                             slot_wp.data.eq(wdata), slot_wp.en.eq(~rd)]
