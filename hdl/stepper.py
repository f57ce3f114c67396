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
"""

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from spikeforge.protocol import RunState

__all__ = ["EntryKind", "Entry", "Stepper"]


class EntryKind(enum.Enum, shape=1):
    AXON = 0
    STEP = 1


Entry = data.StructLayout({"kind": EntryKind, "value": 32})


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
    ``done_step``), ``busy_last``/``busy_max`` (clocks from start to done), ``steps_left``,
    ``input_floor`` (the earliest step an INPUT may still target), ``free`` (queue entries free),
    ``run_step`` (the step under way or last run).
    """

    def __init__(self, event_bits, *, input_depth=512):
        if input_depth < 4 or input_depth & (input_depth - 1):
            raise ValueError(f"input depth must be a power of two of at least 4, "
                             f"not {input_depth!r}")
        self.input_depth = input_depth
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
        })

    def elaborate(self, platform):
        m = Module()
        depth = self.input_depth
        pb = depth.bit_length()          # pointers with one extra bit: full != empty
        m.submodules.queue = queue = Memory(shape=Entry, depth=depth, init=[])
        wp = queue.write_port()
        rp = queue.read_port()
        # ``h_ptr`` is the head entry (popped when fed), ``f_ptr`` the next entry to fetch into
        # the ``head`` register: the step's comparisons start from a register, never from the
        # block RAM's output, and the RAM's address is a register too (for timing). A fetch
        # takes the read data only when its address has been steady for a clock and no write
        # could have raced it (a freshly committed entry), so every other clock at best.
        w_ptr, c_ptr, h_ptr, f_ptr = Signal(pb), Signal(pb), Signal(pb), Signal(pb)
        head = Signal(Entry)
        hv = Signal()                    # ``head`` holds entry ``h_ptr``
        loaded = Signal()                # the read port shows entry ``f_ptr``
        pop = Signal()
        fetch = Signal()
        m.d.comb += [fetch.eq((~hv | pop) & loaded & (f_ptr != c_ptr)),
                     rp.addr.eq(f_ptr[:pb - 1]), rp.en.eq(1),
                     wp.addr.eq(w_ptr[:pb - 1]), wp.data.eq(self.push.payload),
                     self.free.eq(depth - (w_ptr - h_ptr)[:pb])]
        m.d.comb += self.push.ready.eq(self.free != 0)
        with m.If(self.push.valid & self.push.ready):
            m.d.comb += wp.en.eq(1)
            m.d.sync += w_ptr.eq(w_ptr + 1)
        m.d.sync += loaded.eq(~fetch & ~wp.en)
        with m.If(fetch):
            m.d.sync += [head.eq(rp.data), hv.eq(1), f_ptr.eq(f_ptr + 1)]
        with m.Elif(pop):
            m.d.sync += hv.eq(0)
        with m.If(pop):
            m.d.sync += h_ptr.eq(h_ptr + 1)

        paced = self.paced                # an INPUT came: each step waits for its input
        # Steps below ``c_step + c_end`` have their whole input queued. Kept as the INPUT's step
        # and flag, so that both comparisons are plain 32-bit ones (no 33-bit sum). ``c_step`` is
        # also the last INPUT's step: an INPUT into a queue that holds entries goes forward (the
        # processor refuses one below ``last_input``), one into an empty queue sets it.
        c_step, c_end = Signal(32), Signal()
        empty = h_ptr == c_ptr
        with m.If(self.commit):
            m.d.sync += [c_ptr.eq(w_ptr), paced.eq(1)]
            # With the queue empty, the frame may start over at an earlier step (after an
            # upload rewound the core's step counter); otherwise steps only go forward.
            later = (self.commit_step > c_step) | ((self.commit_step == c_step)
                                                    & self.commit_end & ~c_end)
            with m.If(empty | later):
                m.d.sync += [c_step.eq(self.commit_step), c_end.eq(self.commit_end)]
        with m.If(self.abort):
            m.d.sync += w_ptr.eq(c_ptr)
        m.d.comb += [self.last_input.eq(c_step), self.queued.eq(~empty)]

        running = Signal()               # RUN in force
        infinite = Signal()
        left = Signal(32)
        pending = Signal()               # a STEP waits or runs
        stop_req = Signal()
        in_step = Signal()               # feeding or running a step (the core's step is taken)
        stalled = Signal()
        busy = Signal(32)
        t = self.core_step
        # The step under way, latched at its start: a chip's step counter moves on when its
        # cores finish, before the barrier closes the step.
        run_step = Signal(32)
        since = Signal(32, init=0xFFFFFFFF)   # clocks since the last start (saturating)
        with m.If(since != 0xFFFFFFFF):
            m.d.sync += since.eq(since + 1)
        m.d.comb += self.run_step.eq(run_step)
        # ``left`` is 0 in an endless run (RUN 0 loads it, nothing counts it down)
        m.d.comb += [self.steps_left.eq(left),
                     self.input_floor.eq(Mux(in_step, run_step + 1, t))]
        with m.If(self.run):
            m.d.sync += [running.eq(1), infinite.eq(self.run_steps == 0),
                         left.eq(self.run_steps), stop_req.eq(0)]
        with m.If(self.step):
            m.d.sync += pending.eq(1)
        want = (running & (infinite | (left != 0))) | pending

        # the head is known: in the register, or there is none (still being fetched: wait)
        known = hv | (f_ptr == c_ptr)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(self.stop):
                    m.d.sync += running.eq(0)
                with m.Elif(want & ~self.core_busy & self.room):
                    with m.If(~paced | (t < c_step) | (c_end & (t == c_step))):
                        m.d.sync += [in_step.eq(1), run_step.eq(t)]
                        m.d.comb += self.stall.eq(stalled)
                        m.d.sync += stalled.eq(0)
                        m.next = "FEED"
                    with m.Else():
                        m.d.sync += stalled.eq(1)
            with m.State("FEED"):
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                ours = hv & ((head.kind == EntryKind.AXON) | (head.value <= t))
                m.d.comb += [self.spike_in.payload.eq(head.value),
                             self.spike_in.valid.eq(ours & (head.kind == EntryKind.AXON))]
                with m.If(ours & ((head.kind == EntryKind.STEP) | self.spike_in.ready)):
                    m.d.comb += pop.eq(1)
                # With a period, a step starts ``period`` clocks after the previous one.
                with m.If(known & ~ours & ((self.period == 0) | (since >= self.period))):
                    m.d.comb += [self.start.eq(1), self.begin.eq(1)]
                    m.d.sync += [busy.eq(0), since.eq(1)]
                    m.next = "BUSY"
            with m.State("BUSY"):
                m.d.sync += busy.eq(busy + 1)
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                with m.If(self.core_done):
                    m.d.comb += self.end.eq(1)
                    m.next = "POST"
            with m.State("POST"):
                # The step's output (probes, last spike frames) is being written out.
                with m.If(self.stop):
                    m.d.sync += stop_req.eq(1)
                with m.If(~self.post_busy):
                    m.d.comb += [self.step_done.eq(1), self.done_step.eq(run_step)]
                    m.d.sync += [self.busy_last.eq(busy), pending.eq(0), in_step.eq(0)]
                    with m.If(busy > self.busy_max):
                        m.d.sync += self.busy_max.eq(busy)
                    with m.If((self.period != 0) & (since > self.period)):
                        m.d.comb += self.overrun.eq(1)
                    with m.If(running & ~infinite & ~pending):
                        m.d.sync += left.eq(left - 1)
                        with m.If(left == 1):
                            m.d.sync += running.eq(0)
                    with m.If(self.stop | stop_req):
                        m.d.sync += [running.eq(0), stop_req.eq(0)]
                    m.next = "IDLE"
        m.d.comb += [self.state.eq(Mux(running, RunState.RUNNING,
                                       Mux(pending, RunState.STEPPING, RunState.IDLE))),
                     self.idle.eq(~running & ~pending & ~in_step)]
        return m
