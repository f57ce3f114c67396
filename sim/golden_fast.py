"""The golden model compiled with Numba: ``docs/numerics.md`` section 5, event-driven.

Bit-exact with ``spikeforge.sim.golden`` (``tests/test_golden_fast.py`` checks every state array
and every spike, every step); only the data layout and the arithmetic types differ:

- the synapses that exist (``weight != 0`` or ``mask == 1``) are kept per axon as a compressed
  row list (CSR) of int32 words ``weight << 16 | delay << 10 | neuron``, so delivery walks only
  existing synapses. A synapse with weight 0 and mask 0 adds 0 to its slot and is never learned,
  so leaving it out changes nothing; a masked synapse stays listed even when its weight is 0;
- when the core does not learn, the synapses of one (axon, delay) with at least
  ``N / DENSE_FRACTION`` targets are a dense int8 (int16 above 8 weight bits) row instead, added
  to the slot with SIMD: the same row walk the hardware does, with zeros where no synapse is;
- each masked synapse is also listed per neuron (CSC) for the eager potentiation walk (section 6);
- ``v``, ``i``, ``ref`` and the neuron parameters are int32, and the decay
  ``(z * alpha + 2^15) >> 16`` is computed in two 12-bit halves of ``z`` whose products fit 31
  bits (``_idecay``), so the neuron loop runs in 32-bit vector lanes (twice as many per vector
  as the 64-bit arithmetic the contract's 40-bit product would otherwise need);
- the delay slots are int32 (a slot sum is exact in ``slot_bits <= 26`` bits);
- a whole run (many steps, routing of a core's spikes to its own axons included) is one call of
  the compiled kernel, so Python is not woken per step.

The PRNG is ``mix32`` of numerics.md section 6 in 64-bit integers masked to 32 bits (Numba widens
``uint32`` arithmetic, so the mask is explicit); traces and learning use exact ``int64``.
Registers (``learn``, amplitudes, seeds) are read when a ``FastChip`` is made: to change one, make
a new ``FastChip`` from ``chip.image``. Supports chips of one core (recurrence through routes to
its own axons); for several cores use ``spikeforge.sim.golden``.
"""

from __future__ import annotations

import numpy as np
from numba import int16, int32, njit

from spikeforge.image import STATE_BITS, STDP_SHIFT, TRACE_BITS, ChipImage, CoreImage
from spikeforge.sim.chip import input_set
from spikeforge.sim.trace import PROBE_VARS, Trace

__all__ = ["FastChip", "simulate_fast", "DENSE_FRACTION"]

DENSE_FRACTION = 32      # an (axon, delay) with >= N/32 static synapses is stored as a dense row

_M32 = 0xFFFFFFFF
_S_LO, _S_HI = -(1 << (STATE_BITS - 1)), (1 << (STATE_BITS - 1)) - 1
_T_HI = (1 << TRACE_BITS) - 1
_I_LO, _I_HI = np.int32(_S_LO), np.int32(_S_HI)
_RAND_SHIFT = 32 - STDP_SHIFT

# Register vector layout (int64), so the kernel takes one array instead of fifteen scalars.
(_R_WEIGHT_EXP, _R_LEARN, _R_TRACE_MODE, _R_ALPHA_X, _R_ALPHA_Y, _R_X_INC, _R_Y_INC, _R_A_PLUS,
 _R_A_MINUS, _R_W_MIN, _R_W_MAX, _R_STDP_SEED, _R_GEN_SEED, _R_PLASTIC) = range(14)
# Counter vector layout: events delivered over existing synapses, input events, spikes.
_C_EVENTS, _C_INPUTS, _C_SPIKES, _C_PENDING = range(4)


@njit(cache=True, inline="always")
def _round(x):
    x = (x + (x << 10)) & _M32
    x ^= x >> 6
    x = (x + (x << 3)) & _M32
    x ^= x >> 11
    return (x + (x << 15)) & _M32


