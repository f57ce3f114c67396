"""Save and load networks: versioned JSON, large arrays in an ``.npz`` side file.

The format is documented in ``docs/network_format.md``. JSON floats are written with Python's
shortest round-tripping ``repr``, so a save/load round trip is exact; NaN (an absent synapse in a
dense matrix) is written as ``null`` so the file stays standard JSON. Loading goes through the
``Network`` API, so a file is validated exactly like a script.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from spikeforge.host.network import (
    STDP,
    AllToAll,
    DenseMatrix,
    FixedProbability,
    LIFPopulation,
    Network,
    OneToOne,
    PoissonSource,
    SpikeSource,
)

__all__ = ["FORMAT", "VERSION", "SIDE_FILE_THRESHOLD", "save_network", "load_network",
           "network_to_json", "network_from_json", "save", "load"]

FORMAT = "spikeforge-network"
VERSION = 1
SIDE_FILE_THRESHOLD = 4096      # arrays with more elements than this go to NAME.npz
_DTYPES = {"float64": np.float64, "int64": np.int64}
_STDP_KEYS = ("w_max", "tau_plus", "tau_minus", "A_plus", "A_minus", "w_min", "mode", "seed")


class _Malformed(ValueError):
    """A problem in the file's content; turned into one ValueError naming the file."""


# ---------------------------------------------------------------------------------- writing

class _Writer:
    def __init__(self, threshold):
        self.threshold = threshold
        self.side = {}

    def value(self, x, key):
        """A scalar as itself; an array as an object with dtype, shape and data (or an npz key)."""
        if not isinstance(x, np.ndarray):
            return x
        dtype = "int64" if x.dtype.kind in "iu" else "float64"
        out = {"dtype": dtype, "shape": list(x.shape)}
        if x.size > self.threshold:
            self.side[key] = x.astype(dtype)
            out["npz"] = key
        else:
            data = x.astype(dtype).astype(object)
            if dtype == "float64":
                data[np.isnan(x)] = None
            out["data"] = data.tolist()
        return out


def network_to_json(net, threshold=SIDE_FILE_THRESHOLD):
    """The JSON document (a dict) and the side-file arrays (a dict) of ``net``."""
    if not isinstance(net, Network):
        raise TypeError(f"expected a Network, not {type(net).__name__}")
    w = _Writer(threshold)
    pops = []
    for k, pop in enumerate(net.populations):
        d = {"kind": pop.kind, "label": pop.label, "n": pop.n}
        if isinstance(pop, SpikeSource):
            d["spikes"] = {"neuron": w.value(pop.neurons, f"populations.{k}.spikes.neuron"),
                           "time": w.value(pop.times, f"populations.{k}.spikes.time")}
        else:
            for name in pop._params:
                d[name] = w.value(getattr(pop, name), f"populations.{k}.{name}")
        pops.append(d)
    projs = []
    for k, proj in enumerate(net.projections):
        c = proj.connector
        conn = {"kind": c.kind}
        if isinstance(c, FixedProbability):
            conn.update(p=c.p, seed=c.seed, allow_self=c.allow_self)
        elif isinstance(c, AllToAll):
            conn["allow_self"] = c.allow_self
        stdp = None if proj.stdp is None else {n: getattr(proj.stdp, n) for n in _STDP_KEYS}
        projs.append({"label": proj.label, "pre": proj.pre.label, "post": proj.post.label,
                      "connector": conn,
                      "weight": w.value(proj.weight, f"projections.{k}.weight"),
                      "delay": w.value(proj.delay, f"projections.{k}.delay"),
                      "stdp": stdp})
    doc = {"format": FORMAT, "version": VERSION, "dt": net.dt,
           "populations": pops, "projections": projs}
    return doc, w.side


def _side_path(path):
    root, _ = os.path.splitext(os.fspath(path))
    return root + ".npz"


