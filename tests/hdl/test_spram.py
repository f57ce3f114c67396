# amaranth: UnusedElaboratable=no
"""The SPRAM synapse lane memory: how a core chooses it, and what it instantiates.

The behaviour (bit-exact cores on the behavioural ``SB_SPRAM256KA`` model, never a read and a
write in one clock) is checked under Verilator by ``test_core_verilator.py`` (configurations
``icebreaker``: four banks per lane, ``small-l1-spram`` and ``static-l2-w16-spram``: two
blocks side by side per word).
"""

from dataclasses import replace

import pytest
from amaranth.back import rtlil
from platforms import DevicePlatform

from spikeforge.hdl.core import Core, synapse_memory_for
from spikeforge.hdl.memory import LaneMemory
from spikeforge.hdl.small_core import SmallCore, slots_fit_spram
from spikeforge.hdl.spram import SpramLaneMemory, spram_block_count, spram_parts
from spikeforge.image import CoreConfig
from spikeforge.memmap import MemoryMap, Region
from spikeforge.presets import PRESETS

ICEBREAKER = PRESETS["icebreaker"].core


def test_block_counts():
    assert spram_block_count(13, 16384) == 1
    assert spram_block_count(13, 65536) == 4
    assert spram_block_count(19, 512) == 2
    assert spram_block_count(16, 16385) == 2
    # packed: a byte part (two words a row) and a nibble part (four words a row)
    assert spram_parts(12, 65536) == [8, 4] and spram_block_count(12, 65536) == 3
    assert spram_parts(28, 65536) == [16, 8, 4] and spram_block_count(28, 65536) == 7
    assert spram_parts(8, 65536) == [8] and spram_block_count(8, 65536) == 2
    # packing would take more blocks than a column: not packed
    assert spram_parts(12, 512) == [16] and spram_block_count(12, 512) == 1
    assert spram_parts(13, 65536) == [16]


def test_single_port_is_a_property_of_the_piece():
    assert SpramLaneMemory.single_port and not LaneMemory.single_port


def test_choice_follows_the_platform():
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_85F_Platform

    assert synapse_memory_for(ICEBREAKER, ICEBreakerPlatform()) == "spram"
    assert synapse_memory_for(ICEBREAKER, None) == "block"
    assert synapse_memory_for(ICEBREAKER, ULX3S_85F_Platform()) == "dp16kd"
    # more than the UP5K's four blocks: block RAM
    big = CoreConfig(n_neurons=1024, n_axons=256, weight_bits=8, delay_bits=3, lanes=4)
    assert synapse_memory_for(big, DevicePlatform("iCE40UP5K")) == "block"


@pytest.mark.parametrize("choice, platform, blocks", [
    (None, DevicePlatform("iCE40UP5K"), 3),      # auto: 1 lane, 12-bit words in 3 blocks
    ("spram", None, 3),
    (None, None, 0),
    ("block", DevicePlatform("iCE40UP5K"), 0),
])
def test_elaborated_core_instantiates_the_blocks(choice, platform, blocks):
    text = rtlil.convert(Core(ICEBREAKER, synapse_memory=choice), platform=platform)
    assert text.count("cell \\SB_SPRAM256KA ") == blocks


def test_bad_choice_is_named():
    with pytest.raises(ValueError, match="'sram'"):
        Core(ICEBREAKER, synapse_memory="sram")


def _syn_width(config):
    return MemoryMap(config)[Region.SYNAPSE].width


def test_small_core_puts_the_slots_in_the_block_left_free():
    # 7-bit weights: 12-bit synapse words in 3 blocks, the 4,096 slots in the fourth
    assert _syn_width(ICEBREAKER) == 12 and slots_fit_spram(ICEBREAKER, 12)
    text = rtlil.convert(SmallCore(ICEBREAKER, synapse_memory="spram"))
    assert text.count("cell \\SB_SPRAM256KA ") == 4
    assert "size 4096 \\slot\n" not in text
    # 8-bit weights: 13-bit words fill the four blocks, the slots stay in block RAM
    wide = replace(ICEBREAKER, weight_bits=8)
    assert not slots_fit_spram(wide, _syn_width(wide))
    text = rtlil.convert(SmallCore(wide, synapse_memory="spram"))
    assert text.count("cell \\SB_SPRAM256KA ") == 4 and "size 4096 \\slot\n" in text
    # block RAM synapses: the slots are block RAM too
    text = rtlil.convert(SmallCore(ICEBREAKER, synapse_memory="block"))
    assert text.count("cell \\SB_SPRAM256KA ") == 0


def test_shared_block_layout():
    # the delay slots take the block's top rows (a power of two), the RAM two rows a word below
    # them: the iCEBreaker's 4,096 slots leave 6,144 words (24 KB)
    from spikeforge.hdl.spram import SharedSpram, spare_words

    assert spare_words(4096) == 6144 and spare_words(3000) == 6144 and spare_words(16384) == 0
    assert SharedSpram(15, 4096, 6144).lane_base == 12288
    with pytest.raises(ValueError, match=r"room for 6144 words beside the lane"):
        SharedSpram(15, 4096, 6145)
