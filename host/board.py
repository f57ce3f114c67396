"""A board in user terms: upload an image, read it back, run steps, collect spikes.

``Board`` sits on ``LinkClient`` (any transport: a serial port, ``socket://`` to a virtual
board). It learns the board's core configuration from HELLO and refuses to talk to a board
whose memory map differs (``memmap_hash``). Images travel region by region at their wire width
(``protocol.word_bytes``); ``upload(verify=True)`` checks every region with ``REGION_CRC``
against the CRC of the bytes sent. ``run`` sends the inputs of each step as ``INPUT`` frames
closed by ``END_OF_STEP``, the ``RUN`` command, and gathers the ``SPIKES`` frames into a
``spikeforge.sim.trace.Trace``.
"""

from __future__ import annotations

import time

import numpy as np

from spikeforge import protocol
from spikeforge.image import CoreConfig, CoreImage
from spikeforge.memmap import MemoryMap, Region
from spikeforge.protocol import Command, HelloFlags, StepFlags
from spikeforge.sim.chip import input_set
from spikeforge.sim.trace import Trace

from .link import LinkClient, LinkError, SerialTransport

__all__ = ["Board", "UploadError"]

# Registers last: the step counter and the seeds land after the memories they describe.
_UPLOAD_ORDER = [*list(Region)[1:], Region.REGISTERS]


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
        self._paced = False

    def close(self):
        self.link.transport.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- identity ---------------------------------------------------------------------------

    def hello(self):
        """Synchronise; returns the HELLO fields. Learns the core configuration."""
        info = self.link.hello()
        config = CoreConfig(n_neurons=info["n_neurons"], n_axons=info["n_axons"],
                            weight_bits=info["weight_bits"], delay_bits=info["delay_bits"],
                            lanes=info["lanes"],
                            plastic=bool(info["flags"] & HelloFlags.LEARNING),
                            n_profiles=info["n_profiles"])
        memmap = MemoryMap(config)
        if protocol.memmap_hash(memmap) != info["memmap_hash"]:
            raise LinkError(f"{self.url} has memory map {info['memmap_hash']:#010x}, this host "
                            f"{protocol.memmap_hash(memmap):#010x} for {config}")
        if self.info is not None and info["nonce"] != self.info["nonce"]:
            self._paced = False              # the board was reset: its input queue is new
        self.info, self.config, self.memmap = info, config, memmap
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
        self.link.request(Command.RESET)
        self._paced = False
        return self.hello()

    # -- images -----------------------------------------------------------------------------

    def _check_image(self, image):
        self._need_hello()
        if not isinstance(image, CoreImage):
            raise TypeError(f"image must be a CoreImage, not {image!r}")
        if image.config != self.config:
            raise ValueError(f"image is for {image.config}, the board has {self.config}")

    def upload(self, image, verify=True):
        """WRITE every region of ``image`` to core 0; with ``verify``, check each by CRC."""
        self._check_image(image)
        image.validate()
        sent = {}
        for region in _UPLOAD_ORDER:
            wb = protocol.word_bytes(self.memmap, region)
            data = _to_bytes(self.memmap.region_words(image, region), wb)
            self.link.write_region(0, region, 0, data, wb)
            sent[region] = data
        if verify:
            self.verify(sent)

    def verify(self, sent):
        """Compare ``REGION_CRC`` of each region with the CRC of ``sent[region]`` (bytes)."""
        replies = self.link.pipeline([
            (Command.REGION_CRC, b"",
             dict(core=0, region=int(r), index=0,
                  count=len(data) // protocol.word_bytes(self.memmap, r)))
            for r, data in sent.items()])
        for (region, data), reply in zip(sent.items(), replies, strict=True):
            if reply["crc"] != protocol.crc32(data):
                raise UploadError(f"{self.url}: region {region.name.lower()} of core 0 does "
                                  f"not verify (board CRC {reply['crc']:#010x}, uploaded "
                                  f"{protocol.crc32(data):#010x})")

    def region_crc(self, region):
        """The board's CRC-32 of the wire bytes of a whole region of core 0."""
        self._need_hello()
        depth = self.memmap[region].depth
        return self.link.request(Command.REGION_CRC, core=0, region=int(region), index=0,
                                 count=depth)["crc"]

    def read_image(self):
        """Every region of core 0 read back into a ``CoreImage``."""
        self._need_hello()
        words = []
        for region in Region:
            wb = protocol.word_bytes(self.memmap, region)
            data = self.link.read_region(0, region, 0, self.memmap[region].depth, wb)
            words.extend(_from_bytes(data, wb))
        return self.memmap.image_from_words(words)

    # -- running ----------------------------------------------------------------------------

    def step(self):
        """Run one step; returns ``(step, busy clocks, neurons that fired)``."""
        self._need_hello()
        if self._paced:
            self._send_inputs(self.status()["step"], [None])
        reply = self.link.request(Command.STEP)
        spikes = self._collect(reply["step"], 1)
        return reply["step"], reply["busy"], spikes[:, 2]

    def run(self, n_steps, inputs=None, timeout=60.0):
        """Run ``n_steps`` steps; returns their spikes as a ``Trace``.

        ``inputs``: ``None`` or a sequence of ``n_steps`` items, each the input of one step
        (axon ids or a boolean mask, as ``spikeforge.sim``'s engines take them).
        """
        self._need_hello()
        if not isinstance(n_steps, int) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer, not {n_steps!r}")
        if inputs is not None and len(inputs) != n_steps:
            raise ValueError(f"inputs has {len(inputs)} steps, expected {n_steps}")
        t0 = self.status()["step"]
        if inputs is None and not self._paced:
            self.link.request(Command.RUN, steps=n_steps)
            return self._trace(t0, n_steps, self._collect(t0, n_steps, timeout))
        steps = list(inputs) if inputs is not None else [None] * n_steps
        rows, k = [], 0
        while k < n_steps:
            # Keep the board's input queue at most input_queue entries ahead of the run.
            batch, used = [], 0
            while k + len(batch) < n_steps:
                axons = np.flatnonzero(input_set(self.config.n_axons, steps[k + len(batch)]))
                if batch and used + len(axons) + 1 > self.input_queue:
                    break
                batch.append(axons)
                used += len(axons) + 1
            self._send_inputs(t0 + k, batch)
            if k == 0:
                # After the first inputs: from now on the board waits for each step's input.
                self.link.request(Command.RUN, steps=n_steps)
            rows.append(self._collect(t0 + k, len(batch), timeout))
            k += len(batch)
        return self._trace(t0, n_steps, np.concatenate(rows))

    def _send_inputs(self, first, batch):
        per = (self.link.max_payload - protocol.REQUEST[Command.INPUT].size) // 2
        cmds = []
        for j, axons in enumerate(batch):
            axons = [] if axons is None else [int(a) for a in axons]
            chunks = [axons[i:i + per] for i in range(0, len(axons), per)] or [[]]
            for i, chunk in enumerate(chunks):
                end = int(StepFlags.END_OF_STEP) if i == len(chunks) - 1 else 0
                cmds.append((Command.INPUT, chunk, dict(step=first + j, core=0, flags=end)))
        self.link.pipeline(cmds)
        self._paced = True

    def _collect(self, first, n_steps, timeout=60.0):
        """Spike rows ``(step, core, neuron)`` of steps ``first ..`` until ``n_steps`` ended."""
        rows, ended = [], 0
        deadline = time.monotonic() + timeout
        while ended < n_steps:
            while self.link.outputs:
                cmd, fields = self.link.outputs.popleft()
                if cmd != Command.SPIKES:
                    continue
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
