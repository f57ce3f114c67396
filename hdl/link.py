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

__all__ = ["AckFilter", "CommandProcessor", "STATUS_COUNTERS", "CLEARED_COUNTERS",
           "chip_address"]

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
    """

    i_header: In(stream.Signature(HeaderLayout))
    i_payload: In(stream.Signature(8))
    o_header: Out(stream.Signature(HeaderLayout))
    o_payload: Out(stream.Signature(8))
    ack: Out(1)
    next: Out(8)

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
        with m.FSM():
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
        self.history_stall = 2 * _REC_WORDS + 1     # its clocks on the RAM per command, at most
        c = memmap.config
        super().__init__({
            "header": In(stream.Signature(HeaderLayout)), "payload": In(stream.Signature(8)),
            "tx_header": Out(stream.Signature(HeaderLayout)),
            "tx_payload": Out(stream.Signature(8)),
            "mem_req": Out(stream.Signature(chip_request_layout(chipmap))),
            "mem_rsp": In(stream.Signature(chipmap.data_bits)),
            "st_run": Out(1), "st_run_steps": Out(32), "st_step": Out(1), "st_stop": Out(1),
            "st_push": Out(stream.Signature(Entry)), "st_commit": Out(1), "st_abort": Out(1),
            "st_commit_step": Out(32), "st_commit_end": Out(1),
            "st_state": In(2), "st_idle": In(1), "st_step_done": In(1), "st_done_step": In(32),
            "st_busy_last": In(32), "st_busy_max": In(32), "st_steps_left": In(32),
            "st_input_floor": In(32), "st_last_input": In(32), "st_queued": In(1),
            "st_free": In(32), "st_paced": In(1), "core_step": In(32),
            "out_seq": In(8),
            "rx_start": In(1), "counter": In(32), "soft_reset": Out(1),
            # TIMER and PROBE settings (to the stepper and the probe engine)
            "period": Out(32),
            "pr_set": Out(1), "pr_probe": Out(8), "pr_core": Out(8), "pr_region": Out(8),
            "pr_period": Out(8), "pr_index": Out(32), "pr_count": Out(16),
            "idle": Out(1),
            # the event counters (a ``StatsBank`` of ``STATUS_COUNTERS``): what the processor
            # counts, and one counter read whole for STATUS
            "nak_made": Out(1), "duplicate": Out(1),
            "sb_req": Out(1), "sb_index": Out(range(len(STATUS_COUNTERS))), "sb_done": In(1),
            "sb_value": In(32),
            # the reply history's RAM: ``history_words`` half-words, one clock of read latency
            "hist_addr": Out(range(self.history_words)), "hist_en": Out(1), "hist_we": Out(1),
            "hist_data": Out(16), "hist_q": In(16),
        })
        self.n_axons = c.n_axons

    def elaborate(self, platform):  # noqa: C901 - one FSM, read top to bottom
        m = Module()
        c, cm = self.memmap.config, self.chipmap
        W = self.window
        wb_bits = max(W.bit_length() - 1, 0)
        wbytes = {r: (layout.width + 7) // 8 for r, layout in self.regions.items()}
        max_wb = max(wbytes.values())

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
        ridx = Signal(16)                   # payload bytes consumed, then reply bytes sent
        rk = Signal(range(_REQ_BYTES + 1))  # bytes of ``req`` shifted in
        # The reply: the bytes of a short one (sent LSB first, shifted out), or the length of a
        # HELLO or STATUS reply, whose bytes are made as they are sent (``regen``: made again
        # for a duplicate, never stored); the record is the history's entry as it is.
        rec = Signal(_Record)
        rlive = Signal()                    # HELLO or STATUS bytes made at send time
        replay = Signal()                   # answering a duplicate: no side effects, no store
        do_reset = Signal()

        # The history: ``window`` records of 5 half-words in a block RAM (16 bits wide: the
        # iCE40's 256 x 16 shape), written and recalled one half-word a clock.
        hk = Signal(range(_REC_WORDS + 1))
        slot = hdr.seq[:wb_bits] if wb_bits else Const(0, 1)
        m.d.comb += [self.hist_addr.eq(Cat(hk[:3], slot)),
                     self.hist_data.eq(rec.as_value().word_select(hk[:3], 16))]

        # -- request fields ----------------------------------------------------------------------
        f = {cmd: _fields(REQUEST[cmd], req) for cmd in _KNOWN}
        nfix = Signal(range(_REQ_BYTES + 1))
        with m.Switch(hdr.cmd):
            for cmd in _KNOWN:
                with m.Case(cmd):
                    m.d.comb += nfix.eq(REQUEST[cmd].size)
        take = Signal(range(_REQ_BYTES + 1))    # fixed-field bytes the payload holds

        # Region properties as constant tables, chosen by the request's region field.
        where = f[Command.READ]             # WRITE, READ and REGION_CRC share core/region/index
        prb = f[Command.PROBE]
        gen = f[Command.GENERATORS]
        is_probe = hdr.cmd == Command.PROBE
        region = Signal(8)
        m.d.comb += region.eq(Mux(is_probe, prb["region"], where["region"]))
        ab = max(layout.depth for layout in self.regions.values()).bit_length()
        lb = self.max_payload.bit_length()  # a frame's lengths and counts fit in lb bits
        wb = Signal(range(max_wb + 1))
        depth = Signal(ab)
        most = Signal(lb)                   # the most words a READ or PROBE reply holds
        words_len = Signal(16)              # a WRITE's word bytes, an INPUT's axon bytes
        region_ok = Signal()
        index = Mux(is_probe, prb["index"], where["index"])
        count = Mux(hdr.cmd == Command.READ, where["count"],
                    Mux(is_probe, prb["count"], f[Command.REGION_CRC]["count"]))
        count16 = Mux(is_probe, prb["count"], where["count"])
        with m.Switch(region):
            for r, layout in self.regions.items():
                with m.Case(int(r)):
                    m.d.comb += [wb.eq(wbytes[r]), depth.eq(layout.depth), region_ok.eq(1),
                                 most.eq(Mux(is_probe,
                                             (self.probe_payload - _PROBE_FIXED) // wbytes[r],
                                             (self.max_payload - 1) // wbytes[r]))]

        # Checked a bit a clock while the request is decided (no divider, no multiplier, no
        # wide adder between two registers): a WRITE's words (quotient ``nw``, remainder
        # ``rem`` of its bytes by the word size), a READ's reply bytes (``count_b``), then
        # whether index and count stay in the region (``in_range``) and GENERATORS' axons.
        ck = Signal(range(lb + 3))
        rem = Signal(range(2 * max_wb))
        nw = Signal(lb)
        count_b = Signal(lb + 4)
        in_range = Signal()
        gen_ok = Signal()
        hi = ab                             # index or count bits above: out of every region
        over = (index[hi:] != 0) | (Mux(hdr.cmd == Command.WRITE, 0, count[hi:]) != 0)
        n_words = Mux(hdr.cmd == Command.WRITE, nw, count[:hi])
        limited = hdr.cmd.matches(Command.READ, Command.PROBE)
        checking = Signal()
        is_next = Signal()                  # the number expected
        dup = Signal()                      # one of the last ``filled`` numbers executed
        same_hello = Signal()
        retry = Signal()                    # a HELLO repeated: answered as a duplicate
        span = Signal(hi + 1)               # index + words: the end of the request
        depth_r = Signal(ab)
        short = Signal()                    # no index or count over the largest region
        no_core = Signal()
        core_of = Mux(hdr.cmd == Command.INPUT, f[Command.INPUT]["core"],
                      Mux(is_probe, prb["core"], where["core"]))
        with m.If(checking & (ck < lb)):
            bit = (lb - 1 - ck).as_unsigned()      # MSB first
            r2 = Cat(words_len.bit_select(bit, 1), rem)
            fits = r2 >= wb
            m.d.sync += [rem.eq(Mux(fits, r2 - wb, r2)), nw.eq(Cat(fits, nw)),
                         count_b.eq((count_b << 1) + Mux(count16.bit_select(bit, 1), wb, 0)),
                         ck.eq(ck + 1)]
        with m.Elif(checking & (ck == lb)):
            # where the number stands (``expected`` and ``filled`` change only in DECIDE/STORE)
            dist = (expected - hdr.seq)[:8]
            m.d.sync += [is_next.eq(hdr.seq == expected),
                         dup.eq(synced & (dist != 0) & (dist <= filled)),
                         same_hello.eq((hdr.seq == last_hello_seq)
                                       & (f[Command.HELLO]["client"] == last_hello_client)),
                         no_core.eq(core_of >= self.n_cores), span.eq(index[:hi] + n_words),
                         short.eq(~over & (~limited | (count16 <= most))), depth_r.eq(depth),
                         gen_ok.eq(gen["first"] + gen["count"] <= self.n_axons),
                         ck.eq(ck + 1)]
        with m.Elif(checking & (ck == lb + 1)):
            m.d.sync += [in_range.eq(short & (span <= depth_r)), retry.eq(dup & same_hello),
                         ck.eq(ck + 1)]
        checked = ck == lb + 2      # until the next request: DECIDE and EXEC read them


        inp = f[Command.INPUT]
        n_in = Signal(16)
        m.d.comb += n_in.eq(words_len >> 1)
        # What a command gets refused for, in the order of linkpeer.FakeBoard (BUSY after LENGTH).
        nak_code = Signal(8)
        verdict = Signal(8)
        known = hdr.cmd.matches(*_KNOWN)
        exact = Signal()                    # the payload is the fixed fields, no more
        shorter = Signal()                  # the payload lacks fixed fields
        with m.If(~known):
            m.d.comb += nak_code.eq(NakCode.COMMAND)
        with m.Elif(Mux(hdr.cmd.matches(*_TAILED), shorter, ~exact)):
            m.d.comb += nak_code.eq(NakCode.LENGTH)
        with m.Elif(hdr.cmd.matches(*_BUSY) & ~self.st_idle & ~replay):
            m.d.comb += nak_code.eq(NakCode.BUSY)
        with m.Elif(hdr.cmd.matches(Command.WRITE, Command.READ, Command.REGION_CRC)):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~region_ok):
                m.d.comb += nak_code.eq(NakCode.REGION)
            with m.Elif((hdr.cmd == Command.WRITE) & (rem != 0)):
                m.d.comb += nak_code.eq(NakCode.LENGTH)
            with m.Elif(~in_range):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(hdr.cmd == Command.INPUT):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(words_len[0]):
                m.d.comb += nak_code.eq(NakCode.LENGTH)
            with m.Elif((inp["step"] < self.st_input_floor)
                        | (self.st_queued & (inp["step"] < self.st_last_input))):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(n_in + 1 > self.st_free):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(hdr.cmd == Command.GENERATORS):
            with m.If(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~gen_ok):
                m.d.comb += nak_code.eq(NakCode.RANGE)
        with m.Elif(is_probe):
            with m.If(prb["probe"] >= self.n_probes):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(prb["period"] == 0):
                pass                        # switched off: the other fields do not matter
            with m.Elif(no_core):
                m.d.comb += nak_code.eq(NakCode.CORE)
            with m.Elif(~region_ok):
                m.d.comb += nak_code.eq(NakCode.REGION)
            with m.Elif(prb["count"] == 0):
                m.d.comb += nak_code.eq(NakCode.ARGUMENT)
            with m.Elif(~in_range):
                m.d.comb += nak_code.eq(NakCode.RANGE)

        # -- replies -----------------------------------------------------------------------------
        hello_fields = dict(
            cmd=Command.HELLO, version=protocol.VERSION, window=W, out_window=self.out_window,
            n_cores=self.n_cores,
            flags=int(HelloFlags.GENERATORS | HelloFlags.TIMER
                      | (HelloFlags.LEARNING if c.plastic else 0)),
            route_entries=cm.routes.limits.route_entries, fan_out=cm.routes.limits.fan_out,
            probe_payload=self.probe_payload,
            max_payload=self.max_payload, n_neurons=c.n_neurons, n_axons=c.n_axons,
            weight_bits=c.weight_bits, delay_bits=c.delay_bits, lanes=c.lanes,
            n_profiles=c.n_profiles, n_probes=self.n_probes, out_seq=self.out_seq, nonce=nonce,
            memmap_hash=protocol.memmap_hash(cm), **{k: self.hello.get(k, 0) for k in (
                "clock_hz", "baud", "out_timeout", "build_id")})
        status_fields = dict(
            cmd=Command.STATUS, state=self.st_state, step=self.core_step,
            steps_left=self.st_steps_left, busy_last=self.st_busy_last,
            busy_max=self.st_busy_max, paced=self.st_paced,
            **dict.fromkeys(STATUS_COUNTERS, self.sb_value))

        def reply(which, nak=False, **fields):
            layout = protocol.NAK_PAYLOAD if nak else REPLY[which]
            live = not nak and which in (Command.HELLO, Command.STATUS)
            m.d.sync += [rec.len.eq(layout.size), rec.nak.eq(nak), rlive.eq(live),
                         rec.regen.eq(not nak and which in _REGENERATED)]
            if not live:
                m.d.sync += rec.bytes.eq(_pack(layout, **fields))

        def nak(code):
            reply(None, nak=True, cmd=hdr.cmd, code=code, expected=expected)
            m.d.comb += self.nak_made.eq(1)

        # HELLO and STATUS bytes as they are sent. A STATUS field is sampled whole when its
        # first byte goes (its other bytes from ``hold``), so no multi-byte value is torn. A
        # counter's first byte waits until the bank has read it whole (``fetched``).
        live_byte = Signal(8)
        hold = Signal(24)
        live_sent = Signal()
        counter_first = Signal()            # the byte is a counter's first
        fetched = Signal()
        with m.If(self.sb_done):
            m.d.sync += fetched.eq(1)
        with m.Elif(live_sent):
            m.d.sync += fetched.eq(0)
        # HELLO: constant bytes (one function of the byte index per bit), nonce and out_seq.
        rom = [0] * 64
        with m.If(hdr.cmd == Command.HELLO):
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
        with m.If(hdr.cmd == Command.STATUS):
            with m.Switch(ridx[:6]):
                for off, k in counters.items():
                    with m.Case(off):
                        m.d.comb += [self.sb_index.eq(k), counter_first.eq(1)]
            with m.Switch(ridx[:6]):
                with m.Case(*counters):
                    m.d.comb += live_byte.eq(self.sb_value[:8])
                    with m.If(live_sent):
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
                            with m.If(live_sent):
                                m.d.sync += hold.eq(value[8:8 * n])
                for k, where_k in later.items():
                    with m.Case(*where_k):
                        m.d.comb += live_byte.eq(hold[8 * (k - 1):8 * k])

        # -- memory reader: words of a region as wire bytes, LSB first --------------------------
        rd_left = Signal(ab + 1)
        rd_index = Signal(ab)
        rd_pending = Signal()
        rd_have = Signal()
        rd_k = Signal(range(max_wb + 1))
        rd_word = Signal(8 * max_wb)
        rd_take = Signal()
        rd_active = Signal()
        rd_byte = rd_word[:8]
        rd_done = (rd_left == 0) & ~rd_have & ~rd_pending
        addr = chip_address(m, cm, where["core"], region, rd_index)
        m.d.comb += self.mem_rsp.ready.eq(1)
        with m.If(rd_active & ~rd_have & ~rd_pending & (rd_left != 0)):
            m.d.comb += [self.mem_req.valid.eq(1), self.mem_req.p.addr.eq(addr)]
            with m.If(self.mem_req.ready):
                m.d.sync += [rd_pending.eq(1), rd_index.eq(rd_index + 1)]
        with m.If(self.mem_rsp.valid & rd_pending):
            m.d.sync += [rd_word.eq(self.mem_rsp.payload), rd_have.eq(1), rd_k.eq(0),
                         rd_pending.eq(0)]
        with m.If(rd_take):
            m.d.sync += [rd_word.eq(rd_word >> 8), rd_k.eq(rd_k + 1)]
            with m.If(rd_k == wb - 1):
                m.d.sync += [rd_have.eq(0), rd_left.eq(rd_left - 1)]

        m.submodules.crc = crcp = SerialCRC(bits=4)     # 2 clocks a byte: a third of the XORs
        m.d.comb += crcp.i.payload.eq(rd_byte)

        # -- writer state ----------------------------------------------------------------------
        w_acc = Signal(8 * max_wb)
        w_k = Signal(range(max_wb + 1))
        w_issue = Signal()
        w_index = Signal(ab)
        w_addr = chip_address(m, cm, where["core"], region, w_index)
        g_index = Signal(16)
        g_left = Signal(16)
        g_word = Signal(cm.data_bits)
        g_addr = chip_address(m, cm, gen["core"], Const(int(Region.AXON), 8), g_index)
        g_lsb = self.memmap[Region.AXON].offsets()["gen_prob"][0]
        in_bad = Signal()
        in_lo = Signal(8)
        in_k = Signal()

        # -- the command FSM -----------------------------------------------------------------
        pay = self.payload
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += [self.header.ready.eq(1), self.idle.eq(~self.header.valid)]
                with m.If(self.header.valid):
                    m.d.sync += [hdr.eq(self.header.payload), ridx.eq(0), rk.eq(0),
                                 replay.eq(0), hk.eq(0), ck.eq(0), rem.eq(0), count_b.eq(0)]
                    m.next = "SIZE"
            with m.State("SIZE"):
                m.d.sync += [take.eq(Mux(hdr.length < nfix, hdr.length, nfix)),
                             shorter.eq(hdr.length < nfix), exact.eq(hdr.length == nfix),
                             words_len.eq(hdr.length - REQUEST[Command.WRITE].size)]
                m.next = "COLLECT"
            with m.State("COLLECT"):
                # the fixed fields shift in from the top, zeros past the payload's end
                with m.If(rk == _REQ_BYTES):
                    m.next = "CHECK"
                with m.Elif(ridx[:len(take)] < take):
                    m.d.comb += pay.ready.eq(1)
                    with m.If(pay.valid):
                        m.d.sync += [req.eq(Cat(req[8:], pay.payload)), ridx.eq(ridx + 1),
                                     rk.eq(rk + 1)]
                with m.Else():
                    m.d.sync += [req.eq(req >> 8), rk.eq(rk + 1)]
            with m.State("CHECK"):
                m.d.comb += checking.eq(1)
                with m.If(checked):
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                seq = hdr.seq
                client = f[Command.HELLO]["client"]
                is_hello = (hdr.cmd == Command.HELLO) & exact
                with m.If(hdr.version != protocol.VERSION):
                    nak(NakCode.VERSION)
                    m.next = "DRAIN"
                with m.Elif(is_hello & ~retry):
                    m.d.sync += [synced.eq(1), expected.eq(seq), filled.eq(0),
                                 last_hello_seq.eq(seq), last_hello_client.eq(client)]
                    m.next = "VERDICT"
                with m.Elif(~synced):
                    nak(NakCode.NOT_SYNCED)
                    m.next = "DRAIN"
                with m.Elif(is_next):
                    m.next = "VERDICT"
                with m.Elif(dup):
                    m.d.comb += self.duplicate.eq(1)
                    m.d.sync += hk.eq(0)
                    m.next = "RECALL"
                with m.Else():
                    nak(NakCode.SEQUENCE)
                    m.next = "DRAIN"
            with m.State("RECALL"):
                # half-word hk is read; the one before it arrives (one clock of latency)
                m.d.comb += self.hist_en.eq(1)
                m.d.sync += hk.eq(hk + 1)
                with m.If(hk != 0):
                    m.d.sync += rec.eq(Cat(rec.as_value()[16:], self.hist_q))
                with m.If(hk == _REC_WORDS):
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
                m.d.sync += verdict.eq(nak_code)
                m.next = "EXEC"
            with m.State("EXEC"):
                with m.If(verdict != 0):
                    nak(verdict)
                    m.next = "STORE"
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
                            m.d.comb += [self.st_run.eq(1),
                                         self.st_run_steps.eq(f[Command.RUN]["steps"])]
                            reply(Command.RUN, cmd=Command.RUN, step=self.core_step)
                            m.next = "STORE"
                        with m.Case(Command.STEP):
                            m.d.comb += self.st_step.eq(1)
                            m.next = "WAIT_STEP"
                        with m.Case(Command.STOP):
                            m.d.comb += self.st_stop.eq(1)
                            m.next = "WAIT_STOP"
                        with m.Case(Command.WRITE):
                            m.d.sync += [w_index.eq(index), w_k.eq(0), w_acc.eq(0)]
                            reply(Command.WRITE, cmd=Command.WRITE)
                            m.next = "WRITE"
                        with m.Case(Command.READ):
                            m.d.sync += [rd_index.eq(index), rd_left.eq(count)]
                            reply(Command.READ, cmd=Command.READ)
                            m.next = "STORE"
                        with m.Case(Command.REGION_CRC):
                            m.d.sync += [rd_index.eq(index), rd_left.eq(count)]
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
                            m.d.comb += [self.pr_set.eq(1), self.pr_probe.eq(prb["probe"]),
                                         self.pr_core.eq(prb["core"]),
                                         self.pr_region.eq(prb["region"]),
                                         self.pr_period.eq(prb["period"]),
                                         self.pr_index.eq(prb["index"]),
                                         self.pr_count.eq(prb["count"])]
                            reply(Command.PROBE, cmd=Command.PROBE)
                            m.next = "STORE"
                        with m.Case(Command.GENERATORS):
                            m.d.sync += [g_index.eq(gen["first"]), g_left.eq(gen["count"])]
                            reply(Command.GENERATORS, cmd=Command.GENERATORS)
                            m.next = "GEN"
            with m.State("WAIT_STEP"):
                with m.If(self.st_step_done):
                    reply(Command.STEP, cmd=Command.STEP, step=self.st_done_step,
                          busy=self.st_busy_last + 0)
                    m.next = "STEP_REPLY"
            with m.State("STEP_REPLY"):
                # busy_last is registered at done: take it one clock later
                m.d.sync += rec.bytes[8 * 5:8 * 9].eq(self.st_busy_last)
                m.next = "STORE"
            with m.State("WAIT_STOP"):
                with m.If(self.st_idle):
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
                with m.If(w_issue):
                    m.d.comb += [self.mem_req.valid.eq(1), self.mem_req.p.write.eq(1),
                                 self.mem_req.p.addr.eq(w_addr),
                                 self.mem_req.p.data.eq(w_acc)]
                    with m.If(self.mem_req.ready):
                        m.d.sync += [w_issue.eq(0), w_index.eq(w_index + 1), w_acc.eq(0)]
                with m.Elif(ridx != hdr.length):
                    m.d.comb += pay.ready.eq(1)
                    with m.If(pay.valid):
                        m.d.sync += [w_acc.word_select(w_k, 8).eq(pay.payload),
                                     ridx.eq(ridx + 1)]
                        with m.If(w_k == wb - 1):
                            m.d.sync += [w_k.eq(0), w_issue.eq(1)]
                        with m.Else():
                            m.d.sync += w_k.eq(w_k + 1)
                with m.Else():
                    m.next = "STORE"
            # GENERATORS: gen_prob of each axon word replaced, the rest of the word kept
            with m.State("GEN"):
                with m.If(g_left == 0):
                    m.next = "STORE"
                with m.Else():
                    m.d.comb += [self.mem_req.valid.eq(1), self.mem_req.p.addr.eq(g_addr)]
                    with m.If(self.mem_req.ready):
                        m.next = "GEN_RSP"
            with m.State("GEN_RSP"):
                with m.If(self.mem_rsp.valid):
                    new = Mux(gen["enable"] != 0, gen["prob"], 0)
                    m.d.sync += g_word.eq(self.mem_rsp.payload)
                    m.d.sync += g_word[g_lsb:g_lsb + GEN_PROB_BITS].eq(new)
                    m.next = "GEN_WRITE"
            with m.State("GEN_WRITE"):
                m.d.comb += [self.mem_req.valid.eq(1), self.mem_req.p.write.eq(1),
                             self.mem_req.p.addr.eq(g_addr), self.mem_req.p.data.eq(g_word)]
                with m.If(self.mem_req.ready):
                    m.d.sync += [g_index.eq(g_index + 1), g_left.eq(g_left - 1)]
                    m.next = "GEN"
            with m.State("INPUT_MARK"):
                m.d.comb += [self.st_push.valid.eq(1),
                             self.st_push.p.kind.eq(EntryKind.STEP),
                             self.st_push.p.value.eq(inp["step"])]
                m.next = "INPUT"
            with m.State("INPUT"):
                with m.If(ridx != hdr.length):
                    m.d.comb += pay.ready.eq(1)
                    with m.If(pay.valid):
                        m.d.sync += [ridx.eq(ridx + 1), in_k.eq(~in_k), in_lo.eq(pay.payload)]
                        axon = Cat(in_lo, pay.payload)
                        with m.If(in_k):
                            # the chip's inject layout: axon, then core
                            m.d.comb += [self.st_push.valid.eq(1),
                                         self.st_push.p.kind.eq(EntryKind.AXON),
                                         self.st_push.p.value.eq(
                                             Cat(axon[:cm.routes.axon_bits],
                                                 inp["core"][:cm.node_bits]))]
                            with m.If(axon >= self.n_axons):
                                m.d.sync += in_bad.eq(1)
                with m.Elif(in_bad):
                    m.d.comb += self.st_abort.eq(1)
                    nak(NakCode.ARGUMENT)
                    m.next = "STORE"
                with m.Else():
                    m.d.comb += [self.st_commit.eq(1), self.st_commit_step.eq(inp["step"]),
                                 self.st_commit_end.eq(inp["flags"][0])]
                    reply(Command.INPUT, cmd=Command.INPUT)
                    m.next = "STORE"
            with m.State("STORE"):
                with m.If(replay):
                    m.next = "DRAIN"
                with m.Else():
                    m.d.comb += self.hist_we.eq(1)
                    m.d.sync += hk.eq(hk + 1)
                    with m.If(hk == _REC_WORDS - 1):
                        m.d.sync += [expected.eq(hdr.seq + 1),
                                     filled.eq(Mux(filled == W, W, filled + 1))]
                        m.next = "DRAIN"
            with m.State("DRAIN"):
                with m.If(ridx != hdr.length):
                    m.d.comb += pay.ready.eq(1)
                    with m.If(pay.valid):
                        m.d.sync += ridx.eq(ridx + 1)
                with m.Else():
                    m.next = "SEND_HEADER"
            with m.State("SEND_HEADER"):
                reading = ~rec.nak & (hdr.cmd == Command.READ)
                m.d.comb += [self.tx_header.valid.eq(1),
                             self.tx_header.p.version.eq(protocol.VERSION),
                             self.tx_header.p.seq.eq(hdr.seq),
                             self.tx_header.p.cmd.eq(Mux(rec.nak, Command.NAK, Command.ACK)),
                             self.tx_header.p.length.eq(rec.len + Mux(reading, count_b, 0))]
                m.d.sync += ridx.eq(0)
                with m.If(self.tx_header.ready):
                    m.next = "SEND"
            with m.State("SEND"):
                with m.If(ridx < rec.len):
                    waits = rlive & counter_first & ~fetched
                    m.d.comb += [self.tx_payload.valid.eq(~waits), self.sb_req.eq(waits),
                                 self.tx_payload.payload.eq(Mux(rlive, live_byte, rec.bytes[:8])),
                                 live_sent.eq(~waits & self.tx_payload.ready)]
                    with m.If(live_sent):
                        m.d.sync += [ridx.eq(ridx + 1), rec.bytes.eq(rec.bytes >> 8)]
                with m.Elif(~rec.nak & (hdr.cmd == Command.READ) & ~rd_done):
                    m.d.comb += [rd_active.eq(1), self.tx_payload.valid.eq(rd_have),
                                 self.tx_payload.payload.eq(rd_byte),
                                 rd_take.eq(rd_have & self.tx_payload.ready)]
                with m.Else():
                    with m.If(do_reset):
                        m.d.comb += self.soft_reset.eq(1)
                    m.next = "IDLE"
        return m
