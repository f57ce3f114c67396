"""The time-multiplexed neuromorphic core: ``docs/numerics.md`` in hardware, bit for bit.

One timestep (``start`` .. ``done``) runs these phases (see ``docs/architecture.md``):

``KEY``      eight clocks: the per-step PRNG keys ``mix32(seed ^ mix32(t))`` through the mixer
             the scanner shares (cut in three by two registers, its input registered).
``DELIVER``  the *scanner* walks every axon once (input bitmap | generator, pre-trace update) and
             appends the axons of ``E_t`` to the list memory; at the same time the *deliverer*
             takes them and reads one lane-wide synapse word per clock, adding each weight into
             its delay slot (read-modify-write; with ``N = L`` a transparent read: back-to-back
             hits on one slot are exact) and writing the depressed weight back ``_WB`` clocks
             after the read.
``UPDATE``   one neuron per clock: decay, integrate the slot of ``t mod S``, bias, threshold,
             reset, refractory, post trace (five stages after the state read, which takes two
             clocks with ``update_pipeline="long"``, one with ``"short"``); per lane-wide word
             with a spike, an entry of the post list (in the list memory), from which
             ``spike_out`` sends the neurons meanwhile.
``POT``      if ``learn``: for each word of the post list, the eager column walk (``A`` synapse
             words, only the spiking lanes are written, ``_WB`` clocks after the read).
``EMIT``     wait until the spike output has drained the post list, then ``step <- t + 1`` and
             ``done``.

The synapse lanes are ``LaneMemory`` (block RAM), ``Dp16kdLaneMemory`` (ECP5 block RAM with
its output register) or ``SpramLaneMemory`` (iCE40 SPRAM, single port: with learning on, reads
and write-backs take turns, see ``read_ok``). All memories sit
behind ports that the memory access port (``mem_req`` / ``mem_rsp``, declared in
``spikeforge.memmap``) drives while the core is idle.
"""

from types import SimpleNamespace as _Port

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ..image import REGISTER_FIELDS, STATE_BITS, TRACE_BITS, CoreConfig
from ..memmap import MemoryMap, Region
from .dp16kd import Dp16kdLaneMemory, Dp16kdWordMemory
from .memory import LaneMemory
from .prng import MIX_LATENCY, mix32_pipelined, rand_word
from .spram import SPRAM_BLOCKS_UP5K, SpramLaneMemory, spram_block_count
from .target import device_of, is_ice40

__all__ = ["Core", "SYNAPSE_MEMORIES", "UPDATE_PIPELINES", "core_ports", "mem_request_layout",
           "synapse_memory_for", "update_pipeline_for"]

SYNAPSE_MEMORIES = (None, "block", "spram", "dp16kd")
UPDATE_PIPELINES = (None, "long", "short")


