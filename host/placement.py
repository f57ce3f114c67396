"""Place a ``Network`` on identical cores: neurons to cores, axons per core, the routing table.

What needs what (``docs/network_format.md``, "Several cores"):

- A LIF neuron lives on one core, at one neuron index.
- A *pre* neuron (a source neuron, or a LIF neuron with projections) needs one axon on every core
  that holds at least one of its targets; a source neuron with no target at all keeps one axon on
  core 0 (its spikes are declared inputs: the host injects them, its generator runs).
- A LIF neuron's spike reaches those axons through the routing table: one entry per destination
  (core, axon), its own core included, so recurrent and cross-core projections take the same
  route and the same one step (``docs/numerics.md`` 4 and 7).
- An array source is injected by the host onto every core where it has an axon.
- A Poisson source neuron is a generator on every core where it has an axon, always at the same
  axon index: its index among the network's source neurons (population order). The generator
  fires on ``rand(gen_seed, t, 2, axon, 0)`` and every core gets the chip's one ``gen_seed``, so
  the copies of one source fire in the same steps on every core, with no routing latency, and
  the train does not depend on the placement at all.

The placement heuristic (``assign_cores``), greedy and deterministic:

1. If the whole network fits core 0 (neurons, axons, profiles), everything goes there, in
   population order: the single-core layout.
2. Otherwise populations are taken largest first, then always the unplaced population most
   strongly linked to those already placed (link = pre neurons of projections between the two
   that are LIF neurons, i.e. routes that cross cores if the two are apart).
3. A population goes whole onto the core where it fits (free neurons, a profile slot, axons) and
   adds the least cross-core traffic: the number of (LIF neuron, other core) destination pairs it
   creates. Ties go to the core adding the fewest axons, then the lowest core.
4. When no core can take it whole it is split into contiguous pieces, each onto the core that
   takes the largest piece that fits (fewest pieces), ties by traffic then core. If nothing fits,
   the piece goes where the most neurons are free and the fit check names the broken limit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spikeforge.host.network import LIFPopulation, PoissonSource
from spikeforge.image import CoreConfig

# The router's table sizes, declared once beside the table format (no Amaranth there).
from spikeforge.routing import RouterLimits as RoutingLimits

__all__ = ["RoutingLimits", "Placement", "profile_key", "pre_labels", "assign_cores", "place"]


@dataclass
class Placement:
    """Where everything goes.

    ``neurons``: LIF label -> ``(n, 2)`` rows (core, neuron index); ``axons``: pre label ->
    ``(K, 3)`` rows (pre neuron, core, axon), sorted; ``axon_of``: pre label -> ``(n, n_cores)``
    axon of each pre neuron on each core (-1: none); ``profiles[c]``: the profile keys of core
    ``c``; ``profile_of``: LIF label -> ``(n,)`` profile index on each neuron's core; ``routes``:
    ``(R, 4)`` src_core, src_neuron, dst_core, dst_axon; ``n_neurons``, ``n_axons``: used per core.
    """
    n_cores: int
    neurons: dict
    axons: dict
    axon_of: dict
    profiles: list
    profile_of: dict
    routes: np.ndarray
    n_neurons: np.ndarray
    n_axons: np.ndarray


def profile_key(pop):
    """The parameters a neuron profile holds: populations with equal keys share a profile."""
    return (pop.tau_mem, pop.tau_syn, pop.v_th - pop.v_rest, pop.v_reset - pop.v_rest,
            pop.refractory_steps, pop.reset)


def pre_labels(net):
    """Populations that need axons, in axon order: sources, then LIF populations that project."""
    projecting = {p.pre.label for p in net.projections}
    return ([p for p in net.populations if not isinstance(p, LIFPopulation)]
            + [p for p in net.populations
               if isinstance(p, LIFPopulation) and p.label in projecting])


class _Assigner:
    """The state of the greedy placement; ``conns``: projection label -> (pre, post) arrays."""

    def __init__(self, net, config, n_cores, conns):
        self.net, self.config, self.n_cores = net, config, n_cores
        self.lifs = [p for p in net.populations if isinstance(p, LIFPopulation)]
        self.home = {p.label: np.full(p.n, -1) for p in self.lifs}
        self.index = {p.label: np.full(p.n, -1) for p in self.lifs}
        self.free = np.full(n_cores, config.n_neurons)
        self.profiles = [[] for _ in range(n_cores)]
        self.pres = pre_labels(net)
        self.need = {p.label: np.zeros((p.n, n_cores), dtype=bool) for p in self.pres}
        self.into = {p.label: [] for p in self.lifs}        # post label -> [(pre pop, pre, post)]
        for proj in net.projections:
            pre, post = conns[proj.label]
            self.into[proj.post.label].append((proj.pre, pre, post))
        self.n_ax = np.zeros(n_cores, dtype=np.int64)
        # Source neurons without any target keep one axon on core 0.
        self.idle = {}
        for pop in self.pres:
            if not isinstance(pop, LIFPopulation):
                has = np.zeros(pop.n, dtype=bool)
                for proj in net.projections:
                    if proj.pre is pop:
                        has[conns[proj.label][0]] = True
                self.idle[pop.label] = ~has
                self.n_ax[0] += int((~has).sum())

    def _pairs(self, pop, ks, c):
        """New (pre label, pre neurons) pairs with core ``c`` if ``pop``'s neurons ``ks`` went
        there, and the cross-core traffic (LIF destination pairs) that adds."""
        chunk = np.zeros(pop.n, dtype=bool)
        chunk[ks] = True
        by_pre = {}
        for pre_pop, pre, post in self.into[pop.label]:
            by_pre.setdefault(pre_pop.label, (pre_pop, []))[1].append(pre[chunk[post]])
        fresh, traffic = {}, 0
        for label, (pre_pop, parts) in by_pre.items():
            xs = np.unique(np.concatenate(parts))
            xs = xs[~self.need[label][xs, c]]
            if xs.size:
                fresh[label] = xs
                if isinstance(pre_pop, LIFPopulation):
                    h = self.home[label][xs]
                    traffic += int(((h >= 0) & (h != c)).sum())
        if pop.label in self.need:        # the chunk's own spikes to targets placed elsewhere
            other = np.delete(self.need[pop.label][ks], c, axis=1)
            traffic += int(other.sum())
        return fresh, traffic

    def _fits(self, pop, ks, c):
        """(fits, traffic, new axons) for ``pop``'s neurons ``ks`` on core ``c``."""
        fresh, traffic = self._pairs(pop, ks, c)
        added = sum(x.size for x in fresh.values())
        key = profile_key(pop)
        ok = (len(ks) <= self.free[c] and self.n_ax[c] + added <= self.config.n_axons
              and (key in self.profiles[c] or len(self.profiles[c]) < self.config.n_profiles))
        return ok, traffic, added

    def put(self, pop, ks, c):
        fresh, _ = self._pairs(pop, ks, c)
        for label, xs in fresh.items():
            self.need[label][xs, c] = True
            self.n_ax[c] += xs.size
        start = self.config.n_neurons - self.free[c]
        self.home[pop.label][ks] = c
        self.index[pop.label][ks] = np.arange(start, start + len(ks))
        self.free[c] -= len(ks)
        if profile_key(pop) not in self.profiles[c]:
            self.profiles[c].append(profile_key(pop))

    def _largest_piece(self, pop, rest, c):
        """The longest prefix of ``rest`` that fits core ``c`` (axons grow with the prefix)."""
        lo, hi = 0, min(len(rest), int(self.free[c]))
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if self._fits(pop, rest[:mid], c)[0]:
                lo = mid
            else:
                hi = mid - 1
        return lo

    def place_population(self, pop):
        ks = np.arange(pop.n)
        whole = []
        for c in range(self.n_cores):
            ok, traffic, added = self._fits(pop, ks, c)
            if ok:
                whole.append((traffic, added, c))
        if whole:
            self.put(pop, ks, min(whole)[2])
            return
        rest = ks
        while rest.size:
            best = None
            for c in range(self.n_cores):
                m = self._largest_piece(pop, rest, c)
                if m:
                    cand = (-m, self._fits(pop, rest[:m], c)[1], c)
                    best = cand if best is None or cand < best else best
            if best is None:       # nothing fits: the fit check will name the limit
                c = int(np.argmax(self.free))
                m = min(len(rest), int(self.free[c]))
            else:
                m, c = -best[0], best[2]
            self.put(pop, rest[:m], c)
            rest = rest[m:]

    def links(self):
        """Population link weights: LIF pre neurons of projections between two populations."""
        w = {}
        for proj in self.net.projections:
            if isinstance(proj.pre, LIFPopulation) and proj.pre is not proj.post:
                n = int(np.unique(self._conns_pre[proj.label]).size)
                for a, b in ((proj.pre.label, proj.post.label), (proj.post.label, proj.pre.label)):
                    w[a, b] = w.get((a, b), 0) + n
        return w

    def run(self, conns):
        self._conns_pre = {k: v[0] for k, v in conns.items()}
        if self.n_cores == 1 or self._fits_one_core():
            for pop in self.lifs:
                self.put(pop, np.arange(pop.n), 0)
            return
        links = self.links()
        order = {p.label: k for k, p in enumerate(self.lifs)}
        todo, placed = list(self.lifs), []
        while todo:
            def rank(p):
                link = sum(links.get((p.label, q.label), 0) for q in placed)
                return (-link, -p.n, order[p.label])
            pop = min(todo, key=rank)
            todo.remove(pop)
            self.place_population(pop)
            placed.append(pop)

    def _fits_one_core(self):
        c = self.config
        n = sum(p.n for p in self.lifs)
        keys = {profile_key(p) for p in self.lifs}
        axons = sum(int(self.idle[p.label].sum()) for p in self.pres if p.label in self.idle)
        for p in self.pres:
            has = np.zeros(p.n, dtype=bool)
            for q in self.lifs:
                for pre_pop, pre, _ in self.into[q.label]:
                    if pre_pop is p:
                        has[pre] = True
            axons += int(has.sum())
        return n <= c.n_neurons and len(keys) <= c.n_profiles and axons <= c.n_axons


