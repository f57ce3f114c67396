"""The memory access port of one neuromorphic core, declared once.

Every parameter, weight, delay, mask, trace, state variable, register and delay slot of a core is
one *word* of one *region*. A port address is ``region << index_bits | index``; a word packs its
fields LSB first in the order listed here, each field at the width ``spikeforge.image`` declares
(signed fields in two's complement). The hardware (``spikeforge.hdl.core``) derives its port and
its address decoding from this module, and host code and tests use ``image_writes`` /
``image_from_words`` to turn a ``CoreImage`` into port writes and read-back words into a
``CoreImage``. This module imports neither Amaranth nor the host. ``TableRegion`` numbers a
chip's routing tables (``spikeforge.routing``) as link regions after the core regions.

Regions (``N`` neurons, ``A`` axons, ``P`` profiles, ``S`` delay slots):

=========== ======= =====================================================================
region      depth   word (LSB first) and index
=========== ======= =====================================================================
registers   14      one register per index, in ``REGISTER_FIELDS`` order
neuron      N       ``v, i, ref`` (+ ``y`` on plastic cores); index ``n``
param       N       ``bias, profile``; index ``n``
profile     P       ``threshold, v_reset, alpha_v, alpha_i, refractory, reset_mode``
axon        A       (``x`` on plastic cores +) ``gen_prob``; index ``a``
synapse     A * N   ``weight`` (+ ``delay`` if D > 0) (+ ``mask`` if plastic); index ``a * N + n``
slot        S * N   ``slot``; index ``s * N + n``
=========== ======= =====================================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from .image import (
    AXON_FIELDS,
    NEURON_FIELDS,
    PROFILE_FIELDS,
    REGISTER_FIELDS,
    SYNAPSE_FIELDS,
    CoreConfig,
    CoreImage,
    Field,
)

__all__ = ["Region", "TableRegion", "RegionLayout", "MemoryMap", "effective_lanes"]


class Region(IntEnum):
    """Region ids: the top bits of a port address."""
    REGISTERS = 0
    NEURON = 1
    PARAM = 2
    PROFILE = 3
    AXON = 4
    SYNAPSE = 5
    SLOT = 6


REGION_BITS = 3


class TableRegion(IntEnum):
    """Region ids of a chip's routing tables on the link (``docs/protocol.md``): beyond the
    core regions, with the words of ``spikeforge.routing.RouteLayout`` (``index``, ``dest``)."""
    ROUTE_INDEX = 8
    ROUTE_DEST = 9


def effective_lanes(config):
    """Lanes the hardware builds: ``min(lanes, n_neurons)`` (a word never spans two rows)."""
    return min(config.lanes, config.n_neurons)


def _log2(value):
    return value.bit_length() - 1


@dataclass(frozen=True)
class RegionLayout:
    """One region: its id, depth (number of words) and fields, LSB first."""
    region: Region
    depth: int
    fields: tuple

    @property
    def width(self):
        return sum(f.bits for f in self.fields)

    def offsets(self):
        """``{name: (lsb, Field)}`` of every field in the word."""
        out, lsb = {}, 0
        for f in self.fields:
            out[f.name] = (lsb, f)
            lsb += f.bits
        return out

    def pack(self, **values):
        """Pack equal-length field arrays (or scalars) into words.

        Returns a ``uint64`` array when the word fits in 64 bits, else an object array of Python
        ints. Values are checked against their field's range first.
        """
        wide = self.width > 64
        arrays = {f.name: np.asarray(values[f.name], dtype=np.int64) for f in self.fields}
        shape = np.broadcast_shapes(*(a.shape for a in arrays.values()))
        words = (np.zeros(shape, dtype=object) if wide else np.zeros(shape, dtype=np.uint64))
        for name, (lsb, f) in self.offsets().items():
            f.check(arrays[name], where=f"{self.region.name.lower()} region: ")
            raw = arrays[name] & ((1 << f.bits) - 1)
            if wide:
                words = words | (raw.astype(object) << lsb)
            else:
                words = words | (raw.astype(np.uint64) << np.uint64(lsb))
        return words

    def unpack(self, words):
        """Split words (any integer array or sequence) into ``{name: int64 array}``."""
        wide = self.width > 64
        words = np.asarray(words, dtype=object if wide else np.uint64)
        out = {}
        for name, (lsb, f) in self.offsets().items():
            mask = (1 << f.bits) - 1
            if wide:
                raw = np.array([(int(w) >> lsb) & mask for w in words.ravel()],
                               dtype=np.int64).reshape(words.shape)
            else:
                raw = ((words >> np.uint64(lsb)) & np.uint64(mask)).astype(np.int64)
            if f.signed:
                raw = np.where(raw >> (f.bits - 1) & 1, raw - (1 << f.bits), raw)
            out[name] = raw
        return out


class MemoryMap:
    """Every region of the memory port of a core with configuration ``config``.

    ``addr_bits`` and ``data_bits`` are the port widths; ``address(region, index)`` builds an
    address (vectorised over ``index``).
    """

    def __init__(self, config):
        if not isinstance(config, CoreConfig):
            raise TypeError(f"config must be a CoreConfig, not {config!r}")
        c = self.config = config
        self.lanes = effective_lanes(c)
        n, a = c.n_neurons, c.n_axons
        neuron = [NEURON_FIELDS["v"], NEURON_FIELDS["i"], NEURON_FIELDS["ref"]]
        if c.plastic:
            neuron.append(NEURON_FIELDS["y"])
        axon = ([AXON_FIELDS["x"]] if c.plastic else []) + [AXON_FIELDS["gen_prob"]]
        syn = SYNAPSE_FIELDS(c)
        synapse = [syn["weight"]]
        if c.delay_bits:
            synapse.append(Field("delay", c.delay_bits, False))
        if c.plastic:
            synapse.append(syn["mask"])
        self.register_fields = tuple(REGISTER_FIELDS(c).values())
        self.regions = {
            Region.REGISTERS: RegionLayout(Region.REGISTERS, len(self.register_fields),
                                           (Field("value", 32, False),)),
            Region.NEURON: RegionLayout(Region.NEURON, n, tuple(neuron)),
            Region.PARAM: RegionLayout(Region.PARAM, n,
                                       (NEURON_FIELDS["bias"], NEURON_FIELDS["profile"])),
            Region.PROFILE: RegionLayout(Region.PROFILE, c.n_profiles,
                                         tuple(PROFILE_FIELDS.values())),
            Region.AXON: RegionLayout(Region.AXON, a, tuple(axon)),
            Region.SYNAPSE: RegionLayout(Region.SYNAPSE, a * n, tuple(synapse)),
            Region.SLOT: RegionLayout(Region.SLOT, c.n_slots * n,
                                      (Field("slot", c.slot_bits, True),)),
        }
        self.index_bits = max(max(r.depth for r in self.regions.values()) - 1, 1).bit_length()
        self.addr_bits = REGION_BITS + self.index_bits
        self.data_bits = max(r.width for r in self.regions.values())

    def __getitem__(self, region):
        return self.regions[Region(region)]

    def register_index(self, name):
        """Index of register ``name`` in the registers region."""
        for k, f in enumerate(self.register_fields):
            if f.name == name:
                return k
        raise ValueError(f"no register named {name!r}; registers are "
                         f"{[f.name for f in self.register_fields]}")

    def address(self, region, index):
        index = np.asarray(index, dtype=np.int64)
        depth = self.regions[Region(region)].depth
        if index.size and (index.min() < 0 or index.max() >= depth):
            raise ValueError(f"index out of range [0, {depth - 1}] for region "
                             f"{Region(region).name.lower()}")
        return (int(region) << self.index_bits) | index

    # -- whole images -----------------------------------------------------------------------

    def region_words(self, image, region):
        """The words of ``region`` for ``image``, in index order."""
        c, region = self.config, Region(region)
        layout = self.regions[region]
        if region is Region.REGISTERS:
            regs = image.registers()
            return np.array([regs[f.name] & ((1 << f.bits) - 1) for f in self.register_fields],
                            dtype=np.uint64)
        if region is Region.NEURON:
            return layout.pack(v=image.v, i=image.i, ref=image.ref, y=image.y)
        if region is Region.PARAM:
            return layout.pack(bias=image.bias, profile=image.profile)
        if region is Region.PROFILE:
            return layout.pack(**{k: getattr(image, k) for k in PROFILE_FIELDS})
        if region is Region.AXON:
            return layout.pack(x=image.x, gen_prob=image.gen_prob)
        if region is Region.SYNAPSE:
            if c.delay_bits == 0 and image.delay.any():
                raise ValueError("delay must be 0 on a core with 0 delay bits")
            return layout.pack(weight=image.weight.ravel(), delay=image.delay.ravel(),
                               mask=image.mask.ravel())
        return layout.pack(slot=image.slots.ravel())

    def image_writes(self, image):
        """``(addresses, words)`` that load every word of ``image`` through the port.

        ``words`` is a list of Python ints; the registers come last.
        """
        if image.config != self.config:
            raise ValueError(f"image is for {image.config}, this map for {self.config}")
        image.validate()
        addrs, words = [], []
        for region in [*list(Region)[1:], Region.REGISTERS]:
            w = self.region_words(image, region)
            addrs.extend(self.address(region, np.arange(len(w))).tolist())
            words.extend(int(x) for x in w)
        return addrs, words

    def read_addresses(self, regions=None):
        """Addresses that read back ``regions`` (default: all), region by region."""
        out = []
        for region in regions or list(Region):
            out.extend(self.address(region, np.arange(self.regions[Region(region)].depth))
                       .tolist())
        return out

    def image_from_words(self, words, regions=None, base=None):
        """Build a ``CoreImage`` from words read at ``read_addresses(regions)``.

        Regions not read are copied from ``base`` (or left at their defaults).
        """
        c = self.config
        image = base.copy() if base is not None else CoreImage.empty(c)
        words = list(words)
        pos = 0
        for region in regions or list(Region):
            region = Region(region)
            layout = self.regions[region]
            chunk = words[pos:pos + layout.depth]
            pos += layout.depth
            if len(chunk) != layout.depth:
                raise ValueError(f"{len(words)} words are too few for regions {regions}")
            if region is Region.REGISTERS:
                for f, w in zip(self.register_fields, chunk, strict=True):
                    value = int(w) & ((1 << f.bits) - 1)
                    if f.signed and value >> (f.bits - 1):
                        value -= 1 << f.bits
                    setattr(image, f.name, value)
                continue
            fields = layout.unpack(chunk)
            if region is Region.SYNAPSE:
                for name, arr in fields.items():
                    setattr(image, name, arr.reshape(c.n_axons, c.n_neurons))
            elif region is Region.SLOT:
                image.slots = fields["slot"].reshape(c.n_slots, c.n_neurons)
            else:
                for name, arr in fields.items():
                    setattr(image, name, arr)
        return image