def synapse_memory_for(config, platform):
    """The synapse memory ``Core(config, synapse_memory=None)`` builds on ``platform``:
    ``"spram"`` on an iCE40 UltraPlus when every lane fits its four SPRAM blocks, ``"dp16kd"``
    on an ECP5, else ``"block"``."""
    device = device_of(platform)
    if device.startswith("LFE5U"):
        return "dp16kd"
    if not device.startswith("ICE40UP"):
        return "block"
    mm = MemoryMap(config)
    blocks = spram_block_count(mm[Region.SYNAPSE].width,
                               config.n_axons * config.n_neurons // mm.lanes)
    return "spram" if blocks * mm.lanes <= SPRAM_BLOCKS_UP5K else "block"


# clocks from a synapse read to its learning write-back (deliverer and column walk): the
# random number of the lane mixer is ready MIX_LATENCY clocks after the read and is registered
# with the product; the rounded update ``(product + random) >> 22`` is registered too, so that
# the write-back clock only adds it to the weight and clamps (one carry chain per clock)
_WB = MIX_LATENCY + 2


def update_pipeline_for(platform):
    """The update pipeline ``Core(..., update_pipeline=None)`` builds on ``platform``."""
    return "short" if is_ice40(platform) else "long"


def _log2(value):
    return value.bit_length() - 1


def mem_request_layout(memmap):
    """Payload of ``mem_req``: ``addr`` (region, index), ``write`` and ``data``."""
    return data.StructLayout({"addr": memmap.addr_bits, "write": 1, "data": memmap.data_bits})


def core_ports(config):
    """The members of a core's signature (``Core``, ``spikeforge.hdl.small_core.SmallCore``):
    ``spike_in``, ``spike_out``, ``mem_req`` / ``mem_rsp``, ``start``, ``busy``, ``done``,
    ``step``, ``step_moved``."""
    memmap = MemoryMap(config)
    return {
        "spike_in": In(stream.Signature(unsigned(max(config.axon_bits, 1)))),
        "spike_out": Out(stream.Signature(unsigned(max(config.neuron_bits, 1)))),
        "mem_req": In(stream.Signature(mem_request_layout(memmap))),
        "mem_rsp": Out(stream.Signature(unsigned(memmap.data_bits))),
        "start": In(1),
        "busy": Out(1),
        "done": Out(1),
        "step": Out(32),
        "step_moved": Out(1),
    }


def _fields(layout, word):
    """``{name: slice of word}`` for a ``RegionLayout``; signed fields as signed values."""
    out = {}
    for name, (lsb, f) in layout.offsets().items():
        value = word[lsb:lsb + f.bits]
        out[name] = value.as_signed() if f.signed else value
    return out


def _sat(value, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return Mux(value > hi, hi, Mux(value < lo, lo, value))[:bits].as_signed()


def _usat(value, bits):
    return Mux(value > (1 << bits) - 1, (1 << bits) - 1, value)[:bits]


def _clamp(value, lo, hi, bits):
    return Mux(value < lo, lo, Mux(value > hi, hi, value))[:bits].as_signed()


def _round16(product):
    """Second half of ``decay``: ``(z * alpha + 2^15) >> 16`` given the exact product."""
    return (product + (1 << 15)) >> 16


def _high16(product):
    """``product >> 16``: with ``product[15]`` as the carry in of the adder that takes it, the
    rounded decay ``_round16(product)`` without an adder of its own."""
    return product[16:].as_signed() if product.shape().signed else product[16:]


def _mul_alpha(z, alpha):
    """Exact product of a (signed or unsigned) ``z`` by an unsigned 16-bit factor."""
    if z.shape().signed:
        return z * Cat(alpha, Const(0, 1)).as_signed()
    return z * alpha


_SPLIT = 12     # ``_mul_alpha_split``: the low part's bits


def _mul_alpha_split(z, alpha):
    """The two partial products of ``_mul_alpha(z, alpha)`` for a signed ``z``: ``(hi, lo)``
    with ``(hi << _SPLIT) + lo`` the exact product. Each is one 18 x 18 multiplier, so that a
    register can follow the multipliers before the adder that joins them (on the ECP5 Yosys
    splits a wider product itself and puts that adder straight after the multipliers)."""
    a = Cat(alpha, Const(0, 1)).as_signed()
    return z[_SPLIT:].as_signed() * a, Cat(z[:_SPLIT], Const(0, 1)).as_signed() * a


class Core(wiring.Component):
    """One neuromorphic core, elaborated for a ``CoreConfig``.

    Ports: ``spike_in`` (axon events of the next step, accepted while idle), ``spike_out``
    (neuron numbers of ``S_t``, in order), ``mem_req`` / ``mem_rsp`` (the memory access port,
    accepted while idle; one read response per read request, in order), ``start`` (a pulse,
    remembered until the core can begin), ``busy``, ``done`` (one clock at the end of a step),
    ``step`` (the step counter register) and ``step_moved`` (``step`` was written at the last
    clock edge).

    ``small_ram_style`` (``None``, ``"block"``, ``"distributed"`` or ``"logic"``) is given to
    synthesis as the ``ram_style`` of the per-neuron and per-axon memories (state, params,
    post traces, axons, input bitmap, post list; with ``synapse_memory`` ``"dp16kd"`` the state
    and parameter words are ``DP16KD`` instances instead): on the ECP5-85F preset they must go
    to LUT RAM for the synapses to have 192 of the 208 block RAMs (and LUT RAM read data comes
    from a flip-flop, not from a block RAM's slow output, on the paths into the multipliers).

    ``synapse_memory`` picks the synapse lane memory: ``"block"`` (``LaneMemory``, block RAM,
    dual port), ``"spram"`` (``SpramLaneMemory``, iCE40 UltraPlus SPRAM, single port: with
    ``learn`` set, delivery and potentiation read on two clocks of four and write back on the
    other two), ``"dp16kd"`` (``Dp16kdLaneMemory``, ECP5 block RAM instances with their output
    register; the long pipeline only) or ``None``: ``"spram"`` when the platform given to
    ``elaborate`` is an iCE40 UltraPlus and the lanes fit its four SPRAM blocks, ``"dp16kd"``
    on an ECP5 with the long pipeline, else ``"block"``.

    ``update_pipeline``: both have at most one carry chain of the neuron arithmetic between
    registers. ``"long"``: the state and parameter words take two clocks from the address (in
    LUT RAM: banks of 256 words, then the bank select; with ``"dp16kd"``: ``Dp16kdWordMemory``,
    block RAM with its output register), the profile fields and the post traces
    are registered before the multipliers (with two-clock synapse lanes the post traces read
    from an address register, ``y_ra``), the deliverer reads the delay slots a clock after the
    synapse words (from their registered delays; with ``"dp16kd"`` and at least 4 words per
    row the slots are ``Dp16kdLaneMemory`` blocks of 1024 x 18 read in two clocks, and the
    update reads them with the state's address), and memory-port read responses come two
    clocks after the request: for the ECP5's clock speed. ``"short"``: one-clock reads, about
    150 flip-flops fewer: for the iCE40's few logic cells (its block RAM has a registered output
    anyway). ``None``: ``"short"`` on an iCE40 platform, else ``"long"``. Both compute the same
    thing bit for bit.
    """

    def __init__(self, config, *, small_ram_style=None, synapse_memory=None,
                 update_pipeline=None):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        if small_ram_style not in (None, "block", "distributed", "logic"):
            raise ValueError(f"small_ram_style must be None, 'block', 'distributed' or "
                             f"'logic', not {small_ram_style!r}")
        if synapse_memory not in SYNAPSE_MEMORIES:
            raise ValueError(f"synapse_memory must be one of {SYNAPSE_MEMORIES}, not "
                             f"{synapse_memory!r}")
        if update_pipeline not in UPDATE_PIPELINES:
            raise ValueError(f"update_pipeline must be one of {UPDATE_PIPELINES}, not "
                             f"{update_pipeline!r}")
        if synapse_memory == "dp16kd" and update_pipeline == "short":
            raise ValueError("synapse_memory 'dp16kd' reads in two clocks: it needs "
                             "update_pipeline 'long', not 'short'")
        self.small_ram_style = small_ram_style
        self.synapse_memory = synapse_memory
        self.update_pipeline = update_pipeline
        self.config = config
        self.memmap = MemoryMap(config)
        super().__init__(core_ports(config))

    def elaborate(self, platform):  # noqa: C901 - one FSM, read top to bottom
        m = Module()
        c, mm = self.config, self.memmap
        N, A, S, P = c.n_neurons, c.n_axons, c.n_slots, c.n_profiles
        L = mm.lanes
        NW = N // L
        lb, wb, D = _log2(L), _log2(NW), c.delay_bits
        W, plastic = c.weight_bits, c.plastic
        lay = {r: mm[r] for r in Region}

        # -- registers ---------------------------------------------------------------------
        regs = {}
        for name, f in REGISTER_FIELDS(c).items():
            regs[name] = Signal(signed(f.bits) if f.signed else unsigned(f.bits), name=name)
        t = regs["step"]
        m.d.comb += self.step.eq(t)
        # ``step_moved``: ``step`` was written at the last clock edge (the step ended, or the memory
        # port wrote the register), from a flip-flop: what the SoC's copy of ``step``, a clock
        # behind, is about to do, without a 32-bit comparison across the chip (the ULX3S's
        # critical path at 93.75 MHz, seed 6, 11.23 ns: the core's ``step`` -> the comparison
        # -> the output buffer's ``room``)
        m.d.sync += self.step_moved.eq(0)       # set below where ``t`` is written
        t_slot = t[:D]

        # -- memories ----------------------------------------------------------------------
        def mem(name, width, depth, transparent=False, comb_read=False, small=False):
            attrs = ({"ram_style": self.small_ram_style}
                     if small and self.small_ram_style else None)
            m.submodules[name] = mo = memory.Memory(shape=unsigned(width), depth=depth, init=[],
                                                    attrs=attrs)
            wp = mo.write_port()
            if comb_read:
                rp = mo.read_port(domain="comb")
            else:
                rp = mo.read_port(transparent_for=(wp,) if transparent else ())
            return rp, wp

        long = (self.update_pipeline or update_pipeline_for(platform)) == "long"
        kind = self.synapse_memory or synapse_memory_for(c, platform)
        if kind == "dp16kd" and not long:
            kind = "block"      # an ECP5 core with the short pipeline: one-clock reads

        def mem2(name, width, depth, addr_next):
            """The long pipeline's state and parameter memories: read data two clocks after
            the address (held while ``en`` is low), so that no read path runs from an address
            through a whole memory into its user. With ``"dp16kd"`` lanes: ECP5 block RAM
            (``Dp16kdWordMemory``, 1024 x 18 blocks with their output register: the block
            registers ``addr_next`` itself). In LUT RAM (``small_ram_style``
            ``"distributed"`` or ``"logic"``) the memory is cut in banks of 256 words: a bank's
            read into its port register, then the bank select into ``data``. ``data_next`` is
            the value ``data`` loads at the next clock edge (when ``en1``). ``addr_next``: the
            read address of the next clock (the read port has no ``addr``); each bank reads
            from its own register of it, so that no logic and no net to the other banks lies
            between the address's source and the hundreds of LUT RAM cells it drives."""
            rp = _Port(en=Signal(init=1, name=f"{name}_ren"), en1=Signal(name=f"{name}_ren1"),
                       data=Signal(width, name=f"{name}_rdata"),
                       data_next=Signal(width, name=f"{name}_rnext"))
            m.d.sync += rp.en1.eq(rp.en)
            with m.If(rp.en1):
                m.d.sync += rp.data.eq(rp.data_next)
            if kind == "dp16kd":
                # ECP5 block RAM with its output register (``Dp16kdWordMemory``): no LUT RAM
                # cells, no read multiplexer, no address register's net across the chip
                m.submodules[name] = mo = Dp16kdWordMemory(width, depth)
                wp = _Port(addr=mo.w_addr, en=mo.w_en, data=mo.w_data)
                m.d.comb += [mo.addr_next.eq(addr_next), mo.en.eq(rp.en),
                             rp.data_next.eq(mo.q)]
                return rp, wp
            lut = self.small_ram_style in ("distributed", "logic")
            banks = max(depth // 256, 1) if lut else 1
            bb = _log2(depth // banks) if depth // banks > 1 else 0
            wp = _Port(addr=Signal(range(max(depth, 2)), name=f"{name}_waddr"),
                       en=Signal(name=f"{name}_wen"), data=Signal(width, name=f"{name}_wdata"))
            attrs = {"ram_style": self.small_ram_style} if self.small_ram_style else None
            outs, ras = [], []
            for b in range(banks):
                m.submodules[f"{name}{b}" if banks > 1 else name] = mo = memory.Memory(
                    shape=unsigned(width), depth=depth // banks, init=[], attrs=attrs)
                bw, br = mo.write_port(), mo.read_port()
                ra = Signal(range(max(depth, 2)), name=f"{name}_ra{b}", attrs={"keep": 1})
                m.d.sync += ra.eq(addr_next)
                m.d.comb += [bw.addr.eq(wp.addr[:bb]), bw.data.eq(wp.data),
                             bw.en.eq(wp.en & ((wp.addr[bb:] == b) if banks > 1 else 1)),
                             br.addr.eq(ra[:bb]), br.en.eq(rp.en)]
                outs.append(br.data)
                ras.append(ra)
            sel = Signal(range(banks), name=f"{name}_rsel")
            with m.If(rp.en):
                m.d.sync += sel.eq(ras[0][bb:] if banks > 1 else 0)
            m.d.comb += rp.data_next.eq(Array(outs)[sel] if banks > 1 else outs[0])
            return rp, wp

        state_w = 2 * STATE_BITS + 4
        if long:
            # the next clock's read address of the state and parameter memories (below, with
            # the memory port's next request)
            ra_next = Signal(range(max(N, 2)))
            state_rp, state_wp = mem2("state", state_w, N, ra_next)
            param_rp, param_wp = mem2("param", lay[Region.PARAM].width, N, ra_next)
        else:
            state_rp, state_wp = mem("state", state_w, N, small=True)
            param_rp, param_wp = mem("param", lay[Region.PARAM].width, N, small=True)
        prof_rp, prof_wp = mem("profile", lay[Region.PROFILE].width, P, comb_read=True)
        prof2_rp = m.submodules.profile.read_port(domain="comb")
        axon_rp, axon_wp = mem("axon", lay[Region.AXON].width, A, small=True)
        # the list memory: the axons of E_t during DELIVER (the scanner appends, the deliverer
        # takes them in order), then the post list (one entry per lane-wide word holding a
        # spike: the lanes' mask and the word), which is both the spike output and, with
        # learning, the column walk's work list; the phases never overlap, so one memory
        # (one block RAM on the iCE40) holds all three queues. Its top bit (``ext``) is the
        # input bitmap: set by an input event while idle, read and cleared by the scanner in
        # one clock (the read returns the word before the write); an entry is only ever
        # appended below the scanner, where the bitmap has been read already.
        LW = max(c.axon_bits, wb + L, 1)
        lists_rp, lists_wp = mem("lists", LW + 1, max(A, NW), small=True)
        if long:
            # The long pipeline's list memory takes its write a clock late, from registers
            # (``lists_w*``), so that the choice among its writers (an input event, the
            # scanner's clear, the appends) does not run into the LUT RAM cells' write enables
            # (the ULX3S's critical path at 93.75 MHz, seed 5, 11.08 ns). No read misses it: the
            # scanner never reads a word written on the clock before (it clears ``scan_a`` and
            # reads ``scan_a + 1``; appends go below it; input events come before KEY), and
            # the queue reads an entry two clocks after its append at the earliest (``queued``
            # is ``lr != lw`` of the clock before), when the write has landed.
            lists_w = _Port(addr=Signal.like(lists_wp.addr, name="lists_wa"),
                            data=Signal.like(lists_wp.data, name="lists_wd"),
                            en=Signal(name="lists_we"))
            m.d.sync += [lists_wp.addr.eq(lists_w.addr), lists_wp.data.eq(lists_w.data),
                         lists_wp.en.eq(lists_w.en)]
            lists_wp = lists_w
        # The long pipeline's scanner reads the bitmap through a read port of its own (a copy
        # of the LUT RAM on the ECP5), at ``scan_a`` on every clock, and the queue's port reads
        # at ``lr`` (``pe`` in the walk): no decision lies between a register and either
        # port's address (the ULX3S's critical path at 93.75 MHz, 10.69 ns: ``phase_state`` ->
        # ``fetch`` -> the address choice -> the LUT RAM -> its read register). The iCE40's
        # list memory stays one block RAM with one read port.
        scan_rp = m.submodules.lists.read_port() if long else lists_rp
        lane_memory = {"spram": SpramLaneMemory, "dp16kd": Dp16kdLaneMemory}.get(kind,
                                                                                 LaneMemory)
        syn = []
        for j in range(L):
            if lane_memory is Dp16kdLaneMemory:
                lm = Dp16kdLaneMemory(lay[Region.SYNAPSE].width, A * NW, latency=3)
            elif lane_memory is LaneMemory and long:
                lm = LaneMemory(lay[Region.SYNAPSE].width, A * NW, latency=2)
            else:
                lm = lane_memory(lay[Region.SYNAPSE].width, A * NW)
            m.submodules[f"syn{j}"] = lm
            syn.append(lm)
        # the long pipeline's block RAM lanes take two clocks to read (``LaneMemory``), the
        # ECP5's ``DP16KD`` lanes three (their bank select registered): the deliverer and the
        # column walk then have ``xl`` more stages between the read and the stage that takes
        # the words (``d0``, ``p0``; ``d0b``, ``p0b`` with three), and the write-back comes
        # ``_WB + xl`` clocks after the read (single-port memories always have ``xl = 0``)
        xl = syn[0].latency - 1
        assert not (xl and lane_memory.single_port)
        # A single-port lane memory never reads and writes in one clock: with learning on,
        # the deliverer and the column walk read only on phases 0 .. WB-1 of a free-running
        # counter modulo 2 WB; their write-backs come WB clocks later, on phases WB .. 2 WB-1.
        phase = Signal(range(2 * _WB))
        m.d.sync += phase.eq(Mux(phase == 2 * _WB - 1, 0, phase + 1))
        read_ok = Signal()
        if plastic and lane_memory.single_port:
            m.d.comb += read_ok.eq(~regs["learn"] | (phase < _WB))
        else:
            m.d.comb += read_ok.eq(1)
        slot_rp, slot_wp, y_rp, y_wp = [], [], [], []
        # With the ECP5's block RAM instances the delay slots are ``DP16KD`` of 1024 x 18 with
        # the output register too (``slot2``): a two-clock read, so that the slot adder starts
        # from a register, not from the block's 5.8 ns read latch. The deliverer then writes a
        # slot word back three clocks after reading it; the next read of that word comes at
        # least ``NW`` reads later (the next event, same word), hence ``NW >= 4``.
        slot2 = kind == "dp16kd" and NW >= 4
        for j in range(L):
            if slot2:
                m.submodules[f"slot{j}"] = sm = Dp16kdLaneMemory(c.slot_bits, S * NW, shape=18)
                rp = _Port(addr=sm.r_addr, en=sm.r_en, data=sm.r_data)
                wp = _Port(addr=sm.w_addr, en=sm.w_en, data=sm.w_data)
            else:
                # transparent only with one word per row: only then can the deliverer read a
                # slot word the clock it is written (the next event's hit on the same word);
                # the bypass logic would sit on the address path of every slot read
                rp, wp = mem(f"slot{j}", c.slot_bits, S * NW, transparent=NW == 1)
            slot_rp.append(rp)
            slot_wp.append(wp)
            if plastic:
                rp, wp = mem(f"y{j}", TRACE_BITS, NW, small=True)
                if long:
                    # The long pipeline's post traces take their write a clock late, from
                    # registers, as the list memory does, so that the update's neuron
                    # (``u4_n``) and the port's choice do not run into the LUT RAM cells'
                    # write-enable decode (the ULX3S's critical path at 100 MHz, 10.58 ns:
                    # ``u4_n`` -> the lane and word decode -> a ``y1`` cell's ``WRE``). No read
                    # misses it: UPDATE reads each word once, before its write; DELIVER and the
                    # walk read traces written in an earlier phase; a port read comes two
                    # clocks after a port write at the earliest (``rsp_pend`` holds ``ready``
                    # low on the clock after a request is taken).
                    yw = _Port(addr=Signal.like(wp.addr, name=f"y_wa{j}"),
                               data=Signal.like(wp.data, name=f"y_wd{j}"),
                               en=Signal(name=f"y_we{j}"))
                    m.d.sync += [wp.addr.eq(yw.addr), wp.data.eq(yw.data), wp.en.eq(yw.en)]
                    wp = yw
                y_rp.append(rp)
                y_wp.append(wp)

        syn_f = [_fields(lay[Region.SYNAPSE], s.r_data) for s in syn]
        axon_f = _fields(lay[Region.AXON], axon_rp.data)

        def syn_word(weight, delay, mask):
            parts = [weight[:W]]
            if D:
                parts.append(delay[:D])
            if plastic:
                parts.append(mask)
            return Cat(*parts)

        # -- PRNG keys ---------------------------------------------------------------------
        # one mixer for the keys (KEY) and the generator draws (the scanner, DELIVER), cut in
        # three by two registers (``mix32_pipelined``): its output is the mix of its input of
        # two clocks earlier. The lanes' depression/potentiation numbers have one mixer each,
        # except on single-port synapse memory: there the deliverer draws on at most half the
        # clocks (``read_ok``), so lane 0 shares the key mixer and the scanner draws on the
        # clocks the deliverer leaves (``scan``); a mixer is about 330 logic cells on the iCE40.
        # Every mixer's input is a register (``lane_r``), or one of two (``mix_r0``, ``mix_r1``)
        # chosen by a third (``use_r1``): loaded with the input of the next clock, selected and
        # computed from the next values of the counters (``*_n`` below) one clock ahead, so
        # that no more than a 2:1 multiplexer lies on the mixer's path, after its first adder
        # (``alt``: both inputs are added, ``use_r1`` chooses; before, in front of the group's
        # two adders, it was the ULX3S's critical path at 100 MHz, 11.34 ns). A draw nobody
        # takes is harmless, so only the clocks that take one need the right input.
        share_mixer = plastic and lane_memory.single_port
        key_n = Signal(32)          # the key phase's input of the next clock (``key_sel_n``)
        key_sel_n = Signal()
        mix_r0, mix_r1, use_r1 = Signal(32), Signal(32), Signal()
        lane_r = [Signal(32, name=f"lane_r{j}") for j in range(L if plastic else 0)]
        mix_out = mix32_pipelined(m, mix_r0, "mixkey", alt=mix_r1, use_alt=use_r1)
        if share_mixer:
            lane_out = [mix_out] + [mix32_pipelined(m, lane_r[j], f"mixlane{j}")
                                    for j in range(1, L)]
        else:
            lane_out = [mix32_pipelined(m, lane_r[j], f"mixlane{j}") for j in range(len(lane_r))]
        key_stdp = Signal(32)
        key_gen = Signal(32)

        # -- control -----------------------------------------------------------------------
        # ``idle``: the phase FSM is in IDLE, as a flip-flop of its own (set and cleared with
        # the FSM's two transitions) rather than a decode of the state: it gates the input
        # events, the memory port and the state address, and reaches the router and the chip
        idle = Signal(init=1)
        start_latch = Signal()
        go = Signal()
        rsp_valid = Signal()
        rsp_pend = Signal()     # the long pipeline: a read's response comes a clock later
        m.d.comb += go.eq(self.start | start_latch)
        with m.If(self.start):      # remembered until taken (cleared in IDLE below)
            m.d.sync += start_latch.eq(1)

        # scanner / deliverer / update / potentiation state
        scan_a = Signal(range(A + 1))
        s1_valid, s1_a = Signal(), Signal(range(A))
        s2_valid, s2_a, s2_ext = Signal(), Signal(range(A)), Signal()
        s3_valid, s3_a, s3_ext = Signal(), Signal(range(A)), Signal()
        s3_gen_prob = Signal.like(axon_f["gen_prob"])
        # stage 4 acts on stage 3's decisions, registered: the append (``s4_fire``), the list
        # memory's ports it takes from stage 0, and the pre-trace write-back
        s4_valid, s4_a, s4_fire = Signal(), Signal(range(A)), Signal()
        s4_gen_prob = Signal.like(axon_f["gen_prob"])
        s4_xd = Signal(TRACE_BITS + 1)
        gen_r = Signal(32)
        dw = Signal(range(NW))
        cur_valid, cur_a = Signal(), Signal(range(A))
        d0_valid, d0_w, d0_a = Signal(), Signal(range(NW)), Signal(range(A))
        d0b_valid, d0b_w, d0b_a = Signal(), Signal(range(NW)), Signal(range(A))   # xl == 2
        d1_valid, d1_w, d1_a = Signal(), Signal(range(NW)), Signal(range(A))
        d2_valid, d2_synaddr = Signal(), Signal(range(A * NW))
        d2_weight = [Signal(signed(W), name=f"d2_w{j}") for j in range(L)]
        d2_delay = [Signal(max(D, 1), name=f"d2_d{j}") for j in range(L)]
        d2_mask = [Signal(name=f"d2_m{j}") for j in range(L)]
        d2_yd = [Signal(TRACE_BITS, name=f"d2_yd{j}") for j in range(L)]
        # the slot accumulators' write-back stage (``sw``), the clock after their read: stage 3
        # with the long pipeline, which reads the slots at stage 2 from the registered delays
        # (no path from the synapse block RAM's output into the slot block RAM's address);
        # stage 2 with the short one, which reads them at stage 1 (and shares ``d2_*``)
        sw_addr = [Signal(range(S * NW), name=f"sw_sa{j}") for j in range(L)]
        if long:
            sw_valid = Signal(name="sw_valid")
            sw_weight = [Signal(signed(W), name=f"sw_w{j}") for j in range(L)]
        else:
            sw_valid, sw_weight = d2_valid, d2_weight
        # ``slot2``: the clock between the read and ``sw`` (the block's output register)
        sv_valid = Signal(name="sv_valid")
        sv_addr = [Signal(range(S * NW), name=f"sv_sa{j}") for j in range(L)]
        sv_weight = [Signal(signed(W), name=f"sv_w{j}") for j in range(L)]
        # the learning write-back stage, shared by the deliverer (depression) and the column
        # walk (potentiation), which never run together
        wb_valid, wb_addr, wb_neg = Signal(), Signal(range(A * NW)), Signal()
        wb_r = [Signal(22, name=f"wb_r{j}") for j in range(L)]
        wb_prod = [Signal(32, name=f"wb_prod{j}") for j in range(L)]
        wb_weight = [Signal(signed(W), name=f"wb_w{j}") for j in range(L)]
        wb_delay = [Signal(max(D, 1), name=f"wb_d{j}") for j in range(L)]
        wb_mask = [Signal(name=f"wb_m{j}") for j in range(L)]
        wb_en = [Signal(name=f"wb_en{j}") for j in range(L)]
        wd_valid, wd_addr, wd_neg = Signal(), Signal(range(A * NW)), Signal()
        wd_delta = [Signal(11, name=f"wd_delta{j}") for j in range(L)]
        wd_weight = [Signal(signed(W), name=f"wd_w{j}") for j in range(L)]
        wd_delay = [Signal(max(D, 1), name=f"wd_d{j}") for j in range(L)]
        wd_mask = [Signal(name=f"wd_m{j}") for j in range(L)]
        wd_en = [Signal(name=f"wd_en{j}") for j in range(L)]
        # the long pipeline's clamp bounds against the update, from the weight and the bounds
        # alone (see the write-back stage)
        wd_clo = [Signal(signed(W + 2), name=f"wd_clo{j}") for j in range(L)]
        wd_chi = [Signal(signed(W + 2), name=f"wd_chi{j}") for j in range(L)]

        un = Signal(range(N + 1))
        u0_valid, u0_n = Signal(), Signal(range(N))     # the long pipeline's read stage
        u1_valid, u1_n = Signal(), Signal(range(N))
        u2_valid, u2_n = Signal(), Signal(range(N))
        u2b_valid = Signal()                            # the long pipeline's stage 2b
        u3_valid, u3_n = Signal(), Signal(range(N))
        u4_valid, u4_n = Signal(), Signal(range(N))
        acc = Signal(L)
        # stage 5 appends a lane-wide word's spikes to the post list, a clock after stage 4
        # decided the last of them
        u5_valid, u5_mask, u5_w = Signal(), Signal(L), Signal(wb)
        # the list memory's queue: ``lw`` entries written, ``lr`` read (``fetch``). In DELIVER
        # an entry read (``pend``) goes to the register ``nxt_a``, because the scanner reads the
        # bitmap through the same port, and the deliverer takes it (``take_d``); from UPDATE on
        # (``emitting``) the spike output works from the port's data itself (``head``: it holds
        # entry ``lr - 1``, not yet taken, ``take_s``) and sends a spike per clock.
        lw = Signal(range(max(A, NW) + 1))
        lr = Signal(range(max(A, NW) + 1))
        fetch, pend, head, take_d, take_s = Signal(), Signal(), Signal(), Signal(), Signal()
        queued = Signal()
        m.d.sync += queued.eq(lr != lw)
        nxt_valid, nxt_a = Signal(), Signal(range(A))
        emitting = Signal()
        drained = Signal()
        m.d.comb += drained.eq((lr == lw) & ~head & ~pend & ~nxt_valid)
        m.d.comb += lists_rp.en.eq(0)       # the head is held until taken (``en`` is 1 by default)
        fire = Signal()                     # the scanner's stage 3 decides an event
        fetch_d = Signal()                  # ``fetch`` in DELIVER
        scan = Signal()                     # the scanner's stage 0 (in DELIVER)

        pe = Signal(range(NW + 1))
        walking = Signal(name="walking")    # from POT_FETCH to POT_DRAIN (the column walk)
        pa = Signal(range(A + 1))
        cur_w, cur_mask = Signal(range(NW)), Signal(L)
        p0_valid, p0_addr, p0_mask = Signal(), Signal(range(A * NW)), Signal(L)
        p0_pa = Signal(range(A))
        p0b_valid, p0b_addr, p0b_mask = Signal(), Signal(range(A * NW)), Signal(L)   # xl == 2
        p0b_pa = Signal(range(A))
        p1_valid, p1_addr, p1_mask = Signal(), Signal(range(A * NW)), Signal(L)
        p2_valid, p2_addr, p2_mask = Signal(), Signal(range(A * NW)), Signal(L)
        p2_weight = [Signal(signed(W), name=f"p2_w{j}") for j in range(L)]
        p2_delay = [Signal(max(D, 1), name=f"p2_d{j}") for j in range(L)]
        p2_smask = [Signal(name=f"p2_m{j}") for j in range(L)]

        # -- shared multipliers (DSP blocks are few on the iCE40): per lane, y * alpha_y serves
        # the deliverer (depression, stage 1) and the update (stage 1), which never overlap;
        # x * (alpha_x or a_plus) serves the scanner (stage 2) and the column walk (stage 1)
        # The long pipeline takes the post traces a clock early and registers their products
        # (``yprod``: the product of the word the port gave a clock earlier, as ``y_q``, the
        # memory port's copy of that word; ``alpha_y`` moves only between steps): both users
        # read the traces a clock ahead (the deliverer at ``dw_n``, the update with the state
        # word), so that neither takes a clock longer, and no path runs from a register across
        # a DSP block into the lane multiplexer after it (the ULX3S's critical path at 90 MHz,
        # 11.04 ns: ``alpha_y`` -> a 2.6 ns route -> the multiplier, 3.9 ns -> the update's
        # lane choice -> ``u2_py``).
        yprod = [Signal(32, name=f"yprod{j}") for j in range(L if plastic else 0)]
        y_op = [y_rp[j].data for j in range(len(yprod))]
        for j in range(len(yprod)):
            if long:
                y_op[j] = Signal(TRACE_BITS, name=f"y_q{j}")
                m.d.sync += [y_op[j].eq(y_rp[j].data),
                             yprod[j].eq(y_rp[j].data * regs["alpha_y"])]
            else:
                m.d.comb += yprod[j].eq(y_op[j] * regs["alpha_y"])
        xprod = Signal(32)
        xprod_r = Signal(32)      # registered: used by scanner stage 3 and walk stage 2
        if plastic:
            m.d.comb += xprod.eq(axon_f["x"] * Mux(p1_valid, regs["a_plus"], regs["alpha_x"]))
            m.d.sync += xprod_r.eq(xprod)

        # the next values of the counters the mixers' inputs are made of (the FSM below assigns
        # them; they hold by default)
        scan_a_n, dw_n, cur_a_n = Signal.like(scan_a), Signal.like(dw), Signal.like(cur_a)
        cur_valid_n, pa_n, cur_w_n = Signal(), Signal.like(pa), Signal.like(cur_w)
        un_n = Signal.like(un)
        nexts = [(scan_a, scan_a_n), (dw, dw_n), (cur_a, cur_a_n), (cur_valid, cur_valid_n),
                 (pa, pa_n), (cur_w, cur_w_n), (un, un_n)]
        m.d.comb += [n_.eq(r_) for r_, n_ in nexts]
        m.d.sync += [r_.eq(n_) for r_, n_ in nexts]

        # The long pipeline's state and parameter memories (block RAM or LUT RAM: hundreds of
        # cells on each address bit) read at the update's ``un``, or the memory port's neuron
        # (``mp_n``) on the clock after the port took a read (``mp_rd``); each bank holds that
        # address in its own register, loaded with the next clock's choice (``ra_next``), so
        # the multiplexer lies before the register; the FSM's decisions reach only the read
        # enables
        mp_rd, mp_n = Signal(), Signal(range(max(N, 2)))
        mp_rd_n, mp_n_n = Signal(), Signal(range(max(N, 2)))    # their next values
        mp_a_n = Signal(range(max(A, 2)))       # the axon of the port's request, as taken
        mp_s_n = Signal(range(max(S * NW, 2)))  # its slot word, as taken
        syn_ra = Signal(range(max(A * NW, 2)), name="syn_ra") if xl else None
        if long:
            # the port's request address while IDLE (taken or not: the read enable decides),
            # ``un_n`` (0 outside UPDATE) otherwise: the request's handshake (across the chip)
            # stays off the path into the memories' address (the ULX3S's critical path at
            # 100 MHz once ``un`` was 0 outside UPDATE, 12.03 ns: the chip's ``outstanding``
            # -> ``ready`` -> ``mp_rd_n`` -> ``ra_next`` -> a 3.5 ns route to a DP16KD)
            m.d.comb += ra_next.eq(Mux(idle, mp_n_n, un_n))
        # The post traces (LUT RAM on the ECP5, spread over the die) read from an address
        # register too, with two-clock lanes: ``y_ra`` is ``dw`` in DELIVER, ``un``'s word in
        # UPDATE (from the clock that enters it) and the memory port's word while IDLE (taken
        # or not, as ``ra_next``: the request's handshake, ``mp_rd_n``, was the ULX3S's
        # critical path at 90 MHz, 10.77 ns: ``outstanding`` -> ``ready`` -> ``mp_rd_n`` ->
        # ``y_an`` -> ``y_ra``), so that no FSM decision lies between a register and the cells
        y_reg = plastic and long and bool(xl)
        y_ra, y_an = Signal.like(dw, name="y_ra"), Signal.like(dw, name="y_an")
        if y_reg:
            m.d.sync += y_ra.eq(y_an)
            # a three-clock synapse read takes the traces a clock later: this clock's ``dw``
            m.d.comb += y_an.eq(Mux(idle, mp_n_n[lb:lb + wb], dw if xl == 2 else dw_n))
            for j in range(L):
                m.d.comb += y_rp[j].addr.eq(y_ra)

        m.d.sync += (p0_valid if xl else p1_valid).eq(0)
        with m.FSM(name="phase") as fsm:
            with m.State("IDLE"):
                with m.If(go & ~rsp_valid & ~rsp_pend):
                    m.d.sync += [start_latch.eq(0), idle.eq(0)]
                    m.d.comb += [key_n.eq(t), key_sel_n.eq(1)]
                    m.next = "KEY0"
            # ``mix_r0`` holds the ``key_n`` of the clock before; the mixer's output belongs to
            # its input of two clocks earlier
            with m.State("KEY0"):
                m.next = "KEY1"
            with m.State("KEY1"):
                m.next = "KEY2"
            with m.State("KEY2"):
                m.d.sync += key_gen.eq(mix_out)      # mix32(t), until KEY6
                m.next = "KEY3"
            with m.State("KEY3"):
                m.d.comb += [key_n.eq(regs["gen_seed"] ^ key_gen), key_sel_n.eq(1)]
                m.next = "KEY4"
            with m.State("KEY4"):
                if plastic:
                    m.d.comb += [key_n.eq(regs["stdp_seed"] ^ key_gen), key_sel_n.eq(1)]
                m.next = "KEY5"
            with m.State("KEY5"):
                m.next = "KEY6"
            with m.State("KEY6"):
                m.d.sync += key_gen.eq(mix_out)
                m.d.comb += [scan_a_n.eq(0), dw_n.eq(0)]
                m.next = "KEY7"
            # KEY7 selects the first generator draw (from the final ``key_gen``)
            with m.State("KEY7"):
                if plastic:
                    m.d.sync += key_stdp.eq(mix_out)
                m.next = "DELIVER"
            with m.State("DELIVER"):
                last_word = dw == NW - 1
                issue = Signal()
                m.d.comb += issue.eq(cur_valid & read_ok)
                # scanner, stage 0: read and clear the bitmap bit, draw the generator number;
                # on clocks where the list memory's ports are free (no entry read or appended)
                busy_ports = fetch_d | (s4_valid & s4_fire)
                if share_mixer:
                    busy_ports |= issue & regs["learn"]
                m.d.comb += scan.eq((scan_a < A) & ~busy_ports)
                # the read address does not wait for ``scan`` (which waits for stage 4's
                # append): ``scan_a`` unless ``fetch`` (below), only the enable is ``scan``'s
                m.d.comb += scan_rp.addr.eq(scan_a)
                with m.If(scan):
                    m.d.comb += [scan_rp.en.eq(1),
                                 lists_wp.addr.eq(scan_a), lists_wp.data.eq(0), lists_wp.en.eq(1)]
                    m.d.comb += scan_a_n.eq(scan_a + 1)
                    m.d.sync += s1_a.eq(scan_a)
                m.d.sync += s1_valid.eq(scan)
                # deliverer: take the next event axon (read ahead into ``nxt_a``) into
                # ``cur_a``, then, stage 0, read the synapse words (and post traces)
                with m.If(nxt_valid & (~cur_valid | (last_word & issue))):
                    m.d.comb += take_d.eq(1)
                    m.d.comb += [cur_a_n.eq(nxt_a), cur_valid_n.eq(1)]
                with m.Elif(last_word & issue):
                    m.d.comb += cur_valid_n.eq(0)
                a = cur_a[:c.axon_bits]
                with m.If(issue):
                    for j in range(L):
                        if not xl:
                            m.d.comb += [syn[j].r_addr.eq(Cat(dw[:wb], a)), syn[j].r_en.eq(1)]
                        if plastic and not long:
                            m.d.comb += [y_rp[j].addr.eq(dw), y_rp[j].en.eq(1)]
                    m.d.sync += [(d0_w if xl else d1_w).eq(dw), (d0_a if xl else d1_a).eq(a)]
                    m.d.comb += dw_n.eq(Mux(last_word, 0, dw + 1))
                # the long pipeline's post traces: the word ``y_q`` takes at stage 1, read on
                # every clock: that of the next clock's ``dw`` (of this clock's with a two-clock
                # synapse read; the first clock of DELIVER never issues: ``cur_valid`` is clear)
                if plastic and long:
                    for j in range(L):
                        m.d.comb += y_rp[j].en.eq(1)
                        if not y_reg:
                            m.d.comb += y_rp[j].addr.eq(dw_n)
                m.d.sync += (d0_valid if xl else d1_valid).eq(issue)
                with m.If((scan_a == A) & ~s1_valid & ~s2_valid & ~s3_valid & ~s4_valid
                          & drained
                          & ~cur_valid & ~d0_valid & ~d0b_valid & ~d1_valid & ~d2_valid
                          & ~sv_valid
                          & ~sw_valid
                          & ~wb_valid & ~wd_valid):
                    # ``y_an`` is ``dw_n`` here, 0 (``un``'s word at UPDATE's first clock):
                    # ``dw`` returns to 0 with an axon's last word, ``cur_valid`` is clear, and
                    # the port takes no read outside IDLE; so this decision (the drain
                    # conditions, ``lw``) does not reach ``y_ra`` (the ULX3S's critical path
                    # at 90 MHz, 11.05 ns: ``lw`` -> ``drained`` -> here -> ``y_ra``)
                    m.d.sync += [lw.eq(0), lr.eq(0), emitting.eq(1)]
                    m.next = "UPDATE"
            with m.State("UPDATE"):
                with m.If(un < N):
                    m.d.comb += [state_rp.en.eq(1), param_rp.en.eq(1)]
                    if slot2:       # two clocks ahead of ``u1``, with the state's address
                        for j in range(L):
                            m.d.comb += [slot_rp[j].addr.eq(Cat(un[lb:lb + wb], t_slot)),
                                         slot_rp[j].en.eq(1)]
                    if not long:
                        m.d.comb += [state_rp.addr.eq(un), param_rp.addr.eq(un)]
                        for j in range(L):
                            m.d.comb += [slot_rp[j].addr.eq(Cat(un[lb:lb + wb], t_slot)),
                                         slot_rp[j].en.eq(1)]
                            if plastic:
                                m.d.comb += [y_rp[j].addr.eq(un[lb:lb + wb]), y_rp[j].en.eq(1)]
                    m.d.sync += (u0_n if long else u1_n).eq(un)
                    m.d.comb += un_n.eq(un + 1)
                m.d.sync += (u0_valid if long else u1_valid).eq(un < N)
                # the long pipeline's post traces: read with the state word (ahead of ``y_q``),
                # on every clock (no ``un < N`` on the path into the trace memories' address)
                if plastic and long:
                    for j in range(L):
                        m.d.comb += y_rp[j].en.eq(1)
                        if not y_reg:
                            m.d.comb += y_rp[j].addr.eq(un[lb:lb + wb])
                    if y_reg:
                        m.d.comb += y_an.eq(un_n[lb:lb + wb])
                with m.If((un == N) & ~u0_valid & ~u1_valid & ~u2_valid & ~u2b_valid
                          & ~u3_valid
                          & ~u4_valid & ~u5_valid):
                    m.d.sync += pe.eq(0)
                    if plastic:
                        # the walk reads the list memory once the spike output has drained it
                        with m.If(regs["learn"] & (lw != 0)):
                            with m.If(drained):
                                m.d.sync += walking.eq(1)
                                m.next = "POT_FETCH"
                        with m.Else():
                            m.next = "EMIT"
                    else:
                        m.next = "EMIT"
            if plastic:
                with m.State("POT_FETCH"):
                    m.d.comb += [lists_rp.addr.eq(pe), lists_rp.en.eq(1)]
                    m.next = "POT_LATCH"
                with m.State("POT_LATCH"):
                    m.d.sync += [cur_mask.eq(lists_rp.data[:L]), pe.eq(pe + 1)]
                    m.d.comb += [cur_w_n.eq(lists_rp.data[L:L + wb]), pa_n.eq(0)]
                    m.next = "POT_WALK"
                with m.State("POT_WALK"):
                    with m.If(read_ok):
                        if not xl:
                            for j in range(L):
                                m.d.comb += [syn[j].r_addr.eq(Cat(cur_w[:wb], pa[:c.axon_bits])),
                                             syn[j].r_en.eq(1)]
                        if xl:
                            m.d.sync += [p0_addr.eq(Cat(cur_w[:wb], pa[:c.axon_bits])),
                                         p0_mask.eq(cur_mask), p0_pa.eq(pa), p0_valid.eq(1)]
                        else:
                            m.d.comb += [axon_rp.addr.eq(pa), axon_rp.en.eq(1)]
                            m.d.sync += [p1_addr.eq(Cat(cur_w[:wb], pa[:c.axon_bits])),
                                         p1_mask.eq(cur_mask), p1_valid.eq(1)]
                        m.d.comb += pa_n.eq(pa + 1)
                        with m.If(pa == A - 1):
                            with m.If(pe == lw):
                                m.next = "POT_DRAIN"
                            with m.Else():
                                m.next = "POT_FETCH"
                with m.State("POT_DRAIN"):
                    with m.If(~p0_valid & ~p0b_valid & ~p1_valid & ~p2_valid & ~wb_valid
                              & ~wd_valid):
                        m.d.sync += walking.eq(0)
                        m.next = "EMIT"
            with m.State("EMIT"):
                with m.If(drained):
                    m.d.sync += [t.eq(t + 1), self.step_moved.eq(1), lw.eq(0), lr.eq(0),
                                 emitting.eq(0)]
                    m.d.comb += self.done.eq(1)
                    m.d.sync += idle.eq(1)
                    m.next = "IDLE"
        m.d.comb += self.busy.eq(~idle)
        # The axon table (LUT RAM on the ECP5) reads from an address register too, loaded with
        # the next clock's reader's address, chosen by the phase alone: the scanner's next
        # stage-1 axon in DELIVER (``scan_a``: read if ``scan``), the walk's next stage-0 axon
        # in POT_WALK (``pa``: read if ``read_ok``), the port's request in IDLE (read the
        # clock after it is taken); so no register's net runs through the address multiplexer
        # into the cells (the ULX3S's critical path at 90 MHz, seed 2, 11.47 ns). Below, after
        # the memory port, the address is ``axon_ra`` whoever reads.
        ax_reg = long and bool(xl)
        if ax_reg:
            axon_ra = Signal(range(max(A, 2)), name="axon_ra")
            axon_an = Mux(fsm.ongoing("DELIVER"), scan_a[:c.axon_bits], mp_a_n)
            if plastic and xl == 2:     # the walk reads it at stage 0b: ``p0``'s axon
                axon_an = Mux(p0_valid, p0_pa, axon_an)
            elif plastic:
                axon_an = Mux(fsm.ongoing("POT_WALK"), pa[:c.axon_bits], axon_an)
            m.d.sync += axon_ra.eq(axon_an)
        # ``un`` is 0 outside UPDATE: the update's first read address is there before it
        # starts, and no decision to start it lies on the path into the state and parameter
        # memories' address (the ULX3S's critical path at 100 MHz, 13.18 ns: the deliverer's
        # drain conditions -> ``un_n`` -> ``ra_next`` -> a 4.2 ns route to a DP16KD)
        with m.If(~fsm.ongoing("UPDATE")):
            m.d.comb += un_n.eq(0)

        # -- the mixers' inputs of the next clock, registered ---------------------------------
        # the scanner's draw (DELIVER, on the clocks ``scan``: the axon ``scan_a`` or, after a
        # clock that scanned, ``scan_a + 1``, both ready in ``mix_r0`` and ``mix_r1``, so that
        # the deep condition ``scan`` only feeds the flip-flop ``use_r1``); the lanes'
        # depression draws (DELIVER, taken on the clocks ``issue`` with learning) or
        # potentiation draws (the walk, from POT_LATCH on); with a shared mixer, lane 0 has it
        # exactly on the clocks ``issue & learn`` (the scanner waits then) and throughout the walk
        gen_n = key_gen ^ rand_word(2, scan_a[:c.axon_bits], 0)
        gen1_n = key_gen ^ rand_word(2, (scan_a + 1)[:c.axon_bits], 0)
        # With a two-clock synapse read (``xl``) the lanes' numbers are wanted a clock later:
        # their inputs are made of the counters' present values instead
        walk_n = Signal()
        # the next clock is one of the walk's (its counters' next values are the walk's)
        walk_next = fsm.ongoing("POT_LATCH") | fsm.ongoing("POT_WALK") if plastic else 0
        # (two clocks later with a three-clock read: the addresses of stage 0, ``p0`` and ``d0``)
        if plastic and xl == 2:
            m.d.comb += walk_n.eq(p0_valid)
        elif plastic:
            m.d.comb += walk_n.eq(fsm.ongoing("POT_WALK") if xl else walk_next)
        if xl == 2:
            l_pa, l_cw, l_ca, l_dw = p0_pa, p0_addr[:wb], d0_a, d0_w
        elif xl:
            l_pa, l_cw, l_ca, l_dw = pa, cur_w, cur_a, dw
        else:
            l_pa, l_cw, l_ca, l_dw = pa_n, cur_w_n, cur_a_n, dw_n
        if xl:
            # the two-clock lanes' read address is a register too (``syn_ra``: 192 block RAMs
            # on the ULX3S take it), loaded with the next clock's address, the deliverer's or
            # the walk's (the memory port's when it takes a read, below); the lanes read on
            # every clock: their users take a word exactly two clocks after its address
            m.d.sync += syn_ra.eq(Mux(walk_next, Cat(cur_w_n[:wb], pa_n[:c.axon_bits]),
                                      Cat(dw_n[:wb], cur_a_n[:c.axon_bits])))
            for j in range(L):
                m.d.comb += [syn[j].r_addr.eq(syn_ra), syn[j].r_en.eq(1)]
        lane_n = []
        for j in range(len(lane_r)):
            lane_n.append(Mux(walk_n,
                              key_stdp ^ rand_word(1, l_pa[:c.axon_bits],
                                                   Cat(Const(j, lb), l_cw[:wb])),
                              key_stdp ^ rand_word(0, l_ca[:c.axon_bits],
                                                   Cat(Const(j, lb), l_dw[:wb]))))
            if not (share_mixer and j == 0):
                m.d.sync += lane_r[j].eq(lane_n[j])
        if share_mixer:
            phase_n = Mux(phase == 2 * _WB - 1, 0, phase + 1)
            lane_sel_n = (regs["learn"] & cur_valid_n & (phase_n < _WB)) | walk_n
            m.d.sync += mix_r0.eq(Mux(key_sel_n, key_n, Mux(lane_sel_n, lane_n[0], gen_n)))
        else:
            lane_sel_n = Const(0)
            m.d.sync += mix_r0.eq(Mux(key_sel_n, key_n, gen_n))
        m.d.sync += [mix_r1.eq(gen1_n), use_r1.eq(scan & ~key_sel_n & ~lane_sel_n)]

        # -- the list memory's queue: read the next entry when its place is free or taken ----
        with m.If(emitting):
            # the next entry is read once the head is taken (a clock later than the spike
            # output could take it): the output's ``ready`` comes from the router, across the
            # chip, and must not reach the list memory's read address
            m.d.comb += fetch.eq(queued & ~head)
            m.d.sync += head.eq(fetch | (head & ~take_s))
        with m.Else():
            m.d.comb += fetch.eq(fetch_d)
        # In DELIVER an entry is read only into an empty ``nxt_a`` (not on the clock the
        # deliverer takes it: an axon lasts ``NW`` clocks, the refill two). ``queued`` is
        # ``lr != lw`` of the clock before: the clock after a read has ``pend`` (or ``head``),
        # and ``lw`` only grows, so the late value never reads an entry not yet written. So
        # ``fetch`` is one LUT of registers, on the way to the scanner's ``scan`` and the list
        # memory's read address (the ULX3S's critical path ran from ``dw`` through ``take_d``,
        # then from the router's ``ready`` through ``take_s``)
        m.d.comb += fetch_d.eq(queued & ~pend & ~nxt_valid)
        m.d.sync += pend.eq(fetch & ~emitting)
        with m.If(fetch):
            m.d.comb += [lists_rp.addr.eq(lr), lists_rp.en.eq(1)]
            m.d.sync += lr.eq(lr + 1)
        if long:
            # the queue's port reads at ``lr`` but in the walk (at ``pe``, from POT_FETCH to
            # POT_DRAIN: the queue is drained then), chosen by the flip-flop ``walking``, not
            # by the FSM's state (the ULX3S's critical path at 100 MHz, 9.99-10.38 ns:
            # ``phase_state`` -> the address choice -> the LUT RAM -> the port's register):
            # ``fetch`` is only its read enable
            m.d.comb += lists_rp.addr.eq(Mux(walking, pe, lr) if plastic else lr)
        with m.If(pend):
            m.d.sync += nxt_a.eq(lists_rp.data[:c.axon_bits])
        m.d.sync += nxt_valid.eq(pend | (nxt_valid & ~take_d))
        # the spike output: the neurons of the head entry's mask, lowest lane first (``sent``:
        # the lanes already sent); the entry is taken with its last spike
        sent = Signal(L)
        rest = lists_rp.data[:L] & ~sent
        lane = Signal(range(L))
        for j in reversed(range(L)):
            with m.If(rest[j]):
                m.d.comb += lane.eq(j)
        last = (rest & ~(Const(1, L) << lane)[:L]) == 0
        m.d.comb += [self.spike_out.valid.eq(emitting & head),
                     self.spike_out.payload.eq(Cat(lane[:lb], lists_rp.data[L:L + wb]))]
        with m.If(self.spike_out.valid & self.spike_out.ready):
            m.d.sync += sent.eq(Mux(last, 0, sent | (Const(1, L) << lane)[:L]))
            m.d.comb += take_s.eq(last)

        # -- scanner, stage 1: second part of the generator draw; read the axon word ----------
        with m.If(s1_valid):
            m.d.comb += [axon_rp.addr.eq(s1_a), axon_rp.en.eq(1)]
            m.d.sync += [s2_a.eq(s1_a), s2_ext.eq(scan_rp.data[LW])]
        m.d.sync += s2_valid.eq(s1_valid)
        # -- scanner, stage 2: third part of the draw; the pre-trace decay product -----------
        with m.If(s2_valid):
            m.d.sync += [gen_r.eq(mix_out), s3_a.eq(s2_a), s3_ext.eq(s2_ext),
                         s3_gen_prob.eq(axon_f["gen_prob"])]
        m.d.sync += s3_valid.eq(s2_valid)

        # -- scanner, stage 3: E_t membership (the generator's comparison), decayed pre trace -
        gen = gen_r[16:] < s3_gen_prob
        m.d.comb += fire.eq(s3_ext | gen)
        with m.If(s3_valid):
            m.d.sync += [s4_a.eq(s3_a), s4_fire.eq(fire), s4_gen_prob.eq(s3_gen_prob)]
            if plastic:
                m.d.sync += s4_xd.eq(_round16(xprod_r))
        m.d.sync += s4_valid.eq(s3_valid)

        # -- scanner, stage 4: append to the list, write the pre trace back -----------------
        with m.If(s4_valid):
            with m.If(s4_fire):
                m.d.comb += [lists_wp.addr.eq(lw), lists_wp.data.eq(s4_a), lists_wp.en.eq(1)]
                m.d.sync += lw.eq(lw + 1)
            if plastic:
                x_new = Mux(s4_fire, Mux(regs["trace_mode"], regs["x_inc"],
                                         _usat(s4_xd + regs["x_inc"], TRACE_BITS)), s4_xd)
                m.d.comb += [axon_wp.addr.eq(s4_a), axon_wp.en.eq(1),
                             axon_wp.data.eq(Cat(x_new[:TRACE_BITS], s4_gen_prob))]

        # -- deliverer, stage 0 (a two-clock synapse read; 0 and 0b with three): the words are
        # on their way ---------------------------------------------------------------------
        if xl == 2:
            with m.If(d0_valid):
                m.d.sync += [d0b_w.eq(d0_w), d0b_a.eq(d0_a)]
            m.d.sync += d0b_valid.eq(d0_valid)
            with m.If(d0b_valid):
                m.d.sync += [d1_w.eq(d0b_w), d1_a.eq(d0b_a)]
            m.d.sync += d1_valid.eq(d0b_valid)
        elif xl:
            with m.If(d0_valid):
                m.d.sync += [d1_w.eq(d0_w), d1_a.eq(d0_a)]
            m.d.sync += d1_valid.eq(d0_valid)

        # -- deliverer, stage 1: the synapse words; decayed post trace -----------------------
        with m.If(d1_valid):
            for j in range(L):
                m.d.sync += d2_weight[j].eq(syn_f[j]["weight"])
                if D:
                    m.d.sync += d2_delay[j].eq(syn_f[j]["delay"])
                if plastic:
                    m.d.sync += [d2_mask[j].eq(syn_f[j]["mask"]),
                                 d2_yd[j].eq(_round16(yprod[j]))]
            m.d.sync += d2_synaddr.eq(Cat(d1_w[:wb], d1_a[:c.axon_bits]))
        m.d.sync += d2_valid.eq(d1_valid)

        # -- deliverer, slot read (stage 2 long, stage 1 short): the delay slots' addresses ---
        if long:
            sr_valid, sr_w, sr_delay = d2_valid, d2_synaddr[:wb], d2_delay
        else:
            sr_valid, sr_w = d1_valid, d1_w[:wb]
            sr_delay = [f["delay"] if D else None for f in syn_f]
        with m.If(sr_valid):
            for j in range(L):
                s = (t_slot + sr_delay[j])[:D] if D else Const(0, 0)
                addr = Cat(sr_w, s)
                m.d.comb += [slot_rp[j].addr.eq(addr), slot_rp[j].en.eq(1)]
                m.d.sync += (sv_addr if slot2 else sw_addr)[j].eq(addr)
                if long:
                    m.d.sync += (sv_weight if slot2 else sw_weight)[j].eq(d2_weight[j])
        if slot2:
            m.d.sync += sv_valid.eq(sr_valid)
            with m.If(sv_valid):
                m.d.sync += [sw_addr[j].eq(sv_addr[j]) for j in range(L)]
                m.d.sync += [sw_weight[j].eq(sv_weight[j]) for j in range(L)]
            m.d.sync += sw_valid.eq(sv_valid)
        elif long:
            m.d.sync += sw_valid.eq(sr_valid)

        # -- deliverer, slot write-back (``sw``, the clock after the read): the slot plus the
        # weight. Back-to-back hits on one slot word (N = L) read it the clock it is written:
        # the slot memories are transparent then ------------------------------------------
        with m.If(sw_valid):
            for j in range(L):
                m.d.comb += [slot_wp[j].addr.eq(sw_addr[j]), slot_wp[j].en.eq(1),
                             slot_wp[j].data.eq(slot_rp[j].data.as_signed() + sw_weight[j])]

        # -- deliverer, stage 2: depression product and random number -------------------------
        if plastic:
            with m.If(d2_valid):
                for j in range(L):
                    m.d.sync += [wb_prod[j].eq(regs["a_minus"] * d2_yd[j]),
                                 wb_r[j].eq(lane_out[j][10:]), wb_weight[j].eq(d2_weight[j]),
                                 wb_delay[j].eq(d2_delay[j]), wb_mask[j].eq(d2_mask[j]),
                                 wb_en[j].eq(regs["learn"] & d2_mask[j])]
                m.d.sync += [wb_addr.eq(d2_synaddr), wb_neg.eq(1)]

        # -- update, stage 0 (the long pipeline): the state and parameter words are on their
        # way (``mem2``); the slot reads (the post trace's word is out, into ``y_q``); the
        # profile of the parameter word that arrives, registered ----------------------------
        if long:
            with m.If(u0_valid):
                if not slot2:
                    for j in range(L):
                        m.d.comb += [slot_rp[j].addr.eq(Cat(u0_n[lb:lb + wb], t_slot)),
                                     slot_rp[j].en.eq(1)]
                m.d.sync += u1_n.eq(u0_n)
            m.d.sync += u1_valid.eq(u0_valid)
            prof_r = Signal(lay[Region.PROFILE].width)
            pnext = _fields(lay[Region.PARAM], param_rp.data_next)["profile"][:_log2(P)]
            m.d.comb += prof_rp.addr.eq(pnext)
            with m.If(param_rp.en1):
                m.d.sync += prof_r.eq(prof_rp.data)

        # -- update, stage 1: operands; the decay products; bias - threshold ----------------
        # The late profile fields (threshold, v_reset, refractory, reset_mode) are read again
        # at the last stage through a second read port (``prof2_rp``) from the profile number
        # carried along: two bits down the pipeline instead of 52.
        st = {"v": state_rp.data[:24].as_signed(), "i": state_rp.data[24:48].as_signed(),
              "ref": state_rp.data[48:52]}
        par = _fields(lay[Region.PARAM], param_rp.data)
        pidx = par["profile"][:_log2(P)]
        if long:
            prof = _fields(lay[Region.PROFILE], prof_r)
        else:
            m.d.comb += prof_rp.addr.eq(pidx)
            prof = _fields(lay[Region.PROFILE], prof_rp.data)
        u1_j = u1_n[:lb]
        u1_slot = Signal(signed(c.slot_bits))
        u1_py = Signal(32)
        for j in range(L):
            with m.If(u1_j == j):
                m.d.comb += u1_slot.eq(slot_rp[j].data)
                if plastic:
                    m.d.comb += u1_py.eq(yprod[j])
        # ``can_fire``: threshold < 2^23 - 1 (see stage 4), decided here, off the last stage
        fwd1 = {"v": st["v"], "ref": st["ref"], "bias": par["bias"], "slot": u1_slot,
                "pidx": pidx, "can_fire": ~prof["threshold"].all()}
        u2 = {name: Signal.like(value, name=f"u2_{name}") for name, value in fwd1.items()}
        # the long pipeline registers the decay's partial products (the ULX3S's critical
        # path at 80 MHz: the profile register -> the multiplier -> the adder that joins the
        # partial products, 11.71 ns) and joins them at stage 2a
        if long:
            pvh, pvl = _mul_alpha_split(st["v"], prof["alpha_v"])
            pih, pil = _mul_alpha_split(st["i"], prof["alpha_i"])
            prods = {"pvh": pvh, "pvl": pvl, "pih": pih, "pil": pil}
        else:
            prods = {"pv": _mul_alpha(st["v"], prof["alpha_v"]),
                     "pi": _mul_alpha(st["i"], prof["alpha_i"])}
        u2p = {k: Signal.like(v, name=f"u2_{k}") for k, v in prods.items()}
        bt = par["bias"] - prof["threshold"]
        # bias - threshold - 1 (~t is -t - 1): stage 4 reads "x - threshold > 0" as the
        # sign of x - threshold - 1, the end of stage 3's carry chain, not a 26-bit OR after it
        bt1 = par["bias"] + ~Cat(prof["threshold"], Const(0, 1)).as_signed()
        u2_py, u2_bt, u2_bt1 = Signal.like(u1_py), Signal.like(bt), Signal.like(bt1)
        with m.If(u1_valid):
            m.d.sync += [u2[k].eq(v) for k, v in fwd1.items()]
            m.d.sync += [u2p[k].eq(v) for k, v in prods.items()]
            m.d.sync += [u2_py.eq(u1_py), u2_bt.eq(bt), u2_bt1.eq(bt1), u2_n.eq(u1_n)]
        m.d.sync += u2_valid.eq(u1_valid)

        # -- update, stage 2: round the products (``_round16`` as the carry in of the adder
        # that follows); integrate the slot into i; decayed v plus bias, and minus threshold --
        u3 = {name: Signal.like(u2[name], name=f"u3_{name}")
              for name in ("v", "ref", "pidx", "can_fire")}
        u3_i = Signal(signed(STATE_BITS))
        u3_vb = Signal(signed(STATE_BITS + 1))      # |decay(v)| < 2^23, |bias| <= 2^23
        u3_vbt = Signal(signed(STATE_BITS + 2))
        u3_vbt1 = Signal(signed(STATE_BITS + 2))
        u3_yd = Signal(TRACE_BITS)
        slot_s = u2["slot"] << regs["weight_exp"]
        yd = {"yd": _high16(u2_py) + u2_py[15]} if plastic else {}
        # what stage 3 takes besides the sums, from stage 2 (or 2b)
        late = {"bias": u2["bias"], "bt": u2_bt, "bt1": u2_bt1, "n": u2_n, **yd,
                **{k: u2[k] for k in u3}}
        if long:
            # The long pipeline splits the current's sum (the slot's shift, then the adder and
            # the saturation: the ULX3S's critical path at 80 MHz before, 12.89 ns). Stage 2a
            # joins the decay's partial products and shifts the slot; stage 2b rounds the
            # products (``_round16`` as the carry in), adds and saturates.
            fwd2 = {"pv": (u2p["pvh"] << _SPLIT) + u2p["pvl"],
                    "pi": (u2p["pih"] << _SPLIT) + u2p["pil"], "slot": slot_s, **late}
            # the products' exact widths (the sums of the parts are a bit wider)
            width = {"pv": len(st["v"]) + 17, "pi": len(st["i"]) + 17}
            u2b = {k: Signal(signed(width[k]) if k in width else v.shape(), name=f"u2b_{k}")
                   for k, v in fwd2.items()}
            with m.If(u2_valid):
                m.d.sync += [u2b[k].eq(v) for k, v in fwd2.items()]
            m.d.sync += u2b_valid.eq(u2_valid)
            pv, pi, late = u2b["pv"], u2b["pi"], u2b
            i_sum = _high16(pi) + u2b["slot"] + pi[15]
            # saturation from the sum's top bits (no comparator's carry chain)
            i_top = i_sum[STATE_BITS - 1:-1]
            i_sat = Mux(~i_sum[-1] & i_top.any(), (1 << (STATE_BITS - 1)) - 1,
                        Mux(i_sum[-1] & ~i_top.all(), -(1 << (STATE_BITS - 1)),
                            i_sum))[:STATE_BITS].as_signed()
            s3_valid_in = u2b_valid
        else:
            pv, pi = u2p["pv"], u2p["pi"]
            i_sat = _sat(_high16(pi) + pi[15] + slot_s, STATE_BITS)
            s3_valid_in = u2_valid
        fwd3 = {"vb": _high16(pv) + late["bias"] + pv[15],
                "vbt": _high16(pv) + late["bt"] + pv[15],
                "vbt1": _high16(pv) + late["bt1"] + pv[15],
                **{k: late[k] for k in ("n", *u3, *yd)}}
        with m.If(s3_valid_in):
            m.d.sync += [u3[k].eq(fwd3[k]) for k in u3]
            m.d.sync += [u3_i.eq(i_sat), u3_vb.eq(fwd3["vb"]), u3_vbt.eq(fwd3["vbt"]),
                         u3_vbt1.eq(fwd3["vbt1"]), u3_n.eq(fwd3["n"])]
            if plastic:
                m.d.sync += u3_yd.eq(fwd3["yd"])
        m.d.sync += u3_valid.eq(s3_valid_in)

        # -- update, stage 3: x = v + i and x - threshold, side by side ------------------------
        d34 = m.d.sync
        u4 = {name: Signal.like(u3[name], name=f"u4_{name}") for name in u3}
        u4_i = Signal(signed(STATE_BITS))
        u4_x = Signal(signed(STATE_BITS + 2))
        u4_dt = Signal(signed(STATE_BITS + 2))
        u4_yd = Signal(TRACE_BITS)
        u4_over = Signal()          # x - threshold > 0
        u4_may = Signal()           # not refractory, and allowed to fire
        u4_yinc = Signal(TRACE_BITS)    # the additive trace's value if the neuron fires
        with m.If(u3_valid):
            d34 += [u4[k].eq(u3[k]) for k in u4]
            d34 += [u4_x.eq(u3_vb + u3_i), u4_dt.eq(u3_vbt + u3_i), u4_i.eq(u3_i),
                    u4_over.eq(~(u3_vbt1 + u3_i)[-1]),
                    u4_may.eq((u3["ref"] == 0) & u3["can_fire"]),
                    u4_yd.eq(u3_yd), u4_n.eq(u3_n)]
            if plastic:
                d34 += u4_yinc.eq(_usat(u3_yd + regs["y_inc"], TRACE_BITS))
        d34 += u4_valid.eq(u3_valid)

        # -- update, stage 4: threshold, reset, refractory; write back ----------------------
        # With v_int = sat24(x) and 0 <= threshold < 2^23: v_int > threshold exactly when
        # x - threshold > 0 and threshold < 2^23 - 1; then v_int - threshold is x - threshold,
        # or 2^23 - 1 - threshold (the bitwise complement of the 23 bits) when x saturated high.
        m.d.comb += prof2_rp.addr.eq(u4["pidx"])
        prof2 = _fields(lay[Region.PROFILE], prof2_rp.data)
        thr = prof2["threshold"]
        top = (1 << (STATE_BITS - 1)) - 1
        x_sign, x_top = u4_x[-1], u4_x[STATE_BITS - 1:-1]     # x_top: above the 24-bit range
        x_hi, x_lo = ~x_sign & x_top.any(), x_sign & ~x_top.all()
        v_int = Mux(x_hi, top, Mux(x_lo, -top - 1, u4_x))[:STATE_BITS].as_signed()
        fires = Signal()
        v_new = Signal(signed(STATE_BITS))
        ref_new = Signal(4)
        m.d.comb += fires.eq(u4_may & u4_over)
        with m.If(u4["ref"] != 0):
            m.d.comb += [v_new.eq(u4["v"]), ref_new.eq(u4["ref"] - 1)]
        with m.Elif(fires):
            m.d.comb += [v_new.eq(Mux(prof2["reset_mode"],
                                      Mux(x_hi, Cat(~thr, Const(0, 1)), u4_dt[:STATE_BITS]),
                                      prof2["v_reset"])),
                         ref_new.eq(prof2["refractory"])]
        with m.Else():
            m.d.comb += [v_new.eq(v_int), ref_new.eq(0)]
        i_new = u4_i
        u4_j, u4_w = u4_n[:lb], u4_n[lb:lb + wb]
        u4_last = u4_j == L - 1             # the word's last lane: its mask is complete
        with m.If(u4_valid):
            m.d.comb += [state_wp.addr.eq(u4_n), state_wp.en.eq(1),
                         state_wp.data.eq(Cat(v_new, i_new, ref_new))]
            if plastic:
                yd = u4_yd
                y_new = Mux(fires, Mux(regs["trace_mode"], regs["y_inc"], u4_yinc), yd)
            for j in range(L):
                with m.If(u4_j == j):
                    m.d.comb += [slot_wp[j].addr.eq(Cat(u4_w, t_slot)), slot_wp[j].en.eq(1),
                                 slot_wp[j].data.eq(0)]
                    if plastic:
                        m.d.comb += [y_wp[j].addr.eq(u4_w), y_wp[j].en.eq(1),
                                     y_wp[j].data.eq(y_new[:TRACE_BITS])]
            word_mask = acc | (fires << u4_j)[:L]
            with m.If(u4_last):
                m.d.sync += [acc.eq(0), u5_mask.eq(word_mask), u5_w.eq(u4_w)]
            with m.Else():
                m.d.sync += acc.eq(word_mask)
        m.d.sync += u5_valid.eq(u4_valid & u4_last)

        # -- update, stage 5: the word's spikes (if any) join the post list ------------------
        with m.If(u5_valid & (u5_mask != 0)):
            m.d.comb += [lists_wp.addr.eq(lw), lists_wp.en.eq(1),
                         lists_wp.data.eq(Cat(u5_mask, u5_w))]
            m.d.sync += lw.eq(lw + 1)

        # -- potentiation, stages 0 (a two-clock synapse read: the axon word's read), 1, 2 ----
        if plastic and xl == 2:     # stage 0b reads the axon word
            with m.If(p0_valid):
                m.d.sync += [p0b_addr.eq(p0_addr), p0b_mask.eq(p0_mask), p0b_pa.eq(p0_pa)]
            m.d.sync += p0b_valid.eq(p0_valid)
            with m.If(p0b_valid):
                m.d.comb += [axon_rp.addr.eq(p0b_pa), axon_rp.en.eq(1)]
                m.d.sync += [p1_addr.eq(p0b_addr), p1_mask.eq(p0b_mask)]
            m.d.sync += p1_valid.eq(p0b_valid)
        elif plastic and xl:
            with m.If(p0_valid):
                m.d.comb += [axon_rp.addr.eq(p0_pa), axon_rp.en.eq(1)]
                m.d.sync += [p1_addr.eq(p0_addr), p1_mask.eq(p0_mask)]
            m.d.sync += p1_valid.eq(p0_valid)
        if plastic:
            # stage 1: the words read; a_plus * x (the shared multiplier, registered)
            with m.If(p1_valid):
                m.d.sync += [p2_addr.eq(p1_addr), p2_mask.eq(p1_mask)]
                for j in range(L):
                    m.d.sync += [p2_weight[j].eq(syn_f[j]["weight"]),
                                 p2_smask[j].eq(syn_f[j]["mask"])]
                    if D:
                        m.d.sync += p2_delay[j].eq(syn_f[j]["delay"])
            m.d.sync += p2_valid.eq(p1_valid)
            # stage 2: the random numbers
            with m.If(p2_valid):
                m.d.sync += [wb_addr.eq(p2_addr), wb_neg.eq(0)]
                for j in range(L):
                    m.d.sync += [wb_prod[j].eq(xprod_r), wb_r[j].eq(lane_out[j][10:]),
                                 wb_weight[j].eq(p2_weight[j]), wb_delay[j].eq(p2_delay[j]),
                                 wb_mask[j].eq(p2_smask[j]),
                                 wb_en[j].eq(p2_mask[j] & p2_smask[j])]
            m.d.sync += wb_valid.eq(d2_valid | p2_valid)
            # deliverer and walk stage 3: the stochastically rounded update
            with m.If(wb_valid):
                m.d.sync += [wd_addr.eq(wb_addr), wd_neg.eq(wb_neg)]
                for j in range(L):
                    m.d.sync += [wd_delta[j].eq((wb_prod[j] + wb_r[j]) >> 22),
                                 wd_weight[j].eq(wb_weight[j]), wd_delay[j].eq(wb_delay[j]),
                                 wd_mask[j].eq(wb_mask[j]), wd_en[j].eq(wb_en[j])]
                    if long:
                        w, lo, hi = wb_weight[j], regs["w_min"], regs["w_max"]
                        m.d.sync += [wd_clo[j].eq(Mux(wb_neg, w - lo + 1, lo - w)),
                                     wd_chi[j].eq(Mux(wb_neg, w - hi, hi - w + 1))]
            m.d.sync += wd_valid.eq(wb_valid)
            # the write-back stage (deliverer and walk stage 4): _WB clocks after the read,
            # w - dep (depression) or w + pot (potentiation), clamped to [w_min, w_max]. The
            # long pipeline compares the update with bounds taken from the weight a clock
            # before (``w + d < lo`` as ``d < lo - w``, ``w - d < lo`` as ``d >= w - lo + 1``,
            # ``> hi`` alike), so that the comparisons run beside the adder instead of after
            # it (the ULX3S's critical path at 93.75 MHz, seed 3, 11.23 ns: ``wd_delta`` -> the
            # adder -> the clamp's comparisons -> the lane's write register)
            with m.If(wd_valid):
                for j in range(L):
                    value = Mux(wd_neg, wd_weight[j] - wd_delta[j], wd_weight[j] + wd_delta[j])
                    if long:
                        under = (wd_delta[j] < wd_clo[j]) ^ wd_neg
                        over = (wd_delta[j] < wd_chi[j]) ^ ~wd_neg
                        w_new = Mux(under, regs["w_min"],
                                    Mux(over, regs["w_max"], value))[:W].as_signed()
                    else:
                        w_new = _clamp(value, regs["w_min"], regs["w_max"], W)
                    m.d.comb += [syn[j].w_addr.eq(wd_addr),
                                 syn[j].w_data.eq(syn_word(w_new, wd_delay[j], wd_mask[j])),
                                 syn[j].w_en.eq(wd_en[j])]

        # the long pipeline's memory port reads the profiles through a port of its own (at
        # ``rsp_index``): the update's port stays at ``pnext``, so no path runs from the
        # parameter block RAM through the update's profile address into the port's response
        # register (false in operation, but the ULX3S's critical path at 90 MHz, 11.85 ns)
        port_prof_rp = m.submodules.profile.read_port(domain="comb") if long else prof_rp
        self._memory_port(m, regs, idle, go, rsp_valid, rsp_pend if long else None, state_rp,
                          state_wp, param_rp, param_wp, port_prof_rp, prof_wp, axon_rp, axon_wp,
                          syn,
                          slot_rp, slot_wp, y_rp, y_wp, y_op, lists_wp, LW, xl,
                          (mp_rd, mp_n, mp_rd_n, mp_n_n, mp_a_n, mp_s_n, syn_ra) if long else None,
                          y_reg,
                          slot2)
        if ax_reg:
            m.d.comb += axon_rp.addr.eq(axon_ra)
        if slot2:
            # The delay slots' blocks read from an address register per lane too, loaded with
            # the next clock's reader's address: the memory port's slot word in IDLE, the
            # deliverer's slot at its stage 1 (read at stage 2), the update's ``un_n`` in
            # UPDATE; the read enables stay where they are. So no FSM decision lies between a
            # register and the blocks' address pins (the ULX3S's critical path at 93.75 MHz,
            # seed 2, 11.06 ns: ``phase_state`` -> ``mq_rd`` -> a slot block's ``ADB``)
            for j in range(L):
                slot_ra = Signal.like(slot_rp[j].addr, name=f"slot_ra{j}")
                d_slot = (t_slot + syn_f[j]["delay"])[:D] if D else Const(0, 0)
                m.d.sync += slot_ra.eq(Mux(idle, mp_s_n,
                                           Mux(d1_valid, Cat(d1_w[:wb], d_slot),
                                               Cat(un_n[lb:lb + wb], t_slot))))
                m.d.comb += slot_rp[j].addr.eq(slot_ra)
        return m

    def _memory_port(self, m, regs, idle, go, rsp_valid, rsp_pend, state_rp, state_wp,
                     param_rp, param_wp, prof_rp, prof_wp, axon_rp, axon_wp, syn, slot_rp,
                     slot_wp, y_rp, y_wp, y_op, lists_wp, ext_bit, xl, mp, y_reg, slot2):
        """The memory access port and the input events: both act only while the core is idle.
        ``y_op``: the post-trace words as the multipliers take them (registered in the long
        pipeline: there the response takes them a clock after the read, at ``p2``). ``xl``:
        the synapse lanes take a clock more to read. ``mp``: the long pipeline's ``(mp_rd,
        mp_n, mp_rd_n, mp_n_n, syn_ra)``, the state and parameter read a clock after the
        request (from registers; ``*_n``: their values at the next clock, for the memories'
        address registers), and the two-clock lanes' address register (``None`` with one-clock
        lanes); its response comes at ``p3``. ``y_reg``: the post traces read from their
        address register (``y_ra``), which took the request's word with ``mp_n_n``. ``slot2``:
        the delay slots take two clocks to read (their word is out at ``p2``)."""
        c, mm = self.config, self.memmap
        L = mm.lanes
        lb, nb, ab, D = _log2(L), c.neuron_bits, c.axon_bits, c.delay_bits
        req, rsp = self.mem_req, self.mem_rsp
        ib = mm.index_bits
        region, index = req.payload.addr[ib:], req.payload.addr[:ib]
        wdata = req.payload.data
        accept = Signal()
        busy_rsp = rsp_pend if rsp_pend is not None else Const(0)
        m.d.comb += [req.ready.eq(idle & ~go & ~busy_rsp & (~rsp_valid | rsp.ready)),
                     accept.eq(req.valid & req.ready)]
        rd = accept & ~req.payload.write
        wr = accept & req.payload.write
        q_busy = Const(0)
        mp_rd, mp_n, mp_rd_n, mp_n_n, mp_a_n, mp_s_n, syn_ra = (mp if mp is not None
                                                                else (None,) * 7)
        if syn_ra is not None:
            # the two-clock lanes' address register takes the request's address (read at ``q``)
            with m.If(accept):
                m.d.sync += syn_ra.eq(Cat(index[lb:nb], index[nb:][:ab]))
        if mp is not None:
            # the long pipeline acts on a request the clock after taking it, from registers
            # (``q``): no path from the request's source (the link, across the chip) or from the
            # core's FSM (``ready``) into a memory's address, write enable or data
            q_rd, q_wr = Signal(name="mq_rd"), Signal(name="mq_wr")
            q_region, q_index = Signal(len(region), name="mq_region"), Signal(ib, name="mq_index")
            q_data = Signal(len(wdata), name="mq_data")
            m.d.sync += [q_rd.eq(rd), q_wr.eq(wr)]
            with m.If(accept):
                m.d.sync += [q_region.eq(region), q_index.eq(index), q_data.eq(wdata)]
            m.d.comb += [mp_rd_n.eq(rd), mp_n_n.eq(index[:nb]), mp_a_n.eq(index[:ab]),
                         mp_s_n.eq(Cat(index[lb:nb], index[nb:][:D]))]
            # a write's region and lane are decoded as it is taken, so that each memory's
            # write enable comes from a flip-flop (the ULX3S's critical path at 93.75 MHz,
            # 10.97 ns: ``mq_region`` -> the NEURON decode -> a post-trace LUT RAM's write
            # enable decode)
            q_wsel = {r: Signal(name=f"mq_w_{r.name.lower()}") for r in Region}
            q_lane = Signal(L, name="mq_lane")
            m.d.sync += [q_wsel[r].eq(wr & (region == r)) for r in Region]
            with m.If(accept):
                m.d.sync += q_lane.eq(Const(1, L) << index[:lb])
            rd, wr, region, index, wdata = q_rd, q_wr, q_region, q_index, q_data
            q_busy = q_rd | q_wr

            def writes(r):
                return q_wsel[r]

            def lane_is(j):
                return q_lane[j]
        else:
            def writes(r):
                return wr & (region == r)

            def lane_is(j):
                return lane == j
        n, lane, w = index[:nb], index[:lb], index[lb:nb]
        hi = index[nb:]
        reg_list = list(regs.values())

        # input events: set the axon's bit of the input bitmap
        m.d.comb += self.spike_in.ready.eq(idle)
        with m.If(self.spike_in.valid & idle):
            m.d.comb += [lists_wp.addr.eq(self.spike_in.payload),
                         lists_wp.data.eq(1 << ext_bit), lists_wp.en.eq(1)]

        # A read's region and index are kept; registers and profiles are read out of their
        # flip-flops while the response is presented: nothing writes them meanwhile (no request
        # is taken and no step begins while a response waits), so the short pipeline needs no
        # 84-bit copy (the long one keeps one for timing, below).
        rsp_region = Signal(3)
        rsp_lane = Signal(max(lb, 1))
        rsp_index = Signal(range(max(len(reg_list), c.n_profiles) + 1))
        with m.If(rd):
            m.d.sync += [rsp_region.eq(region), rsp_lane.eq(lane), rsp_index.eq(index)]
            with m.If((region == Region.REGISTERS) & (index >= len(reg_list))):
                m.d.sync += rsp_index.eq(len(reg_list))     # no register there: reads 0
        # The long pipeline (large FPGAs) also registers the response word: the memories'
        # outputs (block RAM clock-to-out, the lane and region multiplexers) would otherwise run
        # through the chip's and the SoC's response multiplexers into the link's registers in
        # one clock. ``rsp_pend`` covers the four clocks before the response (``q``: the request
        # registered, the reads issued; ``p1``, ``p2``: reads in progress; ``p3``: every
        # memory's word is out, taken into ``rsp_q``) and a write's clock (``q``).
        word = Signal.like(rsp.payload)

        def lane_word(values):
            out = values[0]
            for j in range(1, L):
                out = Mux(rsp_lane[:lb] == j, values[j], out)
            return out
        syn_word = lane_word([s.r_data for s in syn])
        slot_word = lane_word([rp.data for rp in slot_rp])
        if rsp_pend is not None:
            p1, p2, p3 = Signal(), Signal(), Signal()
            rsp_q = Signal.like(rsp.payload)
            m.d.sync += [p1.eq(rd), p2.eq(p1), p3.eq(p2)]
            # the block RAMs' words are out at ``p1``: the synapse and slot words are
            # registered then (the post traces are in ``y_op``), so that the region
            # multiplexer at ``p2`` takes flip-flops only, not a block RAM's output (through
            # the lane memories' own multiplexers, across the chip); a two-clock synapse lane
            # has its word out at ``p2``, the state and parameter words (read at ``p1``) theirs
            # at ``p3``, when the response is taken
            # (a three-clock lane's word is out, from its own register, at ``p3``: taken as is)
            syn_q, slot_q = Signal.like(syn_word), Signal.like(slot_word)
            with m.If(p2 if xl else p1):
                m.d.sync += syn_q.eq(syn_word)
            with m.If(p2 if slot2 else p1):
                m.d.sync += slot_q.eq(slot_word)
            syn_word, slot_word = (syn_word if xl == 2 else syn_q), slot_q
            m.d.comb += [rsp_pend.eq(q_busy | p1 | p2 | p3), rsp.payload.eq(rsp_q)]
            with m.If(p3):
                m.d.sync += [rsp_valid.eq(1), rsp_q.eq(word)]
            with m.Elif(rsp.ready):
                m.d.sync += rsp_valid.eq(0)
        else:
            m.d.comb += rsp.payload.eq(word)
            with m.If(rd):
                m.d.sync += rsp_valid.eq(1)
            with m.Elif(rsp.ready):
                m.d.sync += rsp_valid.eq(0)
        m.d.comb += rsp.valid.eq(rsp_valid)
        with m.Switch(rsp_region):
            with m.Case(Region.REGISTERS):
                with m.Switch(rsp_index):
                    for k, r in enumerate(reg_list):
                        with m.Case(k):
                            m.d.comb += word.eq(r.as_unsigned())
            with m.Case(Region.PROFILE):
                m.d.comb += word.eq(prof_rp.data)
            with m.Case(Region.NEURON):
                y = lane_word(y_op) if y_op else Const(0, 0)
                m.d.comb += word.eq(Cat(state_rp.data, y))
            with m.Case(Region.PARAM):
                m.d.comb += word.eq(param_rp.data)
            with m.Case(Region.AXON):
                m.d.comb += word.eq(axon_rp.data)
            with m.Case(Region.SYNAPSE):
                m.d.comb += word.eq(syn_word)
            with m.Case(Region.SLOT):
                m.d.comb += word.eq(slot_word)

        if mp is not None:
            m.d.comb += [mp_rd.eq(rd), mp_n.eq(n)]
        with m.If(idle):
            if mp is not None:
                m.d.comb += [state_rp.en.eq(mp_rd), param_rp.en.eq(mp_rd)]
            else:
                m.d.comb += [state_rp.addr.eq(n), param_rp.addr.eq(n), state_rp.en.eq(rd),
                             param_rp.en.eq(rd)]
            m.d.comb += [prof_rp.addr.eq(rsp_index[:_log2(c.n_profiles)]),
                         axon_rp.addr.eq(index[:ab]), axon_rp.en.eq(rd)]
            for j in range(L):
                if syn_ra is None:
                    m.d.comb += [syn[j].r_addr.eq(Cat(w, hi[:ab])), syn[j].r_en.eq(rd)]
                m.d.comb += [slot_rp[j].addr.eq(Cat(w, hi[:D])), slot_rp[j].en.eq(rd)]
                if y_rp:
                    m.d.comb += y_rp[j].en.eq(rd)
                    if not y_reg:       # else ``y_ra``, loaded with ``w`` as the port took it
                        m.d.comb += y_rp[j].addr.eq(w)
            with m.If(writes(Region.REGISTERS)):
                for k, r in enumerate(reg_list):
                    with m.If(index == k):
                        m.d.sync += r.eq(wdata[:len(r)])
                        if r is regs["step"]:
                            m.d.sync += self.step_moved.eq(1)
            with m.If(writes(Region.NEURON)):
                m.d.comb += [state_wp.addr.eq(n), state_wp.data.eq(wdata[:52]),
                             state_wp.en.eq(1)]
                for j in range(len(y_wp)):
                    m.d.comb += [y_wp[j].addr.eq(w), y_wp[j].data.eq(wdata[52:68]),
                                 y_wp[j].en.eq(lane_is(j))]
            with m.If(writes(Region.PARAM)):
                m.d.comb += [param_wp.addr.eq(n), param_wp.data.eq(wdata), param_wp.en.eq(1)]
            with m.If(writes(Region.PROFILE)):
                m.d.comb += [prof_wp.addr.eq(index), prof_wp.data.eq(wdata), prof_wp.en.eq(1)]
            with m.If(writes(Region.AXON)):
                m.d.comb += [axon_wp.addr.eq(index[:ab]), axon_wp.data.eq(wdata),
                             axon_wp.en.eq(1)]
            with m.If(writes(Region.SYNAPSE)):
                for j in range(L):
                    m.d.comb += [syn[j].w_addr.eq(Cat(w, hi[:ab])), syn[j].w_data.eq(wdata),
                                 syn[j].w_en.eq(lane_is(j))]
            with m.If(writes(Region.SLOT)):
                for j in range(L):
                    m.d.comb += [slot_wp[j].addr.eq(Cat(w, hi[:D])), slot_wp[j].data.eq(wdata),
                                 slot_wp[j].en.eq(lane_is(j))]
