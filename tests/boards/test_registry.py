"""The board registry, ``spikeforge boards``, the ECP5 PLL settings and the board top."""

import dataclasses
import json

import pytest

from spikeforge.boards import BOARDS, board
from spikeforge.cli import main
from spikeforge.presets import preset


def test_registry_names_and_aliases():
    assert sorted(BOARDS) == ["icebreaker", "ulx3s-85f"]
    assert board("ulx3s") is board("ulx3s-85f")
    with pytest.raises(ValueError, match=r"no board named 'x'; boards are \['icebreaker'"):
        board("x")


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_board_data_is_consistent(name):
    b = BOARDS[name]
    p = b.soc_preset()
    assert p is preset(b.preset)
    assert set(b.leds) == {"heartbeat", "link", "running"}
    assert b.memory and b.bitstream.startswith("top.")
    if not b.pll:
        assert p.clock_hz == b.osc_hz
    # clocks per bit is derived from the clock the board really runs at
    assert abs(p.clock_hz / p.clocks_per_bit - p.baud) / p.baud <= 0.02


@pytest.mark.parametrize("name", sorted(BOARDS))
def test_virtual_board_elaborates_for_the_boards_device(name):
    """``spikeforge emulate --board NAME`` models the bitstream's micro-architecture: the SoC is
    elaborated for the device the board's platform names."""
    pytest.importorskip("amaranth_boards")
    from spikeforge.boards.virtual import soc_platform

    b = BOARDS[name]
    assert b.device == b.platform_class().device
    assert soc_platform(b.soc_preset()).device == b.device
    assert soc_platform(preset("tiny")).device is None
    for other in b.virtual_presets:          # the board's chip behind another link
        assert soc_platform(preset(other)).device == b.device
        assert preset(other).core == b.soc_preset().core


def test_capacity_meets_the_issue_goals():
    ice, ecp = board("icebreaker"), board("ulx3s-85f")
    assert ice.capacity()["neurons"] >= 256 and ice.capacity()["synapses"] >= 65536
    assert ice.soc_preset().core.max_delay >= 15
    assert ecp.capacity()["neurons"] >= 1024 and ecp.capacity()["synapses"] >= 262144
    assert ecp.soc_preset().core.max_delay >= 7


