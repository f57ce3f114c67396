"""A session with a board: open a port or start a private virtual board, push, run.

The library calls behind ``spikeforge push/run/pull/info`` (the CLI is a thin layer over them):

- ``fit_preset(net, name)``: the SoC preset a private virtual board uses for ``net`` (the named
  one, or the first of ``AUTO_PRESETS`` the network fits), with the compiled network.
- ``open_board(port, preset=...)``: a ``Board`` on ``port`` (any pyserial URL), or, without a
  port, on a private virtual board of ``preset`` that ends with the session.
- ``push``: compile for the board's own configuration (from HELLO), check the fit, upload, verify;
  ``on_board`` tells whether the board still holds a compiled image unchanged (CRC per region).
- ``run``: push if needed, run in chunks (a progress callback), gather a ``Trace`` of the same
  shape as the golden model's. A board reset during the run raises ``BoardResetError`` and no
  partial result is returned, so old and new results never mix.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass

import numpy as np

from spikeforge import protocol
from spikeforge.host.board import Board, UploadError
from spikeforge.host.compiler import compile_network
from spikeforge.host.link import BoardResetError, LinkError
from spikeforge.memmap import Region
from spikeforge.presets import preset
from spikeforge.sim.trace import Trace

__all__ = ["DEFAULT_PRESET", "AUTO_PRESETS", "Session", "fit_preset", "open_board",
           "compile_for", "push", "on_board", "pull_image", "run", "input_rows",
           "load_inputs", "differing_regions", "final_image"]

# The iCEBreaker's chip behind the hardware link (``spikeforge.presets``: the board's firmware
# link is minutes per upload under Verilator); ``--board icebreaker`` names the board's own.
DEFAULT_PRESET = "icebreaker-hwlink"
# Tried in this order when no preset is named: the first the network fits is used.
AUTO_PRESETS = (DEFAULT_PRESET, "ulx3s-85f")


def fit_preset(net, name=None):
    """``(preset, compiled)``: the preset ``name`` (or the first of ``AUTO_PRESETS`` that
    ``net`` fits) and ``net`` compiled for it. ``ValueError`` names the limit broken."""
    names = [name] if name is not None else list(AUTO_PRESETS)
    first_error = None
    for n in names:
        p = preset(n)
        try:
            return p, compile_network(net, p.core, n_cores=p.n_cores, limits=p.limits)
        except ValueError as e:
            first_error = first_error or (n, e)
    n, e = first_error
    raise ValueError(f"the network does not fit board {n}: {e}") from None


@dataclass
class Session:
    """An open ``board``; ``virtual`` is the private ``VirtualBoard`` behind it, if any."""
    board: Board
    virtual: object = None

    @property
    def url(self):
        return self.board.url


def _virtual_like(port):
    return port.startswith("socket://") or port.startswith("/dev/pts/")


# Link settings for a port that is likely a virtual board (``socket://`` or a pty): its line
# runs at the simulation's pace (timeouts as for a slow line) and may inject faults (more tries).
VIRTUAL_LINK_BAUD = 100_000
VIRTUAL_LINK_TRIES = 8


@contextlib.contextmanager
def open_board(port=None, *, preset_name=DEFAULT_PRESET, drop=0.0, flip=0.0, seed=1,
               baud=None, timeout=None, tries=None):
    """A ``Session`` on ``port``, or on a private virtual board of ``preset_name`` (closed at the
    end). ``baud``: the line rate of ``port``, which sets the link timeouts (default 1 Mbaud,
    the presets' rate; ``VIRTUAL_LINK_BAUD`` for ``socket://`` and pty ports, which are
    usually virtual boards); ``tries``: sends per command (default 3; 8 on a virtual board)."""
    virtual = None
    try:
        if port is None:
            from spikeforge.boards.virtual import VirtualBoard
            virtual = VirtualBoard(preset(preset_name), drop=drop, flip=flip, seed=seed)
            board = Board(virtual.url, baud=baud or virtual.baud, timeout=timeout,
                          tries=tries or VIRTUAL_LINK_TRIES)
        else:
            like = _virtual_like(port)
            board = Board(port, baud=baud or (VIRTUAL_LINK_BAUD if like else 1_000_000),
                          timeout=timeout, tries=tries or (VIRTUAL_LINK_TRIES if like else 3))
        with board:
            board.hello()
            yield Session(board, virtual)
    finally:
        if virtual is not None:
            virtual.close()


def compile_for(board, net, record=None):
    """Compile ``net`` for the configuration the board reported in HELLO (fit check first)."""
    from spikeforge.host.placement import RoutingLimits

    info = board.info or board.hello()
    n_cores = info.get("n_cores", 1) or 1
    limits = (RoutingLimits(info["route_entries"], info["fan_out"])
              if info.get("route_entries") else None)
    try:
        return compile_network(net, board.config, n_cores=n_cores, limits=limits, record=record)
    except ValueError as e:
        raise ValueError(f"the network does not fit the board at {board.url}: {e}") from None


def _image(board, compiled):
    # Board.upload takes the whole ChipImage; a board without routing tables refuses routes
    # and host-output masks with an error naming them.
    return compiled.chip


def on_board(board, compiled):
    """True when every region the board holds has the CRC of ``compiled``'s image."""
    try:
        board.verify(board.image_bytes(_image(board, compiled)))
    except UploadError:
        return False
    return True