@njit(cache=True, inline="always")
def _mix32(x):
    y = _round(_round(x & _M32) ^ 0x9E3779B9)
    return y ^ (y >> 16)


@njit(cache=True, inline="always")
def _decay(z, alpha):
    return (z * alpha + 32768) >> 16


@njit(cache=True, inline="always")
def _idecay(z, alpha):
    """``decay`` in int32 lanes, exactly: with ``z = zh * 2^12 + zl`` (``0 <= zl < 2^12``),
    ``(z * alpha + 2^15) >> 16 == (zh * alpha + ((zl * alpha + 2^15) >> 12)) >> 4``: the low
    part's fraction below 2^12 cannot carry past the final shift. Every term fits 31 bits for a
    24-bit ``z`` and a 16-bit ``alpha``, so the neuron loop runs 8 (or 16) neurons per vector."""
    zh = int32(z >> 12)
    zl = int32(z & 4095)
    q = int32(int32(zl * alpha) + 32768)
    return int32(int32(int32(zh * alpha) + int32(q >> 12)) >> 4)


# int8 rows summed in int16 before they reach the int32 slots: 255 rows of |w| <= 128 stay
# below 2^15, so the sum is exact, and an int16 lane is half an int32 one.
_ACC_ROWS = 255


@njit(cache=True, inline="always")
def _acc_row(acc, d, planes, e):
    """Dense row ``e`` (int8) into delay ``d``'s int16 accumulator (exact for ``_ACC_ROWS``
    rows); 2-D indices rather than row views, which cost more than the adds of a short row."""
    for n in range(acc.shape[1]):
        acc[d, n] = int16(acc[d, n] + planes[e, n])


@njit(cache=True)
def _flush(dst, acc):
    """A delay's int16 accumulator into its slot, and cleared."""
    for n in range(dst.shape[0]):
        dst[n] += acc[n]
        acc[n] = 0


@njit(cache=True)
def _add_row(dst, src):
    """A dense row of one delay into its slot: the SIMD form of a row walk."""
    for n in range(dst.shape[0]):
        dst[n] += src[n]


@njit(cache=True)
def _neurons(v, ref, i, params, slot, fired, shift, slot_lim):
    """numerics.md 5.4 for every neuron, branch-free in exact int32 (Numba would widen each
    operation to int64, so every result is narrowed explicitly and LLVM keeps 32-bit lanes).

    ``params`` rows (int32, one 2-D array so that LLVM needs few alias checks): alpha_v, bias,
    threshold, keep (reset_mode), reset value (v_reset for mode 0, else 0), refractory,
    alpha_i. The slot sum is clamped to ``+-slot_lim = 2^25 >> shift`` before the shift by
    ``weight_exp``: a clamped value saturates ``i`` either way, and the shifted value fits.
    """
    alpha_v, bias, thr, keep, reset, refr, alpha_i = (
        params[0], params[1], params[2], params[3], params[4], params[5], params[6])
    for n in range(v.shape[0]):
        s = min(max(slot[n], -slot_lim), slot_lim)
        c = int32(_idecay(i[n], alpha_i[n]) + int32(s << shift))
        c = min(max(c, _I_LO), _I_HI)
        i[n] = c
        slot[n] = 0
        r0 = ref[n]
        v0 = v[n]
        vv = int32(int32(_idecay(v0, alpha_v[n]) + c) + bias[n])
        vv = min(max(vv, _I_LO), _I_HI)
        th = thr[n]
        active = r0 == 0
        spike = active & (vv > th)
        after = int32(vv - th) if keep[n] else reset[n]
        v[n] = (after if spike else vv) if active else v0
        ref[n] = refr[n] if spike else int32(max(r0 - 1, 0))
        fired[n] = spike


