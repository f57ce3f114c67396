"""The hardware routing tables and the chip's memory access address space, declared once.

Every source core ``c`` has its own routing table (so the router looks up the spikes of all
cores at once) made of two memories:

============ ================ =================================================================
memory       depth            word (LSB first)
============ ================ =================================================================
index        ``N_c``          ``ptr`` (first entry in the destination list), ``count`` (number
                              of destinations, ``0..fan_out``), ``host`` (1: the spike also goes
                              to the host output)
destination  ``route_entries``  ``axon`` (destination axon), ``core`` (destination core)
============ ================ =================================================================

The destinations of neuron ``n`` are entries ``ptr .. ptr + count - 1`` of its core's
destination list. ``pack_routes`` builds both memories from ``ChipImage.routes`` /
``ChipImage.host_out`` (entries in route order, grouped by source neuron), ``unpack_routes``
is its inverse. The widths come from the core configurations and the router limits
(``route_entries`` per core's list, ``fan_out`` destinations per neuron; ``RouterLimits`` here,
or any object with those two attributes such as ``host.placement.RoutingLimits``).

The chip's memory access port reaches every core's memory and every routing table. A chip
address is ``node << (1 + local_bits) | table << local_bits | local``: ``node`` is a core
number; with ``table = 0``, ``local`` is an address of that core's own ``MemoryMap``; with
``table = 1``, ``local`` is ``which << entry_bits | index`` in that core's routing table
(``which`` 0: index memory, 1: destination list). ``ChipMap.chip_writes(chip_image)`` and
``ChipMap.image_from_words`` turn a whole ``ChipImage`` into port writes and back.
This module imports neither Amaranth nor the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .image import ChipImage, CoreConfig, Field, check_routes
from .memmap import MemoryMap, RegionLayout

__all__ = ["RouterLimits", "Table", "RouteLayout", "ChipMap", "INDEX", "DEST", "pack_routes",
           "unpack_routes"]


class Table(IntEnum):
    """The two memories of a routing table (the ``which`` bit of a table address)."""
    INDEX = 0
    DEST = 1


INDEX, DEST = Table.INDEX, Table.DEST


def _bits(n_values):
    """Bits to hold ``0 .. n_values - 1`` (at least 1)."""
    return max((n_values - 1).bit_length(), 1)


@dataclass(frozen=True)
class RouterLimits:
    """Elaboration-time sizes of the routing tables: ``route_entries`` per core's destination
    list and ``fan_out``, the most destinations one neuron may have (the compiler imports it
    as ``host.placement.RoutingLimits``)."""
    route_entries: int = 4096
    fan_out: int = 16

    def __post_init__(self):
        for name in ("route_entries", "fan_out"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, not {value!r}")


def _limits(limits):
    if limits is None:
        return RouterLimits()
    return RouterLimits(limits.route_entries, limits.fan_out)


class RouteLayout:
    """Widths and word layouts of the routing tables of a chip with ``configs`` (one
    ``CoreConfig`` per core) and ``limits``."""

    def __init__(self, configs, limits=None):
        configs = list(configs)
        if not configs or not all(isinstance(c, CoreConfig) for c in configs):
            raise TypeError(f"configs must be a non-empty list of CoreConfig, not {configs!r}")
        self.configs = configs
        self.limits = lim = _limits(limits)
        self.n_cores = len(configs)
        self.core_bits = _bits(self.n_cores)
        self.axon_bits = _bits(max(c.n_axons for c in configs))
        self.neuron_bits = _bits(max(c.n_neurons for c in configs))
        self.ptr_bits = _bits(lim.route_entries)
        self.count_bits = lim.fan_out.bit_length()
        n_max = max(c.n_neurons for c in configs)
        self.entry_bits = _bits(max(lim.route_entries, n_max))
        self.index = RegionLayout(INDEX, n_max, (Field("ptr", self.ptr_bits, False),
                                                 Field("count", self.count_bits, False),
                                                 Field("host", 1, False)))
        self.dest = RegionLayout(DEST, lim.route_entries,
                                 (Field("axon", self.axon_bits, False),
                                  Field("core", self.core_bits, False)))
        self.addr_bits = 1 + self.entry_bits
        self.data_bits = max(self.index.width, self.dest.width)

    def pack(self, chip):
        """``[(index_words, dest_words)]`` per core for ``chip`` (a ``ChipImage``); the
        destination list holds only the used entries. Raises ``ValueError`` naming the neuron
        or core that breaks ``fan_out`` or ``route_entries``."""
        if len(chip.cores) != self.n_cores:
            raise ValueError(f"chip has {len(chip.cores)} cores, this layout {self.n_cores}")
        routes = np.asarray(chip.routes, dtype=np.int64).reshape(-1, 4)
        check_routes(routes, [c.n_neurons for c in self.configs],
                     [c.n_axons for c in self.configs])
        lim, out = self.limits, []
        for c, config in enumerate(self.configs):
            mine = routes[routes[:, 0] == c]
            # Within a neuron the entries take the destination cores in turn (the k-th entry
            # for each core, then the (k+1)-th, ...): consecutive events of one lookup go to
            # different cores, so sources working at once do not queue on the same core.
            by_dst = np.lexsort((mine[:, 2], mine[:, 1]))
            mine = mine[by_dst]
            first = np.r_[True, (mine[1:, 1:3] != mine[:-1, 1:3]).any(axis=1)]
            starts = np.flatnonzero(first)
            rank = np.arange(len(mine)) - starts[np.cumsum(first) - 1]
            mine = mine[np.lexsort((mine[:, 2], rank, mine[:, 1]))]
            count = np.bincount(mine[:, 1], minlength=config.n_neurons)
            if count.size and count.max() > lim.fan_out:
                n = int(np.argmax(count))
                raise ValueError(f"neuron {n} of core {c} has {int(count[n])} destinations; "
                                 f"fan_out is {lim.fan_out}")
            if len(mine) > lim.route_entries:
                raise ValueError(f"core {c} needs {len(mine)} routing entries; route_entries "
                                 f"is {lim.route_entries}")
            ptr = np.concatenate([[0], np.cumsum(count)[:-1]]).astype(np.int64)
            ptr = np.minimum(ptr, lim.route_entries - 1)      # count 0 past the end: unused
            host = np.asarray(chip.host_out[c], dtype=np.int64)
            index = self.index.pack(ptr=ptr, count=count, host=host)
            dest = self.dest.pack(axon=mine[:, 3], core=mine[:, 2])
            out.append(([int(w) for w in index], [int(w) for w in dest]))
        return out

    def unpack(self, tables):
        """Inverse of ``pack``: ``(routes, host_out)`` from ``[(index_words, dest_words)]``
        (destination lists at least as long as the entries the index uses); routes come
        grouped by source core and neuron, in list order (``pack`` interleaves the destination
        cores of a neuron, so compare route sets, not orders)."""
        routes, host_out = [], []
        for c, (index_words, dest_words) in enumerate(tables):
            idx = self.index.unpack(np.asarray(index_words, dtype=np.uint64))
            dst = self.dest.unpack(np.asarray(dest_words, dtype=np.uint64))
            host_out.append(idx["host"].astype(bool))
            for n in range(len(idx["ptr"])):
                p, k = int(idx["ptr"][n]), int(idx["count"][n])
                for e in range(p, p + k):
                    routes.append((c, n, int(dst["core"][e]), int(dst["axon"][e])))
        routes = np.array(routes, dtype=np.int64).reshape(-1, 4)
        return routes, host_out


def pack_routes(chip, limits=None):
    """Routing-table words of ``chip`` (see ``RouteLayout.pack``)."""
    return RouteLayout([c.config for c in chip.cores], limits).pack(chip)


def unpack_routes(configs, tables, limits=None):
    """``(routes, host_out)`` from routing-table words (see ``RouteLayout.unpack``)."""
    return RouteLayout(configs, limits).unpack(tables)


class ChipMap:
    """The chip's memory access address space: every core's ``MemoryMap`` and every routing
    table, behind one address with a core field (see the module docstring)."""

    def __init__(self, configs, limits=None):
        self.routes = RouteLayout(configs, limits)
        self.configs = self.routes.configs
        self.memmaps = [MemoryMap(c) for c in self.configs]
        self.n_cores = len(self.configs)
        self.node_bits = _bits(self.n_cores)
        self.local_bits = max(max(m.addr_bits for m in self.memmaps), self.routes.addr_bits)
        self.addr_bits = self.node_bits + 1 + self.local_bits
        self.data_bits = max(max(m.data_bits for m in self.memmaps), self.routes.data_bits)

    def _check_core(self, core):
        if not 0 <= core < self.n_cores:
            raise ValueError(f"core {core} is out of range [0, {self.n_cores - 1}]")

    def core_address(self, core, local):
        """Chip address of ``local`` (an address of core ``core``'s ``MemoryMap``)."""
        self._check_core(core)
        return (core << (1 + self.local_bits)) | np.asarray(local, dtype=np.int64)

    def table_address(self, core, which, index):
        """Chip address of entry ``index`` of core ``core``'s index (``INDEX``) or destination
        list (``DEST``)."""
        self._check_core(core)
        index = np.asarray(index, dtype=np.int64)
        depth = (self.configs[core].n_neurons if which == INDEX
                 else self.routes.limits.route_entries)
        if index.size and (index.min() < 0 or index.max() >= depth):
            bad = int(index.min()) if index.min() < 0 else int(index.max())
            raise ValueError(f"routing table entry {bad} is out of range [0, {depth - 1}]")
        local = (which << self.routes.entry_bits) | index
        return (core << (1 + self.local_bits)) | (1 << self.local_bits) | local

    def chip_writes(self, chip):
        """``(addresses, words)`` that load every core image and every routing table."""
        addrs, words = [], []
        for c, (index, dest) in enumerate(self.routes.pack(chip)):
            addrs += self.table_address(c, INDEX, np.arange(len(index))).tolist()
            addrs += self.table_address(c, DEST, np.arange(len(dest))).tolist()
            words += index + dest
        for c, (core, mm) in enumerate(zip(chip.cores, self.memmaps, strict=True)):
            a, w = mm.image_writes(core)
            addrs += self.core_address(c, a).tolist()
            words += w
        return addrs, words

    def table_read_addresses(self, chip_routes_per_core):
        """Addresses that read every index entry and the first ``k`` destination entries of
        each core (``chip_routes_per_core``: list of ``k``)."""
        out = []
        for c, k in enumerate(chip_routes_per_core):
            out += self.table_address(c, INDEX, np.arange(self.configs[c].n_neurons)).tolist()
            out += self.table_address(c, DEST, np.arange(k)).tolist()
        return out

    def read_addresses(self):
        """Addresses that read back every core's whole memory, core by core."""
        out = []
        for c, mm in enumerate(self.memmaps):
            out += self.core_address(c, mm.read_addresses()).tolist()
        return out

    def images_from_words(self, words):
        """The ``CoreImage`` of every core from words read at ``read_addresses()``."""
        words, images, pos = list(words), [], 0
        for mm in self.memmaps:
            n = len(mm.read_addresses())
            images.append(mm.image_from_words(words[pos:pos + n]))
            pos += n
        return images

    def chip_from_words(self, core_words, table_words, entries):
        """A ``ChipImage`` from words read at ``read_addresses()`` and
        ``table_read_addresses(entries)``."""
        tables, pos = [], 0
        for c, k in enumerate(entries):
            n = self.configs[c].n_neurons
            tables.append((table_words[pos:pos + n], table_words[pos + n:pos + n + k]))
            pos += n + k
        routes, host_out = self.routes.unpack(tables)
        return ChipImage(self.images_from_words(core_words), routes, host_out)