def push(board, compiled, verify=True):
    """Upload ``compiled``'s image (verified by CRC unless ``verify`` is False); returns the
    image's bytes and the bytes written (the rest the board held already: ``Board.upload``)."""
    image = _image(board, compiled)
    written = board.upload(image, verify=verify)
    return sum(len(d) for d in board.image_bytes(image).values()), written


def pull_image(board, compiled):
    """The board's image of ``compiled`` (a ``ChipImage``, read back). The board must hold
    ``compiled``'s layout: its parameter and profile regions must match, else ``ValueError``."""
    image = _image(board, compiled)
    want = {k: v for k, v in board.image_bytes(image).items()
            if k[1] in (Region.PARAM, Region.PROFILE)}
    try:
        board.verify(want)
    except UploadError:
        raise ValueError(f"{board.url} does not hold this network (its neuron parameters "
                         f"differ): push and run it first") from None
    return board.read_chip()


def differing_regions(board, image):
    """``[(core, region name), ...]`` whose board CRC differs from ``image``'s (a ``ChipImage``
    or a ``CoreImage``): the whole state compared at the cost of one command per region."""
    sent = board.image_bytes(image)
    wire = board.chipmap or board.memmap
    replies = board.link.pipeline([
        (protocol.Command.REGION_CRC, b"",
         dict(core=core, region=int(region), index=0,
              count=len(data) // protocol.word_bytes(wire, region)))
        for (core, region), data in sent.items()])
    return [(core, getattr(region, "name", str(region)).lower())
            for ((core, region), data), reply in zip(sent.items(), replies, strict=True)
            if reply["crc"] != protocol.crc32(data)]


def final_image(compiled, cores):
    """The ``ChipImage`` a board should hold after a run whose cores ended as ``cores`` (e.g.
    the golden model's ``CoreImage`` s): the routing tables are those pushed."""
    from spikeforge.image import ChipImage

    return ChipImage(list(cores), compiled.chip.routes, compiled.chip.host_out)


def input_rows(compiled, first, n_steps):
    """Per step ``first .. first + n_steps - 1``: per core, the external input axons."""
    rows = np.asarray(compiled.inputs, np.int64).reshape(-1, 3)
    rows = rows[(rows[:, 0] >= first) & (rows[:, 0] < first + n_steps)]
    out = [[[] for _ in range(compiled.n_cores)] for _ in range(n_steps)]
    for step, core, axon in rows:
        out[step - first][core].append(int(axon))
    return [[np.array(sorted(set(a)), dtype=np.int64) for a in cores] for cores in out]


def load_inputs(net, path):
    """``net`` with the spike times of its spike sources replaced from file ``path``.

    The file is JSON: ``{"SOURCE LABEL": [[neuron, time_ms], ...], ...}``; every label must name
    a spike source of ``net``. Returns a new ``Network``.
    """
    import json

    from spikeforge.host.netfile import network_from_json, network_to_json
    from spikeforge.host.network import SpikeSource

    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(doc, dict):
        raise ValueError(f"{path}: must map spike source labels to [[neuron, time_ms], ...]")
    sources = {p.label for p in net.populations if isinstance(p, SpikeSource)}
    net_doc, side = network_to_json(net, threshold=float("inf"))
    for label, rows in doc.items():
        if label not in sources:
            raise ValueError(f"{path}: {label!r} is not a spike source of the network "
                             f"(sources: {', '.join(sorted(sources)) or 'none'})")
        try:
            arr = np.asarray(rows, dtype=np.float64).reshape(-1, 2)
        except ValueError:
            raise ValueError(f"{path}: {label!r} must be a list of [neuron, time_ms] "
                             f"pairs") from None
        pop = next(p for p in net_doc["populations"] if p["label"] == label)
        pop["spikes"] = {"neuron": {"dtype": "int64", "shape": [len(arr)],
                                    "data": [int(x) for x in arr[:, 0]]},
                         "time": {"dtype": "float64", "shape": [len(arr)],
                                  "data": [float(x) for x in arr[:, 1]]}}
    try:
        return network_from_json(net_doc, side)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None


def _run_chunk(board, n, inputs, timeout, probes):
    try:
        if probes:
            return board.run(n, inputs, timeout=timeout, probes=probes)
        return board.run(n, inputs, timeout=timeout)
    except BoardResetError:
        raise
    except LinkError:
        # No spikes within the timeout: find out whether the board was reset meanwhile.
        board.link.request(protocol.Command.STATUS)     # raises BoardResetError if so
        raise


def run(board, compiled, n_steps, *, probes=(), progress=None, chunk=None,
        push_if_needed=True):
    """Run ``compiled`` on ``board`` for ``n_steps`` from its pushed initial state.

    Pushes first unless the board holds the compiled image unchanged (``on_board``). Returns the
    ``Trace`` (the spikes of neurons flagged for host output, as the golden model records them).
    ``probes``: ``(core, neuron, var)`` recorded after every step through the board's probes
    (as ``GoldenChip.run`` records them). ``progress(done)`` is called after each chunk.
    ``meta`` records the board's URL, the seconds
    of the run and the link's retries.
    """
    if isinstance(n_steps, bool) or not isinstance(n_steps, int) or n_steps < 1:
        raise ValueError(f"steps must be a positive integer, not {n_steps!r}")
    probes = [tuple(p) for p in probes]
    if probes and not board.info.get("n_probes"):
        raise ValueError(f"{board.url} has no probes: run without probes")
    pushed = False
    if push_if_needed and not on_board(board, compiled):
        push(board, compiled)
        pushed = True
    first = int(board.status()["step"])
    image_step = int(compiled.chip.cores[0].step)
    if first != image_step:
        raise ValueError(f"{board.url} is at step {first}, the pushed image at {image_step}: "
                         f"push the network again to run it from its start")
    inputs = input_rows(compiled, first, n_steps)
    if compiled.n_cores == 1:
        inputs = [cores[0] for cores in inputs]
    chunk = chunk or max(16, min(512, n_steps // 20))
    rows, values, done, timeout = [], [], 0, 10.0
    resent0 = board.link.resent
    t0 = time.monotonic()
    while done < n_steps:
        n = min(chunk, n_steps - done)
        ins = inputs[done:done + n]
        c0 = time.monotonic()
        trace = _run_chunk(board, n, ins, timeout, probes)
        if trace.first_step != first + done:
            raise BoardResetError(f"{board.url} ran steps from {trace.first_step}, expected "
                                  f"{first + done}: the board was reset or used by another "
                                  f"client; results discarded")
        rows.append(trace.spikes)
        values.append(trace.probes)
        done += n
        # Later chunks may wait 10 times as long as this one took (at least 5 s).
        timeout = max(5.0, 10 * (time.monotonic() - c0) * chunk / n)
        if progress is not None:
            progress(done)
    spikes = np.concatenate(rows) if rows else np.zeros((0, 3), np.int64)
    meta = {"engine": "board", "url": board.url, "seconds": time.monotonic() - t0,
            "retries": int(board.link.resent - resent0), "pushed": pushed}
    values = (np.concatenate(values) if probes
              else np.zeros((n_steps, 0), np.int64))
    return Trace(first, n_steps, spikes, probes, values, meta=meta)