def assign_cores(net, config, n_cores, conns):
    """Neurons to cores (the heuristic of the module docstring). Returns the assigner state:
    ``home``, ``index``, ``need`` (pre label -> (n, n_cores) bool), ``idle``, ``profiles``."""
    state = _Assigner(net, config, n_cores, conns)
    total = sum(p.n for p in state.lifs)
    if total > n_cores * config.n_neurons:
        if n_cores == 1:
            raise ValueError(f"network needs {total} neurons but a core has "
                             f"{config.n_neurons} (n_neurons)")
        raise ValueError(f"network needs {total} neurons but {n_cores} cores of "
                         f"{config.n_neurons} have {n_cores * config.n_neurons} "
                         f"(n_cores x n_neurons)")
    state.run(conns)
    for label, idle in state.idle.items():
        state.need[label][idle, 0] = True
    return state


def _allocate_axons(net, state, n_cores, config):
    """Axon indices: Poisson neurons pinned at their source offset on every core, then array
    sources and projecting LIF neurons at the lowest free index of each core."""
    size = config.n_axons + sum(p.n for p in state.pres)
    used = np.zeros((n_cores, size), dtype=bool)
    axon_of = {p.label: np.full((p.n, n_cores), -1) for p in state.pres}
    offset = 0
    for pop in state.pres:
        if isinstance(pop, PoissonSource):
            k, c = np.nonzero(state.need[pop.label])
            axon_of[pop.label][k, c] = offset + k
            used[c, offset + k] = True
        if not isinstance(pop, LIFPopulation):
            offset += pop.n
    for pop in state.pres:
        if isinstance(pop, PoissonSource):
            continue
        need = state.need[pop.label]
        for c in range(n_cores):
            ks = np.flatnonzero(need[:, c])
            free = np.flatnonzero(~used[c])[:ks.size]
            axon_of[pop.label][ks, c] = free
            used[c, free] = True
    return axon_of, used.sum(axis=1)


