"""iCEBreaker (iCE40UP5K-SG48): data only.

12 MHz oscillator; at another preset clock an ``SB_PLL40_PAD`` makes it (the preset's
``clock_hz`` must be a clock the PLL makes exactly). The FTDI bridge's second channel is the UART.
Memory split: the synapse words (weight, delay and learning mask packed, one word per synapse)
in three SPRAM blocks (16k x 16 each); the delay slots and the link firmware's RAM in the fourth,
shared (the firmware loaded from the SPI flash at power-on); neuron state, parameters, axons,
profiles, the link's FIFOs, SERV's registers and the routing tables in EBR (17 of 30 in the
build of 2026-12-05).
"""

from . import Board

__all__ = ["BOARD"]

BOARD = Board(
    name="icebreaker",
    title="iCEBreaker (iCE40UP5K)",
    platform="amaranth_boards.icebreaker:ICEBreakerPlatform",
    device="iCE40UP5K",
    family="ice40",
    # --seed 1: 33.08 MHz at the preset's 30 MHz; seed 2 30.93, seed 3 29.75 (2026-12-05,
    # session 31; a placement differs by several percent from seed to seed: docs/boards.md)
    nextpnr_args=("--up5k", "--package", "sg48", "--seed", "1"),
    osc_hz=12_000_000,
    pll=True,
    preset="icebreaker",
    virtual_presets=("icebreaker-hwlink",),
    uart=("uart", 0),
    # the firmware of a firmware link, loaded at power-on from the flash it configures from
    flash=("spi_flash_1x", 0),
    # led_g/led_r are on the main board; led 2.. on the break-off PMOD (harmless if broken off).
    leds={"heartbeat": ("led_g", 0), "link": ("led_r", 0), "running": ("led_g", 1)},
    extra_resources=("break_off_pmod",),
    # multipliers into the 8 SB_MAC16 DSPs (without -dsp each costs hundreds of LUTs)
    synth_opts="-dsp",
    # The small core never reads and writes one address of a block RAM in one clock (its
    # ``collision``, counted by the core tests): Yosys need not emulate "read first" around
    # its EBR memories (~300 logic cells of flip-flops and multiplexers, and the critical path)
    yosys_commands=("setparam -set COLLISION_X_MASK 1'1 top.soc.chip.core0/t:$memrd_v2",),
    memory={
        "synapses (weight, delay, mask)": "SPRAM (3 x SB_SPRAM256KA: a byte part, a nibble part)",
        "delay slots; the link firmware (program, data, input queue, output buffer)":
            "SPRAM (the fourth SB_SPRAM256KA, shared; the firmware loaded from the SPI flash)",
        "neuron state and parameters, axons and traces, profiles, input bitmap":
            "EBR (SB_RAM40_4K: 9)",
        "link: receive and transmit FIFOs, SERV's registers": "EBR (SB_RAM40_4K: 5)",
        "routing tables": "EBR (SB_RAM40_4K: 3)",
    },
    loader_board="ice40_generic",
    bitstream="top.bin",
    notes="openFPGALoader writes the iCE40's SPI flash (the FPGA boots from it)",
)
