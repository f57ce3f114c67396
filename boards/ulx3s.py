"""ULX3S with an ECP5-85F (LFE5U-85F-6BG381C): data only.

25 MHz oscillator, an ``EHXPLLL`` makes the preset's clock (``clock_hz`` of the ``ulx3s-85f``
preset; the board top refuses a clock the PLL cannot make exactly). The FTDI chip is the UART.
Memory split: synapse words (weight, delay, mask packed) in DP16KD block RAM (instantiated by
``hdl/dp16kd.py`` with the output register, one 16384 x 1 block per bit) and the neuron
state and parameter words (1024 x 18 blocks, also with the output register) in DP16KD block
RAM; post traces, profiles, axon table and the core's list memory (input bitmap, events,
post list) in LUT RAM (``ram_style`` "distributed", set by the Yosys commands below), and
so are the routing tables, the output rings and the input queue; delay slots and the link's
frame buffers in block RAM: 208 of the 208 DP16KD.

The board top can give the chip a clock of its own from the PLL's second output (a preset's
``chip_clock_hz``, the link at a whole fraction of it); the preset keeps one clock, since the
split builds did not run the chip faster (``docs/boards.md``, item 8).
"""

from . import Board

__all__ = ["BOARD"]

BOARD = Board(
    name="ulx3s-85f",
    title="ULX3S (ECP5 LFE5U-85F)",
    platform="amaranth_boards.ulx3s:ULX3S_85F_Platform",
    device="LFE5U-85F",
    family="ecp5",
    # --seed 4: with the default seed, router1 stalls on this design (near 57k overused arcs
    # at 75 MHz, 43k at 71.875 MHz, 2026-12-02); seed 2 routed it at 71.875 to 85 MHz, seed 3
    # met 90 MHz where seed 2 missed it by 0.9 MHz (2026-12-03, 18 minutes) and 93.75 MHz
    # (2026-12-04), and seed 4 met 100 MHz where seed 3 gave 94.19 MHz (2026-12-04, 17 minutes;
    # placements differ by a few MHz from seed to seed: docs/boards.md)
    nextpnr_args=("--85k", "--package", "CABGA381", "--speed", "6", "--seed", "4"),
    osc_hz=25_000_000,
    preset="ulx3s-85f",
    uart=("uart", 0),
    leds={"heartbeat": ("led", 0), "link": ("led", 1), "running": ("led", 2)},
    pll=True,
    # The post traces and the per-axon memories of the cores, the routing tables, the output
    # rings and the input queue go to LUT RAM so that the synapses, the neuron state and the
    # parameters get the block RAM (the post traces in block RAM would ask for 212 of the 208
    # DP16KD).
    # The router's stage FIFOs (three words after each capture list) go to flip-flops: the
    # capture list's DP16KD output (5.8 ns clock-to-out) then reaches a flip-flop's data input
    # directly, not a LUT RAM's write port through a LUT (the ULX3S's critical path at 100 MHz
    # with --seed 3, 10.38 ns).
    yosys_commands=('setattr -set ram_style "distributed" ' + " ".join(
        [f"top.soc.*/m:{name}" for name in ("y*", "profile", "axon", "lists")]
        + [f"top.soc.{block}/m:*" for block in ("chip.router.index*", "chip.router.dest*",
                                                 "outbuf", "stepper")]),
                    'setattr -set ram_style "logic" top.soc.chip.router.stage*/m:*'),
    memory={
        "synapses (weight, delay, mask)": "block RAM (DP16KD instances, output register)",
        "neuron state and parameters": "block RAM (DP16KD instances, 1024 x 18, output "
                                       "register)",
        "post traces, profiles, axon table": "LUT RAM (TRELLIS_DPR16X4)",
        "delay slots": "block RAM (DP16KD)",
        "link buffers, input queue, output buffer": "block RAM (DP16KD) / LUT RAM",
    },
    loader_board="ulx3s",
    bitstream="top.bit",
    aliases=("ulx3s",),
    notes="openFPGALoader loads the FPGA's SRAM; --persist writes the SPI flash",
)
