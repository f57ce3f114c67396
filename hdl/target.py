"""The kind of FPGA a design is elaborated for, as the blocks that adapt to it ask.

An iCE40 (a small LUT4 fabric run at a slow clock, where every logic cell counts) gets each
block's smallest form; every other device, and simulation, the form with the extra pipeline
registers that a fast clock needs (``spikeforge.hdl.core``'s long update pipeline, the output
buffer's registered ``room``, the router's staging register after its capture lists, ...).
"""

__all__ = ["device_of", "is_ice40"]


def device_of(platform):
    """The device name of ``platform`` (an Amaranth platform, or ``None`` in simulation), upper
    case: ``""`` without one."""
    return str(getattr(platform, "device", "") or "").upper()


def is_ice40(platform):
    """True when ``platform`` is an iCE40."""
    return device_of(platform).startswith("ICE40")