@njit(cache=True)
def _run(n_steps, t0, regs,
         v, i, ref, y, x, slots, pending,
         params, gen_prob,
         row_ptr, syn_word, syn_mask, col_ptr, col_axon, col_syn,
         row_events, dense_ptr, dense_delay, planes,
         route_ptr, route_axon, host_out,
         ext_ptr, ext_axon,
         rec_t, rec_n, probe_n, probe_var, probe_out, counts, spike_count):
    """Run up to ``n_steps`` steps from step ``t0``; return the number of steps done.

    ``v``, ``i``, ``ref`` are int32 (24 and 4 bits); ``params`` holds the neuron parameters per
    neuron as int32 (the profile table already looked up).
    ``slots`` is the flat ``(S * N,)`` int32 slot memory (a slot sum is exact in
    ``slot_bits <= 26`` bits);
    ``syn_word`` packs a synapse as ``weight << 16 | delay << 10 | neuron`` in int32.
    Without learning, the synapses of an axon with one delay may instead be a dense int8/16 row
    ``planes[e]`` (``e`` in ``dense_ptr[a]:dense_ptr[a + 1]``, delay ``dense_delay[e]``).
    ``row_events[a]`` counts the existing synapses of axon ``a``, however they are stored.
    ``pending[:counts[_C_PENDING]]`` are the axons routed for the next step (no duplicates).
    Stops early (before a step) when the spike record could overflow; the caller then grows
    ``rec_t``/``rec_n`` and calls again. ``counts[_C_SPIKES]`` is the number of recorded rows.
    """
    n_neurons = v.shape[0]
    n_axons = x.shape[0]
    n_bits = 0
    while (1 << n_bits) < n_neurons:
        n_bits += 1
    smask = slots.shape[0] // n_neurons - 1
    shift = np.int32(regs[_R_WEIGHT_EXP])
    slot_lim = np.int32((1 << 25) >> shift)
    plastic = regs[_R_PLASTIC] != 0
    learn = plastic and regs[_R_LEARN] != 0
    trace_mode = regs[_R_TRACE_MODE]
    alpha_x, alpha_y = regs[_R_ALPHA_X], regs[_R_ALPHA_Y]
    x_inc, y_inc = regs[_R_X_INC], regs[_R_Y_INC]
    a_plus, a_minus = regs[_R_A_PLUS], regs[_R_A_MINUS]
    w_min, w_max = regs[_R_W_MIN], regs[_R_W_MAX]
    stdp_seed, gen_seed = regs[_R_STDP_SEED], regs[_R_GEN_SEED]
    # Generator axons, found once: only they draw random numbers.
    n_gen = 0
    gen_axons = np.empty(n_axons, np.int64)
    for a in range(n_axons):
        if gen_prob[a] > 0:
            gen_axons[n_gen] = a
            n_gen += 1
    marked = np.zeros(n_axons, np.bool_)
    rows = np.empty(n_axons, np.int64)
    fired = np.zeros(n_neurons, np.bool_)
    spiked = np.empty(n_neurons, np.int64)
    cap = rec_t.shape[0]
    n_slots = smask + 1
    narrow = planes.itemsize == 1                   # int8 rows: sum them in int16 first
    acc = np.zeros((n_slots if narrow else 0, n_neurons), np.int16)
    acc_rows = np.zeros(n_slots, np.int64)
    for k in range(n_steps):
        if counts[_C_SPIKES] + n_neurons > cap:
            return k
        t = (t0 + k) & _M32

        # 1. input set (duplicates merge): routed from t - 1, external, generators
        n_rows = counts[_C_PENDING]
        for j in range(n_rows):
            rows[j] = pending[j]
            marked[rows[j]] = True
        for j in range(ext_ptr[k], ext_ptr[k + 1]):
            a = ext_axon[j]
            if not marked[a]:
                marked[a] = True
                rows[n_rows] = a
                n_rows += 1
        if n_gen:
            gkey = _mix32(gen_seed ^ _mix32(t))
            for j in range(n_gen):
                a = gen_axons[j]
                if (_mix32(gkey ^ ((2 << 30) | (a << 15))) >> 16) < gen_prob[a] and not marked[a]:
                    marked[a] = True
                    rows[n_rows] = a
                    n_rows += 1
        for j in range(n_rows):
            marked[rows[j]] = False
        counts[_C_INPUTS] += n_rows

        # 2. presynaptic traces
        if plastic:
            for a in range(n_axons):
                x[a] = _decay(x[a], alpha_x)
            for j in range(n_rows):
                a = rows[j]
                x[a] = min(x[a] + x_inc, _T_HI) if trace_mode == 0 else x_inc

        # 3. delivery over existing synapses, with depression in the same read-modify-write
        skey = _mix32(stdp_seed ^ _mix32(t)) if learn else 0
        for j in range(n_rows):
            a = rows[j]
            lo, hi = row_ptr[a], row_ptr[a + 1]
            counts[_C_EVENTS] += row_events[a]
            for e in range(dense_ptr[a], dense_ptr[a + 1]):
                d = dense_delay[e]
                if narrow:
                    _acc_row(acc, d, planes, e)
                    acc_rows[d] += 1
                    if acc_rows[d] == _ACC_ROWS:
                        base_d = ((t + d) & smask) << n_bits
                        _flush(slots[base_d:base_d + n_neurons], acc[d])
                        acc_rows[d] = 0
                else:
                    base_d = ((t + d) & smask) << n_bits
                    _add_row(slots[base_d:base_d + n_neurons], planes[e])
            if learn:
                for q in range(lo, hi):
                    word = syn_word[q]
                    n = word & 1023
                    w = word >> 16
                    slots[(((t + (word >> 10)) & smask) << n_bits) | n] += w
                    if syn_mask[q]:
                        r = _mix32(skey ^ ((a << 15) | n)) >> _RAND_SHIFT
                        dep = (a_minus * _decay(y[n], alpha_y) + r) >> STDP_SHIFT
                        w = min(max(w - dep, w_min), w_max)
                        syn_word[q] = (w << 16) | (word & 0xFFFF)
            else:
                for q in range(lo, hi):
                    word = syn_word[q]
                    slots[(((t + (word >> 10)) & smask) << n_bits) | (word & 1023)] += word >> 16

        for d in range(n_slots if narrow else 0):
            if acc_rows[d]:
                base_d = ((t + d) & smask) << n_bits
                _flush(slots[base_d:base_d + n_neurons], acc[d])
                acc_rows[d] = 0

        # 4. neuron update
        base_s = (t & smask) << n_bits
        _neurons(v, ref, i, params, slots[base_s:base_s + n_neurons], fired, shift, slot_lim)
        if plastic:
            for n in range(n_neurons):
                yy = _decay(y[n], alpha_y)
                if fired[n]:
                    yy = min(yy + y_inc, _T_HI) if trace_mode == 0 else y_inc
                y[n] = yy
        n_spiked = 0
        if n_neurons % 8 == 0:      # skip 8 silent neurons at a time
            words = fired.view(np.uint64)
            for wi in range(words.shape[0]):
                if words[wi]:
                    for n in range(8 * wi, 8 * wi + 8):
                        if fired[n]:
                            spiked[n_spiked] = n
                            n_spiked += 1
        else:
            for n in range(n_neurons):
                if fired[n]:
                    spiked[n_spiked] = n
                    n_spiked += 1

        # 5. potentiation: eager column walk of each post-spiking neuron
        if learn:
            for j in range(n_spiked):
                n = spiked[j]
                for q in range(col_ptr[n], col_ptr[n + 1]):
                    a = col_axon[q]
                    r = _mix32(skey ^ ((1 << 30) | (a << 15) | n)) >> _RAND_SHIFT
                    pot = (a_plus * x[a] + r) >> STDP_SHIFT
                    m = col_syn[q]
                    word = syn_word[m]
                    w = min(max((word >> 16) + pot, w_min), w_max)
                    syn_word[m] = (w << 16) | (word & 0xFFFF)

        # 6. emit: record, count, route to this core's axons for step t + 1
        base = counts[_C_SPIKES]
        n_pend = 0
        for j in range(n_spiked):
            n = spiked[j]
            spike_count[n] += 1
            if host_out[n]:
                rec_t[base] = t
                rec_n[base] = n
                base += 1
            for q in range(route_ptr[n], route_ptr[n + 1]):
                a = route_axon[q]
                if not marked[a]:
                    marked[a] = True
                    pending[n_pend] = a
                    n_pend += 1
        for j in range(n_pend):
            marked[pending[j]] = False
        counts[_C_PENDING] = n_pend
        counts[_C_SPIKES] = base
        for j in range(probe_n.shape[0]):
            n, var = probe_n[j], probe_var[j]
            probe_out[k, j] = np.int64(v[n]) if var == 0 else np.int64(i[n]) if var == 1 else (
                np.int64(ref[n]) if var == 2 else y[n])
    return n_steps


