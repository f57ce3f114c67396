"""When a core's timestep may start, and the input events it gets.

``Stepper`` runs steps one at a time on a ``Core``: for ``STEP`` once, for ``RUN n`` ``n`` times
(0: until ``STOP``). A step ``t`` starts when the core is idle, the output buffer has room for its
spikes (``room``) and, once the host has sent any ``INPUT`` (*paced* mode), the host has declared
step ``t``'s input complete: an ``INPUT`` with ``END_OF_STEP`` for ``t``, or any ``INPUT`` for a
later step. Waiting for input is a *stall* (``stall`` pulses when a step that waited starts).

The input queue holds entries ``STEP(s)`` (the axons after it belong to step ``s``) and
``AXON(a)``. Queued INPUTs go forward in steps (``last_input`` is the step of the last one,
which binds while ``queued``: the queue holds entries). The command processor pushes the
entries of one ``INPUT`` frame and then commits them (or aborts: nothing of a refused frame is
ever seen). Before starting step ``t`` the stepper pops every entry up to the first ``STEP(s)`` with
``s > t`` and gives the axons to the core. The head entry is fetched into a register first (at
most one entry every other clock), so that no comparison starts at the block RAM's output.

Queue words are 16 bits (one iCE40 block RAM at 256 entries): ``AXON(a)`` is ``0, a`` (15
bits); a step is kept as the chunks in which it differs from the step before it in the queue
(``c_step``, the last committed INPUT's step, on the writing side; ``s_base``, the last step
fetched, on the reading side: the same value for the same entry). ``STEP`` words are ``1, k,
chunk``: ``k`` 0 sets bits 0..12 of the step (the higher bits stay), ``k`` 1 sets bits 13..25 and
clears the lower ones, ``k`` 2 sets bits 26..31 and clears the lower ones. A step takes one word,
or two or three when its high bits change (every 8,192 steps); a word with lower bits cleared is
a step of no axons at most the step itself, which changes nothing. The extra words go out of a
two-word stash on the next clocks (the processor pushes at most every other clock, and not on
the clock after a ``STEP``; a push into a busy stash still queues behind it); ``free`` keeps two
entries in reserve for them.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from spikeforge.protocol import RunState

from .outbuf import RingMemory
from .target import is_ice40

__all__ = ["EntryKind", "Entry", "Stepper"]


class EntryKind(enum.Enum, shape=1):
    AXON = 0
    STEP = 1


Entry = data.StructLayout({"kind": EntryKind, "value": 32})

_WORD = 16                   # bits of a queue word
_CHUNK = 13                  # step bits of a STEP word
_HI = 2 * _CHUNK             # the third chunk: bits 26..31


class Stepper(wiring.Component):
    """Step control for one core; ``input_depth`` entries of input queue (a power of two).

    A step: ``FEED`` (the queued input of the step goes into the chip), ``start`` (at least
    ``period`` clocks after the previous start when ``period`` is not 0), ``BUSY`` until the
    chip's barrier (``core_done``; ``end`` pulses), ``POST`` while ``post_busy`` (the step's
    probes and last output frames are written), then ``step_done``. A step that ends more than
    ``period`` clocks after its start is an overrun (``overrun`` pulses with ``step_done``; the
    SoC's ``StatsBank`` counts it, and ``stall``).

    Control (from the command processor): ``run`` with ``run_steps``, ``step`` and ``stop``
    pulses; ``push`` entries then ``commit`` (with ``commit_step`` and ``commit_end``, the INPUT's
    step and END_OF_STEP flag) or ``abort``. Status: ``state`` (``RunState``), ``idle`` (no run,
    no step pending, none in progress), ``step_done`` (one clock at the end of each step, with
    ``done_step``), ``busy_last``/``busy_max`` (clocks from start to the barrier, set at the
    barrier), ``steps_left``, ``input_floor`` (the earliest step an INPUT may still target),
    ``free`` (entries an INPUT may still push, its STEP included), ``run_step`` (the step under
    way or last run).

    ``wake`` is high in every clock after which a register may change (``spikeforge.hdl.gating``).
    The clocks since the last start (the step timer, which moves on every clock) count in clock
    domain ``timer_domain`` (the SoC's ungated clock).
    """

    def __init__(self, event_bits, *, input_depth=512, queue_banks=None, fast=None,
                 timer_domain="sync"):
        if input_depth < 4 or input_depth & (input_depth - 1):
            raise ValueError(f"input depth must be a power of two of at least 4, "
                             f"not {input_depth!r}")
        if event_bits > _WORD - 1:
            raise ValueError(f"an input event of {event_bits} bits does not fit a queue word")
        self.input_depth = input_depth
        self.queue_banks = queue_banks
        self.fast = fast
        self.timer_domain = timer_domain
        super().__init__({
            "run": In(1), "run_steps": In(32), "step": In(1), "stop": In(1),
            "push": In(stream.Signature(Entry)), "commit": In(1), "abort": In(1),
            "commit_step": In(32), "commit_end": In(1),
            "state": Out(2), "idle": Out(1), "step_done": Out(1),
            "done_step": Out(32), "busy_last": Out(32), "busy_max": Out(32),
            "steps_left": Out(32), "input_floor": Out(32), "last_input": Out(32),
            "queued": Out(1),
            "free": Out(range(input_depth + 1)), "stall": Out(1),
            # core side
            "spike_in": Out(stream.Signature(event_bits)), "start": Out(1),
            "core_busy": In(1), "core_done": In(1), "core_step": In(32),
            # output side: room for one more step; begin marks the step's start, end the
            # chip's barrier; the step is over when post_busy (probes, frames) falls
            "room": In(1), "begin": Out(1), "end": Out(1), "post_busy": In(1),
            "run_step": Out(32),
            # the step timer: clocks from start to start (0: back to back)
            "period": In(32), "overrun": Out(1), "paced": Out(1),
            "wake": Out(1),
        })

    def elaborate(self, platform):  # noqa: C901 - one controller, read top to bottom
        m = Module()
        depth = self.input_depth
        pb = depth.bit_length()          # pointers with one extra bit: full != empty
        # read in one clock (an iCE40's block RAM) or two (banks of LUT RAM): ``RingMemory``
        queue = RingMemory(m, "queue", _WORD, depth, platform, banks=self.queue_banks)

        def step_word(k, chunk):
            return Cat(chunk, Const(0, _CHUNK - len(chunk)), Const(k, 2), Const(1, 1))

        # -- writing: a push goes to the RAM, or behind the stash ------------------------------
        # ``w_ptr`` counts words written, ``w_ptr + n_st`` words accepted (the stash's included)
        w_ptr, c_ptr, h_ptr, f_ptr = Signal(pb), Signal(pb), Signal(pb), Signal(pb)
        st0, st1 = Signal(_WORD), Signal(_WORD)
        n_st = Signal(range(3))
        c_step, c_end = Signal(32), Signal()
        fast = (not is_ice40(platform)) if self.fast is None else self.fast
        value = self.push.payload.value
        is_step = self.push.payload.kind == EntryKind.STEP
        pushed = self.push.valid
        # a STEP's words: which chunks differ from ``c_step`` (steady since the last commit)
        need2 = value[_HI:] != c_step[_HI:]
        need1 = value[_CHUNK:] != c_step[_CHUNK:]
        if fast:
            # Off an iCE40, the push is registered (for timing) and written a clock later; a
            # commit on that clock takes it too (``accepted``).
            value, is_step, pushed = Signal(32), Signal(), Signal()
            need1_r, need2_r = Signal(), Signal()
            m.d.sync += [value.eq(self.push.payload.value), pushed.eq(self.push.valid),
                         is_step.eq(self.push.payload.kind == EntryKind.STEP),
                         need1_r.eq(need1), need2_r.eq(need2)]
            need1, need2 = need1_r, need2_r
        w_k0 = step_word(0, value[:_CHUNK])
        w_k1 = step_word(1, value[_CHUNK:_HI])
        w_k2 = step_word(2, value[_HI:])
        w_axon = Cat(value[:_WORD - 1], Const(0, 1))
        first = Mux(is_step, Mux(need2, w_k2, Mux(need1, w_k1, w_k0)), w_axon)
        # the word written this clock (``w_ptr`` counts it); off an iCE40 the RAM takes it a
        # clock later (``w_late``), for timing
        w_en, w_data = Signal(), Signal(_WORD)
        m.d.comb += [w_data.eq(Mux(n_st != 0, st0, first)), w_en.eq((n_st != 0) | pushed),
                     self.push.ready.eq(1)]
        w_late = Signal()
        if fast:
            m.d.sync += [queue.w_addr.eq(w_ptr[:pb - 1]), queue.w_data.eq(w_data),
                         queue.w_en.eq(w_en), w_late.eq(w_en)]
        else:
            m.d.comb += [queue.w_addr.eq(w_ptr[:pb - 1]), queue.w_data.eq(w_data),
                         queue.w_en.eq(w_en)]
        with m.If(w_en):
            m.d.sync += w_ptr.eq(w_ptr + 1)
        n_next = Signal(range(3))         # ``n_st`` after this clock
        same = Signal()                   # the frame's STEP is ``c_step`` (set as it is pushed)
        with m.If(self.push.valid & (self.push.payload.kind == EntryKind.STEP)):
            m.d.sync += same.eq(self.push.payload.value == c_step)
        with m.Switch(n_st):
            with m.Case(0):
                with m.If(pushed & is_step):
                    m.d.sync += [st0.eq(Mux(need2, w_k1, w_k0)), st1.eq(w_k0)]
                    m.d.comb += n_next.eq(Mux(need2, 2, need1))
            with m.Case(1):
                m.d.sync += st0.eq(w_axon)
                m.d.comb += n_next.eq(pushed)
            with m.Case(2):
                m.d.sync += [st0.eq(st1), st1.eq(w_axon)]
                m.d.comb += n_next.eq(Mux(pushed, 2, 1))
        m.d.sync += n_st.eq(n_next)
        # words accepted once this clock's are in
        accepted = (w_ptr + w_en + n_next)[:pb]
        used = Signal(pb)
        m.d.sync += used.eq(w_ptr + n_st - h_ptr)
        # ``used`` and ``free`` registered (for timing): the processor reads ``free`` as an
        # INPUT's header arrives, long after the previous INPUT's last push
        m.d.sync += self.free.eq(Mux(used > depth - 2, 0, depth - 2 - used))

        # -- reading: ``h_ptr`` is the head entry (popped when fed), ``f_ptr`` the next word to
        # fetch into the ``head`` registers: the step's comparisons start from a register, never
        # from the block RAM's output, and the RAM's address is a register too (for timing). A
        # fetch takes the read data only when its address has been steady for a clock and no
        # write could have raced it, so every other clock at best (every third with a read
        # latency of two).
        h_step = Signal()                # the head is a STEP: its step is ``s_base``
        h_axon = Signal(_WORD - 1)
        s_base = Signal(32)              # the step of the last STEP word fetched
        hv = Signal()                    # the head registers hold entry ``h_ptr``
        loaded = Signal()                # the read port shows entry ``f_ptr``
        pop = Signal()
        fetch = Signal()
        word = queue.r_data
        # (into empty head registers only: a pop and the next fetch are a clock apart, which
        # the read latency asks for anyway)
        # ``avail``: entry ``f_ptr`` is committed and written; registered (for timing), which is
        # safe: ``loaded`` is low for a clock after every fetch, and pointers only move up
        avail = Signal()
        m.d.sync += avail.eq((f_ptr != c_ptr) & (f_ptr != w_ptr))
        m.d.comb += [fetch.eq(~hv & loaded & avail),
                     queue.r_addr.eq(f_ptr[:pb - 1])]
        # the address held and no word written for the read latency
        steady = ~fetch & ~w_en & ~w_late
        if queue.latency == 1:
            m.d.sync += loaded.eq(steady)
        else:
            steady1 = Signal()
            m.d.sync += [steady1.eq(steady), loaded.eq(steady1 & steady)]
        with m.If(pop):
            m.d.sync += hv.eq(0)
        with m.If(fetch):
            m.d.sync += [h_step.eq(word[-1]), h_axon.eq(word[:-1]), hv.eq(1),
                         f_ptr.eq(f_ptr + 1)]
            k, chunk = word[_CHUNK:_CHUNK + 2], word[:_CHUNK]
            with m.If(word[-1]):
                with m.Switch(k):
                    with m.Case(0):
                        m.d.sync += s_base[:_CHUNK].eq(chunk)
                    with m.Case(1):
                        m.d.sync += s_base[:_HI].eq(Cat(Const(0, _CHUNK), chunk))
                    with m.Default():
                        m.d.sync += s_base.eq(Cat(Const(0, _HI), chunk[:32 - _HI]))
        with m.If(pop):
            m.d.sync += h_ptr.eq(h_ptr + 1)

        paced = self.paced                # an INPUT came: each step waits for its input
        # Steps below ``c_step + c_end`` have their whole input queued. Kept as the INPUT's step
        # and flag. ``c_step`` is
        # the last committed INPUT's step (the queue's STEP words are written relative to it): an
        # INPUT into a queue that holds entries goes forward (the processor refuses one below
        # ``last_input``), one into an empty queue may start over at an earlier step (after an
        # upload rewound the core's step counter).
        empty = h_ptr == c_ptr
        with m.If(self.commit):
            m.d.sync += [c_ptr.eq(accepted), paced.eq(1), c_step.eq(self.commit_step),
                         c_end.eq(Mux(~empty & same, c_end | self.commit_end, self.commit_end))]
        with m.If(self.abort):
            m.d.sync += [w_ptr.eq(c_ptr), n_st.eq(0)]
        m.d.comb += [self.last_input.eq(c_step), self.queued.eq(~empty)]

        running = Signal()               # RUN in force
        left = Signal(32)                # steps left; 0 while running: an endless run
        pending = Signal()               # a STEP waits or runs
        stop_req = Signal()
        in_step = Signal()               # feeding or running a step (the core's step is taken)
        stalled = Signal()
        t = self.core_step
        # The step under way, latched at its start: a chip's step counter moves on when its
        # cores finish, before the barrier closes the step.
        run_step = Signal(32)
        # Clocks since the last start; bit 32 sticks (a step of 2^32 clocks or more). It is also
        # the step's busy clocks at the barrier.
        since = Signal(33, init=1 << 32)
        td = self.timer_domain
        with m.If(~since[32]):
            m.d[td] += since.eq(since + 1)
        # For timing, registered: ``reached`` is ``since >= period`` (from ``since + 1`` the clock
        # before; not valid on the clock after a start, which is in BUSY), ``past`` is
        # ``since > period`` (``reached`` a clock later).
        reached, past = Signal(), Signal()
        m.d[td] += [reached.eq(since + ~since[32] >= self.period), past.eq(reached)]
        # ``busy_max`` follows ``busy_last`` a clock later
        with m.If(self.busy_last > self.busy_max):
            m.d.sync += self.busy_max.eq(self.busy_last)
        m.d.comb += [self.run_step.eq(run_step), self.done_step.eq(run_step),
                     self.spike_in.payload.eq(h_axon)]
        # ``left`` is 0 in an endless run (RUN 0 loads it, nothing counts it down). While a step
        # is under way the core's step is ``run_step`` until its cores finish, then one more:
        # bit 0 tells which.
        m.d.comb += [self.steps_left.eq(left),
                     self.input_floor.eq(t + (in_step & (t[0] == run_step[0])))]
        with m.If(self.run):
            m.d.sync += [running.eq(1), left.eq(self.run_steps), stop_req.eq(0)]
        with m.If(self.step):
            m.d.sync += pending.eq(1)
        # a finite run stops as its last step ends, so ``left`` is never 0 in one
        want = running | pending

        # ``t < c_step + c_end``: the carry out of ``c_step + ~t + c_end`` (``c_end`` enters as
        # the carry of a low bit added to itself)
        # Registered, and not trusted on the clock after a commit (which may lower it).
        complete, committed = Signal(), Signal()
        m.d.sync += [complete.eq(~paced | (Cat(c_end, c_step) + Cat(c_end, ~t))[33]),
                     committed.eq(self.commit)]
        # ``s_base <= t``, registered: ``settled`` once it has seen the last fetch (the core's
        # step ``t`` holds still while a step is fed)
        s_le_t, settled = Signal(), Signal()
        m.d.sync += [s_le_t.eq(s_base <= t), settled.eq(~fetch)]
        # The head is known: in the registers, or there is none (still being fetched: wait).
        # ``drained`` is registered: a clock late after a commit, which while a step is fed holds
        # only later steps (``input_floor``), so no entry of the step is missed.
        drained = Signal()
        m.d.sync += drained.eq(f_ptr == c_ptr)
        known = hv | drained
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.stop):
                    m.d.sync += running.eq(0)
                with m.Elif(want & ~self.core_busy & self.room):
                    with m.If(complete & ~committed):
                        m.d.sync += [in_step.eq(1), run_step.eq(t)]
                        m.d.comb += self.stall.eq(stalled)
                        m.d.sync += stalled.eq(0)
                        m.next = "FEED"
                    with m.Else():
                        m.d.sync += stalled.eq(1)
            with m.State("FEED"):
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                ours = hv & (~h_step | (settled & s_le_t))
                m.d.comb += self.spike_in.valid.eq(ours & ~h_step)
                with m.If(ours & (h_step | self.spike_in.ready)):
                    m.d.comb += pop.eq(1)
                # With a period, a step starts ``period`` clocks after the previous one.
                with m.If(settled & known & ~ours & reached):
                    m.d.comb += [self.start.eq(1), self.begin.eq(1)]
                    m.d[td] += since.eq(1)
                    m.next = "BUSY"
            with m.State("BUSY"):
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                with m.If(self.core_done):
                    m.d.comb += self.end.eq(1)
                    m.d.sync += self.busy_last.eq(since)
                    m.next = "POST"
            with m.State("POST"):
                # The step's output (probes, last spike frames) is being written out.
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                with m.If(~self.post_busy):
                    m.d.comb += self.step_done.eq(1)
                    m.d.sync += [pending.eq(0), in_step.eq(0)]
                    with m.If((self.period != 0) & past):
                        m.d.comb += self.overrun.eq(1)
                    with m.If(running & (left != 0) & ~pending):
                        m.d.sync += left.eq(left - 1)
                        with m.If(left == 1):
                            m.d.sync += running.eq(0)
                    with m.If(self.stop | stop_req):
                        m.d.sync += [running.eq(0), stop_req.eq(0)]
                    m.next = "IDLE"
        m.d.comb += [self.state.eq(Mux(running, RunState.RUNNING,
                                       Mux(pending, RunState.STEPPING, RunState.IDLE))),
                     self.idle.eq(~running & ~pending & ~in_step)]

        # At rest: no control pulse or push, no word being written or fetched, and waiting: in
        # IDLE for a run (or for the chip and the output buffer, or, stalled, for an INPUT), in
        # BUSY for the barrier, in POST for the output. The registered comparisons, ``free``
        # and ``busy_max`` follow a clock or two late (``SETTLE``); the core's step moves only
        # before the barrier or by a memory write (the processor is awake), the step timer
        # counts in its own domain and is read only in FEED.
        control = Cat(self.run, self.step, self.stop, self.push.valid, self.commit, self.abort)
        writing = (n_st != 0) | pushed | w_late
        fetching = fetch | ~loaded
        m.d.comb += self.wake.eq(
            control.any() | writing | fetching | fsm.ongoing("FEED")
            | (fsm.ongoing("IDLE") & want & ~self.core_busy & self.room
               & ((complete & ~committed) | ~stalled))
            | (fsm.ongoing("BUSY") & self.core_done)
            | (fsm.ongoing("POST") & ~self.post_busy))
        return m
