"""A board in user terms: upload an image, read it back, run steps, collect spikes.

``Board`` sits on ``LinkClient`` (any transport: a serial port, ``socket://`` to a virtual
board). It learns the board's configuration from HELLO (cores, core configuration, routing
table sizes) and refuses to talk to a board whose memory map differs (``memmap_hash``: the
chip's ``spikeforge.routing.ChipMap``, routing tables included). Images travel region by region
at their wire width (``protocol.word_bytes``), every WRITE of an upload in one pipeline;
``upload(verify=True)`` checks every region with ``REGION_CRC`` against the CRC of the bytes
sent; it writes only the spans whose ``REGION_CRC`` differs from the image's (``skip_held``),
so a fresh board or an unchanged region costs a few bytes per span. ``run`` sends the inputs of
each step as ``INPUT`` frames closed by ``END_OF_STEP``, the ``RUN`` command, and gathers the
``SPIKES`` frames of every core into a ``spikeforge.sim.trace.Trace``.
"""

from __future__ import annotations

import time

import numpy as np

from spikeforge import protocol
from spikeforge.image import ChipImage, CoreConfig, CoreImage
from spikeforge.memmap import MemoryMap, Region, TableRegion
from spikeforge.protocol import Command, HelloFlags, StepFlags
from spikeforge.routing import ChipMap, RouterLimits
from spikeforge.sim.chip import input_set
from spikeforge.sim.trace import PROBE_VARS, Trace

from .link import BoardResetError, LinkClient, LinkError, SerialTransport

__all__ = ["Board", "UploadError"]

# Registers last: the step counter and the seeds land after the memories they describe.
_UPLOAD_ORDER = [*list(Region)[1:], Region.REGISTERS]


def _whole(sent):
    """``{(core, region): bytes}`` as ``(core, region, 0, bytes)`` spans (whole regions)."""
    return [(core, region, 0, data) for (core, region), data in sent.items()]


class UploadError(LinkError):
    """A region read back a CRC other than the one of the bytes uploaded."""


def _to_bytes(words, nbytes):
    return b"".join(int(w).to_bytes(nbytes, "little") for w in words)


def _from_bytes(data, nbytes):
    return [int.from_bytes(data[k:k + nbytes], "little") for k in range(0, len(data), nbytes)]


