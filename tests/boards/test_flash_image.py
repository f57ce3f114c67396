"""The firmware a flash-booting SoC loads: which boards and presets boot so, the image the build
writes after the bitstream, and the refusals."""

from dataclasses import replace

import pytest

from spikeforge.boards import board as get_board
from spikeforge.boards.build import BuildError, _append_firmware
from spikeforge.presets import preset

pytest.importorskip("ziglang")

from spikeforge.hdl.firmware import firmware_end  # noqa: E402
from spikeforge.hdl.flashboot import FLASH_OFFSET  # noqa: E402
from spikeforge.hdl.soc import SoC  # noqa: E402

ICE_FW = preset("icebreaker")
ICE_HW = preset("icebreaker-hwlink")


def test_which_boards_boot_the_firmware_from_flash():
    ice, ulx = get_board("icebreaker"), get_board("ulx3s-85f")
    assert ICE_FW.link_kind == "firmware" and ice.firmware_ram(ICE_FW) == "spram"
    assert ice.firmware_ram(ICE_HW) == "block"                     # the hardware link
    assert ICE_HW.core == ICE_FW.core and ICE_HW.link_kind == "hardware"
    assert ulx.firmware_ram(replace(preset("ulx3s-85f"), link_kind="firmware")) == "block"
    # a full core keeps its slots in block RAM: nothing to share
    assert ice.firmware_ram(replace(ICE_FW, core_kind="full")) == "block"


def test_flash_image_is_the_firmware():
    soc = SoC(ICE_FW, firmware_ram="spram")
    image = soc.flash_image()
    words = [int.from_bytes(image[k:k + 4], "little") for k in range(0, len(image), 4)]
    # the whole RAM the slots leave (24 KB), booted whatever the firmware's length
    assert 4 * len(words) == len(image) == 4 * soc._spram_ram_words()
    # word 1: where the data ends, with room for the stack; zeros from there
    end = firmware_end(words)
    assert 4096 < end <= len(image) - 512
    assert not any(words[-(-end // 4):])
    assert SoC(ICE_FW).flash_image() is None                       # in the bitstream


def test_flash_ram_needs_a_firmware_link_and_small_cores():
    with pytest.raises(ValueError, match="firmware link, small cores, one clock"):
        SoC(ICE_HW, firmware_ram="spram")
    with pytest.raises(ValueError, match="firmware_ram must be"):
        SoC(ICE_FW, firmware_ram="flash")


def test_the_image_goes_after_the_bitstream(tmp_path):
    path = tmp_path / "top.bin"
    path.write_bytes(b"\x7e\xaa\x99\x7e" + bytes(100))
    _append_firmware(path, b"\x01\x02\x03\x04", FLASH_OFFSET)
    data = path.read_bytes()
    assert data[:104] == b"\x7e\xaa\x99\x7e" + bytes(100)
    assert data[104:FLASH_OFFSET] == b"\xff" * (FLASH_OFFSET - 104)
    assert data[FLASH_OFFSET:] == b"\x01\x02\x03\x04"
    path.write_bytes(bytes(FLASH_OFFSET + 1))
    with pytest.raises(BuildError, match="runs past the firmware's flash offset 0x20000"):
        _append_firmware(path, b"\x01", FLASH_OFFSET)


def test_the_netlist_simulation_refuses_a_flash_booted_soc():
    from spikeforge.boards.netlist import synth_netlist

    with pytest.raises(ValueError, match="icebreaker-hwlink"):
        synth_netlist("icebreaker", ICE_FW)
