"""A stand-in for an Amaranth platform in tests that elaborate for a device."""


class DevicePlatform:
    """A platform as far as the hardware asks (``spikeforge.hdl.target``): its ``device``."""

    def __init__(self, device):
        self.device = device