class Board:
    """The board at ``url`` (a pyserial URL) or behind ``transport``.

    ``baud`` sets the line rate (and with it the link timeouts); ``input_queue`` is how many
    input-queue entries ``run`` keeps in flight at most (one per axon event plus one per frame).
    After ``hello()``: ``config`` (each core's ``CoreConfig``), ``n_cores``, ``memmap`` (a
    core's ``MemoryMap``) and ``chipmap`` (the chip's, ``None`` on a board without routing
    tables).
    """

    def __init__(self, url=None, *, baud=3_000_000, transport=None, window=8, tries=3,
                 timeout=None, input_queue=128):
        if transport is None:
            if url is None:
                raise ValueError("give a port URL or a transport")
            transport = SerialTransport(url, baud)
        self.link = LinkClient(transport, baud=baud, window=window, tries=tries,
                               timeout=timeout)
        self.url = transport.url
        self.input_queue = input_queue
        self.info = None
        self.config = None
        self.memmap = None
        self.chipmap = None
        self.n_cores = 1
        self._probe_frames = []

    def close(self):
        self.link.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- identity ---------------------------------------------------------------------------

    def hello(self):
        """Synchronise; returns the HELLO fields. Learns the chip's configuration."""
        info = self.link.hello()
        config = CoreConfig(n_neurons=info["n_neurons"], n_axons=info["n_axons"],
                            weight_bits=info["weight_bits"], delay_bits=info["delay_bits"],
                            lanes=info["lanes"],
                            plastic=bool(info["flags"] & HelloFlags.LEARNING),
                            n_profiles=info["n_profiles"])
        memmap = MemoryMap(config)
        chipmap = None
        if info["route_entries"]:
            chipmap = ChipMap([config] * info["n_cores"],
                              RouterLimits(info["route_entries"], info["fan_out"]))
        want = protocol.memmap_hash(chipmap or memmap)
        if want != info["memmap_hash"]:
            raise LinkError(f"{self.url} has memory map {info['memmap_hash']:#010x}, this host "
                            f"{want:#010x} for {info['n_cores']} x {config}")
        self.info, self.config, self.memmap, self.chipmap = info, config, memmap, chipmap
        self.n_cores = info["n_cores"]
        return info

    def _need_hello(self):
        if self.info is None:
            self.hello()

    def status(self):
        self._need_hello()
        return self.link.request(Command.STATUS)

    def reset(self):
        """RESET the board's control state (the image stays), then HELLO again."""
        self._need_hello()
        try:
            self.link.request(Command.RESET)
        except BoardResetError:
            pass                    # the ACK was lost and the retry found the board reset
        return self.hello()

    # -- images -----------------------------------------------------------------------------

    def _wire_map(self):
        return self.chipmap or self.memmap

    def _as_chip(self, image):
        """``image`` (a ``ChipImage``, or a ``CoreImage`` for a one-core board) checked
        against the board, as a ``ChipImage``."""
        self._need_hello()
        if isinstance(image, CoreImage):
            if self.n_cores != 1:
                raise ValueError(f"{self.url} has {self.n_cores} cores: upload a ChipImage, "
                                 f"not a CoreImage")
            image = ChipImage([image])
        if not isinstance(image, ChipImage):
            raise TypeError(f"image must be a ChipImage or a CoreImage, not {image!r}")
        if len(image.cores) != self.n_cores:
            raise ValueError(f"image has {len(image.cores)} cores, the board {self.n_cores}")
        for core in image.cores:
            if core.config != self.config:
                raise ValueError(f"image is for {core.config}, the board has {self.config}")
        if self.chipmap is None and (len(image.routes) or not all(h.all()
                                                                 for h in image.host_out)):
            raise ValueError(f"{self.url} has no routing tables: routes and host_out cannot "
                             f"be uploaded")
        return image.validate()

    def image_bytes(self, image):
        """``{(core, region): bytes}`` of everything ``upload`` writes for ``image``."""
        chip = self._as_chip(image)
        out = {}
        if self.chipmap is not None:
            for c, (index, dest) in enumerate(self.chipmap.routes.pack(chip)):
                for region, words in ((TableRegion.ROUTE_INDEX, index),
                                      (TableRegion.ROUTE_DEST, dest)):
                    if len(words):
                        out[c, region] = _to_bytes(
                            words, protocol.word_bytes(self.chipmap, region))
        for c, core in enumerate(chip.cores):
            for region in _UPLOAD_ORDER:
                wb = protocol.word_bytes(self.memmap, region)
                out[c, region] = _to_bytes(self.memmap.region_words(core, region), wb)
        return out

    def upload(self, image, verify=True, flush=True, skip_held=True):
        """WRITE every region of ``image`` (a ``ChipImage``: every core and routing table; or
        a ``CoreImage`` on a one-core board), all frames in one pipeline; with ``verify``,
        check each region by CRC. Returns the bytes of words written.

        With ``skip_held`` the host first asks the board for the CRC of each WRITE frame's
        span (``REGION_CRC``, a few bytes each way) and writes only the frames whose CRC
        differs: a board fresh from configuration holds zeros, most of a sparse network's
        image, and a network pushed again after a run differs in the words the run changed
        (weights, traces, state). The registers are always written (they hold
        counters). The check after the writes is the same either way.

        Events routed in the last step of an earlier run wait in the cores' input bitmaps,
        which are not part of the image. With ``flush`` (and routing tables on the board) the
        upload first clears them: it empties the routing tables and runs one step, whose
        state the upload then overwrites. ``flush=False`` skips that (a board fresh from
        reset, or one that never routed an event).
        """
        sent = self.image_bytes(image)
        if flush and self.chipmap is not None:
            self._flush()
        frames = []                  # (core, region, index, data) of each WRITE
        per_frame = self.link.max_payload - protocol.REQUEST[Command.WRITE].size
        for (core, region), data in sent.items():
            wb = protocol.word_bytes(self._wire_map(), region)
            per = per_frame // wb * wb
            frames += [(core, region, k // wb, data[k:k + per]) for k in range(0, len(data), per)]
        if skip_held:
            # A REGION_CRC per frame (about 20 wire bytes against 1 kB: 2 % of the line). Spans
            # of several frames cost fewer queries but rewrite more: a sparse image has a few
            # non-zero words in many frames (a 64-neuron network on the ULX3S preset: 64 of the
            # 516 synapse frames), and with 4 frames a span that push sent 142 kB to the
            # virtual board against 84 kB with one. The registers are always written.
            check = [f for f in frames if f[1] != Region.REGISTERS]
            replies = self.link.pipeline(self._crc_commands(check))
            held = {f[:3] for f, reply in zip(check, replies, strict=True)
                    if reply["crc"] == protocol.crc32(f[3])}
            frames = [f for f in frames if f[:3] not in held]
        cmds = [(Command.WRITE, data, dict(core=core, region=int(region), index=index))
                for core, region, index, data in frames]
        if verify:
            replies = self.link.pipeline(cmds + self._crc_commands(_whole(sent)))
            self._check_crcs(sent, replies[len(cmds):])
        else:
            self.link.pipeline(cmds)
        return sum(len(f[3]) for f in frames)

    def _flush(self):
        wb = protocol.word_bytes(self.chipmap, TableRegion.ROUTE_INDEX)
        empty = bytes(wb * self.config.n_neurons)
        for core in range(self.n_cores):
            self.link.write_region(core, TableRegion.ROUTE_INDEX, 0, empty, wb)
        self.step()

    def _crc_commands(self, spans):
        """REGION_CRC of each ``(core, region, index, data)``: ``data``'s words from ``index``."""
        return [(Command.REGION_CRC, b"",
                 dict(core=core, region=int(region), index=index,
                      count=len(data) // protocol.word_bytes(self._wire_map(), region)))
                for core, region, index, data in spans]

    def _check_crcs(self, sent, replies):
        for ((core, region), data), reply in zip(sent.items(), replies, strict=True):
            if reply["crc"] != protocol.crc32(data):
                name = getattr(region, "name", str(region)).lower()
                raise UploadError(f"{self.url}: region {name} of core {core} does "
                                  f"not verify (board CRC {reply['crc']:#010x}, uploaded "
                                  f"{protocol.crc32(data):#010x})")

    def verify(self, sent):
        """Compare ``REGION_CRC`` of each region with the CRC of its bytes: ``sent`` maps
        ``(core, region)`` (or a region of core 0) to the bytes uploaded."""
        self._need_hello()
        sent = {(k if isinstance(k, tuple) else (0, k)): v for k, v in sent.items()}
        self._check_crcs(sent, self.link.pipeline(self._crc_commands(_whole(sent))))

    def region_crc(self, region, core=0):
        """The board's CRC-32 of the wire bytes of a whole region of ``core``."""
        self._need_hello()
        depth = protocol.link_regions(self._wire_map())[region].depth
        return self.link.request(Command.REGION_CRC, core=core, region=int(region), index=0,
                                 count=depth)["crc"]

    def _read(self, core, region, count):
        wb = protocol.word_bytes(self._wire_map(), region)
        return _from_bytes(self.link.read_region(core, region, 0, count, wb), wb)

    def read_image(self, core=0):
        """Every region of ``core`` read back into a ``CoreImage``."""
        self._need_hello()
        if not 0 <= core < self.n_cores:
            raise ValueError(f"core {core} is out of range [0, {self.n_cores - 1}]")
        words = []
        for region in Region:
            words.extend(self._read(core, region, self.memmap[region].depth))
        return self.memmap.image_from_words(words)

    def read_chip(self):
        """Every core and routing table read back into a ``ChipImage``."""
        self._need_hello()
        cores = [self.read_image(c) for c in range(self.n_cores)]
        if self.chipmap is None:
            return ChipImage(cores)
        tables, layout = [], self.chipmap.routes
        for c in range(self.n_cores):
            index = self._read(c, TableRegion.ROUTE_INDEX, self.config.n_neurons)
            fields = layout.index.unpack(np.asarray(index, dtype=np.uint64))
            used = int((fields["ptr"] + fields["count"])[fields["count"] > 0].max(initial=0))
            tables.append((index, self._read(c, TableRegion.ROUTE_DEST, used) if used else []))
        routes, host_out = layout.unpack(tables)
        return ChipImage(cores, routes, host_out)

    # -- running ----------------------------------------------------------------------------

    def _step_axons(self, item):
        """One step's input as a list of axon arrays, one per core."""
        if self.n_cores == 1:
            return [np.flatnonzero(input_set(self.config.n_axons, item))]
        if item is None:
            return [np.zeros(0, np.int64)] * self.n_cores
        if len(item) != self.n_cores:
            raise ValueError(f"a step's input must list {self.n_cores} cores, not {len(item)}")
        return [np.flatnonzero(input_set(self.config.n_axons, e)) for e in item]

    # -- generators, probes, timer ----------------------------------------------------------

    def generators(self, core, first, count, prob, enable=True):
        """Set ``gen_prob`` of axons ``first .. first + count - 1`` of ``core`` to ``prob``
        (spike odds ``prob / 2^16`` per step; ``enable=False`` writes 0: off)."""
        self._need_hello()
        if not isinstance(prob, int) or not 0 <= prob <= 0xFFFF:
            raise ValueError(f"generator probability {prob!r} is out of range [0, 65535]")
        self.link.request(Command.GENERATORS, core=core, enable=int(bool(enable)),
                          first=first, count=count, prob=prob)

    def timer(self, period):
        """One step every ``period`` clocks (0: back to back); ``status()['timer_overruns']``
        counts steps that took longer."""
        self._need_hello()
        if not isinstance(period, int) or not 0 <= period <= 0xFFFFFFFF:
            raise ValueError(f"timer period {period!r} is out of range [0, 4294967295] clocks")
        self.link.request(Command.TIMER, period=period)

    def probe(self, probe, core=0, region=Region.NEURON, index=0, count=1, period=1):
        """Probe ``probe`` sends ``count`` words of ``region`` of ``core`` from ``index`` as a
        PROBE_DATA frame every ``period`` steps (0: off), from the next step on."""
        self._need_hello()
        n = self.info["n_probes"]
        if not isinstance(probe, int) or not 0 <= probe < n:
            raise ValueError(f"probe {probe!r} is out of range [0, {n - 1}]")
        if not isinstance(period, int) or not 0 <= period <= 255:
            raise ValueError(f"probe period {period!r} is out of range [0, 255] steps")
        self.link.request(Command.PROBE, probe=probe, core=core, region=int(region),
                          period=period, index=index, count=count)

    def _setup_probes(self, probes):
        """Hardware probes (one per core, period 1) covering ``probes`` ``(core, neuron, var)``;
        returns ``[(probe, core, first neuron, count)]``."""
        probes = [tuple(p) for p in probes]
        by_core = {}
        for core, neuron, var in probes:
            if var not in PROBE_VARS:
                raise ValueError(f"probe variable {var!r} is not one of {', '.join(PROBE_VARS)}")
            if not 0 <= core < self.n_cores:
                raise ValueError(f"probe core {core} is out of range [0, {self.n_cores - 1}]")
            if not 0 <= neuron < self.config.n_neurons:
                raise ValueError(f"probe neuron {neuron} is out of range "
                                 f"[0, {self.config.n_neurons - 1}]")
            by_core.setdefault(core, []).append(neuron)
        if len(by_core) > self.info["n_probes"]:
            raise ValueError(f"probes on {len(by_core)} cores; the board has "
                             f"{self.info['n_probes']} probes (one per core)")
        wb = protocol.word_bytes(self.memmap, Region.NEURON)
        most = (self.info["probe_payload"] - protocol.OUTPUT[Command.PROBE_DATA].size) // wb
        plan = []
        for k, (core, neurons) in enumerate(sorted(by_core.items())):
            lo, hi = min(neurons), max(neurons)
            if hi - lo + 1 > most:
                raise ValueError(f"probed neurons {lo}..{hi} of core {core} span "
                                 f"{hi - lo + 1} words; a PROBE_DATA frame holds {most}")
            self.probe(k, core, Region.NEURON, lo, hi - lo + 1, period=1)
            plan.append((k, core, lo, hi - lo + 1))
        return plan

    def _probe_values(self, probes, plan, first, n_steps):
        """The ``(n_steps, len(probes))`` array of probed values from the collected frames."""
        values = np.zeros((n_steps, len(probes)), dtype=np.int64)
        frames = {(f["step"], f["probe"]): f["words"] for f in self._probe_frames}
        layout = self.memmap[Region.NEURON]
        wb = protocol.word_bytes(self.memmap, Region.NEURON)
        where = {core: (k, lo) for k, core, lo, _ in plan}
        for t in range(n_steps):
            for j, (core, neuron, var) in enumerate(probes):
                k, lo = where[core]
                words = frames.get((first + t, k))
                if words is None:
                    raise LinkError(f"{self.url}: no PROBE_DATA of probe {k} for step "
                                    f"{first + t}")
                word = int.from_bytes(words[(neuron - lo) * wb:(neuron - lo + 1) * wb],
                                      "little")
                fields = layout.unpack([word])
                values[t, j] = int(fields[var][0]) if var in fields else 0
        return values

    def step(self):
        """Run one step; returns ``(step, busy clocks, spikes)``: ``spikes`` are the neurons
        that fired on a one-core board, rows ``(core, neuron)`` on a chip of several."""
        self._need_hello()
        status = self.status()
        if status["paced"]:            # the board waits for each step's input: none
            self._send_inputs(status["step"], [self._step_axons(None)])
        reply = self.link.request(Command.STEP)
        spikes = self._collect(reply["step"], 1)
        return reply["step"], reply["busy"], (spikes[:, 2] if self.n_cores == 1
                                              else spikes[:, 1:])

    def run(self, n_steps, inputs=None, timeout=60.0, probes=()):
        """Run ``n_steps`` steps; returns the spikes of every core as a ``Trace``.

        ``probes``: ``(core, neuron, var)`` with ``var`` one of ``v, i, ref, y``, recorded after
        every step into the trace's probe part (as ``GoldenChip.run`` records them), through
        the board's probes (one per probed core, PROBE_DATA frames every step).

        ``inputs``: ``None`` or a sequence of ``n_steps`` items, each the input of one step:
        on a one-core board axon ids or a boolean mask (as ``spikeforge.sim``'s engines take
        them); on a chip of several cores a sequence of one such input per core (as
        ``GoldenChip.step`` takes them).
        """
        self._need_hello()
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, not {n_steps!r}")
        if inputs is not None and len(inputs) != n_steps:
            raise ValueError(f"inputs has {len(inputs)} steps, expected {n_steps}")
        status = self.status()
        t0 = status["step"]
        probes = [tuple(p) for p in probes]
        plan = self._setup_probes(probes) if probes else []
        self._probe_frames = []
        try:
            trace = self._run(t0, n_steps, inputs, timeout, status["paced"])
        finally:
            for k, *_ in plan:
                self.probe(k, period=0)
        if probes:
            trace.probe_names = probes
            trace.probes = self._probe_values(probes, plan, t0, n_steps)
        return trace

    def _run(self, t0, n_steps, inputs, timeout, paced):
        if inputs is None and not paced:
            self.link.request(Command.RUN, steps=n_steps)
            return self._trace(t0, n_steps, self._collect(t0, n_steps, timeout))
        steps = list(inputs) if inputs is not None else [None] * n_steps
        rows, k = [], 0
        while k < n_steps:
            # Keep the board's input queue at most input_queue entries ahead of the run.
            batch, used = [], 0
            while k + len(batch) < n_steps:
                axons = self._step_axons(steps[k + len(batch)])
                cost = sum(len(a) + 1 for a in axons)
                if batch and used + cost > self.input_queue:
                    break
                batch.append(axons)
                used += cost
            self._send_inputs(t0 + k, batch)
            if k == 0:
                # After the first inputs: from now on the board waits for each step's input.
                self.link.request(Command.RUN, steps=n_steps)
            rows.append(self._collect(t0 + k, len(batch), timeout))
            k += len(batch)
        return self._trace(t0, n_steps, np.concatenate(rows))

    def _send_inputs(self, first, batch):
        """INPUT frames for steps ``first ..``: ``batch`` holds one list of per-core axon
        arrays per step; the step's last frame carries ``END_OF_STEP``."""
        per = (self.link.max_payload - protocol.REQUEST[Command.INPUT].size) // 2
        cmds = []
        for j, cores in enumerate(batch):
            frames = []
            for c, axons in enumerate(cores):
                axons = [int(a) for a in axons]
                frames += [(c, axons[i:i + per]) for i in range(0, len(axons), per)]
            frames = frames or [(0, [])]
            for i, (c, chunk) in enumerate(frames):
                end = int(StepFlags.END_OF_STEP) if i == len(frames) - 1 else 0
                cmds.append((Command.INPUT, chunk, dict(step=first + j, core=c, flags=end)))
        self.link.pipeline(cmds)

    def _collect(self, first, n_steps, timeout=60.0):
        """Spike rows ``(step, core, neuron)`` of steps ``first ..`` until ``n_steps`` ended."""
        rows, ended = [], 0
        deadline = time.monotonic() + timeout
        while ended < n_steps:
            while self.link.outputs:
                cmd, fields = self.link.outputs.popleft()
                if cmd == Command.PROBE_DATA:
                    self._probe_frames.append(fields)
                if cmd != Command.SPIKES or not 0 <= fields["step"] - first < n_steps:
                    continue            # e.g. a frame of an earlier session, sent again
                rows.extend((fields["step"], fields["core"], n) for n in fields["neurons"])
                if fields["flags"] & StepFlags.END_OF_STEP:
                    ended += 1
            if ended < n_steps:
                if time.monotonic() > deadline:
                    raise LinkError(f"{self.url}: {ended} of {n_steps} steps from {first} "
                                    f"reported within {timeout} s")
                self.link.poll(0.05)
        return np.array(rows, dtype=np.int64).reshape(-1, 3)

    @staticmethod
    def _trace(first, n_steps, rows):
        rows = rows[np.lexsort((rows[:, 2], rows[:, 1], rows[:, 0]))] if len(rows) else rows
        return Trace(first_step=first, n_steps=n_steps, spikes=rows)
