"""spikeforge: an open neuromorphic hardware toolchain and FPGA emulator."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("spikeforge")
except PackageNotFoundError:  # running from a source tree without an install
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
