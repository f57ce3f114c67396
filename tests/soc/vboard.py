"""The virtual board lives in the package now (``spikeforge.boards.virtual``)."""

from spikeforge.boards.virtual import VirtualBoard, build_vboard

__all__ = ["VirtualBoard", "build_vboard"]
