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
``SpramLaneMemory`` on an iCE40 UltraPlus: one port, so no clock both reads and writes it), and
``misc``: 16-bit words, eight per profile (its fields in seven) and then the input bitmap. The
profiles are read a word at a time as the update needs them (a profile costs no flip-flops);
the memory port reads and writes a profile in seven clocks.
"""

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..image import REGISTER_FIELDS, STATE_BITS, TRACE_BITS, CoreConfig
from ..memmap import MemoryMap, Region
from .core import mem_request_layout, synapse_memory_for
from .memory import LaneMemory
from .prng import SerialMix32, rand_word
from .spram import SpramLaneMemory

__all__ = ["SmallCore", "PROFILE_WORDS"]

# The profile word (``memmap``: threshold 23, v_reset 24, alpha_v 16, alpha_i 16, refractory 4,
# reset_mode 1 bits, LSB first) as ``misc`` words: (lsb, bits) of each
PROFILE_WORDS = ((0, 16), (16, 7), (23, 16), (39, 8), (47, 16), (63, 16), (79, 5))
_THR_LO, _THR_HI, _VR_LO, _VR_HI, _ALPHA_V, _ALPHA_I, _REFR = range(7)
_ACC = 34           # the adder's and accumulator's width
_T_MAX = (1 << TRACE_BITS) - 1


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
    ``"block"``).
    """

    def __init__(self, config, *, synapse_memory=None):
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
        super().__init__({
            "spike_in": In(stream.Signature(unsigned(max(config.axon_bits, 1)))),
            "spike_out": Out(stream.Signature(unsigned(max(config.neuron_bits, 1)))),
            "mem_req": In(stream.Signature(mem_request_layout(mm))),
            "mem_rsp": Out(stream.Signature(unsigned(mm.data_bits))),
            "start": In(1),
            "busy": Out(1),
            "done": Out(1),
            "step": Out(32),
            "step_moved": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 - one sequencer, read top to bottom
        m = Module()
        c, mm = self.config, self.memmap
        N, A, P, W, D = c.n_neurons, c.n_axons, c.n_profiles, c.weight_bits, c.delay_bits
        nb, ab, pb = c.neuron_bits, c.axon_bits, _log2(P)
        plastic = c.plastic
        lay = {r: mm[r] for r in Region}

        # -- registers (the REGISTERS region) ----------------------------------------------
        regs = {}
        for name, f in REGISTER_FIELDS(c).items():
            regs[name] = Signal(signed(f.bits) if f.signed else unsigned(f.bits), name=name)
        reg_list = list(regs.values())
        t = regs["step"]
        m.d.comb += self.step.eq(t)
        m.d.sync += self.step_moved.eq(0)

        # -- memories ----------------------------------------------------------------------
        def mem(name, width, depth):
            m.submodules[name] = mo = memory.Memory(shape=unsigned(width), depth=depth,
                                                    init=[])
            wp = mo.write_port()
            rp = mo.read_port()
            m.d.comb += rp.en.eq(0)
            return rp, wp

        state_rp, state_wp = mem("state", 2 * STATE_BITS + 4, N)
        param_rp, param_wp = mem("param", lay[Region.PARAM].width, N)
        axon_rp, axon_wp = mem("axon", lay[Region.AXON].width, A)
        slot_rp, slot_wp = mem("slot", c.slot_bits, c.n_slots * N)
        bitmap_base = 8 * P
        misc_rp, misc_wp = mem("misc", 16, bitmap_base + -(-A // 16))
        if plastic:
            y_rp, y_wp = mem("y", TRACE_BITS, N)
        kind = self.synapse_memory or synapse_memory_for(c, platform)
        syn_cls = SpramLaneMemory if kind == "spram" else LaneMemory
        m.submodules.syn0 = syn = syn_cls(lay[Region.SYNAPSE].width, A * N)
        m.d.comb += [syn.r_en.eq(0), syn.w_en.eq(0)]

        # the fields of the words as the memories hold them
        st = state_rp.data
        v_old = st[:STATE_BITS].as_signed()
        i_old = st[STATE_BITS:2 * STATE_BITS].as_signed()
        ref_old = st[2 * STATE_BITS:]
        pf = lay[Region.PARAM].offsets()
        bias = param_rp.data[:STATE_BITS].as_signed()
        prof = param_rp.data[pf["profile"][0]:][:pb]
        af = lay[Region.AXON].offsets()
        gen_prob = axon_rp.data[af["gen_prob"][0]:][:16]
        x_old = axon_rp.data[:TRACE_BITS] if plastic else Const(0, TRACE_BITS)
        sf = lay[Region.SYNAPSE].offsets()
        w_old = syn.r_data[:W].as_signed()
        delay = syn.r_data[sf["delay"][0]:][:D] if D else Const(0, 1)
        mask = syn.r_data[sf["mask"][0]] if plastic else Const(0, 1)
        y_old = y_rp.data if plastic else Const(0, TRACE_BITS)
        learn = regs["learn"] if plastic else Const(0, 1)

        # -- the shared datapath -----------------------------------------------------------
        mz = Signal(signed(STATE_BITS + 1))       # multiplicand: a state value or a trace
        ma = Signal(16)                           # multiplier: a decay factor or an amplitude
        mul = Signal()                            # load the product register
        p = Signal(signed(STATE_BITS + 1 + 17))
        with m.If(mul):
            m.d.sync += p.eq(mz * ma)
        p_hi = p[16:].as_signed()                 # with ``p[15]`` as carry in: the rounded decay
        aa, bb = Signal(signed(_ACC)), Signal(signed(_ACC))
        ci = Signal()
        s = Signal(signed(_ACC))
        m.d.comb += s.eq(aa + bb + ci)
        acc = Signal(signed(_ACC))
        q = Signal(STATE_BITS)                    # the threshold, then v_reset or v - threshold
        inew = Signal(signed(STATE_BITS))         # the new current
        yq = Signal(TRACE_BITS)                   # a decayed post trace
        sh = Signal(4)                            # shifts of the slot left to make
        rinfo = Signal(5)                         # refractory, reset_mode of the profile
        fire = Signal()
        act = Signal()                            # the axon carries an event
        word_bit = Signal()                       # the SCAN read a bitmap word

        m.submodules.mix = mix = SerialMix32()
        skey, gkey = Signal(32), Signal(32)

        # counters: neuron, axon; the misc word counter of the port's profile access
        n = Signal(max(nb, 1))
        a = Signal(max(ab, 1))
        pk = Signal(3)
        n_last = n == N - 1
        a_last = a == A - 1
        syn_addr = Cat(n[:nb], a[:ab])                # a * N + n
        bm_addr = bitmap_base + (a[4:ab] if ab > 4 else 0)
        bm_bit = a[:min(ab, 4)] if ab else Const(0, 1)

        def prof_addr(k):
            return Cat(Const(k, 3), prof)

        def weight_write(value):
            """The synapse word with weight ``value`` (clamped to ``w_min``..``w_max``)."""
            lo, hi = regs["w_min"], regs["w_max"]
            v18 = value[:18].as_signed()
            clamped = Mux(v18 < lo, lo, Mux(v18 > hi, hi, v18[:W].as_signed()))
            m.d.comb += [syn.w_addr.eq(syn_addr), syn.w_en.eq(1),
                         syn.w_data.eq(Cat(clamped[:W], syn.r_data[W:]))]

        # -- control -----------------------------------------------------------------------
        running = Signal()
        start_latch = Signal()
        go = self.start | start_latch
        with m.If(self.start):
            m.d.sync += start_latch.eq(1)
        m.d.comb += self.busy.eq(running)

        req, rsp = self.mem_req, self.mem_rsp
        ib = mm.index_bits
        region, index = req.payload.addr[ib:], req.payload.addr[:ib]
        wdata = req.payload.data
        rsp_valid = Signal()
        rsp_region = Signal(3)
        rsp_index = Signal(range(max(len(reg_list), P) + 1))
        prsp = Signal(lay[Region.PROFILE].width)
        m.d.comb += rsp.valid.eq(rsp_valid)
        with m.If(rsp_valid & rsp.ready):
            m.d.sync += rsp_valid.eq(0)
        free = ~rsp_valid | rsp.ready                 # a new response may be made

        def next_axon():
            with m.If(a_last):
                m.d.sync += n.eq(0)
                m.next = "UPD0"
            with m.Else():
                m.d.sync += a.eq(a + 1)
                m.next = "SCAN"

        def next_neuron():
            with m.If(n_last):
                m.next = "END"
            with m.Else():
                m.d.sync += n.eq(n + 1)
                m.next = "UPD0"

        def after_walk_synapse():
            with m.If(a_last):
                next_neuron()
            with m.Else():
                m.d.sync += a.eq(a + 1)
                m.next = "WALK0"

        with m.FSM(name="seq"):
            # -- between steps: input events, the memory port, the start -------------------
            with m.State("IDLE"):
                m.d.sync += pk.eq(0)
                with m.If(self.spike_in.valid):
                    # taken now; its bitmap word read, and written with the bit next clock
                    m.d.comb += self.spike_in.ready.eq(1)
                    m.d.sync += a.eq(self.spike_in.payload)
                    pa = self.spike_in.payload
                    m.d.comb += [misc_rp.addr.eq(bitmap_base + (pa[4:ab] if ab > 4 else 0)),
                                 misc_rp.en.eq(1)]
                    m.next = "IN_SET"
                with m.Elif(go & ~rsp_valid):
                    m.d.sync += [start_latch.eq(0), running.eq(1)]
                    m.d.comb += [mix.x.eq(t), mix.start.eq(1)]
                    m.next = "KEY0"
                with m.Elif(req.valid & free):
                    self._port(m, region, index, wdata, regs, reg_list, pk, rsp_valid,
                               rsp_region, rsp_index, req, state_rp, state_wp, param_rp,
                               param_wp, axon_rp, axon_wp, slot_rp, slot_wp, misc_wp,
                               y_rp if plastic else None, y_wp if plastic else None, syn)
            with m.State("IN_SET"):
                m.d.comb += [misc_wp.addr.eq(bm_addr), misc_wp.en.eq(1),
                             misc_wp.data.eq(misc_rp.data | (1 << bm_bit))]
                m.next = "IDLE"
            with m.State("PROFILE_READ"):
                # word pk of profile ``rsp_index`` asked for; word pk - 1 is out
                m.d.comb += [misc_rp.addr.eq(Cat(pk, rsp_index[:pb])), misc_rp.en.eq(1)]
                m.d.sync += pk.eq(pk + 1)
                with m.Switch(pk):
                    for k, (lsb, bits) in enumerate(PROFILE_WORDS):
                        with m.Case(k + 1):
                            m.d.sync += prsp[lsb:lsb + bits].eq(misc_rp.data[:bits])
                with m.If(pk == len(PROFILE_WORDS)):
                    m.d.sync += rsp_valid.eq(1)
                    m.next = "IDLE"

            # -- KEY: mix32(stdp_seed ^ mix32(t)), mix32(gen_seed ^ mix32(t)) ------------
            def key_state(name, nxt, mix_with=None, store=None, then_t=False):
                with m.State(name):
                    with m.If(~mix.busy):
                        if mix_with is not None:
                            m.d.comb += [mix.x.eq(mix.out ^ mix_with), mix.start.eq(1)]
                        if store is not None:
                            m.d.sync += store.eq(mix.out)
                        if store is gkey:
                            m.d.sync += a.eq(0)
                        if then_t:
                            m.d.comb += [mix.x.eq(t), mix.start.eq(1)]
                        m.next = nxt
            key_state("KEY0", "KEY1", mix_with=regs["stdp_seed"])
            key_state("KEY1", "KEY2", store=skey, then_t=True)
            key_state("KEY2", "KEY3", mix_with=regs["gen_seed"])
            key_state("KEY3", "SCAN", store=gkey)

            # -- SCAN: one axon -----------------------------------------------------------
            with m.State("SCAN"):
                first = (a[:4] == 0) if ab else Const(1)
                m.d.comb += [axon_rp.addr.eq(a), axon_rp.en.eq(1),
                             misc_rp.addr.eq(bm_addr), misc_rp.en.eq(first)]
                m.d.sync += word_bit.eq(first)
                m.next = "SCAN1"
            with m.State("SCAN1"):
                # the axon word and the bitmap word are out (the bitmap word stays out while
                # the 16 axons it holds are scanned: nothing else reads ``misc`` meanwhile)
                ext = misc_rp.data.bit_select(bm_bit, 1)
                with m.If(word_bit):
                    m.d.comb += [misc_wp.addr.eq(bm_addr), misc_wp.data.eq(0),
                                 misc_wp.en.eq(1)]
                m.d.sync += act.eq(ext)
                with m.If(gen_prob != 0):
                    m.d.comb += [mix.x.eq(gkey ^ rand_word(2, a, Const(0, 1))),
                                 mix.start.eq(1)]
                    m.next = "SCAN_GEN"
                with m.Else():
                    m.next = "SCAN_X" if plastic else "SCAN_ACT"
            with m.State("SCAN_GEN"):
                with m.If(~mix.busy):
                    with m.If(mix.out[16:] < gen_prob):
                        m.d.sync += act.eq(1)
                    m.next = "SCAN_X" if plastic else "SCAN_ACT"
            if plastic:
                with m.State("SCAN_X"):
                    m.d.comb += [mz.eq(x_old), ma.eq(regs["alpha_x"]), mul.eq(1)]
                    m.next = "SCAN_X1"
                with m.State("SCAN_X1"):
                    # x <- decay(x, alpha_x), then bumped if the axon carries an event
                    bump = act & ~regs["trace_mode"]
                    m.d.comb += [aa.eq(p_hi), bb.eq(Mux(bump, regs["x_inc"], 0)),
                                 ci.eq(p[15])]
                    x_new = Mux(act & regs["trace_mode"], regs["x_inc"],
                                Mux(s > _T_MAX, _T_MAX, s[:TRACE_BITS]))
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
            slot_d = Cat(n[:nb], (t[:D] + delay)[:D]) if D else n[:nb]
            with m.State("DEL0"):
                m.d.comb += [syn.r_addr.eq(syn_addr), syn.r_en.eq(1)]
                m.next = "DEL1"
            with m.State("DEL1"):
                m.d.comb += [slot_rp.addr.eq(slot_d), slot_rp.en.eq(1)]
                if plastic:
                    m.d.comb += [y_rp.addr.eq(n), y_rp.en.eq(1)]
                m.next = "DEL2"
            with m.State("DEL2"):
                m.d.comb += [slot_wp.addr.eq(slot_d), slot_wp.en.eq(1),
                             slot_wp.data.eq(slot_rp.data.as_signed() + w_old)]
                depress = learn & mask if plastic else Const(0)
                with m.If(depress):
                    if plastic:
                        m.d.comb += [mix.x.eq(skey ^ rand_word(0, a, n)), mix.start.eq(1)]
                        m.next = "DEP0"
                with m.Elif(n_last):
                    next_axon()
                with m.Else():
                    # the next synapse's read now: the lane is not written in this clock
                    m.d.sync += n.eq(n + 1)
                    m.d.comb += [syn.r_addr.eq(Cat((n + 1)[:nb], a[:ab])), syn.r_en.eq(1)]
                    m.next = "DEL1"
            if plastic:
                # depression: w <- clamp(w - ((a_minus * decay(y, alpha_y) + rand) >> 22))
                with m.State("DEP0"):
                    m.d.comb += [mz.eq(y_old), ma.eq(regs["alpha_y"]), mul.eq(1)]
                    m.next = "DEP1"
                with m.State("DEP1"):
                    m.d.comb += [aa.eq(p_hi), ci.eq(p[15])]
                    m.d.sync += yq.eq(s[:TRACE_BITS])
                    m.next = "DEP2"
                with m.State("DEP2"):
                    m.d.comb += [mz.eq(yq), ma.eq(regs["a_minus"]), mul.eq(1)]
                    m.next = "DEP3"
                with m.State("DEP3"):
                    with m.If(~mix.busy):
                        m.d.comb += [aa.eq(p[:_ACC]), bb.eq(mix.out[10:])]
                        m.d.sync += acc.eq(s)
                        m.next = "DEP4"
                with m.State("DEP4"):
                    dep = Cat(acc[22:], Const(0, 22))       # -dep = ~dep + 1
                    m.d.comb += [aa.eq(w_old), bb.eq(~dep), ci.eq(1)]
                    weight_write(s)
                    with m.If(n_last):
                        next_axon()
                    with m.Else():
                        m.d.sync += n.eq(n + 1)
                        m.next = "DEL0"

            # -- UPDATE: neuron n ---------------------------------------------------------
            slot_u = Cat(n[:nb], t[:D]) if D else n[:nb]
            with m.State("UPD0"):
                m.d.comb += [state_rp.addr.eq(n), state_rp.en.eq(1),
                             param_rp.addr.eq(n), param_rp.en.eq(1),
                             slot_rp.addr.eq(slot_u), slot_rp.en.eq(1)]
                if plastic:
                    m.d.comb += [y_rp.addr.eq(n), y_rp.en.eq(1)]
                m.next = "UPD1"
            with m.State("UPD1"):
                m.d.comb += [misc_rp.addr.eq(prof_addr(_ALPHA_I)), misc_rp.en.eq(1),
                             slot_wp.addr.eq(slot_u), slot_wp.data.eq(0), slot_wp.en.eq(1)]
                m.d.sync += [acc.eq(slot_rp.data.as_signed()), sh.eq(regs["weight_exp"])]
                m.next = "UPD2"
            with m.State("UPD2"):
                m.d.comb += [mz.eq(i_old), ma.eq(misc_rp.data), mul.eq(1),
                             misc_rp.addr.eq(prof_addr(_ALPHA_V)), misc_rp.en.eq(1)]
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
                # i <- sat(decay(i, alpha_i) + slot << weight_exp); p <- v * alpha_v
                m.d.comb += [aa.eq(p_hi), bb.eq(acc), ci.eq(p[15])]
                m.d.sync += inew.eq(_sat(s, STATE_BITS))
                m.d.comb += [mz.eq(v_old), ma.eq(misc_rp.data), mul.eq(1),
                             misc_rp.addr.eq(prof_addr(_REFR)), misc_rp.en.eq(1)]
                m.next = "UPD4"
            with m.State("UPD4"):
                m.d.comb += [aa.eq(p_hi), bb.eq(inew), ci.eq(p[15])]
                m.d.sync += [acc.eq(s), rinfo.eq(misc_rp.data[:5])]
                m.d.comb += [misc_rp.addr.eq(prof_addr(_THR_LO)), misc_rp.en.eq(1)]
                m.d.comb += [mz.eq(y_old), ma.eq(regs["alpha_y"]), mul.eq(1)]
                m.next = "UPD5"
            with m.State("UPD5"):
                # v <- sat(decay(v, alpha_v) + i + bias)
                m.d.comb += [aa.eq(acc), bb.eq(bias)]
                m.d.sync += [acc.eq(_sat(s, STATE_BITS).as_signed()), q[:16].eq(misc_rp.data)]
                m.d.comb += [misc_rp.addr.eq(prof_addr(_THR_HI)), misc_rp.en.eq(1)]
                m.next = "UPD6"
            with m.State("UPD6"):
                m.d.sync += q[16:].eq(misc_rp.data[:7])
                m.d.comb += [misc_rp.addr.eq(prof_addr(_VR_LO)), misc_rp.en.eq(1)]
                m.d.comb += [aa.eq(p_hi), ci.eq(p[15])]
                m.d.sync += yq.eq(s[:TRACE_BITS])           # decay(y, alpha_y)
                m.next = "UPD7"
            with m.State("UPD7"):
                # v - threshold: the spike decision, and v after a spike in reset_mode 1
                m.d.comb += [aa.eq(acc), bb.eq(~Cat(q, Const(0, 1)).as_signed()), ci.eq(1)]
                spikes = (ref_old == 0) & ~s[-1] & (s != 0)
                m.d.sync += fire.eq(spikes)
                with m.If(rinfo[4]):
                    m.d.sync += q.eq(s[:STATE_BITS])
                with m.Else():
                    m.d.sync += q[:16].eq(misc_rp.data)
                m.d.comb += [misc_rp.addr.eq(prof_addr(_VR_HI)), misc_rp.en.eq(1)]
                m.next = "UPD8"
            with m.State("UPD8"):
                with m.If(~rinfo[4]):
                    m.d.sync += q[16:].eq(misc_rp.data[:8])
                bump = fire & ~regs["trace_mode"]
                m.d.comb += [aa.eq(yq), bb.eq(Mux(bump, regs["y_inc"], 0))]
                m.d.sync += yq.eq(Mux(fire & regs["trace_mode"], regs["y_inc"],
                                      Mux(s > _T_MAX, _T_MAX, s[:TRACE_BITS])))
                m.next = "UPD9"
            with m.State("UPD9"):
                refr = ref_old != 0
                v_fin = Mux(refr, v_old, Mux(fire, q, acc[:STATE_BITS]))
                ref_new = Mux(refr, ref_old - 1, Mux(fire, rinfo[:4], 0))
                m.d.comb += [state_wp.addr.eq(n), state_wp.en.eq(1),
                             state_wp.data.eq(Cat(v_fin[:STATE_BITS], inew, ref_new[:4]))]
                if plastic:
                    m.d.comb += [y_wp.addr.eq(n), y_wp.en.eq(1), y_wp.data.eq(yq)]
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
                    with m.If(mask):
                        m.d.comb += [axon_rp.addr.eq(a), axon_rp.en.eq(1),
                                     mix.x.eq(skey ^ rand_word(1, a, n)), mix.start.eq(1)]
                        m.next = "WALK2"
                    with m.Elif(a_last):
                        next_neuron()
                    with m.Else():
                        # no mask: the next synapse of the column read now
                        m.d.sync += a.eq(a + 1)
                        m.d.comb += [syn.r_addr.eq(Cat(n[:nb], (a + 1)[:ab])), syn.r_en.eq(1)]
                with m.State("WALK2"):
                    m.d.comb += [mz.eq(x_old), ma.eq(regs["a_plus"]), mul.eq(1)]
                    m.next = "WALK3"
                with m.State("WALK3"):
                    with m.If(~mix.busy):
                        m.d.comb += [aa.eq(p[:_ACC]), bb.eq(mix.out[10:])]
                        m.d.sync += acc.eq(s)
                        m.next = "WALK4"
                with m.State("WALK4"):
                    m.d.comb += [aa.eq(w_old), bb.eq(acc[22:])]
                    weight_write(s)
                    after_walk_synapse()

            with m.State("END"):
                m.d.sync += [t.eq(t + 1), self.step_moved.eq(1), running.eq(0)]
                m.d.comb += self.done.eq(1)
                m.next = "IDLE"

        # -- the response word ---------------------------------------------------------------
        word = Signal.like(rsp.payload)
        m.d.comb += rsp.payload.eq(word)
        with m.Switch(rsp_region):
            with m.Case(Region.REGISTERS):
                m.d.comb += word.eq(Array(r.as_unsigned() for r in
                                          [*reg_list, Const(0, 1)])[rsp_index])
            with m.Case(Region.NEURON):
                m.d.comb += word.eq(Cat(state_rp.data, y_rp.data) if plastic else state_rp.data)
            with m.Case(Region.PARAM):
                m.d.comb += word.eq(param_rp.data)
            with m.Case(Region.PROFILE):
                m.d.comb += word.eq(prsp)
            with m.Case(Region.AXON):
                m.d.comb += word.eq(axon_rp.data)
            with m.Case(Region.SYNAPSE):
                m.d.comb += word.eq(syn.r_data)
            with m.Case(Region.SLOT):
                m.d.comb += word.eq(slot_rp.data)
        return m

    def _port(self, m, region, index, wdata, regs, reg_list, pk, rsp_valid, rsp_region,
              rsp_index, req, state_rp, state_wp, param_rp, param_wp, axon_rp, axon_wp,
              slot_rp, slot_wp, misc_wp, y_rp, y_wp, syn):
        """One memory-port request, in IDLE: a read's memory read issued (its word is the
        response from the next clock, held: nothing reads that memory before the response is
        taken), a write made; a profile takes seven clocks (``PROFILE_READ``, or seven writes
        with the request held until the last)."""
        c = self.config
        nb = c.neuron_bits
        pb = _log2(c.n_profiles)
        n = index[:nb]
        rd = ~req.payload.write
        with m.If((region == Region.PROFILE) & ~rd):
            m.d.comb += [misc_wp.addr.eq(Cat(pk, index[:pb])), misc_wp.en.eq(1)]
            with m.Switch(pk):
                for k, (lsb, bits) in enumerate(PROFILE_WORDS):
                    with m.Case(k):
                        m.d.comb += misc_wp.data.eq(wdata[lsb:lsb + bits])
            m.d.sync += pk.eq(pk + 1)
            with m.If(pk == len(PROFILE_WORDS) - 1):
                m.d.comb += req.ready.eq(1)
                m.d.sync += pk.eq(0)
        with m.Else():
            m.d.comb += req.ready.eq(1)
        with m.If(rd):
            m.d.sync += [rsp_region.eq(region), rsp_index.eq(index)]
            with m.If((region == Region.REGISTERS) & (index >= len(reg_list))):
                m.d.sync += rsp_index.eq(len(reg_list))     # no register there: reads 0
            with m.If(region == Region.PROFILE):
                m.next = "PROFILE_READ"
            with m.Else():
                m.d.sync += rsp_valid.eq(1)
        with m.Switch(region):
            with m.Case(Region.REGISTERS):
                with m.If(~rd):
                    for k, r in enumerate(reg_list):
                        with m.If(index == k):
                            m.d.sync += r.eq(wdata[:len(r)])
                            if r is regs["step"]:
                                m.d.sync += self.step_moved.eq(1)
            with m.Case(Region.NEURON):
                m.d.comb += [state_rp.addr.eq(n), state_rp.en.eq(rd),
                             state_wp.addr.eq(n), state_wp.data.eq(wdata[:2 * STATE_BITS + 4]),
                             state_wp.en.eq(~rd)]
                if y_rp is not None:
                    m.d.comb += [y_rp.addr.eq(n), y_rp.en.eq(rd), y_wp.addr.eq(n),
                                 y_wp.data.eq(wdata[2 * STATE_BITS + 4:]), y_wp.en.eq(~rd)]
            with m.Case(Region.PARAM):
                m.d.comb += [param_rp.addr.eq(n), param_rp.en.eq(rd), param_wp.addr.eq(n),
                             param_wp.data.eq(wdata), param_wp.en.eq(~rd)]
            with m.Case(Region.AXON):
                m.d.comb += [axon_rp.addr.eq(index), axon_rp.en.eq(rd), axon_wp.addr.eq(index),
                             axon_wp.data.eq(wdata), axon_wp.en.eq(~rd)]
            with m.Case(Region.SYNAPSE):
                m.d.comb += [syn.r_addr.eq(index), syn.r_en.eq(rd), syn.w_addr.eq(index),
                             syn.w_data.eq(wdata), syn.w_en.eq(~rd)]
            with m.Case(Region.SLOT):
                m.d.comb += [slot_rp.addr.eq(index), slot_rp.en.eq(rd), slot_wp.addr.eq(index),
                             slot_wp.data.eq(wdata), slot_wp.en.eq(~rd)]