def test_boards_command_lists_capacity(capsys):
    assert main(["boards", "--json"]) == 0
    rows = {r["board"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["icebreaker"]["neurons"] == BOARDS["icebreaker"].capacity()["neurons"]
    assert rows["ulx3s-85f"]["clock_mhz"] == preset("ulx3s-85f").core_clock_hz / 1e6
    assert main(["boards"]) == 0
    text = capsys.readouterr().out
    assert "icebreaker" in text and "65536" in text and "SPRAM" in text


def test_ice40_pll_params():
    from spikeforge.boards.top import ice40_pll_params
    for mhz in (24, 30, 36, 42, 48):
        divr, divf, divq, filt = ice40_pll_params(12_000_000, mhz * 1_000_000)
        assert 12 * (divf + 1) == mhz * (divr + 1) * 2 ** divq
        assert 533 <= 12 / (divr + 1) * (divf + 1) <= 1066 and 1 <= filt <= 6
    assert ice40_pll_params(12_000_000, 30_000_000) == (0, 79, 5, 1)    # as icepll says
    with pytest.raises(ValueError, match="out of range"):
        ice40_pll_params(12_000_000, 12_000_000)


def test_pll_params_make_the_clock_exactly():
    from spikeforge.boards.top import ecp5_pll_params, pll_clocks
    for f in pll_clocks(25_000_000):
        ref, fb, op = ecp5_pll_params(25_000_000, f)
        assert 25_000_000 * fb == f * ref
        assert 3.125 <= 25 / ref <= 400 and 400 <= f / 1e6 * op <= 800
    assert 50_000_000 in pll_clocks(25_000_000)
    with pytest.raises(ValueError, match=r"PLL clock 48 MHz cannot be made exactly from 25 "
                                         r"MHz \(nearest: "):
        ecp5_pll_params(25_000_000, 48_000_000)
    with pytest.raises(ValueError, match="out of range"):
        ecp5_pll_params(25_000_000, 500_000_000)


def test_board_top_refuses_a_clock_the_board_cannot_make():
    from spikeforge.boards.top import BoardTop
    p = dataclasses.replace(preset("icebreaker"), clock_hz=29_999_999)
    with pytest.raises(ValueError, match="PLL clock 30 MHz cannot be made exactly from 12 MHz "
                                         "by the iCE40 PLL"):
        BoardTop(board("icebreaker"), p)
    nopll = dataclasses.replace(board("icebreaker"), pll=False)
    with pytest.raises(ValueError, match="not the iCEBreaker .* 12 MHz"):
        BoardTop(nopll, dataclasses.replace(p, clock_hz=30_000_000))
    p = dataclasses.replace(preset("ulx3s-85f"), clock_hz=48_000_000, chip_clock_hz=None)
    with pytest.raises(ValueError, match="cannot be made exactly"):
        BoardTop(board("ulx3s-85f"), p)
    # a chip clock of its own: a whole multiple of the link's, from an ECP5 PLL
    with pytest.raises(ValueError, match=r"chip clock 75000000 Hz must be a whole multiple of "
                                         r"the link clock 50000000 Hz"):
        dataclasses.replace(p, clock_hz=50_000_000, chip_clock_hz=75_000_000)
    p = dataclasses.replace(preset("icebreaker"), clock_hz=12_000_000, chip_clock_hz=24_000_000)
    with pytest.raises(ValueError, match="has a chip clock of its own: the iCEBreaker .* top "
                                         "makes one only with an ECP5 PLL"):
        BoardTop(board("icebreaker"), p)
    p = dataclasses.replace(preset("ulx3s-85f"), clock_hz=1_000_000, chip_clock_hz=100_000_000,
                            baud=200_000)
    with pytest.raises(ValueError, match=r"PLL clock 1 MHz \(the 100 MHz clock / 100\) needs an "
                                         r"output divider of 600, above 128"):
        BoardTop(board("ulx3s-85f"), p)


@pytest.mark.parametrize("name, clock_hz, chip_clock_hz", [("icebreaker", 30_000_000, None),
                                                           ("ulx3s-85f", 50_000_000, None),
                                                           ("ulx3s-85f", 50_000_000, 100_000_000)])
def test_board_top_elaborates_with_pins_and_pll(name, clock_hz, chip_clock_hz):
    """The board top elaborates on its platform (no tools run): UART and LED pins in the
    constraints, and at a clock other than the oscillator's the PLL with its settings and the
    constraint on its output; with a chip clock of its own, the PLL's main output is the
    chip's and its second output (the same VCO, divided further) the link's."""
    pytest.importorskip("amaranth_boards")

    from spikeforge.boards.build import _prepare
    b = board(name)
    p = b.soc_preset()
    p = dataclasses.replace(p, core=dataclasses.replace(p.core, n_neurons=16, n_axons=16),
                            clock_hz=clock_hz, chip_clock_hz=chip_clock_hz)
    plan, _ = _prepare(b, p)
    rtlil = plan.files["top.il"]
    if b.family == "ice40":
        pcf = plan.files["top.pcf"]
        assert "set_io uart_0__rx__io 6" in pcf and "set_io uart_0__tx__io 9" in pcf
        assert "set_io led_g_0__io 37" in pcf and "set_io led_r_0__io 11" in pcf
        assert "cell \\SB_PLL40_PAD" in rtlil and "parameter \\DIVF 79" in rtlil
        assert "set_frequency pll.clk_pll 30.0" in pcf
    else:
        lpf = plan.files["top.lpf"]
        assert 'LOCATE COMP "uart_0__rx__io" SITE "M1"' in lpf and 'SITE "L4"' in lpf
        assert 'LOCATE COMP "led_0__io" SITE "B2"' in lpf
        assert "cell \\EHXPLLL" in rtlil
        if chip_clock_hz is None:
            assert "parameter \\CLKFB_DIV 2" in rtlil and "CLKOS_DIV" not in rtlil
            assert 'FREQUENCY NET "pll.clk_pll" 50000000.0 HZ' in lpf
        else:       # 25 MHz x 4 = 100 MHz (VCO 600 MHz: CLKOP / 6), the link's CLKOS / 12
            assert "parameter \\CLKFB_DIV 4" in rtlil and "parameter \\CLKOP_DIV 6" in rtlil
            assert "parameter \\CLKOS_DIV 12" in rtlil
            assert 'FREQUENCY NET "pll.clk_pll" 100000000.0 HZ' in lpf
            assert 'FREQUENCY NET "pll.clk_pll_div" 50000000.0 HZ' in lpf


@pytest.mark.parametrize("every", [1, 3])
def test_led_stretch_lights_the_clock_after_a_trigger_for_its_ticks(every):
    # The board top's LED pulses (``running``, ``link``): the trigger is registered first, so
    # the LED lights one clock late and stays lit until ``ticks`` ticks after the last trigger
    # (a tick every clock: exactly ``ticks`` clocks; the board's come every 2**16 clocks).
    from amaranth.hdl import Module, Signal
    from amaranth.sim import Simulator

    from spikeforge.boards.top import _stretch

    m = Module()
    trigger, tick = Signal(), Signal()
    lit = _stretch(m, trigger, 5, tick, "t")
    pattern = [1] + [0] * 20 + [1, 1, 1] + [0] * 20
    ticks = [int(k % every == every - 1) for k in range(len(pattern))]
    seen = []

    async def bench(ctx):
        for t, k in zip(pattern, ticks, strict=True):
            ctx.set(trigger, t)
            ctx.set(tick, k)
            seen.append(ctx.get(lit))
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    # lit from the clock after the trigger was registered until the fifth tick after it
    want, count = [], 0
    for k in range(len(pattern)):
        want.append(int(count != 0))
        seen_t = pattern[k - 1] if k else 0
        count = 5 if seen_t else count - 1 if ticks[k] and count else count
    assert seen == want
    assert sum(seen[:21]) == (5 if every == 1 else 13)


def test_link_kind_is_a_preset_setting():
    """``link_kind`` chooses the command processor: a kind that does not exist is refused by
    name; the firmware link's presets keep the hardware one's text but not its build id (the
    host tells the two bitstreams apart)."""
    from spikeforge.hdl.soc import build_id

    p = preset("tiny")
    with pytest.raises(ValueError, match=r"^link kind 'cpu' is not one of "
                                         r"\('hardware', 'firmware'\)$"):
        dataclasses.replace(p, link_kind="cpu")
    fw = dataclasses.replace(p, link_kind="firmware")
    assert repr(fw) == repr(p) and build_id(fw) != build_id(p)
    assert preset("tiny-fw").link_kind == "firmware" and preset("tiny-fw").window == 2