def _csr(rows, cols, n_rows, *values):
    """Sort (rows, cols, values...) by row then column; return (ptr, cols, values...)."""
    order = np.lexsort((cols, rows))
    ptr = np.zeros(n_rows + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=ptr[1:])
    return (ptr, cols[order], *(v[order] for v in values))


class FastChip:
    """A chip of one core run by the compiled kernel; mirrors ``GoldenChip``.

    ``step(ext)`` returns a list with the core's boolean spike vector; ``run`` returns a
    ``Trace``; ``image`` rebuilds the current ``ChipImage``. ``events`` counts deliveries over
    existing synapses, ``input_events`` axon events and ``spike_count`` spikes per neuron since
    construction.
    """

    def __init__(self, chip):
        if isinstance(chip, CoreImage):
            chip = ChipImage([chip])
        if not isinstance(chip, ChipImage):
            raise TypeError(f"FastChip needs a ChipImage, not {type(chip).__name__}")
        if len(chip.cores) != 1:
            raise ValueError(f"the fast golden model runs chips of one core, not "
                             f"{len(chip.cores)}; use spikeforge.sim.golden for more")
        chip = chip.copy().validate()
        self._chip = chip
        im = chip.cores[0]
        c = im.config
        self.config = c
        self._im = im
        # Synapses that exist: weight != 0, or plastic (mask 1; it may learn away from 0).
        exists = (im.weight != 0) | (im.mask != 0)
        self._row_events = exists.sum(axis=1).astype(np.int64)
        # Without learning the weights are constant: the synapses of one (axon, delay) with at
        # least N / DENSE_FRACTION targets become a dense row, added with SIMD.
        learning = bool(c.plastic and im.learn)
        dense_a, dense_d = [], []
        if not learning:
            for d in range(c.n_slots):
                counts = (exists & (im.delay == d)).sum(axis=1)
                for a in np.flatnonzero(counts * DENSE_FRACTION >= c.n_neurons):
                    dense_a.append(a)
                    dense_d.append(d)
        dense_a, dense_d = np.array(dense_a, np.int64), np.array(dense_d, np.int64)
        order = np.argsort(dense_a, kind="stable")
        dense_a, dense_d = dense_a[order], dense_d[order]
        plane_type = np.int8 if c.weight_bits <= 8 else np.int16    # half the bytes to stream
        self._planes = np.zeros((dense_a.size, c.n_neurons), plane_type)
        for e, (a, d) in enumerate(zip(dense_a, dense_d, strict=True)):
            sel = exists[a] & (im.delay[a] == d)
            self._planes[e, sel] = im.weight[a, sel]
            exists[a, sel] = False               # stored densely, not in the rows below
        self._dense_delay = dense_d
        self._dense_ptr = np.zeros(c.n_axons + 1, np.int64)
        np.cumsum(np.bincount(dense_a, minlength=c.n_axons), out=self._dense_ptr[1:])
        a_idx, n_idx = np.nonzero(exists)
        self._syn_a, self._syn_n = a_idx, n_idx          # row-major order: already sorted
        self._row_ptr = np.zeros(c.n_axons + 1, np.int64)
        np.cumsum(np.bincount(a_idx, minlength=c.n_axons), out=self._row_ptr[1:])
        w = im.weight[a_idx, n_idx].astype(np.int64)
        d = im.delay[a_idx, n_idx].astype(np.int64)
        # One int32 word per synapse: weight << 16 | delay << 10 | neuron. The kernel reads the
        # delay as (word >> 10) & (S - 1): the weight bits above it are multiples of 64 >= S.
        self._syn_word = ((w << 16) | (d << 10) | n_idx).astype(np.int32)
        self._syn_mask = im.mask[a_idx, n_idx].astype(np.bool_)
        plastic_q = np.flatnonzero(self._syn_mask)
        self._col_ptr, self._col_axon, self._col_syn = _csr(
            n_idx[plastic_q], a_idx[plastic_q], c.n_neurons, plastic_q.astype(np.int64))
        r = chip.routes
        r = r[(r[:, 0] == 0) & (r[:, 2] == 0)]
        self._route_ptr, self._route_axon = _csr(r[:, 1], r[:, 3], c.n_neurons)
        self._host_out = np.asarray(chip.host_out[0], dtype=np.bool_)
        self._pending = np.zeros(c.n_axons, dtype=np.int64)
        self._regs = np.array([im.weight_exp, im.learn, im.trace_mode, im.alpha_x, im.alpha_y,
                               im.x_inc, im.y_inc, im.a_plus, im.a_minus, im.w_min, im.w_max,
                               im.stdp_seed, im.gen_seed, int(c.plastic)], dtype=np.int64)
        p = im.profile
        mode = im.reset_mode[p]
        self._params = np.array([im.alpha_v[p], im.bias, im.threshold[p], mode,
                                 np.where(mode == 0, im.v_reset[p], 0), im.refractory[p],
                                 im.alpha_i[p]], dtype=np.int32)
        self._state = {name: getattr(im, name).astype(np.int32) for name in ("v", "i", "ref")}
        self._slots = im.slots.astype(np.int32).ravel()
        self._counts = np.zeros(4, np.int64)
        self.spike_count = np.zeros(c.n_neurons, np.int64)
        self._rec_t = np.zeros(max(4 * c.n_neurons, 1024), np.int64)
        self._rec_n = np.zeros_like(self._rec_t)

    @property
    def events(self):
        """Deliveries of an event over an existing synapse since construction."""
        return int(self._counts[_C_EVENTS])

    @property
    def input_events(self):
        return int(self._counts[_C_INPUTS])

    @property
    def step_counter(self):
        return int(self._im.step)

    @property
    def image(self):
        """The current state as a ChipImage (a copy)."""
        im = self._im.copy()
        im.weight[self._syn_a, self._syn_n] = self._syn_word >> 16
        im.slots = self._slots.astype(np.int64).reshape(im.slots.shape)
        for name, value in self._state.items():
            setattr(im, name, value.astype(np.int64))
        return ChipImage([im], self._chip.routes.copy(), [self._host_out.copy()])

    def _input_arrays(self, ext):
        ax = np.flatnonzero(input_set(self.config.n_axons, ext))
        return np.array([0, ax.size], np.int64), ax.astype(np.int64)

    def _call(self, n_steps, ext_ptr, ext_axon, probe_n, probe_var, probe_out):
        im = self._im
        done = 0
        while done < n_steps:
            k = _run(n_steps - done, (int(im.step) + done) & _M32, self._regs,
                     self._state["v"], self._state["i"], self._state["ref"], im.y, im.x,
                     self._slots, self._pending, self._params, im.gen_prob,
                     self._row_ptr, self._syn_word, self._syn_mask,
                     self._col_ptr, self._col_axon, self._col_syn,
                     self._row_events, self._dense_ptr, self._dense_delay, self._planes,
                     self._route_ptr, self._route_axon, self._host_out,
                     ext_ptr[done:] - ext_ptr[done], ext_axon[ext_ptr[done]:],
                     self._rec_t, self._rec_n, probe_n, probe_var, probe_out[done:],
                     self._counts, self.spike_count)
            done += k
            if done < n_steps:       # spike record full: grow it and go on
                self._rec_t = np.resize(self._rec_t, 2 * self._rec_t.size)
                self._rec_n = np.resize(self._rec_n, 2 * self._rec_n.size)
        im.step = (int(im.step) + n_steps) & _M32

    def step(self, ext=None):
        """Run one step (``ext``: the core's input as in ``GoldenChip.step``, a one-item list)."""
        if ext is not None and len(ext) != 1:
            raise ValueError(f"input must list 1 core, not {len(ext)}")
        ext_ptr, ext_axon = self._input_arrays(None if ext is None else ext[0])
        start = int(self._counts[_C_SPIKES])
        host_out = self._host_out
        self._host_out = np.ones_like(host_out)     # record every spike of this step
        try:
            self._call(1, ext_ptr, ext_axon, np.zeros(0, np.int64), np.zeros(0, np.int64),
                       np.zeros((1, 0), np.int64))
        finally:
            self._host_out = host_out
        out = np.zeros(self.config.n_neurons, dtype=bool)
        out[self._rec_n[start:self._counts[_C_SPIKES]]] = True
        self._counts[_C_SPIKES] = start
        return [out]

    def run(self, n_steps, inputs=None, probes=()):
        """Run ``n_steps`` steps; return a ``Trace`` (same contract as ``GoldenChip.run``)."""
        if n_steps < 0:
            raise ValueError(f"n_steps must be non-negative, not {n_steps}")
        probes = [tuple(p) for p in probes]
        for core, neuron, var in probes:
            if var not in PROBE_VARS:
                raise ValueError(f"probe variable {var!r} is not one of {', '.join(PROBE_VARS)}")
            if core != 0:
                raise ValueError(f"probe core {core} is out of range [0, 0]")
            if not 0 <= neuron < self.config.n_neurons:
                raise ValueError(f"probe neuron {neuron} is out of range "
                                 f"[0, {self.config.n_neurons - 1}]")
        first = self.step_counter
        inputs = np.zeros((0, 3), np.int64) if inputs is None else np.asarray(inputs, np.int64)
        inputs = inputs.reshape(-1, 3)
        if len(inputs) and (inputs[:, 1] != 0).any():
            raise ValueError("input core must be 0 on a chip of one core")
        bad = (inputs[:, 2] < 0) | (inputs[:, 2] >= self.config.n_axons)
        if bad.any():
            raise ValueError(f"input axon {int(inputs[bad][0, 2])} is out of range "
                             f"[0, {self.config.n_axons - 1}]")
        inputs = inputs[(inputs[:, 0] >= first) & (inputs[:, 0] < first + n_steps)]
        inputs = np.unique(inputs[:, [0, 2]], axis=0)       # duplicates of a step merge
        ext_ptr = np.searchsorted(inputs[:, 0], np.arange(first, first + n_steps + 1))
        probe_n = np.array([p[1] for p in probes], np.int64)
        probe_var = np.array([PROBE_VARS.index(p[2]) for p in probes], np.int64)
        values = np.zeros((n_steps, len(probes)), np.int64)
        start = int(self._counts[_C_SPIKES])
        self._call(n_steps, ext_ptr.astype(np.int64), inputs[:, 1].astype(np.int64).copy(),
                   probe_n, probe_var, values)
        end = int(self._counts[_C_SPIKES])
        spikes = np.column_stack([self._rec_t[start:end], np.zeros(end - start, np.int64),
                                  self._rec_n[start:end]])
        self._counts[_C_SPIKES] = start          # the record is scratch space between runs
        return Trace(first, n_steps, spikes, probes, values, {"engine": "golden_fast"})


def simulate_fast(chip, n_steps, inputs=None, probes=()):
    """Like ``golden.simulate`` for a one-core chip, with the compiled kernel."""
    return FastChip(chip).run(n_steps, inputs, probes)
