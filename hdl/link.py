"""The command processor on the board: validated frames in, actions on the SoC, replies out.

``CommandProcessor`` follows ``docs/protocol.md`` section 3 (``tests/link/linkpeer.py`` is the
executable spec): the expected number, ``NAK(VERSION / NOT_SYNCED / SEQUENCE)`` unnumbered, a
HELLO that resynchronises unless it repeats the last one, and a reply history of ``window``
commands so that a retried command is answered without acting again. The history keeps the
first bytes of each reply; the replies of HELLO, STATUS and READ (longer, and free of side
effects) are made again for a duplicate instead of stored.

Commands carried out: every command of the protocol (HELLO, WRITE, READ, REGION_CRC, RUN, STEP,
STOP, INPUT, GENERATORS, PROBE, TIMER, STATUS and RESET); any other code is ``NAK(COMMAND)``.
Memory commands reach every core's regions and routing tables (``protocol.link_regions``) through
the chip's one memory port (``chip_address``); GENERATORS rewrites the ``gen_prob`` field of axon
words (read, modify, write); PROBE and TIMER only set registers (of the ``ProbeEngine`` and the
``Stepper``). ``AckFilter`` takes ``OUT_ACK`` frames out of the stream before they reach the
processor, so output frames are acknowledged even while the processor waits for a step to end.

Size and speed (an iCE40 has no LUT RAM; the link must leave room for the core): the fixed
request fields shift in; the checks of a request run a bit a clock while it is decided (word
count and remainder by a serial division, reply size by a serial product, then one registered
addition and comparison), so no divider, multiplier or wide adder sits between two registers;
a reply is a record of at most 9 bytes shifted out, HELLO and STATUS bytes are made as they are
sent; the history is 16-bit words of a block RAM that it shares with the SoC's event counters
(``StatsBank``: the ``hist_*`` ports); REGION_CRC uses a 4-bit CRC.

Timing (the SoC runs at 100 MHz on an ECP5): what leaves the processor leaves from registers
(the memory request, the reply's bytes, the pulses and entries to the stepper and the probe
engine, the counter read, ``soft_reset``), what it reads from the stepper is registered before
use, and the flags its states branch on (the command's kind, the refusal, the last byte of a
reply, the last word of a READ) are registers made a clock ahead, so no path runs from another
block through the command FSM, and none from a counter into a comparison and on into the FSM.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge import protocol
from spikeforge.image import GEN_PROB_BITS
from spikeforge.memmap import Region, TableRegion
from spikeforge.protocol import REPLY, REQUEST, Command, HelloFlags, NakCode

from .chip import chip_request_layout
from .framing import HeaderLayout, SerialCRC
from .stepper import Entry, EntryKind
from .target import is_ice40

__all__ = ["AckFilter", "CommandProcessor", "STATUS_COUNTERS", "CLEARED_COUNTERS",
           "chip_address", "control_ports", "frame_ports", "hello_constants", "memory_ports",
           "hello_template"]

_REQ_BYTES = max(layout.size for layout in REQUEST.values())
_STORED = 9                  # reply bytes kept in the history (STEP's reply is the longest)
# A reply as kept in the history: up to ``_STORED`` bytes, its length, NAK or ACK, and whether a
# duplicate makes it again (HELLO, STATUS, READ) instead; 80 bits, 5 half-words of block RAM.
_Record = data.StructLayout({"bytes": 8 * _STORED, "len": 6, "nak": 1, "regen": 1})
assert max(layout.size for layout in REPLY.values()) < 1 << 6
_REC_WORDS = _Record.size // 16
_REGENERATED = (Command.HELLO, Command.STATUS, Command.READ)
_TAILED = (Command.WRITE, Command.INPUT)
_KNOWN = (Command.HELLO, Command.WRITE, Command.READ, Command.REGION_CRC, Command.RUN,
          Command.STEP, Command.STOP, Command.INPUT, Command.GENERATORS, Command.PROBE,
          Command.TIMER, Command.STATUS, Command.RESET)
_BUSY = (Command.WRITE, Command.READ, Command.REGION_CRC, Command.STEP, Command.RUN,
         Command.GENERATORS)
_PROBE_FIXED = protocol.OUTPUT[Command.PROBE_DATA].size
# The STATUS fields that count events, in the order of the SoC's ``StatsBank``. RESET clears the
# link's own counters (from ``naks`` on: ``linkpeer.FakeBoard.reset``) but not those of the line,
# which count what happened on the wire whatever the board did.
STATUS_COUNTERS = ("crc_errors", "frame_errors", "uart_errors", "overruns", "naks", "duplicates",
                   "out_resent", "timer_overruns", "stalls")
CLEARED_COUNTERS = STATUS_COUNTERS.index("naks")


def chip_address(m, chipmap, core, region, index):
    """The chip address (``spikeforge.routing.ChipMap``) of word ``index`` of link region
    ``region`` (``protocol.link_regions``) of ``core``; ``m`` gets the combinational logic."""
    lb, eb = chipmap.local_bits, chipmap.routes.entry_bits
    ib = chipmap.memmaps[0].index_bits
    table = region[3]                   # the TableRegion ids 8 and 9
    local = Signal(lb)
    m.d.comb += local.eq(Mux(table, Cat(index[:eb], region == TableRegion.ROUTE_DEST),
                             Cat(index[:ib], region[:3])))
    return Cat(local, table, core[:chipmap.node_bits])


def memory_ports(chipmap):
    """The chip's memory port, which every command processor has (``CommandProcessor``, and
    ``spikeforge.hdl.firmware_link.FirmwareProcessor``): requests out, read words in."""
    return {"mem_req": Out(stream.Signature(chip_request_layout(chipmap))),
            "mem_rsp": In(stream.Signature(chipmap.data_bits))}


def frame_ports(chipmap):
    """The ``CommandProcessor``'s ports beside ``control_ports``: validated frames in
    (``header``, ``payload``), the reply out (``tx_header``, ``tx_payload``), the chip's
    memory port (``memory_ports``)."""
    return {
        "header": In(stream.Signature(HeaderLayout)), "payload": In(stream.Signature(8)),
        "tx_header": Out(stream.Signature(HeaderLayout)),
        "tx_payload": Out(stream.Signature(8)),
        **memory_ports(chipmap),
    }


def control_ports(stepper=True, probe_settings=True, out_seq=True, counters=True):
    """The ports a command processor drives and watches the SoC through, beside
    ``frame_ports``: the ``st_*`` ports a ``Stepper`` and ``period`` the TIMER's setting
    (``stepper``: the firmware processor is the stepper itself); ``core_step`` the chip's
    step; ``out_seq`` the output buffer's oldest unacknowledged number (``out_seq``: the
    firmware processor is the output buffer itself); ``rx_start`` (a start
    bit on the line) and ``counter`` (free-running) make the nonce; ``soft_reset`` is the
    RESET command's pulse; ``pr_*`` (``probe_settings``) PROBE's settings for a
    ``ProbeEngine``; ``nak_made``, ``duplicate`` and the ``sb_*`` ports (``counters``)
    count events and read the SoC's event counters (a ``StatsBank``); ``idle`` (nothing under
    way) and ``wake`` (``spikeforge.hdl.gating``)."""
    steps = {
        "st_run": Out(1), "st_run_steps": Out(32), "st_step": Out(1), "st_stop": Out(1),
        "st_push": Out(stream.Signature(Entry)), "st_commit": Out(1), "st_abort": Out(1),
        "st_commit_step": Out(32), "st_commit_end": Out(1),
        "st_state": In(2), "st_idle": In(1), "st_step_done": In(1), "st_done_step": In(32),
        "st_busy_last": In(32), "st_busy_max": In(32), "st_steps_left": In(32),
        "st_input_floor": In(32), "st_last_input": In(32), "st_queued": In(1),
        "st_free": In(32), "st_paced": In(1),
        "period": Out(32),
    } if stepper else {}
    settings = {
        "pr_set": Out(1), "pr_probe": Out(8), "pr_core": Out(8), "pr_region": Out(8),
        "pr_period": Out(8), "pr_index": Out(32), "pr_count": Out(16),
    } if probe_settings else {}
    return {
        **steps, "core_step": In(32),
        **({"out_seq": In(8)} if out_seq else {}),
        "rx_start": In(1), "counter": In(32), "soft_reset": Out(1),
        **settings,
        "idle": Out(1),
        # a register may change at the next clock (``spikeforge.hdl.gating``)
        "wake": Out(1),
        # the event counters (a ``StatsBank`` of ``STATUS_COUNTERS``): what the processor
        # counts, and one counter read whole for STATUS
        **({"nak_made": Out(1), "duplicate": Out(1),
            "sb_req": Out(1), "sb_index": Out(range(len(STATUS_COUNTERS))), "sb_done": In(1),
            "sb_value": In(32)} if counters else {}),
    }


def hello_constants(chipmap, *, window, out_window, n_probes, probe_payload, max_payload,
                    clock_hz=0, baud=0, out_timeout=0, build_id=0, firmware=False):
    """The HELLO reply's fields but ``out_seq`` and ``nonce`` (the board's live values), for
    the chip of ``chipmap`` behind a command processor of these settings (``firmware``: the
    firmware link's, ``HelloFlags.FIRMWARE``)."""
    c = chipmap.memmaps[0].config
    return dict(
        cmd=Command.HELLO, version=protocol.VERSION, window=window, out_window=out_window,
        n_cores=chipmap.n_cores,
        flags=int(HelloFlags.GENERATORS | HelloFlags.TIMER
                  | (HelloFlags.LEARNING if c.plastic else 0)
                  | (HelloFlags.FIRMWARE if firmware else 0)),
        route_entries=chipmap.routes.limits.route_entries,
        fan_out=chipmap.routes.limits.fan_out, probe_payload=probe_payload,
        max_payload=max_payload, n_neurons=c.n_neurons, n_axons=c.n_axons,
        weight_bits=c.weight_bits, delay_bits=c.delay_bits, lanes=c.lanes,
        n_profiles=c.n_profiles, n_probes=n_probes, memmap_hash=protocol.memmap_hash(chipmap),
        clock_hz=clock_hz, baud=baud, out_timeout=out_timeout, build_id=build_id)


def hello_template(chipmap, **settings):
    """The HELLO reply's bytes with ``out_seq`` and ``nonce`` 0, as a firmware keeps them to
    fill in when it answers (``settings``: those of ``hello_constants``)."""
    return REPLY[Command.HELLO].pack(**hello_constants(chipmap, **settings), out_seq=0,
                                     nonce=0)


def _fields(layout, raw):
    """``{name: slice of raw}`` for the fixed fields of a ``protocol.Layout``."""
    return {name: raw[8 * off:8 * (off + n)] for name, (off, n, _) in layout.offsets().items()}


def _pack(layout, **values):
    """The bytes of ``layout``'s fixed fields as one value, byte 0 in the low bits."""
    parts = []
    for name, (_, n, _) in layout.offsets().items():
        value = values[name]
        value = Const(value, 8 * n) if isinstance(value, int) else value
        parts.append(value.as_unsigned()[:8 * n] if len(value) >= 8 * n
                     else Cat(value, Const(0, 8 * n - len(value))))
    return Cat(*parts)


class AckFilter(wiring.Component):
    """Consumes ``OUT_ACK`` frames (pulse ``ack`` with ``next``); passes every other frame on.

    The header and payload pass straight through; only the handshakes follow the state.
    ``wake``: a register may change at the next clock (``spikeforge.hdl.gating``).
    """

    i_header: In(stream.Signature(HeaderLayout))
    i_payload: In(stream.Signature(8))
    o_header: Out(stream.Signature(HeaderLayout))
    o_payload: Out(stream.Signature(8))
    ack: Out(1)
    next: Out(8)
    wake: Out(1)

    def __init__(self, max_payload=protocol.MAX_PAYLOAD):
        self.max_payload = max_payload
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        is_ack = self.i_header.p.cmd == Command.OUT_ACK
        left = Signal(range(self.max_payload + 1))
        m.d.comb += [self.o_header.payload.eq(self.i_header.payload),
                     self.o_payload.payload.eq(self.i_payload.payload),
                     self.next.eq(self.i_payload.payload)]
        with m.FSM() as fsm:
            with m.State("PASS"):
                m.d.comb += [self.o_header.valid.eq(self.i_header.valid & ~is_ack),
                             self.i_header.ready.eq(is_ack | self.o_header.ready),
                             self.o_payload.valid.eq(self.i_payload.valid),
                             self.i_payload.ready.eq(self.o_payload.ready)]
                with m.If(self.i_header.valid & is_ack):
                    m.d.sync += left.eq(self.i_header.p.length)
                    with m.If(self.i_header.p.length == 1):
                        m.next = "NEXT"
                    with m.Elif(self.i_header.p.length != 0):
                        m.next = "DROP"
            with m.State("NEXT"):
                m.d.comb += [self.i_payload.ready.eq(1), self.ack.eq(self.i_payload.valid)]
                with m.If(self.i_payload.valid):
                    m.next = "PASS"
            with m.State("DROP"):
                m.d.comb += self.i_payload.ready.eq(1)
                with m.If(self.i_payload.valid):
                    m.d.sync += left.eq(left - 1)
                    with m.If(left == 1):
                        m.next = "PASS"
        m.d.comb += self.wake.eq(Mux(fsm.ongoing("PASS"), self.i_header.valid & is_ack,
                                     self.i_payload.valid))
        return m


class CommandProcessor(wiring.Component):
    """Commands for the chip of ``chipmap`` (a ``spikeforge.routing.ChipMap`` of equal cores).

    ``hello`` is a dict of the constant HELLO fields (``clock_hz``, ``baud``, ``out_timeout``,
    ``build_id``). Ports: ``header``/``payload`` from the ``AckFilter``;
    ``tx_header``/``tx_payload`` to the framer; ``mem_req``/``mem_rsp`` the chip's memory port
    (``spikeforge.hdl.chip``: every core's regions and routing tables);
    the ``st_*`` ports drive and watch a ``Stepper``; ``rx_start`` (a start bit on the line) and
    ``counter`` (free-running) make the nonce; ``soft_reset`` is the RESET command's pulse.
    """

    def __init__(self, chipmap, *, window=8, out_window=8,
                 max_payload=protocol.MAX_PAYLOAD, n_probes=0, probe_payload=256, hello=None):
        if window not in (1, 2, 4, 8, 16, 32, 64):
            raise ValueError(f"window {window!r} must be a power of two from 1 to 64")
        self.chipmap = chipmap
        self.regions = protocol.link_regions(chipmap)
        self.memmap = memmap = chipmap.memmaps[0]
        self.n_cores = chipmap.n_cores
        self.n_probes = n_probes
        self.probe_payload = probe_payload
        self.window = window
        self.out_window = out_window
        self.max_payload = max_payload
        self.hello = dict(hello or {})
        self.history_words = 8 * max(window, 2)     # a record in 8 half-words (5 used)
        # its clocks on the RAM per command, at most (a recall of two clocks' read latency)
        self.history_stall = 2 * _REC_WORDS + 2
        c = memmap.config
        super().__init__({
            **frame_ports(chipmap), **control_ports(),
            # the reply history's RAM: ``history_words`` half-words; off an iCE40 the four
            # outputs are registers and a read's word comes two clocks after the processor
            # asks, else one
            "hist_addr": Out(range(self.history_words)), "hist_en": Out(1), "hist_we": Out(1),
            "hist_data": Out(16), "hist_q": In(16),
        })
        self.n_axons = c.n_axons

    def elaborate(self, platform):  # noqa: C901 - one FSM, read top to bottom
        m = Module()
        cm = self.chipmap
        W = self.window
        wb_bits = max(W.bit_length() - 1, 0)
        wbytes = {r: (layout.width + 7) // 8 for r, layout in self.regions.items()}
        max_wb = max(wbytes.values())
        ab = max(layout.depth for layout in self.regions.values()).bit_length()
        lb = self.max_payload.bit_length()  # a frame's lengths and counts fit in lb bits

        # -- nonce -----------------------------------------------------------------------------
        nonce = Signal(32)
        armed = Signal(init=1)
        with m.If(self.rx_start & armed):
            m.d.sync += [nonce.eq(self.counter), armed.eq(0)]

        # -- link state --------------------------------------------------------------------------
        synced = Signal()
        expected = Signal(8)
        filled = Signal(range(W + 1))       # commands executed since the last HELLO
        last_hello_seq = Signal(8)
        last_hello_client = Signal(32)
        hdr = Signal(HeaderLayout)
        req = Signal(8 * _REQ_BYTES)
        ridx = Signal(6)                    # reply bytes sent (a record is under 64 bytes)
        rk = Signal(range(_REQ_BYTES + 1))  # bytes of ``req`` shifted in
        # The payload bytes not yet taken, and whether none is left (a register, so that no
        # comparison of two counters runs into the payload's ``ready``).
        p_left = Signal(lb)
        p_end = Signal()
        # The reply: the bytes of a short one (sent LSB first, shifted out), or the length of a
        # HELLO or STATUS reply, whose bytes are made as they are sent (``regen``: made again
        # for a duplicate, never stored); the record is the history's entry as it is.
        rec = Signal(_Record)
        rlive = Signal()                    # HELLO or STATUS bytes made at send time
        live_status = Signal()              # they are STATUS's (else HELLO's)
        replay = Signal()                   # answering a duplicate: no side effects, no store
        do_reset = Signal()

        pay = self.payload

        def take_byte():
            """``pay`` is ready; the statements under ``with m.If(pay.valid)`` take its byte."""
            m.d.comb += pay.ready.eq(1)
            with m.If(pay.valid):
                m.d.sync += [p_left.eq(p_left - 1), p_end.eq(p_left == 1)]

        # The history: ``window`` records of 5 half-words in a block RAM (16 bits wide: the
        # iCE40's 256 x 16 shape), written and recalled one half-word a clock.
        # Off an iCE40 the RAM's address, enables and data leave from registers (their logic
        # from the FSM ran through the bank's port multiplexer into a LUT RAM's read address:
        # the ULX3S's critical path at 90 MHz, 11.18 ns), a clock later: ``hist_lat`` clocks
        # from asking to the word.
        hist_lat = 1 if is_ice40(platform) else 2
        hk = Signal(range(_REC_WORDS + hist_lat))
        slot = hdr.seq[:wb_bits] if wb_bits else Const(0, 1)
        h_addr, h_en, h_we = Signal.like(self.hist_addr), Signal(), Signal()
        h_data = Signal.like(self.hist_data)
        m.d.comb += [h_addr.eq(Cat(hk[:3], slot)),
                     h_data.eq(rec.as_value().word_select(hk[:3], 16))]
        hist = [self.hist_addr.eq(h_addr), self.hist_en.eq(h_en), self.hist_we.eq(h_we),
                self.hist_data.eq(h_data)]
        m.d["comb" if hist_lat == 1 else "sync"] += hist

        # -- request fields ----------------------------------------------------------------------
        f = {cmd: _fields(REQUEST[cmd], req) for cmd in _KNOWN}
        nfix = Signal(range(_REQ_BYTES + 1))    # the fixed-field bytes of the command (a register)
        take = Signal(range(_REQ_BYTES + 1))    # fixed-field bytes the payload holds

        # Region properties as constant tables, chosen by the request's region field; all of
        # them registers, taken in the first clock of CHECK.
        where = f[Command.READ]             # WRITE, READ and REGION_CRC share core/region/index
        prb = f[Command.PROBE]
        gen = f[Command.GENERATORS]
        # the command's kind, registers set in SIZE (no comparison of ``hdr.cmd`` in the
        # paths of the later states)
        is_probe, is_gen, is_read, is_write, is_input = (
            Signal(name=f"is_{name}") for name in ("probe", "gen", "read", "write", "input"))
        kinds = [(is_probe, Command.PROBE), (is_gen, Command.GENERATORS), (is_read, Command.READ),
                 (is_write, Command.WRITE), (is_input, Command.INPUT)]
        region = Signal(8)                  # GENERATORS: the axon region
        wb = Signal(range(max_wb + 1))      # bytes a word
        wb_last = Signal(range(max_wb))     # wb - 1
        depth_r = Signal(ab)
        most = Signal(lb)                   # the most words a READ or PROBE reply holds
        region_ok = Signal()
        words_len = Signal(16)              # a WRITE's word bytes, an INPUT's axon bytes
        index = Mux(is_probe, prb["index"], where["index"])
        count = Mux(is_read, where["count"],
                    Mux(is_probe, prb["count"], f[Command.REGION_CRC]["count"]))
        count16 = Mux(is_probe, prb["count"], where["count"])

        m_index = Signal(ab)                # the next word of a memory command
        m_left = Signal(ab + 1)             # words left (READ, REGION_CRC, GENERATORS)
        m_zero = Signal()                   # m_left == 0, a register

        # Checked a bit a clock while the request is decided (no divider, no multiplier, no
        # wide adder between two registers): a WRITE's words (quotient ``nw``, remainder
        # ``rem`` of its bytes by the word size), a READ's reply bytes (``count_b``), then
        # whether index and count stay in the region (``in_range``) and GENERATORS' axons.
        ck = Signal(range(lb + 4))
        sh = Signal(lb)                     # the bits of the division or product, MSB first
        rem = Signal(range(2 * max_wb))
        nw = Signal(lb)
        count_b = Signal(lb + 4)
        in_range = Signal()
        gen_sum = Signal(17)
        gen_ok = Signal()
        hi = ab                             # index or count bits above: out of every region
        over = (index[hi:] != 0) | (Mux(is_write, 0, count[hi:]) != 0)
        n_words = Mux(is_write, nw, count[:hi])
        limited = is_read | is_probe
        checking = Signal()
        is_next = Signal()                  # the number expected
        dup = Signal()                      # one of the last ``filled`` numbers executed
        same_hello = Signal()
        retry = Signal()                    # a HELLO repeated: answered as a duplicate
        span = Signal(hi + 1)               # index + words: the end of the request
        short = Signal()                    # no index or count over the largest region
        no_core = Signal()
        inp = f[Command.INPUT]
        n_in = Signal(16)
        m.d.comb += n_in.eq(words_len >> 1)
        late_step = Signal()                # INPUT for a step already closed
        no_room = Signal()                  # INPUT: more axons than the queue has room for
        bad_probe = Signal()
        probe_off = Signal()
        probe_none = Signal()
        core_of = Mux(is_input, inp["core"],
                      Mux(is_probe, prb["core"], where["core"]))
        with m.If(checking & (ck == 0)):
            sel = Mux(is_probe, prb["region"], Mux(is_gen, int(Region.AXON), where["region"]))
            m.d.sync += [region.eq(sel), region_ok.eq(0), wb.eq(0), wb_last.eq(0),
                         depth_r.eq(0), most.eq(0),
                         sh.eq(Mux(is_write, words_len, count16)),
                         ck.eq(1)]
            with m.Switch(sel):
                for r, layout in self.regions.items():
                    with m.Case(int(r)):
                        m.d.sync += [wb.eq(wbytes[r]), wb_last.eq(wbytes[r] - 1),
                                     depth_r.eq(layout.depth), region_ok.eq(1),
                                     most.eq(Mux(is_probe,
                                                 (self.probe_payload - _PROBE_FIXED) // wbytes[r],
                                                 (self.max_payload - 1) // wbytes[r]))]
        with m.Elif(checking & (ck <= lb)):
            r2 = Cat(sh[-1], rem)
            fits = r2 >= wb
            m.d.sync += [rem.eq(Mux(fits, r2 - wb, r2)), nw.eq(Cat(fits, nw)),
                         count_b.eq((count_b << 1) + Mux(sh[-1], wb, 0)),
                         sh.eq(sh << 1), ck.eq(ck + 1)]
        with m.Elif(checking & (ck == lb + 1)):
            # where the number stands (``expected`` and ``filled`` change only in DECIDE/STORE)
            dist = (expected - hdr.seq)[:8]
            m.d.sync += [is_next.eq(hdr.seq == expected),
                         dup.eq(synced & (dist != 0) & (dist <= filled)),
                         same_hello.eq((hdr.seq == last_hello_seq)
                                       & (f[Command.HELLO]["client"] == last_hello_client)),
                         no_core.eq(core_of >= self.n_cores), span.eq(index[:hi] + n_words),
                         short.eq(~over & (~limited | (count16 <= most))),
                         gen_sum.eq(gen["first"] + gen["count"]),
                         late_step.eq((inp["step"] < self.st_input_floor)
                                      | (self.st_queued & (inp["step"] < self.st_last_input))),
                         no_room.eq(n_in >= self.st_free),
                         bad_probe.eq(prb["probe"] >= self.n_probes),
                         probe_off.eq(prb["period"] == 0), probe_none.eq(prb["count"] == 0),
                         ck.eq(ck + 1)]
        with m.Elif(checking & (ck == lb + 2)):
            m.d.sync += [in_range.eq(short & (span <= depth_r)), retry.eq(dup & same_hello),
                         gen_ok.eq(gen_sum <= self.n_axons), ck.eq(ck + 1)]
            # the memory commands' first word and count (used after EXEC only)
            first = Mux(is_gen, gen["first"], index)
            words = Mux(is_gen, gen["count"], count)
            m.d.sync += [m_index.eq(first), m_left.eq(words), m_zero.eq(words[:ab + 1] == 0)]
        checked = ck == lb + 3      # until the next request: DECIDE and EXEC read them

        # the stepper's idle flag, a clock late (a register: no path from the stepper's logic
        # into the refusal's); ``done_step`` is valid only with ``step_done``, taken as it is
        st_idle = Signal()
        m.d.sync += st_idle.eq(self.st_idle)

        # What a command gets refused for, in the order of linkpeer.FakeBoard (BUSY after LENGTH).
        nak_code = Signal(8)
        verdict = Signal(8)
        nak_store = Signal()
        bad_version = Signal()
        is_hello = Signal()                 # a HELLO of the right length
        refused = Signal()                  # verdict != 0
        known = hdr.cmd.matches(*_KNOWN)
        exact = Signal()                    # the payload is the fixed fields, no more
        shorter = Signal()                  # the payload lacks fixed fields
        with m.If(~known):
            m.d.comb += nak_code.eq(NakCode.COMMAND)
        with m.Elif(Mux(hdr.cmd.matches(*_TAILED), shorter, ~exact)):
            m.d.comb += nak_code.eq(NakCode.LENGTH)
        with m.Elif(hdr.cmd.matches(*_BUSY) & ~st_idle & ~replay):
            m.d.comb += nak_code.eq(NakCode.BUSY)
        with m.Elif(hdr.cmd.matches(Command.WRITE, Command.READ, Command.REGION_CRC)):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~region_ok):
                m.d.comb += nak_code.eq(NakCode.REGION)
            with m.Elif(is_write & (rem != 0)):
                m.d.comb += nak_code.eq(NakCode.LENGTH)
            with m.Elif(~in_range):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(is_input):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(words_len[0]):
                m.d.comb += nak_code.eq(NakCode.LENGTH)
            with m.Elif(late_step):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(no_room):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(is_gen):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~gen_ok):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(is_probe):
            with m.If(bad_probe):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(probe_off):
                pass                        # switched off: the other fields do not matter
            with m.Elif(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~region_ok):
                m.d.comb += nak_code.eq(NakCode.REGION)
            with m.Elif(probe_none):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(~in_range):
                m.d.comb += nak_code.eq(NakCode.RANGE)

        # -- replies -----------------------------------------------------------------------------
        hello_fields = dict(
            hello_constants(cm, window=W, out_window=self.out_window, n_probes=self.n_probes,
                            probe_payload=self.probe_payload, max_payload=self.max_payload,
                            **self.hello),
            out_seq=self.out_seq, nonce=nonce)
        status_fields = dict(
            cmd=Command.STATUS, state=self.st_state, step=self.core_step,
            steps_left=self.st_steps_left, busy_last=self.st_busy_last,
            busy_max=self.st_busy_max, paced=self.st_paced,
            **dict.fromkeys(STATUS_COUNTERS, self.sb_value))

        def reply(which, nak=False, **fields):
            layout = protocol.NAK_PAYLOAD if nak else REPLY[which]
            live = not nak and which in (Command.HELLO, Command.STATUS)
            m.d.sync += [rec.len.eq(layout.size), rec.nak.eq(nak), rlive.eq(live),
                         live_status.eq(which == Command.STATUS),
                         rec.regen.eq(not nak and which in _REGENERATED)]
            if not live:
                # byte 0 is the command's code in every reply and NAK: ``hdr.cmd`` for all of
                # them (one source of that byte, not one constant each)
                m.d.sync += rec.bytes.eq(_pack(layout, **(fields | {"cmd": hdr.cmd})))

        def nak(code, store):
            """Refuse with ``code`` (in the NAK state: one source of NAK bytes); ``store``:
            a numbered command's refusal, kept in the history."""
            m.d.sync += [verdict.eq(code), nak_store.eq(store)]
            m.next = "NAK"

        # HELLO and STATUS bytes as they are sent, made a clock ahead (``live_byte_r``: a byte
        # goes at most every other clock, and ``ridx`` has pointed at it for a clock when it
        # goes). A STATUS field is sampled whole in the clock before its first byte goes (its
        # other bytes from ``hold``, sampled in the same clock), so no multi-byte value is
        # torn. A counter's first byte waits until the bank has read it whole (``fetched``) and
        # that value has been sampled (``fetched_d``).
        live_byte = Signal(8)
        live_byte_r = Signal(8)
        m.d.sync += live_byte_r.eq(live_byte)
        hold = Signal(24)
        live_sent = Signal()
        counter_first = Signal()            # the byte is a counter's first
        counter_first_r = Signal()          # the same, a clock later (a byte goes at most
        m.d.sync += counter_first_r.eq(counter_first)   # every other clock)
        fetched = Signal()
        fetched_d = Signal()
        m.d.sync += fetched_d.eq(fetched)
        sb_k = Signal(range(len(STATUS_COUNTERS)))
        m.d.sync += self.sb_index.eq(sb_k)       # a register: the index reaches the bank's RAM
        with m.If(self.sb_done):
            m.d.sync += fetched.eq(1)
        with m.Elif(live_sent):
            m.d.sync += fetched.eq(0)
        # HELLO: constant bytes (one function of the byte index per bit), nonce and out_seq.
        rom = [0] * 64
        with m.If(~live_status):
            with m.Switch(ridx[:6]):
                for name, (off, n, _) in REPLY[Command.HELLO].offsets().items():
                    value = hello_fields[name]
                    for k in range(n):
                        if isinstance(value, int):
                            rom[off + k] = (value >> 8 * k) & 0xFF
                        else:
                            with m.Case(off + k):
                                m.d.comb += live_byte.eq(value.word_select(k, 8))
                with m.Default():
                    m.d.comb += live_byte.eq(Cat(
                        Const(sum((byte >> j & 1) << i for i, byte in enumerate(rom)), 64)
                        .bit_select(ridx[:6], 1) for j in range(8)))
        # Every counter's first byte is one case (the bank's value), and the later bytes of
        # every field are one case per position (``hold``): the funnel is only as wide as the
        # fields that are not counters.
        offsets = REPLY[Command.STATUS].offsets()
        counters = {offsets[name][0]: k for k, name in enumerate(STATUS_COUNTERS)}
        later = {k: [off + k for name, (off, n, _) in offsets.items()
                     if n > k and not isinstance(status_fields[name], int)] for k in (1, 2, 3)}
        with m.If(live_status):
            with m.Switch(ridx[:6]):
                for off, k in counters.items():
                    with m.Case(off):
                        m.d.comb += [sb_k.eq(k), counter_first.eq(1)]
            with m.Switch(ridx[:6]):
                with m.Case(*counters):
                    m.d.comb += live_byte.eq(self.sb_value[:8])
                    with m.If(~live_sent):
                        m.d.sync += hold.eq(self.sb_value[8:])
                for name, (off, n, _) in offsets.items():
                    value = status_fields[name]
                    if name in STATUS_COUNTERS:
                        continue
                    if isinstance(value, int):
                        for k in range(n):
                            with m.Case(off + k):
                                m.d.comb += live_byte.eq((value >> 8 * k) & 0xFF)
                        continue
                    with m.Case(off):
                        m.d.comb += live_byte.eq(value[:8])
                        if n > 1:
                            with m.If(~live_sent):
                                m.d.sync += hold.eq(value[8:8 * n])
                for k, where_k in later.items():
                    with m.Case(*where_k):
                        m.d.comb += live_byte.eq(hold[8 * (k - 1):8 * k])

        # -- the chip's memory port: a registered request, held until the chip takes it -------
        # One index, count and flag serve READ, REGION_CRC, WRITE and GENERATORS (one at a
        # time); the address is a function of registers only.
        mq_valid = Signal()
        mq_addr = Signal(len(self.mem_req.p.addr))
        mq_write = Signal()
        w_acc = Signal(max(8 * max_wb, cm.data_bits))   # a WRITE's word, GENERATORS' word
        addr = chip_address(m, cm, where["core"], region, m_index)
        m.d.comb += [self.mem_req.valid.eq(mq_valid), self.mem_req.p.addr.eq(mq_addr),
                     self.mem_req.p.write.eq(mq_write), self.mem_req.p.data.eq(w_acc),
                     self.mem_rsp.ready.eq(1)]
        with m.If(self.mem_req.ready):
            m.d.sync += mq_valid.eq(0)

        def issue(write):
            m.d.sync += [mq_valid.eq(1), mq_addr.eq(addr), mq_write.eq(write),
                         m_index.eq(m_index + 1)]

        def count_word():
            m.d.sync += [m_left.eq(m_left - 1), m_zero.eq(m_left == 1)]

        # -- memory reader: words of a region as wire bytes, LSB first --------------------------
        rd_pending = Signal()
        rd_have = Signal()
        rd_k = Signal(range(max_wb + 1))
        rd_word = Signal(8 * max_wb)
        rd_take = Signal()
        rd_active = Signal()
        rd_byte = rd_word[:8]
        rd_done = m_zero & ~rd_have & ~rd_pending
        with m.If(rd_active & ~rd_have & ~rd_pending & ~m_zero):
            issue(0)
            count_word()                    # words asked for: the last is in flight or held
            m.d.sync += rd_pending.eq(1)
        with m.If(self.mem_rsp.valid & rd_pending):
            m.d.sync += [rd_word.eq(self.mem_rsp.payload), rd_have.eq(1), rd_k.eq(0),
                         rd_pending.eq(0)]
        with m.If(rd_take):
            m.d.sync += [rd_word.eq(rd_word >> 8), rd_k.eq(rd_k + 1)]
            with m.If(rd_k == wb_last):
                m.d.sync += rd_have.eq(0)

        m.submodules.crc = crcp = SerialCRC(bits=4)     # 2 clocks a byte: a third of the XORs
        m.d.comb += crcp.i.payload.eq(rd_byte)

        # -- the reply's bytes: one register ahead of the framer (no path from its ``ready``
        # into the byte's making; a byte every other clock at most, far above the line's rate)
        ob = Signal(8)
        ob_valid = Signal()
        hlen = Signal(16)                   # the reply's length, a register for the header
        r_last = Signal(6)                  # rec.len - 1
        reading = ~rec.nak & is_read
        m.d.comb += [self.tx_payload.valid.eq(ob_valid), self.tx_payload.payload.eq(ob)]
        with m.If(self.tx_payload.ready):
            m.d.sync += ob_valid.eq(0)
        # ``ob`` follows its source while it is empty (the source chosen by registers, not
        # by the state): a byte is sent by setting ``ob_valid`` alone
        src_rd = Signal()                   # the words of a READ (after the record's bytes)
        with m.If(~ob_valid):
            m.d.sync += ob.eq(Mux(rlive, live_byte_r, Mux(src_rd, rd_byte, rec.bytes[:8])))

        # -- writer state ----------------------------------------------------------------------
        w_k = Signal(range(max_wb + 1))
        w_issue = Signal()
        g_lsb = self.memmap[Region.AXON].offsets()["gen_prob"][0]
        in_bad = Signal()
        in_lo = Signal(8)
        in_k = Signal()

        # -- the command FSM -----------------------------------------------------------------
        # What the processor tells the other blocks leaves from registers, a clock after the
        # state that decides it (pulses, and the entries pushed to the stepper); the fields
        # that go with a pulse are the request's, which stay until the next request.
        m.d.sync += [self.st_run.eq(0), self.st_step.eq(0), self.st_stop.eq(0),
                     self.pr_set.eq(0), self.st_push.valid.eq(0), self.st_abort.eq(0),
                     self.st_commit.eq(0), self.nak_made.eq(0), self.duplicate.eq(0)]
        m.d.comb += [self.st_run_steps.eq(f[Command.RUN]["steps"]),
                     self.pr_probe.eq(prb["probe"]), self.pr_core.eq(prb["core"]),
                     self.pr_region.eq(prb["region"]), self.pr_period.eq(prb["period"]),
                     self.pr_index.eq(prb["index"]), self.pr_count.eq(prb["count"]),
                     self.st_commit_step.eq(inp["step"]), self.st_commit_end.eq(inp["flags"][0])]
        # At rest: in IDLE with no request arriving, nothing held for another block, no pulse
        # to end, no read in flight. What changes then follows the inputs a clock late
        # (``st_idle``, ``live_byte_r``, ``ob``, ...) and is next used several states after a
        # request: only the nonce's start bit and the counter bank's answer are events.
        pulses = [self.st_run, self.st_step, self.st_stop, self.pr_set, self.st_push.valid,
                  self.st_abort, self.st_commit, self.nak_made, self.duplicate, self.soft_reset,
                  self.sb_req, mq_valid, ob_valid, rd_pending]
        m.d.comb += self.wake.eq(~self.idle | Cat(*pulses).any() | self.sb_done
                                 | (self.rx_start & armed))
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.header.ready.eq(1), self.idle.eq(~self.header.valid)]
                with m.If(self.header.valid):
                    hp = self.header.payload
                    m.d.sync += [hdr.eq(hp), ridx.eq(0), rk.eq(0), p_left.eq(hp.length),
                                 src_rd.eq(0),
                                 p_end.eq(hp.length == 0), nfix.eq(0),
                                 replay.eq(0), hk.eq(0), ck.eq(0), rem.eq(0), count_b.eq(0)]
                    with m.Switch(hp.cmd):
                        for cmd in _KNOWN:
                            with m.Case(cmd):
                                m.d.sync += nfix.eq(REQUEST[cmd].size)
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.sync += [kind.eq(hdr.cmd == cmd) for kind, cmd in kinds]
                m.d.sync += bad_version.eq(hdr.version != protocol.VERSION)
                m.d.sync += [w_k.eq(0), w_acc.eq(0)]          # a WRITE's first word
                m.d.sync += [take.eq(Mux(hdr.length < nfix, hdr.length, nfix)),
                             shorter.eq(hdr.length < nfix), exact.eq(hdr.length == nfix),
                             is_hello.eq((hdr.cmd == Command.HELLO) & (hdr.length == nfix)),
                             words_len.eq(hdr.length - REQUEST[Command.WRITE].size)]
                m.next = "COLLECT"
            with m.State("COLLECT"):
                # the fixed fields shift in from the top, zeros past the payload's end; while
                # bytes are taken, ``rk`` counts them
                with m.If(rk == _REQ_BYTES):
                    m.next = "CHECK"
                with m.Elif(rk < take):
                    take_byte()
                    with m.If(pay.valid):
                        m.d.sync += [req.eq(Cat(req[8:], pay.payload)), rk.eq(rk + 1)]
                with m.Else():
                    m.d.sync += [req.eq(req >> 8), rk.eq(rk + 1)]
            with m.State("CHECK"):
                m.d.comb += checking.eq(1)
                with m.If(checked):
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                seq = hdr.seq
                client = f[Command.HELLO]["client"]
                with m.If(bad_version):
                    nak(NakCode.VERSION, False)
                with m.Elif(is_hello & ~retry):
                    m.d.sync += [synced.eq(1), expected.eq(seq), filled.eq(0),
                                 last_hello_seq.eq(seq), last_hello_client.eq(client)]
                    m.next = "VERDICT"
                with m.Elif(~synced):
                    nak(NakCode.NOT_SYNCED, False)
                with m.Elif(is_next):
                    m.next = "VERDICT"
                with m.Elif(dup):
                    m.d.sync += self.duplicate.eq(1)
                    m.d.sync += hk.eq(0)
                    m.next = "RECALL"
                with m.Else():
                    nak(NakCode.SEQUENCE, False)
            with m.State("RECALL"):
                # half-word hk is asked for; the one asked for ``hist_lat`` clocks before
                # arrives
                m.d.comb += h_en.eq(1)
                m.d.sync += hk.eq(hk + 1)
                with m.If(hk >= hist_lat):
                    m.d.sync += rec.eq(Cat(rec.as_value()[16:], self.hist_q))
                with m.If(hk == _REC_WORDS + hist_lat - 1):
                    m.d.sync += rlive.eq(0)
                    m.next = "RECALLED"
            with m.State("RECALLED"):
                with m.If(rec.regen):
                    m.d.sync += replay.eq(1)
                    m.next = "VERDICT"
                with m.Else():
                    m.next = "DRAIN"
            with m.State("VERDICT"):
                # the refusal is registered: no wide comparison runs into the reply's write
                m.d.sync += [verdict.eq(nak_code), refused.eq(nak_code != 0)]
                m.next = "EXEC"
            with m.State("EXEC"):
                with m.If(refused):
                    nak(verdict, True)
                with m.Else():
                    with m.Switch(hdr.cmd):
                        with m.Case(Command.HELLO):
                            reply(Command.HELLO, **hello_fields)
                            m.next = "STORE"
                        with m.Case(Command.STATUS):
                            reply(Command.STATUS, **status_fields)
                            m.next = "STORE"
                        with m.Case(Command.RESET):
                            reply(Command.RESET, cmd=Command.RESET)
                            m.d.sync += do_reset.eq(1)
                            m.next = "STORE"
                        with m.Case(Command.RUN):
                            m.d.sync += self.st_run.eq(1)
                            reply(Command.RUN, cmd=Command.RUN, step=self.core_step)
                            m.next = "STORE"
                        with m.Case(Command.STEP):
                            m.d.sync += self.st_step.eq(1)
                            m.next = "WAIT_STEP"
                        with m.Case(Command.STOP):
                            m.d.sync += self.st_stop.eq(1)
                            m.next = "WAIT_STOP"
                        with m.Case(Command.WRITE):
                            reply(Command.WRITE, cmd=Command.WRITE)
                            m.next = "WRITE"
                        with m.Case(Command.READ):
                            reply(Command.READ, cmd=Command.READ)
                            m.next = "STORE"
                        with m.Case(Command.REGION_CRC):
                            m.d.comb += crcp.start.eq(1)
                            m.next = "CRC"
                        with m.Case(Command.INPUT):
                            m.d.sync += [in_bad.eq(0), in_k.eq(0)]
                            m.next = "INPUT_MARK"
                        with m.Case(Command.TIMER):
                            m.d.sync += self.period.eq(f[Command.TIMER]["period"])
                            reply(Command.TIMER, cmd=Command.TIMER)
                            m.next = "STORE"
                        with m.Case(Command.PROBE):
                            m.d.sync += self.pr_set.eq(1)
                            reply(Command.PROBE, cmd=Command.PROBE)
                            m.next = "STORE"
                        with m.Case(Command.GENERATORS):
                            reply(Command.GENERATORS, cmd=Command.GENERATORS)
                            m.next = "GEN"
            with m.State("WAIT_STEP"):
                with m.If(self.st_step_done):
                    reply(Command.STEP, cmd=Command.STEP, step=self.st_done_step, busy=0)
                    m.next = "STEP_REPLY"
            with m.State("STEP_REPLY"):
                # busy_last is registered at done: take it one clock later
                m.d.sync += rec.bytes[8 * 5:8 * 9].eq(self.st_busy_last)
                m.next = "STORE"
            with m.State("WAIT_STOP"):
                with m.If(st_idle & ~self.st_stop):
                    reply(Command.STOP, cmd=Command.STOP, step=self.core_step)
                    m.next = "STORE"
            with m.State("CRC"):
                m.d.comb += [rd_active.eq(1), rd_take.eq(rd_have & crcp.i.ready),
                             crcp.i.valid.eq(rd_have)]
                with m.If(rd_done & crcp.i.ready):
                    m.next = "CRC_REPLY"
            with m.State("CRC_REPLY"):
                reply(Command.REGION_CRC, cmd=Command.REGION_CRC, crc=crcp.crc)
                m.next = "STORE"
            with m.State("WRITE"):
                # a word is collected, handed to the port, and the next one collected once the
                # chip has taken it (``w_acc`` is the request's data)
                with m.If(w_issue | mq_valid):
                    with m.If(~mq_valid):
                        issue(1)
                        m.d.sync += w_issue.eq(0)
                with m.Elif(~p_end):
                    take_byte()
                    with m.If(pay.valid):
                        m.d.sync += w_acc.word_select(w_k, 8).eq(pay.payload)
                        with m.If(w_k == wb_last):
                            m.d.sync += [w_k.eq(0), w_issue.eq(1)]
                        with m.Else():
                            m.d.sync += w_k.eq(w_k + 1)
                with m.Else():
                    m.next = "STORE"
            # GENERATORS: gen_prob of each axon word replaced, the rest of the word kept
            with m.State("GEN"):
                with m.If(mq_valid):
                    pass
                with m.Elif(m_zero):
                    m.next = "STORE"
                with m.Else():
                    issue(0)
                    m.next = "GEN_RSP"
            with m.State("GEN_RSP"):
                with m.If(self.mem_rsp.valid):
                    new = Mux(gen["enable"] != 0, gen["prob"], 0)
                    m.d.sync += w_acc.eq(self.mem_rsp.payload)
                    m.d.sync += w_acc[g_lsb:g_lsb + GEN_PROB_BITS].eq(new)
                    m.next = "GEN_WRITE"
            with m.State("GEN_WRITE"):
                # the read was taken before its answer came: the port is free; the address
                # is the word's again
                m.d.sync += [mq_valid.eq(1), mq_addr.eq(mq_addr), mq_write.eq(1)]
                count_word()
                m.next = "GEN"
            with m.State("INPUT_MARK"):
                m.d.sync += [self.st_push.valid.eq(1),
                             self.st_push.p.kind.eq(EntryKind.STEP),
                             self.st_push.p.value.eq(inp["step"])]
                m.next = "INPUT"
            with m.State("INPUT"):
                with m.If(~p_end):
                    take_byte()
                    with m.If(pay.valid):
                        m.d.sync += [in_k.eq(~in_k), in_lo.eq(pay.payload)]
                        axon = Cat(in_lo, pay.payload)
                        with m.If(in_k):
                            # the chip's inject layout: axon, then core
                            m.d.sync += [self.st_push.valid.eq(1),
                                         self.st_push.p.kind.eq(EntryKind.AXON),
                                         self.st_push.p.value.eq(
                                             Cat(axon[:cm.routes.axon_bits],
                                                 inp["core"][:cm.node_bits]))]
                            with m.If(axon >= self.n_axons):
                                m.d.sync += in_bad.eq(1)
                with m.Elif(in_bad):
                    m.d.sync += self.st_abort.eq(1)
                    nak(NakCode.ARGUMENT, True)
                with m.Else():
                    m.d.sync += self.st_commit.eq(1)
                    reply(Command.INPUT, cmd=Command.INPUT)
                    m.next = "STORE"
            with m.State("NAK"):
                reply(None, nak=True, cmd=hdr.cmd, code=verdict, expected=expected)
                m.d.sync += self.nak_made.eq(1)
                with m.If(nak_store):
                    m.next = "STORE"
                with m.Else():
                    m.next = "DRAIN"
            with m.State("STORE"):
                with m.If(replay):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += h_we.eq(1)
                    m.d.sync += hk.eq(hk + 1)
                    with m.If(hk == _REC_WORDS - 1):
                        m.d.sync += [expected.eq(hdr.seq + 1),
                                     filled.eq(Mux(filled == W, W, filled + 1))]
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                m.d.sync += [hlen.eq(rec.len + Mux(reading, count_b, 0)),
                             r_last.eq(rec.len - 1)]
                with m.If(~p_end):
                    take_byte()
                with m.Else():
                    m.next = "SEND_HEADER"
            with m.State("SEND_HEADER"):
                m.d.comb += [self.tx_header.valid.eq(1),
                             self.tx_header.p.version.eq(protocol.VERSION),
                             self.tx_header.p.seq.eq(hdr.seq),
                             self.tx_header.p.cmd.eq(Mux(rec.nak, Command.NAK, Command.ACK)),
                             self.tx_header.p.length.eq(hlen)]
                with m.If(self.tx_header.ready):
                    with m.If(rlive):
                        m.next = "SEND_LIVE"
                    with m.Else():
                        m.next = "SEND_REC"
            # A reply never has 0 bytes: every one starts with its command's code.
            with m.State("SEND_REC"):
                with m.If(~ob_valid):
                    m.d.sync += [ob_valid.eq(1), ridx.eq(ridx + 1),
                                 rec.bytes.eq(rec.bytes >> 8)]
                    with m.If(ridx == r_last):
                        with m.If(reading):
                            m.d.sync += src_rd.eq(1)
                            m.next = "SEND_READ"
                        with m.Else():
                            m.next = "SEND_END"
            with m.State("SEND_LIVE"):
                waits = counter_first_r & ~(fetched & fetched_d)
                m.d.comb += live_sent.eq(~waits & ~ob_valid)
                with m.If(counter_first_r & ~fetched & ~self.sb_done):
                    m.d.sync += self.sb_req.eq(1)
                with m.If(live_sent):
                    m.d.sync += [ob_valid.eq(1), ridx.eq(ridx + 1)]
                    with m.If(ridx == r_last):
                        m.next = "SEND_END"
            with m.State("SEND_READ"):
                m.d.comb += [rd_active.eq(1), rd_take.eq(rd_have & ~ob_valid)]
                with m.If(rd_take):
                    m.d.sync += ob_valid.eq(1)
                with m.If(rd_done):
                    m.next = "SEND_END"
            with m.State("SEND_END"):
                with m.If(~ob_valid):
                    # the last byte has gone to the framer
                    with m.If(do_reset):
                        m.d.sync += self.soft_reset.eq(1)
                        m.next = "RESET"
                    with m.Else():
                        m.next = "IDLE"
            with m.State("RESET"):
                # ``soft_reset`` is high in this clock, a register: its fan-out (the processor,
                # the stepper, the probes, the counters and the output buffer) starts at a
                # flip-flop, not at the reader's counters
                m.d.sync += self.soft_reset.eq(0)
                m.next = "IDLE"
        with m.If(self.sb_done):
            m.d.sync += self.sb_req.eq(0)
        return m
