"""Example networks shipped with spikeforge (``spikeforge.examples``).

The files here are data; ``path(name)`` finds one whether spikeforge runs from a source tree or
from an installed wheel.
"""

from importlib import resources

__all__ = ["path", "names"]


def path(name):
    """Path of the example network file ``name`` (with or without ``.json``)."""
    if not name.endswith(".json"):
        name += ".json"
    ref = resources.files(__name__) / name
    if not ref.is_file():
        raise ValueError(f"no example network named {name!r}; there are: {', '.join(names())}")
    return str(ref)


def names():
    return sorted(p.name for p in resources.files(__name__).iterdir()
                  if p.name.endswith(".json"))