def place(net, config=None, n_cores=1, conns=None):
    """Place ``net`` on ``n_cores`` cores of ``config`` (default ``CoreConfig()``). Only a
    network with more neurons than the cores raises here; the compiler's fit check names any
    other limit a placement breaks. ``conns``: projection label -> (pre, post) index arrays."""
    config = CoreConfig() if config is None else config
    if conns is None:
        conns = {p.label: p.connections()[:2] for p in net.projections}
    state = assign_cores(net, config, n_cores, conns)
    axon_of, n_axons = _allocate_axons(net, state, n_cores, config)
    neurons, profile_of = {}, {}
    for pop in state.lifs:
        home, index = state.home[pop.label], state.index[pop.label]
        neurons[pop.label] = np.stack([home, index], axis=1)
        key = profile_key(pop)
        profile_of[pop.label] = np.array([state.profiles[c].index(key) for c in home],
                                         dtype=np.int64)
    axons, routes = {}, []
    for pop in state.pres:
        k, c = np.nonzero(axon_of[pop.label] >= 0)
        rows = np.stack([k, c, axon_of[pop.label][k, c]], axis=1).astype(np.int64)
        axons[pop.label] = rows
        if isinstance(pop, LIFPopulation):
            src = neurons[pop.label][k]
            routes.append(np.stack([src[:, 0], src[:, 1], c, rows[:, 2]], axis=1))
    routes = (np.concatenate(routes).astype(np.int64) if routes
              else np.zeros((0, 4), dtype=np.int64))
    n_neurons = config.n_neurons - state.free
    return Placement(n_cores, neurons, axons, axon_of, state.profiles, profile_of, routes,
                     n_neurons, n_axons)