def save_network(net, path, threshold=SIDE_FILE_THRESHOLD):
    """Write ``net`` to ``path`` (JSON); arrays above ``threshold`` elements go to
    ``NAME.npz`` beside it (an old side file of that name is removed when none is needed)."""
    doc, side = network_to_json(net, threshold)
    side_path = _side_path(path)
    if side:
        doc["arrays"] = os.path.basename(side_path)
        np.savez_compressed(side_path, **side)
    elif os.path.exists(side_path):
        os.remove(side_path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(_pretty(doc) + "\n")


def _pretty(x, indent=0):
    """JSON with objects and lists of lists broken over lines, but a list of scalars (an
    array row, a shape) on one line, so that small matrices read as matrices."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(x, dict) and x:
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, indent + 2)}" for k, v in x.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(x, list) and any(isinstance(v, (list, dict)) for v in x):
        return "[\n" + ",\n".join(inner + _pretty(v, indent + 2) for v in x) + "\n" + pad + "]"
    return json.dumps(x, allow_nan=False)


# ---------------------------------------------------------------------------------- reading

def _get(d, key, where, types=None):
    if not isinstance(d, dict):
        raise _Malformed(f"{where} must be an object, not {type(d).__name__}")
    if key not in d:
        raise _Malformed(f"{where} has no {key!r}")
    value = d[key]
    if types is not None and (not isinstance(value, types) or isinstance(value, bool)
                              and bool not in (types if isinstance(types, tuple) else (types,))):
        raise _Malformed(f"{where}.{key} has the wrong type ({type(value).__name__})")
    return value


class _Reader:
    def __init__(self, side):
        self.side = side

    def value(self, x, where):
        if not isinstance(x, dict):
            # Scalars (numbers, strings, null) pass: the Network API validates them.
            if isinstance(x, list):
                raise _Malformed(f"{where} must be a scalar or an array object "
                                 f"({{dtype, shape, data}}), not a bare list")
            return x
        dtype = _DTYPES.get(_get(x, "dtype", where))
        if dtype is None:
            raise _Malformed(f"{where}.dtype must be one of {sorted(_DTYPES)}")
        shape = tuple(_get(x, "shape", where, list))
        if "npz" in x:
            if self.side is None:
                raise _Malformed(f"{where} refers to a side file but the file names none "
                                 f"('arrays')")
            if x["npz"] not in self.side:
                raise _Malformed(f"{where} refers to {x['npz']!r}, missing from the side file")
            arr = self.side[x["npz"]]
        else:
            data = _get(x, "data", where, list)
            try:
                arr = np.array(data, dtype=object)
                if dtype is np.float64:
                    arr[np.equal(arr, None)] = np.nan
                arr = arr.astype(dtype)
            except (TypeError, ValueError):
                raise _Malformed(f"{where}.data is not a rectangular array of numbers") from None
            if arr.size == 0:
                arr = arr.reshape(shape)
        if arr.shape != shape or arr.dtype != dtype:
            raise _Malformed(f"{where} has shape {arr.shape} ({arr.dtype}), "
                             f"not the declared {shape} ({np.dtype(dtype)})")
        return arr


def _connector(d, where):
    kind = _get(d, "kind", where, str)
    if kind == "all-to-all":
        return AllToAll(allow_self=_get(d, "allow_self", where, bool))
    if kind == "one-to-one":
        return OneToOne()
    if kind == "dense":
        return DenseMatrix()
    if kind == "fixed-probability":
        return FixedProbability(_get(d, "p", where), _get(d, "seed", where),
                                _get(d, "allow_self", where, bool))
    raise _Malformed(f"{where}.kind {kind!r} is not a known connector")


def network_from_json(doc, side=None):
    """Build a ``Network`` from a parsed document and its side-file arrays (or None).

    Raises ``ValueError`` (content) or ``TypeError`` (a value of the wrong type)."""
    fmt = _get(doc, "format", "document")
    if fmt != FORMAT:
        raise _Malformed(f"format is {fmt!r}, not {FORMAT!r}")
    version = _get(doc, "version", "document")
    if version != VERSION:
        raise _Malformed(f"version {version!r} is not supported (this reader reads version "
                         f"{VERSION})")
    r = _Reader(side)
    net = Network(dt=_get(doc, "dt", "document"))
    makers = {LIFPopulation.kind: net.population, SpikeSource.kind: net.spike_source,
              PoissonSource.kind: net.poisson_source}
    for k, d in enumerate(_get(doc, "populations", "document", list)):
        where = f"populations[{k}]"
        kind = _get(d, "kind", where, str)
        if kind not in makers:
            raise _Malformed(f"{where}.kind {kind!r} is not one of {sorted(makers)}")
        n, label = _get(d, "n", where, int), _get(d, "label", where, str)
        if kind == SpikeSource.kind:
            spikes = _get(d, "spikes", where)
            neurons = r.value(_get(spikes, "neuron", f"{where}.spikes"), f"{where}.spikes.neuron")
            times = r.value(_get(spikes, "time", f"{where}.spikes"), f"{where}.spikes.time")
            if not isinstance(neurons, np.ndarray) or not isinstance(times, np.ndarray):
                raise _Malformed(f"{where}.spikes must hold arrays")
            if neurons.shape != times.shape or neurons.ndim != 1:
                raise _Malformed(f"{where}.spikes neuron and time must be 1-D and equally long")
            net.spike_source(n, times=np.stack([neurons.astype(np.float64), times], axis=1),
                             label=label)
            continue
        cls = {LIFPopulation.kind: LIFPopulation, PoissonSource.kind: PoissonSource}[kind]
        params = {p: r.value(_get(d, p, where), f"{where}.{p}") for p in cls._params}
        makers[kind](n, label=label, **params)
    for k, d in enumerate(_get(doc, "projections", "document", list)):
        where = f"projections[{k}]"
        pre, post = _get(d, "pre", where, str), _get(d, "post", where, str)
        try:
            pre, post = net[pre], net[post]
        except KeyError as e:
            raise _Malformed(f"{where}: {e.args[0]}") from None
        stdp = _get(d, "stdp", where)
        if stdp is not None:
            stdp = STDP(**{n: _get(stdp, n, f"{where}.stdp") for n in _STDP_KEYS})
        net.connect(pre, post, label=_get(d, "label", where, str),
                    connector=_connector(_get(d, "connector", where), f"{where}.connector"),
                    weight=r.value(_get(d, "weight", where), f"{where}.weight"),
                    delay=r.value(_get(d, "delay", where), f"{where}.delay"), stdp=stdp)
    return net


def load_network(path):
    """Read a network file (and its side file, if it names one).

    Any problem raises ``ValueError('PATH: problem')`` in one line."""
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e.msg} at line {e.lineno})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text file") from None
    side = None
    try:
        if isinstance(doc, dict) and "arrays" in doc:
            name = doc["arrays"]
            if not isinstance(name, str) or os.path.basename(name) != name:
                raise _Malformed(f"arrays must be a file name beside the network file, "
                                 f"not {name!r}")
            side_path = os.path.join(os.path.dirname(path), name)
            try:
                with np.load(side_path, allow_pickle=False) as z:
                    side = {k: z[k] for k in z.files}
            except FileNotFoundError:
                raise _Malformed(f"side file {name!r} is missing") from None
            except (OSError, ValueError, zipfile.BadZipFile) as e:
                raise _Malformed(f"side file {name!r} is unreadable ({e})") from None
        return network_from_json(doc, side)
    except (_Malformed, ValueError, TypeError) as e:
        raise ValueError(f"{path}: {e}") from None


# Short names, as the CLI uses them.
save = save_network
load = load_network
