# amaranth: UnusedElaboratable=no
"""The SPRAM synapse lane memory: how a core chooses it, and what it instantiates.

The behaviour (bit-exact cores on the behavioural ``SB_SPRAM256KA`` model, never a read and a
write in one clock) is checked under Verilator by ``test_core_verilator.py`` (configurations
``icebreaker``: four banks per lane, ``small-l1-spram`` and ``static-l2-w16-spram``: two
blocks side by side per word).
"""

import pytest
from amaranth.back import rtlil
from platforms import DevicePlatform

from spikeforge.hdl.core import Core, synapse_memory_for
from spikeforge.hdl.memory import LaneMemory
from spikeforge.hdl.spram import SpramLaneMemory, spram_blocks
from spikeforge.image import CoreConfig
from spikeforge.presets import PRESETS

ICEBREAKER = PRESETS["icebreaker"].core


def test_block_counts():
    assert spram_blocks(13, 16384) == (1, 1)
    assert spram_blocks(13, 65536) == (1, 4)
    assert spram_blocks(19, 512) == (2, 1)
    assert spram_blocks(16, 16385) == (1, 2)


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
    (None, DevicePlatform("iCE40UP5K"), 4),      # auto: 1 lane x 4 banks
    ("spram", None, 4),
    (None, None, 0),
    ("block", DevicePlatform("iCE40UP5K"), 0),
])
def test_elaborated_core_instantiates_the_blocks(choice, platform, blocks):
    text = rtlil.convert(Core(ICEBREAKER, synapse_memory=choice), platform=platform)
    assert text.count("cell \\SB_SPRAM256KA ") == blocks


def test_bad_choice_is_named():
    with pytest.raises(ValueError, match="'sram'"):
        Core(ICEBREAKER, synapse_memory="sram")
